//! Server-wide values kept in the database, such as the generated session key.

use diesel::prelude::*;

use super::DbConnection;

use super::schema::server_settings;
use crate::error::AppError;

/// Returns the stored value, or stores `make()` and returns it. Safe to race: write
/// transactions run one at a time on either store (see `db::tx::transact`), so the first writer
/// stores its value and everyone after reads it. (A plain read-then-insert, because
/// `INSERT OR IGNORE` and `ON CONFLICT` have no portable spelling in diesel.)
pub fn get_or_init(
    conn: &mut DbConnection,
    name: &str,
    make: impl FnOnce() -> String,
) -> Result<String, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        let stored = server_settings::table
            .find(name)
            .select(server_settings::value)
            .first::<String>(conn)
            .optional()?;
        if let Some(value) = stored {
            return Ok(value);
        }
        let value = make();
        diesel::insert_into(server_settings::table)
            .values((
                server_settings::name.eq(name),
                server_settings::value.eq(&value),
            ))
            .execute(conn)?;
        Ok(value)
    })
}
