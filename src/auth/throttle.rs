//! Limits failed sign-ins: at most 100 an hour per email, and 300 an hour per IP (higher,
//! because an office can share one address). Counted in memory: a restart forgets them,
//! which costs an attacker a restart they can't cause.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PER_EMAIL: usize = 100;
pub const PER_IP: usize = 300;
const WINDOW: Duration = Duration::from_secs(3600);
/// Beyond this many tracked keys, the oldest-looking are dropped to bound memory.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(email: &str, ip: &str) -> [(String, usize); 2] {
        [
            (format!("email:{}", email.trim().to_lowercase()), PER_EMAIL),
            (format!("ip:{ip}"), PER_IP),
        ]
    }

    /// `Err(wait)` when either limit is reached; `wait` is how long until a slot frees up.
    pub fn check(&self, email: &str, ip: &str) -> Result<(), Duration> {
        self.check_at(email, ip, Instant::now())
    }

    pub fn check_at(&self, email: &str, ip: &str, now: Instant) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, limit) in Self::keys(email, ip) {
            if let Some(times) = failures.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times[times.len() - limit];
                    let until = WINDOW.saturating_sub(now.duration_since(oldest));
                    wait = Some(wait.map_or(until, |w: Duration| w.max(until)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    pub fn record_failure(&self, email: &str, ip: &str) {
        self.record_failure_at(email, ip, Instant::now());
    }

    pub fn record_failure_at(&self, email: &str, ip: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        for (key, _) in Self::keys(email, ip) {
            failures.entry(key).or_default().push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hundred_and_first_failure_for_an_email_is_refused_for_the_rest_of_the_hour() {
        let throttle = LoginThrottle::new();
        let start = Instant::now();
        for i in 0..PER_EMAIL {
            assert!(
                throttle
                    .check_at("a@x.io", &format!("10.0.0.{}", i % 250), start)
                    .is_ok()
            );
            throttle.record_failure_at("a@x.io", &format!("10.0.0.{}", i % 250), start);
        }
        let wait = throttle.check_at("A@x.io", "10.9.9.9", start).unwrap_err();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(throttle.check_at("b@x.io", "10.9.9.9", start).is_ok());
        assert!(
            throttle
                .check_at("a@x.io", "10.9.9.9", start + WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn one_address_is_limited_across_emails() {
        let throttle = LoginThrottle::new();
        let now = Instant::now();
        for i in 0..PER_IP {
            throttle.record_failure_at(&format!("u{i}@x.io"), "10.0.0.1", now);
        }
        assert!(throttle.check_at("new@x.io", "10.0.0.1", now).is_err());
        assert!(throttle.check_at("new@x.io", "10.0.0.2", now).is_ok());
    }
}
