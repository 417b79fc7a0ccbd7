//! A token's use as the guard sees it, gathered in memory and written in batches
//! (`db::usage`), so an API request never writes to the database: the last use and its
//! address, calls per UTC day by outcome, and the last few client addresses. A crash
//! loses at most one interval of figures, never a token.
//!
//! A call locks the map for a few hundred nanoseconds, never across an await. A token has
//! at most a handful of days and five addresses pending, and only tokens that exist get
//! an entry, so memory is bounded by the tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{NaiveDate, NaiveDateTime};

use crate::db::usage::{ADDRESSES_KEPT, Counts, Sighting, TokenUsage};
use crate::db::{self, Pool};
use crate::domain::TokenId;
use crate::error::AppError;

/// How the guard answered a call made with a token that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// A known key with the wrong secret: counted, but not a use of the token.
    WrongSecret,
    /// 403: a missing scope, or the account's API access is suspended.
    Forbidden,
    /// 429: over the token's rate limit.
    RateLimited,
    /// Another 4xx a handler answered after the guard let the call in (404, 422...).
    Refused,
    /// A 5xx: the guard let the call in and the server failed to answer it.
    Failed,
}

impl Outcome {
    /// The outcome of a call the guard let in, by the status it was answered with: a
    /// handler's 403 is a missing scope; any other 4xx (an unknown cluster, a body that
    /// is not valid) is a refusal, and a 5xx a failure: neither is a success.
    pub fn of(status: actix_web::http::StatusCode) -> Self {
        use actix_web::http::StatusCode;
        match status {
            StatusCode::FORBIDDEN => Outcome::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => Outcome::RateLimited,
            s if s.is_client_error() => Outcome::Refused,
            s if s.is_server_error() => Outcome::Failed,
            _ => Outcome::Succeeded,
        }
    }

    /// Whether the caller held the token's secret, so the call is a use of it.
    fn authenticated(self) -> bool {
        self != Outcome::WrongSecret
    }
}

#[derive(Default)]
struct Pending {
    last_used: Option<(NaiveDateTime, Option<IpAddr>)>,
    days: Vec<(NaiveDate, Counts)>,
    addresses: Vec<Sighting>,
}

impl Pending {
    fn count(&mut self, day: NaiveDate, outcome: Outcome, n: i64) {
        let counts = match self.days.iter_mut().find(|(d, _)| *d == day) {
            Some((_, counts)) => counts,
            None => {
                self.days.push((day, Counts::default()));
                &mut self.days.last_mut().expect("just pushed").1
            }
        };
        match outcome {
            Outcome::Succeeded => counts.succeeded += n,
            Outcome::WrongSecret => counts.wrong_secret += n,
            Outcome::Forbidden => counts.forbidden += n,
            Outcome::RateLimited => counts.rate_limited += n,
            Outcome::Refused => counts.refused += n,
            Outcome::Failed => counts.failed += n,
        }
    }

    fn used(&mut self, at: NaiveDateTime, ip: Option<IpAddr>) {
        if self.last_used.is_none_or(|(last, _)| last <= at) {
            self.last_used = Some((at, ip));
        }
        if let Some(ip) = ip {
            self.seen(Sighting {
                ip,
                first: at,
                last: at,
            });
        }
    }

    /// Keeps the most recent addresses only: older ones could never be among the five
    /// the database keeps.
    fn seen(&mut self, sighting: Sighting) {
        if let Some(known) = self.addresses.iter_mut().find(|s| s.ip == sighting.ip) {
            known.first = known.first.min(sighting.first);
            known.last = known.last.max(sighting.last);
            return;
        }
        if self.addresses.len() == ADDRESSES_KEPT {
            let (oldest, seen) = self
                .addresses
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last)
                .map(|(i, s)| (i, s.last))
                .expect("full, so not empty");
            if seen >= sighting.last {
                return;
            }
            self.addresses.swap_remove(oldest);
        }
        self.addresses.push(sighting);
    }

    /// Folds in a batch that failed to be written, so the next flush carries both.
    fn merge(&mut self, failed: TokenUsage) {
        if let Some((at, ip)) = failed.last_used
            && self.last_used.is_none_or(|(last, _)| last < at)
        {
            self.last_used = Some((at, ip));
        }
        for (day, counts) in failed.days {
            match self.days.iter_mut().find(|(d, _)| *d == day) {
                Some((_, mine)) => mine.add(&counts),
                None => self.days.push((day, counts)),
            }
        }
        for sighting in failed.addresses {
            self.seen(sighting);
        }
    }

    fn into_usage(self, token: TokenId) -> TokenUsage {
        TokenUsage {
            token,
            last_used: self.last_used,
            days: self.days,
            addresses: self.addresses,
        }
    }
}

