//! Server-wide values kept in the database, such as the generated session key.

use diesel::prelude::*;

use super::schema::server_settings;
use crate::error::AppError;

/// Returns the stored value, or stores `make()` and returns it. Safe to race: the
/// first writer wins and everyone reads the winner's value.
pub fn get_or_init(
    conn: &mut SqliteConnection,
    name: &str,
    make: impl FnOnce() -> String,
) -> Result<String, AppError> {
    super::write(conn, |conn| {
        diesel::insert_or_ignore_into(server_settings::table)
            .values((
                server_settings::name.eq(name),
                server_settings::value.eq(make()),
            ))
            .execute(conn)?;
        Ok(server_settings::table
            .find(name)
            .select(server_settings::value)
            .first(conn)?)
    })
}
