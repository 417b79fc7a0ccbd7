//! The outbox: every message Keyward mails is a row here, written in the same transaction
//! as the change that causes it, then delivered by `mail::sender`. A row is claimed before
//! it is sent; the claim is one `UPDATE ... WHERE` unclaimed, so of several senders (one
//! per instance) exactly one gets it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::outbox;
use crate::domain::{Email, Mail, random_base62};
use crate::error::AppError;

/// A row as the sender and the operator console read it.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i32,
    pub kind: String,
    pub recipient: String,
    pub payload: String,
    pub message_id: String,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub failed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

/// The payload may hold a link's token.
impl std::fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Queues `mail` to `to`, due at once. Call inside the transaction of the change that
/// causes it, so the message exists exactly when the change does.
pub fn enqueue(conn: &mut DbConnection, to: &Email, mail: &Mail) -> Result<(), AppError> {
    let now = super::now();
    // Kept with the row, so a message sent twice (after a crash mid-send) has one id and
    // mail programs show it once.
    let message_id = format!("<{}@keyward.outbox>", random_base62(32));
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(mail.kind()),
            outbox::recipient.eq(to.as_str()),
            outbox::payload.eq(mail.to_json()),
            outbox::message_id.eq(message_id),
            outbox::created_at.eq(now),
            outbox::next_attempt_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

#[diesel::dsl::auto_type(no_type_alias)]
fn pending() -> _ {
    outbox::sent_at.is_null().and(outbox::failed_at.is_null())
}

/// Ids of up to `limit` messages due at `now` and not claimed by a live sender, oldest first.
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> Result<Vec<i32>, AppError> {
    Ok(outbox::table
        .filter(pending())
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::claimed_until
                .is_null()
                .or(outbox::claimed_until.lt(now)),
        )
        .order(outbox::id.asc())
        .limit(limit)
        .select(outbox::id)
        .load(conn)?)
}

/// Claims message `id` until `until`, counting the attempt; `None` when another sender
/// has it (or it was sent or failed meanwhile). Only the sender whose update changed the
/// row may send it.
pub fn claim(
    conn: &mut DbConnection,
    id: i32,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Option<OutboxRow>, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        let claimed = diesel::update(
            outbox::table
                .filter(outbox::id.eq(id))
                .filter(pending())
                .filter(outbox::next_attempt_at.le(now))
                .filter(
                    outbox::claimed_until
                        .is_null()
                        .or(outbox::claimed_until.lt(now)),
                ),
        )
        .set((
            outbox::claimed_until.eq(until),
            outbox::attempts.eq(outbox::attempts + 1),
        ))
        .execute(conn)?;
        if claimed != 1 {
            return Ok(None);
        }
        Ok(Some(
            outbox::table
                .find(id)
                .select(OutboxRow::as_select())
                .first(conn)?,
        ))
    })
}

/// The message went out: done, and its payload (links' tokens) is dropped.
pub fn mark_sent(conn: &mut DbConnection, id: i32, now: NaiveDateTime) -> Result<(), AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::update(outbox::table.find(id))
            .set((
                outbox::sent_at.eq(now),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::payload.eq("{}"),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// The message will never go out: failed, with `reason`, for the operator console.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i32,
    now: NaiveDateTime,
    reason: &str,
) -> Result<(), AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::update(outbox::table.find(id))
            .set((
                outbox::failed_at.eq(now),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::payload.eq("{}"),
                outbox::last_error.eq(truncate(reason)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// This try failed for a reason that may pass: try again at `next`.
pub fn retry_at(
    conn: &mut DbConnection,
    id: i32,
    next: NaiveDateTime,
    reason: &str,
) -> Result<(), AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::update(outbox::table.find(id))
            .set((
                outbox::next_attempt_at.eq(next),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::last_error.eq(truncate(reason)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

fn truncate(reason: &str) -> String {
    reason.chars().take(500).collect()
}

/// The most recent failed messages, newest first, for the operator console.
pub fn failed(conn: &mut DbConnection, limit: i64) -> Result<Vec<OutboxRow>, AppError> {
    Ok(outbox::table
        .filter(outbox::failed_at.is_not_null())
        .order(outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// Mail is off: drops the notices waiting (queued by revocations, the command line's
/// among them). Other mail is only queued by an instance with mail on, and is left for it.
/// Returns how many were dropped.
pub fn discard_notices(conn: &mut DbConnection) -> Result<usize, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        Ok(diesel::delete(
            outbox::table
                .filter(pending())
                .filter(outbox::kind.eq_any(Mail::NOTICE_KINDS)),
        )
        .execute(conn)?)
    })
}
