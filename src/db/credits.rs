//! Token credits as the store keeps them: each instance writes what it spent since its
//! last write (and any refill it made), then reads back what is left. All in one write
//! transaction, which takes its turn with every other (`db::write`), so two instances
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
    super::write(conn, |conn| {
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
