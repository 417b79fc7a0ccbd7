//! Usage credits, spent in memory on the guard's path and written to the store with the
//! usage batch (`db::credits`), so a call costs a map lookup under a lock, not a write.
//!
//! One instance is exact: every spend and refund happens under one lock. A balance is
//! written at least once a second; a crash loses at most the spending since the last
//! write. Several instances share the balance through the store: each writes what it
//! spent and reads back what is left, so each may overspend by at most what it spends
//! between two writes. A refill is lazy: the first spend after a new period begins sets
//! the balance to the refill's amount, and the write records when.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::NaiveDateTime;

use crate::auth::cache::CachedToken;
use crate::db::credits::{Balance, Spending};
use crate::db::{self, Pool};
use crate::domain::{CreditSnapshot, TokenId};
use crate::error::AppError;

/// The answer to a spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// The token has no credit limit.
    Unlimited,
    /// One credit spent; this many are left.
    Spent { remaining: i64 },
    /// None left: refused, and nothing spent.
    Exhausted,
}

#[derive(Debug)]
struct Entry {
    version: i32,
    remaining: i64,
    /// Spent here since the last write, less what was given back.
    unwritten: i64,
    refilled_at: Option<NaiveDateTime>,
    /// A refill made here and not written yet: when.
    refilled_here: Option<NaiveDateTime>,
}

impl Entry {
    fn of(snapshot: &CreditSnapshot) -> Self {
        Self {
            version: snapshot.version,
            remaining: snapshot.credits.remaining(),
            unwritten: 0,
            refilled_at: snapshot.refilled_at,
            refilled_here: None,
        }
    }
}

#[derive(Default)]
pub struct CreditLedger {
    entries: Mutex<HashMap<TokenId, Entry>>,
    /// Flushes take turns, as the usage recorder's do: the last one at shutdown returns
    /// only once a background flush it raced has written what it took.
    flushing: Mutex<()>,
}

impl CreditLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spends one of `token`'s credits at `now`, refilling first if a refill is due.
    pub fn spend(&self, token: &CachedToken, now: NaiveDateTime) -> Spend {
        let Some(snapshot) = &token.credits else {
            return Spend::Unlimited;
        };
        let mut entries = self.entries();
        let entry = current(&mut entries, token.id, snapshot);
        if let Some(refill) = snapshot.credits.refill {
            let last = entry.refilled_at.unwrap_or(token.created_at);
            if refill.due(last, now) {
                entry.remaining = refill.amount();
                entry.unwritten = 0;
                entry.refilled_at = Some(now);
                entry.refilled_here = Some(now);
            }
        }
        if entry.remaining <= 0 {
            return Spend::Exhausted;
        }
        entry.remaining -= 1;
        entry.unwritten += 1;
        Spend::Spent {
            remaining: entry.remaining,
        }
    }

    /// Gives back a credit spent for a call that was then refused.
    pub fn refund(&self, token: &CachedToken) {
        let Some(snapshot) = &token.credits else {
            return;
        };
        let mut entries = self.entries();
        let entry = current(&mut entries, token.id, snapshot);
        // Below zero when the spend was written already: the next write gives it back.
        entry.unwritten -= 1;
        entry.remaining += 1;
    }

    /// What `token` has left as this instance knows it, without spending.
    pub fn remaining(&self, token: &CachedToken) -> Option<i64> {
        let snapshot = token.credits.as_ref()?;
        let mut entries = self.entries();
        Some(current(&mut entries, token.id, snapshot).remaining)
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<TokenId, Entry>> {
        // Every change is a few integer writes: a panic can't leave one half-made.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Vec<Spending> {
        let mut entries = self.entries();
        entries
            .iter_mut()
            .filter(|(_, e)| e.unwritten != 0 || e.refilled_here.is_some())
            .map(|(token, e)| {
                let spending = Spending {
                    token: *token,
                    version: e.version,
                    spent: e.unwritten,
                    refilled_at: e.refilled_here,
                    refill_to: e.remaining + e.unwritten,
                };
                e.unwritten = 0;
                e.refilled_here = None;
                spending
            })
            .collect()
    }

    /// Writes what was spent since the last write and takes back each balance as the
    /// store now has it (another instance's spending included). Blocking: call off the
    /// async workers.
    pub fn flush(&self, pool: &Pool) -> Result<usize, AppError> {
        let _turn = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let written = pool
            .get()
            .map_err(AppError::from)
            .and_then(|mut conn| db::credits::record(&mut conn, &batch));
        match written {
            Ok(balances) => {
                self.settle(&balances);
                Ok(batch.len())
            }
            Err(err) => {
                self.put_back(batch);
                Err(err)
            }
        }
    }

    /// The store's balances, less what was spent here while they were written.
    fn settle(&self, balances: &[Balance]) {
        let mut entries = self.entries();
        for balance in balances {
            let Some(entry) = entries.get_mut(&balance.token) else {
                continue;
            };
            if balance.version > entry.version {
                entry.version = balance.version;
                entry.unwritten = 0;
                entry.refilled_here = None;
            } else if balance.version < entry.version {
                continue;
            }
            entry.remaining = (balance.remaining - entry.unwritten).max(0);
            entry.refilled_at = entry.refilled_at.max(balance.refilled_at);
        }
    }

    fn put_back(&self, batch: Vec<Spending>) {
        let mut entries = self.entries();
        for spending in batch {
            if let Some(entry) = entries.get_mut(&spending.token)
                && entry.version == spending.version
            {
                entry.unwritten += spending.spent;
                entry.refilled_here = entry.refilled_here.or(spending.refilled_at);
            }
        }
    }
}

