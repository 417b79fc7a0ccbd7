//! Domain types that live in text columns. diesel reads them by parsing, so a stored
//! value that doesn't parse is an error: never a default, and never more rights.

/// Implements diesel's `FromSql`/`ToSql` for `Text` on a type with
/// `parse(&str) -> Result<Self, String>` and `as_str(&self) -> &'static str`.
/// Generic over the backend, so another store can read the same columns.
macro_rules! text_column {
    ($ty:ty) => {
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let raw = String::from_sql(bytes)?;
                <$ty>::parse(&raw).map_err(|e| {
                    format!("stored {} {raw:?} is invalid: {e}", stringify!($ty)).into()
                })
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }
    };
}

pub(crate) use text_column;
