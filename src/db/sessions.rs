//! Dashboard sessions, kept server-side so that logging out, or ending a session from
//! another one, takes effect at once. Every row belongs to a signed-in user: anonymous
//! visitors have none. A row is found by the SHA-256 of its cookie's session id
//! (`key_digest`); pages and forms name it by `id`, and only ever among its user's own.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::schema::sessions;
use super::tx::Tx;
use crate::domain::{SessionId, UserId};
use crate::error::AppError;

/// A session as the row is written at sign-in.
#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub key_digest: &'a str,
    pub user_id: i32,
    pub state: &'a str,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub via_sso: bool,
}

/// A session as its user sees it in the list: never its key, never its state.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionSummary {
    pub id: i32,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Whether it began at the single sign-on provider.
    pub via_sso: bool,
}

impl SessionSummary {
    pub fn session_id(&self) -> SessionId {
        SessionId(self.id)
    }
}

/// The live session's row id and state.
pub fn load(
    conn: &mut DbConnection,
    key_digest: &str,
    now: NaiveDateTime,
) -> Result<Option<(SessionId, String)>, AppError> {
    Ok(sessions::table
        .filter(sessions::key_digest.eq(key_digest))
        .filter(sessions::expires_at.gt(now))
        .select((sessions::id, sessions::state))
        .first::<(i32, String)>(conn)
        .optional()?
        .map(|(id, state)| (SessionId(id), state)))
}

pub fn insert(conn: &mut DbConnection, new: &NewSession<'_>) -> Result<SessionId, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        Ok(SessionId(
            diesel::insert_into(sessions::table)
                .values(new)
                .returning(sessions::id)
                .get_result(conn)?,
        ))
    })
}

/// Changes a live session's state. `false` when the row is gone (ended meanwhile): it is
/// never brought back.
pub fn update(
    conn: &mut DbConnection,
    key_digest: &str,
    state: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        let changed = diesel::update(sessions::table.filter(sessions::key_digest.eq(key_digest)))
            .set((
                sessions::state.eq(state),
                sessions::expires_at.eq(expires_at),
                sessions::last_seen_at.eq(now),
            ))
            .execute(conn)?;
        Ok(changed == 1)
    })
}

/// When the session was last seen, if it still exists.
pub fn last_seen(
    conn: &mut DbConnection,
    key_digest: &str,
) -> Result<Option<NaiveDateTime>, AppError> {
    Ok(sessions::table
        .filter(sessions::key_digest.eq(key_digest))
        .select(sessions::last_seen_at)
        .first(conn)
        .optional()?)
}

/// Records activity: the session lives on until `expires_at`.
pub fn touch(
    conn: &mut DbConnection,
    key_digest: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::update(sessions::table.filter(sessions::key_digest.eq(key_digest)))
            .set((
                sessions::expires_at.eq(expires_at),
                sessions::last_seen_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

pub fn delete(conn: &mut DbConnection, key_digest: &str) -> Result<(), AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::delete(sessions::table.filter(sessions::key_digest.eq(key_digest)))
            .execute(conn)?;
        Ok(())
    })
}

pub fn delete_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
    })
}

/// The user's live sessions, the most recently active first.
pub fn list_for_user(
    conn: &mut DbConnection,
    user: UserId,
    now: NaiveDateTime,
) -> Result<Vec<SessionSummary>, AppError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user.0))
        .filter(sessions::expires_at.gt(now))
        .order((sessions::last_seen_at.desc(), sessions::id.desc()))
        .select(SessionSummary::as_select())
        .load(conn)?)
}

/// Ends one of the acting user's sessions; another user's session is a 404.
pub fn end(tx: &mut Tx<'_>, id: SessionId) -> Result<(), AppError> {
    let user = tx.signed_in_user()?;
    let ended = diesel::delete(
        sessions::table
            .filter(sessions::id.eq(id.0))
            .filter(sessions::user_id.eq(user.0)),
    )
    .execute(tx.conn)?;
    if ended != 1 {
        return Err(AppError::NotFound);
    }
    log_ended(tx, &format!("session {} ended", id.0))
}

/// The audit row for sessions the person ended themselves.
fn log_ended(tx: &mut Tx<'_>, detail: &str) -> Result<(), AppError> {
    let target = format!("user {}", tx.actor().label);
    tx.log_personal(super::audit::Event {
        action: super::audit::action::SESSION_ENDED,
        target: &target,
        token: None,
        detail,
    })
}

/// Ends every session of the user but `keep`; returns how many ended.
pub(super) fn delete_others(
    conn: &mut DbConnection,
    user: UserId,
    keep: SessionId,
) -> Result<usize, AppError> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user.0))
            .filter(sessions::id.ne(keep.0)),
    )
    .execute(conn)?)
}

/// Ends every session of the acting user but `keep`; returns how many ended.
pub fn end_others(tx: &mut Tx<'_>, keep: SessionId) -> Result<usize, AppError> {
    let user = tx.signed_in_user()?;
    let ended = delete_others(tx.conn, user, keep)?;
    if ended > 0 {
        log_ended(tx, &format!("{ended} other session(s) ended"))?;
    }
    Ok(ended)
}

/// Ends every session of `user`; returns how many ended.
pub(super) fn delete_all_of(conn: &mut DbConnection, user: UserId) -> Result<usize, AppError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user.0))).execute(conn)?)
}