/// The entry for `token`, started from the snapshot, or started again when a person has
/// set the credits since (a newer version).
fn current<'a>(
    entries: &'a mut HashMap<TokenId, Entry>,
    token: TokenId,
    snapshot: &CreditSnapshot,
) -> &'a mut Entry {
    let entry = entries.entry(token).or_insert_with(|| Entry::of(snapshot));
    if snapshot.version > entry.version {
        *entry = Entry::of(snapshot);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Credits, Refill, RefillInterval};

    fn at(t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn token(remaining: i64, refill: Option<Refill>, version: i32) -> CachedToken {
        let mut token = crate::auth::cache::tests::token("kw_a", 1).as_ref().clone();
        token.created_at = at("2026-12-07 10:00:00");
        token.credits = Some(CreditSnapshot {
            credits: Credits::new(remaining, refill).unwrap(),
            refilled_at: Some(at("2026-12-07 10:00:00")),
            version,
        });
        token
    }

    #[test]
    fn credits_run_out_exactly_and_refunds_come_back() {
        let ledger = CreditLedger::new();
        let t = token(2, None, 0);
        let now = at("2026-12-07 11:00:00");
        assert_eq!(ledger.spend(&t, now), Spend::Spent { remaining: 1 });
        assert_eq!(ledger.spend(&t, now), Spend::Spent { remaining: 0 });
        assert_eq!(ledger.spend(&t, now), Spend::Exhausted);
        ledger.refund(&t);
        assert_eq!(ledger.remaining(&t), Some(1));
        let batch = ledger.take();
        assert_eq!(batch[0].spent, 1);
        // A refund after its spend was taken for writing is given back by the next write.
        ledger.refund(&t);
        assert_eq!(ledger.take()[0].spent, -1);
    }

    #[test]
    fn spending_on_many_threads_never_exceeds_the_balance() {
        let ledger = CreditLedger::new();
        let t = token(1000, None, 0);
        let now = at("2026-12-07 11:00:00");
        let spent = std::sync::atomic::AtomicI64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        if let Spend::Spent { .. } = ledger.spend(&t, now) {
                            spent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(spent.into_inner(), 1000);
    }

    #[test]
    fn a_refill_happens_at_the_first_use_of_a_new_day() {
        let ledger = CreditLedger::new();
        let refill = Refill::new(RefillInterval::Daily, 5).unwrap();
        let t = token(1, Some(refill), 0);
        assert_eq!(
            ledger.spend(&t, at("2026-12-07 12:00:00")),
            Spend::Spent { remaining: 0 }
        );
        assert_eq!(
            ledger.spend(&t, at("2026-12-07 23:59:59")),
            Spend::Exhausted
        );
        assert_eq!(
            ledger.spend(&t, at("2026-12-08 00:00:01")),
            Spend::Spent { remaining: 4 }
        );
        let batch = ledger.take();
        assert_eq!(batch[0].refilled_at, Some(at("2026-12-08 00:00:01")));
        assert_eq!((batch[0].spent, batch[0].refill_to), (1, 5));
    }

    #[test]
    fn a_new_setting_starts_a_new_balance() {
        let ledger = CreditLedger::new();
        let now = at("2026-12-07 11:00:00");
        assert_eq!(
            ledger.spend(&token(1, None, 0), now),
            Spend::Spent { remaining: 0 }
        );
        assert_eq!(
            ledger.spend(&token(10, None, 1), now),
            Spend::Spent { remaining: 9 }
        );
        // An older copy of the token, still cached somewhere, can't roll it back.
        assert_eq!(
            ledger.spend(&token(1, None, 0), now),
            Spend::Spent { remaining: 8 }
        );
    }
}
