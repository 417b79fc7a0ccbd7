//! Dashboard sessions, kept server-side so that logging out ends them at once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::sessions;
use crate::error::AppError;

pub fn load(
    conn: &mut SqliteConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, AppError> {
    Ok(sessions::table
        .find(id)
        .filter(sessions::expires_at.gt(now))
        .select(sessions::state)
        .first(conn)
        .optional()?)
}

pub fn insert(
    conn: &mut SqliteConnection,
    id: &str,
    state: &str,
    expires_at: NaiveDateTime,
) -> Result<(), AppError> {
    super::write(conn, |conn| {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(id),
                sessions::state.eq(state),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Changes a live session's state. `false` when the row is gone (logged out meanwhile):
/// it is never brought back.
pub fn update(
    conn: &mut SqliteConnection,
    id: &str,
    state: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, AppError> {
    super::write(conn, |conn| {
        let changed = diesel::update(sessions::table.find(id))
            .set((
                sessions::state.eq(state),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(changed == 1)
    })
}

pub fn touch(
    conn: &mut SqliteConnection,
    id: &str,
    expires_at: NaiveDateTime,
) -> Result<(), AppError> {
    super::write(conn, |conn| {
        diesel::update(sessions::table.find(id))
            .set(sessions::expires_at.eq(expires_at))
            .execute(conn)?;
        Ok(())
    })
}

pub fn delete(conn: &mut SqliteConnection, id: &str) -> Result<(), AppError> {
    super::write(conn, |conn| {
        diesel::delete(sessions::table.find(id)).execute(conn)?;
        Ok(())
    })
}

pub fn delete_expired(conn: &mut SqliteConnection, now: NaiveDateTime) -> Result<usize, AppError> {
    super::write(conn, |conn| {
        Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
    })
}
