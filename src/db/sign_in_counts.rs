//! The sign-in and sign-up limits' counts (`limits::sign_in` holds the rules): one row per
//! event and key, in the store, so that every instance on one database counts against the
//! same limit. Each function runs inside a write transaction ([`super::tx::transact`]) the caller opens,
//! so a check and the count it allows are one step: no burst, on one instance or many,
//! slips between them.
//!
//! Not audited: these rows record no change anyone made, and they age out within the hour.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, max};
use diesel::prelude::*;

use super::DbConnection;
use super::schema::throttle_events as events;
use crate::error::AppError;

/// The most rows kept. Every attempt that gets through costs an argon2 check, which bounds
/// how fast rows arrive (a few hundred a second on a big machine), and rows leave after an
/// hour; this cap bounds the table even so, dropping the oldest first.
pub const MAX_ROWS: i64 = 300_000;

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A failed password check from one address for one email.
    Pair,
    /// A failed password check from one address, whatever the email.
    Ip,
    /// A failed password check for one email, from anywhere.
    Email,
    /// A sign-up from one address.
    SignUp,
    /// A request that mails a link (a password reset, a verification), for one email.
    MailEmail,
    /// A request that mails a link, from one address.
    MailIp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pair => "pair",
            Kind::Ip => "ip",
            Kind::Email => "email",
            Kind::SignUp => "sign-up",
            Kind::MailEmail => "mail-email",
            Kind::MailIp => "mail-ip",
        }
    }
}

/// What a key counted since some moment: how many events, and the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recent {
    pub count: i64,
    pub latest: Option<NaiveDateTime>,
}

/// The events of `(kind, key)` after `since`.
pub fn recent(
    conn: &mut DbConnection,
    kind: Kind,
    key: &str,
    since: NaiveDateTime,
) -> Result<Recent, AppError> {
    let (count, latest) = events::table
        .filter(events::kind.eq(kind.as_str()))
        .filter(events::key.eq(key))
        .filter(events::at.gt(since))
        .select((count_star(), max(events::at)))
        .first::<(i64, Option<NaiveDateTime>)>(conn)?;
    Ok(Recent { count, latest })
}

/// The time of the `nth` event (0 the oldest) of `(kind, key)` after `since`.
pub fn nth_since(
    conn: &mut DbConnection,
    kind: Kind,
    key: &str,
    since: NaiveDateTime,
    nth: i64,
) -> Result<Option<NaiveDateTime>, AppError> {
    Ok(events::table
        .filter(events::kind.eq(kind.as_str()))
        .filter(events::key.eq(key))
        .filter(events::at.gt(since))
        .order((events::at.asc(), events::id.asc()))
        .offset(nth)
        .select(events::at)
        .first(conn)
        .optional()?)
}

/// Counts one event under each key, all marked as `attempt`.
pub fn count(
    conn: &mut DbConnection,
    keys: &[(Kind, &str)],
    attempt: i64,
    at: NaiveDateTime,
) -> Result<(), AppError> {
    // One statement a row: diesel's multi-backend connection has no batch insert.
    for (kind, key) in keys {
        diesel::insert_into(events::table)
            .values((
                events::kind.eq(kind.as_str()),
                events::key.eq(*key),
                events::attempt.eq(attempt),
                events::at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes what no rule looks at any more (events at or before `stale`), then, if the
/// table is still over [`MAX_ROWS`], its oldest rows.
pub fn prune(conn: &mut DbConnection, stale: NaiveDateTime) -> Result<(), AppError> {
    prune_keeping(conn, stale, MAX_ROWS)
}

/// [`prune`], keeping at most `most` rows.
pub fn prune_keeping(
    conn: &mut DbConnection,
    stale: NaiveDateTime,
    most: i64,
) -> Result<(), AppError> {
    diesel::delete(events::table.filter(events::at.le(stale))).execute(conn)?;
    // Ids only grow (AUTOINCREMENT, BIGSERIAL), so the newest `most` ids are the rows
    // kept; forgiven rows leave gaps, which only keeps fewer.
    let newest: Option<i64> = events::table.select(max(events::id)).first(conn)?;
    if let Some(newest) = newest.filter(|n| *n > most) {
        diesel::delete(events::table.filter(events::id.le(newest - most))).execute(conn)?;
    }
    Ok(())
}

/// How many rows there are.
pub fn rows(conn: &mut DbConnection) -> Result<i64, AppError> {
    Ok(events::table.count().get_result(conn)?)
}

/// Uncounts every row of `attempt`.
pub fn forget_attempt(conn: &mut DbConnection, attempt: i64) -> Result<(), AppError> {
    diesel::delete(events::table.filter(events::attempt.eq(attempt))).execute(conn)?;
    Ok(())
}

/// Uncounts every event of `(kind, key)`.
pub fn forget_key(conn: &mut DbConnection, kind: Kind, key: &str) -> Result<(), AppError> {
    diesel::delete(
        events::table
            .filter(events::kind.eq(kind.as_str()))
            .filter(events::key.eq(key)),
    )
    .execute(conn)?;
    Ok(())
}

/// How many keys of any kind have a row: for tests of what a flood leaves behind.
#[cfg(test)]
pub fn keys_counted(conn: &mut DbConnection) -> Result<i64, AppError> {
    let keys: Vec<(String, String)> = events::table
        .select((events::kind, events::key))
        .distinct()
        .load(conn)?;
    Ok(i64::try_from(keys.len()).unwrap_or(i64::MAX))
}
