//! A token's rate limit: how many requests a minute it may make, from 1 to 100 million.
//! No limit is `Option::None`, never a zero or a negative number.

use std::fmt;
use std::num::NonZeroU32;

use diesel::sql_types::Integer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = Integer)]
// Kept as the `i32` the column holds (always 1..=MAX), so `ToSql` can lend it to any
// backend; `per_minute` gives it back as the non-zero count it is.
pub struct RateLimit(i32);

impl RateLimit {
    /// High enough that one server can't reach it (it answers well under a million
    /// requests a second), so a limit is never a ceiling on the server itself.
    pub const MAX: u32 = 100_000_000;

    /// What a person is told when a limit isn't one.
    pub const RULE: &'static str = "A rate limit is a whole number of requests per minute, from 1 to 100000000, or empty for no limit.";

    pub fn new(per_minute: u32) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&per_minute) {
            // MAX fits in an i32, so this never truncates.
            Ok(Self(per_minute as i32))
        } else {
            Err(Self::RULE.to_string())
        }
    }

    /// A form field: empty (or blank) is no limit.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        // Digits only: no sign, no exponent, no thousands separators to misread.
        if raw.len() > 9 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Self::RULE.to_string());
        }
        let n: u32 = raw.parse().map_err(|_| Self::RULE.to_string())?;
        Self::new(n).map(Some)
    }

    pub fn per_minute(self) -> NonZeroU32 {
        // `new` only makes values from 1 to MAX.
        NonZeroU32::new(self.0.unsigned_abs()).unwrap_or(NonZeroU32::MIN)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests per minute", self.0)
    }
}

impl<DB> diesel::deserialize::FromSql<Integer, DB> for RateLimit
where
    DB: diesel::backend::Backend,
    i32: diesel::deserialize::FromSql<Integer, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        let raw = i32::from_sql(bytes)?;
        u32::try_from(raw)
            .map_err(|e| e.to_string())
            .and_then(RateLimit::new)
            .map_err(|e| format!("stored rate limit {raw} is invalid: {e}").into())
    }
}

impl<DB> diesel::serialize::ToSql<Integer, DB> for RateLimit
where
    DB: diesel::backend::Backend,
    i32: diesel::serialize::ToSql<Integer, DB>,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        self.0.to_sql(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_field_is_a_limit_or_nothing() {
        assert_eq!(RateLimit::parse_optional(""), Ok(None));
        assert_eq!(RateLimit::parse_optional("  "), Ok(None));
        assert_eq!(
            RateLimit::parse_optional(" 60 ").map(|l| l.map(|l| l.per_minute().get())),
            Ok(Some(60))
        );
        assert_eq!(
            RateLimit::parse_optional("100000000").map(|l| l.map(|l| l.per_minute().get())),
            Ok(Some(RateLimit::MAX))
        );
        for bad in [
            "0",
            "-1",
            "+5",
            "1e3",
            "1,000",
            "100000001",
            "99999999999",
            "abc",
            "٣",
        ] {
            assert_eq!(
                RateLimit::parse_optional(bad),
                Err(RateLimit::RULE.to_string()),
                "{bad:?}"
            );
        }
    }
}
