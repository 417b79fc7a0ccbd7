//! Token credits as the store keeps them: each instance writes what it spent since its
//! last write (and any refill it made), then reads back what is left. All in one write
//! transaction, which takes its turn with every other (`db::tx::transact`), so two instances
//! writing at once both subtract.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::tokens;
use crate::domain::{RefillInterval, TokenId};
use crate::error::AppError;

/// What one instance spent of one token's credits since its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spending {
    pub token: TokenId,
    /// The setting of the credits it was spent against: spending against an older one
    /// is dropped.
    pub version: i32,
    pub spent: i64,
    /// When this instance refilled the balance, if it did; to `refill_to`.
    pub refilled_at: Option<NaiveDateTime>,
    pub refill_to: i64,
}

/// A token's balance as the store has it after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub token: TokenId,
    pub version: i32,
    pub remaining: i64,
    pub refilled_at: Option<NaiveDateTime>,
}

type Row = (Option<i64>, i32, Option<NaiveDateTime>, Option<String>);

/// Writes a batch of spending and returns each balance as it now stands. A refill made
/// here counts only if no instance refilled in the same period already.
pub fn record(conn: &mut DbConnection, batch: &[Spending]) -> Result<Vec<Balance>, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        let mut balances = Vec::with_capacity(batch.len());
        for spending in batch {
            let row: Option<Row> = tokens::table
                .find(spending.token.0)
                .select((
                    tokens::credits_remaining,
                    tokens::credits_version,
                    tokens::credits_refilled_at,
                    tokens::credits_refill_interval,
                ))
                .first(conn)
                .optional()?;
            let Some((Some(mut remaining), version, mut refilled_at, interval)) = row else {
                continue;
            };
            if version == spending.version {
                let interval = interval
                    .as_deref()
                    .and_then(|i| RefillInterval::parse(i).ok());
                if let (Some(at), Some(interval)) = (spending.refilled_at, interval)
                    && refilled_at.is_none_or(|last| last < interval.period_start(at))
                {
                    remaining = spending.refill_to;
                    refilled_at = Some(at);
                }
                remaining = (remaining - spending.spent).max(0);
                diesel::update(tokens::table.find(spending.token.0))
                    .set((
                        tokens::credits_remaining.eq(remaining),
                        tokens::credits_refilled_at.eq(refilled_at),
                    ))
                    .execute(conn)?;
            }
            balances.push(Balance {
                token: spending.token,
                version,
                remaining,
                refilled_at,
            });
        }
        Ok(balances)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    fn database() -> DbConnection {
        let mut conn = crate::db::migrated_sqlite_in_memory();
        conn.batch_execute(
            "INSERT INTO accounts (id, name, slug, api_state, created_at) \
               VALUES (1, 'Acme', 'acme', 'active', '2026-01-01 00:00:00'); \
             INSERT INTO tokens (id, account_id, name, key, secret_digest, secret_hint, scopes, created_at, \
                                 credits_remaining, credits_refill_interval, credits_refill_amount, credits_refilled_at) \
               VALUES (1, 1, 'ci', 'kw_aaaaaaaaaaaaaaaa', x'00', 'abcd', 'read', '2026-01-01 00:00:00', \
                       100, 'daily', 50, '2026-12-07 00:00:00');",
        )
        .expect("a token with 100 credits");
        DbConnection::Sqlite(conn)
    }

    fn at(t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn spent(n: i64, version: i32, refilled_at: Option<NaiveDateTime>) -> Spending {
        Spending {
            token: TokenId(1),
            version,
            spent: n,
            refilled_at,
            refill_to: 50,
        }
    }

    #[test]
    fn two_instances_spending_at_once_both_subtract() {
        let mut conn = database();
        let first = record(&mut conn, &[spent(30, 0, None)]).unwrap();
        assert_eq!(first[0].remaining, 70);
        // The second instance's write reads the first's: neither overwrites the other.
        let second = record(&mut conn, &[spent(25, 0, None)]).unwrap();
        assert_eq!(second[0].remaining, 45);
        // Spending against a setting a person has since replaced is dropped.
        let stale = record(&mut conn, &[spent(5, 7, None)]).unwrap();
        assert_eq!((stale[0].remaining, stale[0].version), (45, 0));
    }

    #[test]
    fn a_refill_counts_once_per_period_whoever_makes_it() {
        let mut conn = database();
        let morning = at("2026-12-08 09:00:00");
        let first = record(&mut conn, &[spent(2, 0, Some(morning))]).unwrap();
        assert_eq!(first[0].remaining, 48);
        assert_eq!(first[0].refilled_at, Some(morning));
        // Another instance refilled too, the same day: only its spending counts.
        let later = record(&mut conn, &[spent(3, 0, Some(at("2026-12-08 10:00:00")))]).unwrap();
        assert_eq!(later[0].remaining, 45);
        assert_eq!(later[0].refilled_at, Some(morning));
    }
}
