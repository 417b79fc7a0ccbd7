//! The outbox's sender, run by `background` on an interval in every instance: it claims
//! each due message before sending it, retries with backoff, and gives up after a day.
//! A message that can never go is marked failed with its reason and the rest go on.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::transport::{Mailer, SendError};
use crate::db::{self, DbConnection, outbox};
use crate::error::AppError;

/// The first retry waits this long; each further one twice as long as the last...
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// ...up to this.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// A message not sent after this long is failed.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a claim holds: longer than any one try can take, so only a sender that died
/// mid-send lets its claim run out (and then the message is sent again).
const CLAIM_FOR: Duration = Duration::from_secs(120);
/// Messages looked at per round.
const BATCH: i64 = 50;

/// How long to wait after the `attempts`-th failed try.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RETRY)
}

fn later(now: NaiveDateTime, wait: Duration) -> NaiveDateTime {
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

/// Sends every message due now that no other sender holds. Returns how many went out.
pub fn deliver_due(conn: &mut DbConnection, mailer: &Mailer) -> Result<usize, AppError> {
    let mut sent = 0;
    for id in outbox::due(conn, db::now(), BATCH)? {
        let now = db::now();
        let Some(row) = outbox::claim(conn, id, now, later(now, CLAIM_FOR))? else {
            continue;
        };
        match mailer.send(&row) {
            Ok(()) => {
                outbox::mark_sent(conn, row.id, db::now())?;
                sent += 1;
            }
            Err(SendError::Permanent(why)) => {
                tracing::warn!(id = row.id, kind = %row.kind, reason = %why, "a mail failed for good");
                outbox::mark_failed(conn, row.id, db::now(), &why)?;
            }
            Err(SendError::Transient(why)) => {
                let now = db::now();
                let age = (now - row.created_at).to_std().unwrap_or_default();
                if age >= GIVE_UP_AFTER {
                    let why = format!("not sent within 24 hours; the last try: {why}");
                    tracing::warn!(id = row.id, kind = %row.kind, reason = %why, "gave up on a mail");
                    outbox::mark_failed(conn, row.id, now, &why)?;
                } else {
                    tracing::info!(id = row.id, attempts = row.attempts, reason = %why, "a mail waits to be tried again");
                    outbox::retry_at(conn, row.id, later(now, backoff(row.attempts)), &why)?;
                }
            }
        }
    }
    Ok(sent)
}

/// Looks for notices to queue: expiry digests and tokens used from new addresses.
pub fn queue_notices(conn: &mut DbConnection) -> Result<(), AppError> {
    let now = db::now();
    db::notices::queue_expiry_digests(conn, now)?;
    db::notices::queue_new_addresses(conn, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_ten_seconds_and_never_wait_more_than_five_minutes() {
        assert!(backoff(1) <= Duration::from_secs(10));
        let waits: Vec<Duration> = (1..40).map(backoff).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(waits.last(), Some(&MAX_RETRY));
        assert!(waits.iter().all(|w| *w <= MAX_RETRY));
    }
}