/// What each token has gathered since the last flush.
type Slot = HashMap<TokenId, Pending>;

#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<Slot>,
    /// Held for a whole flush, so flushes take turns: one that returns has seen every
    /// count made before it began written, even those another flush had already taken
    /// (the background one, racing the last flush at shutdown).
    flushing: Mutex<()>,
}

impl UsageRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one call with `token` at `at` (UTC) from `ip`.
    pub fn record(&self, token: TokenId, outcome: Outcome, at: NaiveDateTime, ip: Option<IpAddr>) {
        let mut slot = self.pending();
        let pending = slot.entry(token).or_default();
        pending.count(at.date(), outcome, 1);
        if outcome.authenticated() {
            pending.used(at, ip);
        }
    }

    fn pending(&self) -> MutexGuard<'_, Slot> {
        // A panic can't leave the map half-changed in a way that matters: counts only add.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What has gathered since the last flush.
    fn take(&self) -> Vec<TokenUsage> {
        std::mem::take(&mut *self.pending())
            .into_iter()
            .map(|(token, pending)| pending.into_usage(token))
            .collect()
    }

    /// Adds a batch that could not be written to what came in since, so the next flush
    /// tries again with nothing lost and nothing counted twice.
    fn put_back(&self, batch: Vec<TokenUsage>) {
        let mut slot = self.pending();
        for usage in batch {
            slot.entry(usage.token).or_default().merge(usage);
        }
    }

    /// Writes what has gathered since the last flush, and prunes days past keeping.
    /// Blocking: call off the async workers.
    pub fn flush(&self, pool: &Pool) -> Result<usize, AppError> {
        let _turn = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = self.take();
        // An idle server writes nothing (and so prunes nothing: nothing is growing).
        if batch.is_empty() {
            return Ok(0);
        }
        let today = chrono::Utc::now().date_naive();
        let written = pool
            .get()
            .map_err(AppError::from)
            .and_then(|mut conn| db::usage::record(&mut conn, &batch, today));
        if let Err(err) = written {
            self.put_back(batch);
            return Err(err);
        }
        Ok(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handlers_4xx_is_a_refusal_and_its_5xx_a_failure_neither_a_success() {
        use actix_web::http::StatusCode;
        let cases = [
            (StatusCode::OK, Outcome::Succeeded),
            (StatusCode::ACCEPTED, Outcome::Succeeded),
            (StatusCode::NO_CONTENT, Outcome::Succeeded),
            (StatusCode::FORBIDDEN, Outcome::Forbidden),
            (StatusCode::TOO_MANY_REQUESTS, Outcome::RateLimited),
            (StatusCode::NOT_FOUND, Outcome::Refused),
            (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Refused),
            (StatusCode::METHOD_NOT_ALLOWED, Outcome::Refused),
            (StatusCode::INTERNAL_SERVER_ERROR, Outcome::Failed),
            (StatusCode::SERVICE_UNAVAILABLE, Outcome::Failed),
        ];
        for (status, outcome) in cases {
            assert_eq!(Outcome::of(status), outcome, "{status}");
        }
    }

    fn at(t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").expect("a time")
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn calls_are_counted_by_day_and_outcome() {
        let recorder = UsageRecorder::new();
        let token = TokenId(7);
        recorder.record(token, Outcome::Succeeded, at("2026-11-27 23:59:59"), ip(1));
        recorder.record(token, Outcome::Succeeded, at("2026-11-28 00:00:00"), ip(1));
        recorder.record(
            token,
            Outcome::WrongSecret,
            at("2026-11-28 00:00:01"),
            ip(9),
        );
        recorder.record(token, Outcome::Forbidden, at("2026-11-28 00:00:02"), ip(2));
        recorder.record(
            token,
            Outcome::RateLimited,
            at("2026-11-28 00:00:03"),
            ip(2),
        );
        recorder.record(token, Outcome::Failed, at("2026-11-28 00:00:03"), ip(2));

        let batch = recorder.take();
        assert_eq!(batch.len(), 1);
        let usage = &batch[0];
        let day = |d: &str| d.parse::<NaiveDate>().unwrap();
        assert_eq!(
            usage.days,
            [
                (
                    day("2026-11-27"),
                    Counts {
                        succeeded: 1,
                        ..Counts::default()
                    }
                ),
                (
                    day("2026-11-28"),
                    Counts {
                        succeeded: 1,
                        wrong_secret: 1,
                        forbidden: 1,
                        rate_limited: 1,
                        refused: 0,
                        failed: 1,
                    }
                ),
            ]
        );
        // A wrong secret is no use of the token: neither its time nor its address counts.
        assert_eq!(usage.last_used, Some((at("2026-11-28 00:00:03"), ip(2))));
        let mut seen: Vec<IpAddr> = usage.addresses.iter().map(|s| s.ip).collect();
        seen.sort();
        assert_eq!(seen, [ip(1).unwrap(), ip(2).unwrap()]);
        assert!(recorder.take().is_empty(), "a batch is taken once");
    }

    const THREADS: u8 = 8;

    #[test]
    fn calls_counted_on_many_threads_add_up_to_one_figure_per_token() {
        let recorder = UsageRecorder::new();
        let (busy, quiet) = (TokenId(1), TokenId(2));
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let recorder = &recorder;
                scope.spawn(move || {
                    for second in 0..50 {
                        let t = at(&format!("2026-11-28 10:00:{second:02}"));
                        recorder.record(busy, Outcome::Succeeded, t, ip(thread % 7));
                    }
                    recorder.record(quiet, Outcome::WrongSecret, at("2026-11-28 11:00:00"), None);
                });
            }
        });
        let mut batch = recorder.take();
        batch.sort_by_key(|usage| usage.token);
        assert_eq!(
            batch.len(),
            2,
            "one figure per token, however many threads counted it"
        );
        let threads = i64::from(THREADS);
        assert_eq!(batch[0].days[0].1.succeeded, threads * 50);
        assert_eq!(batch[1].days[0].1.wrong_secret, threads);
        assert_eq!(
            batch[0].last_used.map(|(t, _)| t),
            Some(at("2026-11-28 10:00:49"))
        );
        assert_eq!(batch[0].addresses.len(), ADDRESSES_KEPT);
        assert!(recorder.take().is_empty(), "every slot was emptied");
    }

    #[test]
    fn only_the_latest_addresses_are_held() {
        let recorder = UsageRecorder::new();
        let token = TokenId(1);
        for n in 1..=8u8 {
            let t = at(&format!("2026-11-28 10:00:0{n}"));
            recorder.record(token, Outcome::Succeeded, t, ip(n));
        }
        // The first address again, but late: it is among the latest once more.
        recorder.record(token, Outcome::Succeeded, at("2026-11-28 10:00:30"), ip(1));
        let batch = recorder.take();
        let mut seen: Vec<IpAddr> = batch[0].addresses.iter().map(|s| s.ip).collect();
        seen.sort();
        let expected: Vec<IpAddr> = [1, 5, 6, 7, 8].into_iter().filter_map(ip).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_failed_batch_is_added_back_to_what_came_in_since() {
        let recorder = UsageRecorder::new();
        let token = TokenId(3);
        recorder.record(token, Outcome::Succeeded, at("2026-11-28 10:00:00"), ip(1));
        recorder.record(token, Outcome::Succeeded, at("2026-11-28 10:00:01"), ip(1));
        let failed = recorder.take();
        recorder.record(token, Outcome::Forbidden, at("2026-11-28 10:00:02"), ip(2));
        recorder.put_back(failed);
        let batch = recorder.take();
        assert_eq!(
            batch[0].days[0].1,
            Counts {
                succeeded: 2,
                forbidden: 1,
                ..Counts::default()
            }
        );
        assert_eq!(batch[0].last_used, Some((at("2026-11-28 10:00:02"), ip(2))));
    }
}
