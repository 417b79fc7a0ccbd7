//! Limits failed sign-ins: at most 100 an hour per email, and 300 an hour per IP (higher,
//! because an office can share one address). Every password check, at sign-in or when
//! an existing user accepts an invitation, goes through it.
//!
//! An attempt is counted as failed from the moment it starts, and forgiven if it
//! succeeds: counting only after argon2 has answered would let a burst of concurrent
//! guesses all pass the check before any of them was recorded.
//!
//! Counted in memory, per process: a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::AppError;

pub const PER_EMAIL: usize = 100;
pub const PER_IP: usize = 300;
const WINDOW: Duration = Duration::from_secs(3600);
/// Beyond this many tracked keys, the stale ones are dropped to bound memory.
const MAX_KEYS: usize = 100_000;

type Failures = HashMap<String, VecDeque<Instant>>;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<Failures>,
}

/// A password check in progress. Dropped without [`Attempt::succeeded`], it stays
/// counted as a failure.
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    keys: [String; 2],
    at: Instant,
}

impl Attempt {
    /// The password was right: this attempt no longer counts against the limits.
    pub fn succeeded(self) {
        let mut failures = self.throttle.lock();
        for key in &self.keys {
            if let Some(times) = failures.get_mut(key)
                && let Some(i) = times.iter().rposition(|t| *t == self.at)
            {
                times.remove(i);
            }
        }
    }
}

impl LoginThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an attempt for `email` from `ip`, or says how long to wait.
    pub fn attempt(self: &Arc<Self>, email: &str, ip: &str) -> Result<Attempt, AppError> {
        self.attempt_at(email, ip, Instant::now()).map_err(too_many)
    }

    pub fn attempt_at(
        self: &Arc<Self>,
        email: &str,
        ip: &str,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let limited = [
            (format!("email:{}", email.trim().to_lowercase()), PER_EMAIL),
            (format!("ip:{ip}"), PER_IP),
        ];
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        let mut wait = None;
        for (key, limit) in &limited {
            let times = failures.entry(key.clone()).or_default();
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                times.pop_front();
            }
            if times.len() >= *limit {
                let oldest = times[times.len() - limit];
                let until = WINDOW.saturating_sub(now.duration_since(oldest));
                wait = Some(wait.map_or(until, |w: Duration| w.max(until)));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in &limited {
            failures.entry(key.clone()).or_default().push_back(now);
        }
        let [(email_key, _), (ip_key, _)] = limited;
        Ok(Attempt {
            throttle: self.clone(),
            keys: [email_key, ip_key],
            at: now,
        })
    }
}

/// The 429 a person sees, saying when to try again.
fn too_many(wait: Duration) -> AppError {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    AppError::TooManyRequests {
        retry_after_secs: wait.as_secs().max(1),
        message: format!(
            "Too many failed sign-ins for this email or network. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hundred_and_first_failure_for_an_email_is_refused_for_the_rest_of_the_hour() {
        let throttle = Arc::new(LoginThrottle::new());
        let start = Instant::now();
        for i in 0..PER_EMAIL {
            let ip = format!("10.0.0.{}", i % 250);
            assert!(throttle.attempt_at("a@x.io", &ip, start).is_ok());
        }
        let wait = throttle
            .attempt_at("A@x.io", "10.9.9.9", start)
            .err()
            .expect("the 101st attempt is refused");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(throttle.attempt_at("b@x.io", "10.9.9.9", start).is_ok());
        assert!(
            throttle
                .attempt_at("a@x.io", "10.9.9.9", start + WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn attempts_still_running_count_so_a_burst_cannot_slip_past() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        // A hundred guesses in flight at once, none answered yet.
        let in_flight: Vec<Attempt> = (0..PER_EMAIL)
            .map(|_| throttle.attempt_at("a@x.io", "10.0.0.1", now).ok().unwrap())
            .collect();
        assert!(throttle.attempt_at("a@x.io", "10.0.0.2", now).is_err());
        drop(in_flight);
        assert!(throttle.attempt_at("a@x.io", "10.0.0.2", now).is_err());
    }

    #[test]
    fn a_successful_attempt_is_forgiven() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        for _ in 0..PER_EMAIL - 1 {
            drop(throttle.attempt_at("a@x.io", "10.0.0.1", now));
        }
        throttle
            .attempt_at("a@x.io", "10.0.0.1", now)
            .ok()
            .unwrap()
            .succeeded();
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
    }

    #[test]
    fn one_address_is_limited_across_emails() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        for i in 0..PER_IP {
            drop(throttle.attempt_at(&format!("u{i}@x.io"), "10.0.0.1", now));
        }
        assert!(throttle.attempt_at("new@x.io", "10.0.0.1", now).is_err());
        assert!(throttle.attempt_at("new@x.io", "10.0.0.2", now).is_ok());
    }
}
