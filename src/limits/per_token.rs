//! Per-token rate limits, on the guard's hot path: each limited token has a GCRA limiter
//! (`governor`), one atomic word updated by compare-and-swap, so a check takes no lock
//! beyond a shard of the map for a moment, and never one held across I/O or an await.
//! A token without a limit costs nothing here.
//!
//! A limit of N per minute lets a burst of N through at once, then one every 60/N
//! seconds. The state is in memory and per server: behind a load balancer with several
//! servers a token gets up to N per minute from each, and a restart forgets it.

use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::domain::{RateLimit, TokenId};

// The state-information middleware reports what is left after each check, for the
// answer to a verification; it reads the same word the check wrote.
type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, StateInformationMiddleware>;

pub struct RateLimits<C: Clock = DefaultClock> {
    /// Each limiter remembers the limit it was made for: when a token's limit changes,
    /// the cache reloads the token and the next check starts a limiter for the new one.
    limiters: DashMap<TokenId, (RateLimit, Limiter<C>)>,
    clock: C,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl RateLimits {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// Limits that read time from `clock`: tests pass one they can move.
    pub fn with_clock(clock: C) -> Self {
        Self {
            limiters: DashMap::new(),
            clock,
        }
    }

    /// Counts a request with `token` against `limit`. Over the limit, returns how long
    /// until one more would be let through, in whole seconds and at least 1, for
    /// `Retry-After`.
    pub fn check(&self, token: TokenId, limit: RateLimit) -> Result<(), u64> {
        self.check_remaining(token, limit).map(drop)
    }

    /// [`check`](Self::check), telling how many more calls the limit lets through at once.
    pub fn check_remaining(&self, token: TokenId, limit: RateLimit) -> Result<u32, u64> {
        if let Some(entry) = self.limiters.get(&token)
            && entry.0 == limit
        {
            return self.answer(&entry.1);
        }
        let entry = self
            .limiters
            .entry(token)
            .and_modify(|(current, limiter)| {
                if *current != limit {
                    *current = limit;
                    *limiter = self.limiter(limit);
                }
            })
            .or_insert_with(|| (limit, self.limiter(limit)));
        self.answer(&entry.1)
    }

    fn limiter(&self, limit: RateLimit) -> Limiter<C> {
        RateLimiter::direct_with_clock(Quota::per_minute(limit.per_minute()), self.clock.clone())
            .with_middleware::<StateInformationMiddleware>()
    }

    fn answer(&self, limiter: &Limiter<C>) -> Result<u32, u64> {
        limiter
            .check()
            .map(|state| state.remaining_burst_capacity())
            .map_err(|not_until| whole_seconds(not_until.wait_time_from(self.clock.now())))
    }
}

/// `Retry-After` is whole seconds: round up, so a client that waits that long gets in.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(n: u32) -> RateLimit {
        RateLimit::new(n).unwrap()
    }

    #[test]
    fn a_burst_of_the_limit_then_one_per_interval() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(clock.clone());
        let token = TokenId(1);
        for call in 1..=3 {
            assert_eq!(limits.check(token, limit(3)), Ok(()), "call {call}");
        }
        // 3 a minute: the next slot opens 20 s after the burst.
        assert_eq!(limits.check(token, limit(3)), Err(20));
        clock.advance(Duration::from_millis(19_500));
        assert_eq!(limits.check(token, limit(3)), Err(1));
        clock.advance(Duration::from_millis(500));
        assert_eq!(limits.check(token, limit(3)), Ok(()));
        assert_eq!(limits.check(token, limit(3)), Err(20));
    }

    #[test]
    fn what_is_left_counts_down() {
        let limits = RateLimits::with_clock(FakeRelativeClock::default());
        assert_eq!(limits.check_remaining(TokenId(1), limit(3)), Ok(2));
        assert_eq!(limits.check_remaining(TokenId(1), limit(3)), Ok(1));
        assert_eq!(limits.check_remaining(TokenId(1), limit(3)), Ok(0));
        assert_eq!(limits.check_remaining(TokenId(1), limit(3)), Err(20));
    }

    #[test]
    fn tokens_are_limited_apart() {
        let limits = RateLimits::with_clock(FakeRelativeClock::default());
        assert_eq!(limits.check(TokenId(1), limit(1)), Ok(()));
        assert_eq!(limits.check(TokenId(1), limit(1)), Err(60));
        assert_eq!(limits.check(TokenId(2), limit(1)), Ok(()));
    }

    #[test]
    fn a_changed_limit_applies_from_the_next_call() {
        let limits = RateLimits::with_clock(FakeRelativeClock::default());
        let token = TokenId(1);
        assert_eq!(limits.check(token, limit(1)), Ok(()));
        assert!(limits.check(token, limit(1)).is_err());
        assert_eq!(limits.check(token, limit(2)), Ok(()));
        assert_eq!(limits.check(token, limit(2)), Ok(()));
        assert_eq!(limits.check(token, limit(2)), Err(30));
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_second() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
    }
}
