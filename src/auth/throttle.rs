//! Limits password guessing and sign-ups, without handing anyone a way to lock a victim out.
//!
//! Failed password checks (at sign-in, and when an existing user accepts an invitation)
//! are counted three ways over the last hour:
//! * **per email and address**: the first [`FREE_PER_PAIR`] fail freely; after that each
//!   further try from that pair must wait, twice as long each time, from 5 s up to
//!   15 minutes. This is what slows a guesser, and it slows only the guesser's own
//!   address: the owner of the email, elsewhere, signs in as usual.
//! * **per address**: at most [`PER_IP`], whatever the emails (an office can share one
//!   address, so it is generous).
//! * **per email, from everywhere**: at most [`PER_EMAIL`]. One address can fail about 15
//!   times an hour against one email, so locking a victim out this way takes some seventy
//!   addresses; and a guesser with many addresses still gets only this many guesses.
//!
//! An attempt is counted as failed from the moment it starts, and forgiven if it
//! succeeds: counting only after argon2 has answered would let a burst of concurrent
//! guesses all pass the check before any of them was recorded.
//!
//! Sign-ups are limited per address too ([`SIGN_UPS_PER_IP`] an hour), counted whether they
//! succeed or not: each costs an argon2 hash, and one for a taken email says it is taken.
//!
//! Counted in memory, per process: a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::Email;
use crate::error::AppError;

/// Failures one (email, address) pair may have before each further try must wait.
pub const FREE_PER_PAIR: usize = 5;
/// The wait after the first failure beyond the free ones; it doubles with each failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(5);
/// The longest a pair ever waits between tries.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
pub const PER_IP: usize = 300;
pub const PER_EMAIL: usize = 1000;
pub const SIGN_UPS_PER_IP: usize = 20;
const WINDOW: Duration = Duration::from_secs(3600);
/// The one key for every sign-in whose email isn't an email address.
const NOT_AN_EMAIL: &str = "(not an email)";
/// Beyond this many tracked keys, the stale ones are dropped to bound memory.
const MAX_KEYS: usize = 100_000;

type Times = HashMap<String, VecDeque<Instant>>;

/// How one key's recent events limit the next.
#[derive(Clone, Copy)]
enum Rule {
    /// At most this many an hour.
    Ceiling(usize),
    /// `free` at once; then each must wait, doubling from [`FIRST_DELAY`], after the last.
    Progressive { free: usize },
}

impl Rule {
    /// How long the next event must wait, given the key's events in the last hour.
    fn wait(self, times: &VecDeque<Instant>, now: Instant) -> Option<Duration> {
        match self {
            Rule::Ceiling(limit) => {
                // Wait until enough of the oldest have left the window to make room for one.
                let oldest = times.get(times.len().checked_sub(limit)?)?;
                Some(WINDOW.saturating_sub(now.saturating_duration_since(*oldest)))
            }
            Rule::Progressive { free } => {
                let beyond = times.len().checked_sub(free)?;
                let delay = u32::try_from(beyond)
                    .ok()
                    .and_then(|n| FIRST_DELAY.checked_mul(2u32.checked_pow(n)?))
                    .map_or(MAX_DELAY, |d| d.min(MAX_DELAY));
                let last = times.back()?;
                let waited = now.saturating_duration_since(*last);
                (waited < delay).then(|| delay - waited)
            }
        }
    }
}

#[derive(Default)]
pub struct LoginThrottle {
    times: Mutex<Times>,
}

/// A password check in progress. Dropped without [`Attempt::succeeded`], it stays
/// counted as a failure.
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    pair: String,
    others: [String; 2],
    at: Instant,
}

/// Says when the attempt started, and nothing of whose it is.
impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl Attempt {
    /// The password was right: this attempt no longer counts against the limits, and the
    /// pair's earlier failures are forgiven too, since the person has shown they know it.
    pub fn succeeded(self) {
        let mut times = self.throttle.lock();
        times.remove(&self.pair);
        self.uncount(&mut times, &self.others);
    }

    /// No password was checked after all (the server was too busy to hash): no guess was
    /// made, so this attempt doesn't count.
    pub fn withdrawn(self) {
        let mut times = self.throttle.lock();
        self.uncount(&mut times, &[&self.pair, &self.others[0], &self.others[1]]);
    }

    fn uncount(&self, times: &mut Times, keys: &[impl AsRef<str>]) {
        for key in keys {
            if let Some(times) = times.get_mut(key.as_ref())
                && let Some(i) = times.iter().rposition(|t| *t == self.at)
            {
                times.remove(i);
            }
        }
    }
}

/// Which limit refused, so the sentence can say what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    SignIn(Duration),
    SignUp(Duration),
}

impl Refusal {
    pub fn wait(self) -> Duration {
        match self {
            Refusal::SignIn(wait) | Refusal::SignUp(wait) => wait,
        }
    }
}

impl LoginThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a password check for `email` from `ip`, or says how long to wait.
    pub fn attempt(self: &Arc<Self>, email: &str, ip: &str) -> Result<Attempt, AppError> {
        self.attempt_at(email, ip, Instant::now())
            .map_err(|wait| too_many(Refusal::SignIn(wait)))
    }

    pub fn attempt_at(
        self: &Arc<Self>,
        email: &str,
        ip: &str,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        // Keyed by the address as typed only when it is one: anything else shares one
        // bucket, so a flood of made-up "emails" (up to the form's size each) can neither
        // fill memory with keys nor dodge the per-pair wait. No account has such an email,
        // so no one can be locked out through that bucket.
        let email = Email::parse(email.trim())
            .map(|e| e.as_str().to_lowercase())
            .unwrap_or_else(|_| NOT_AN_EMAIL.to_string());
        let pair = format!("pair:{ip} {email}");
        let by_ip = format!("ip:{ip}");
        let by_email = format!("email:{email}");
        self.record_at(
            [
                (
                    &pair,
                    Rule::Progressive {
                        free: FREE_PER_PAIR,
                    },
                ),
                (&by_ip, Rule::Ceiling(PER_IP)),
                (&by_email, Rule::Ceiling(PER_EMAIL)),
            ],
            now,
        )?;
        Ok(Attempt {
            throttle: self.clone(),
            pair,
            others: [by_ip, by_email],
            at: now,
        })
    }

    /// Counts a sign-up from `ip`, or says how long to wait.
    pub fn sign_up(&self, ip: &str) -> Result<(), AppError> {
        self.sign_up_at(ip, Instant::now())
            .map_err(|wait| too_many(Refusal::SignUp(wait)))
    }

    pub fn sign_up_at(&self, ip: &str, now: Instant) -> Result<(), Duration> {
        self.record_at(
            [(&format!("sign-up:{ip}"), Rule::Ceiling(SIGN_UPS_PER_IP))],
            now,
        )
    }

    /// Records an event under every key, unless one of their rules says to wait; then
    /// records nothing, so refused tries never lengthen the wait.
    fn record_at<const N: usize>(
        &self,
        keys: [(&String, Rule); N],
        now: Instant,
    ) -> Result<(), Duration> {
        let mut times = self.lock();
        if times.len() >= MAX_KEYS {
            times.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let mut wait: Option<Duration> = None;
        for (key, rule) in &keys {
            let Some(recent) = times.get_mut(*key) else {
                continue;
            };
            while recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
            {
                recent.pop_front();
            }
            if let Some(until) = rule.wait(recent, now) {
                wait = Some(wait.map_or(until, |w| w.max(until)));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in keys {
            times.entry(key.clone()).or_default().push_back(now);
        }
        Ok(())
    }
}

/// The 429 a person sees, saying when to try again.
fn too_many(refusal: Refusal) -> AppError {
    let wait = refusal.wait();
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let when = if secs < 60 {
        let secs = secs.max(1);
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        let minutes = secs.div_ceil(60);
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    };
    let what = match refusal {
        Refusal::SignIn(_) => "Too many failed sign-ins for this email from your network.",
        Refusal::SignUp(_) => "Too many sign-ups from your network.",
    };
    AppError::TooManyRequests {
        retry_after_secs: secs.max(1),
        message: format!("{what} Try again in {when}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails `n` times for `email` from `ip`, all at `now`, each allowed.
    fn fail(throttle: &Arc<LoginThrottle>, email: &str, ip: &str, n: usize, now: Instant) {
        for i in 0..n {
            assert!(
                throttle.attempt_at(email, ip, now).is_ok(),
                "failure {} of {n} for {email} from {ip} was refused",
                i + 1
            );
        }
    }

    #[test]
    fn after_the_free_failures_each_try_from_the_pair_waits_twice_as_long() {
        let throttle = Arc::new(LoginThrottle::new());
        let mut now = Instant::now();
        fail(&throttle, "a@x.io", "10.0.0.1", FREE_PER_PAIR, now);

        let mut expected = FIRST_DELAY;
        for _ in 0..8 {
            let wait = throttle
                .attempt_at("A@x.io", "10.0.0.1", now)
                .expect_err("a try right after a failure beyond the free ones waits");
            assert_eq!(wait, expected);
            // Just before the wait is over, still refused; at its end, allowed (and failed).
            assert!(
                throttle
                    .attempt_at(
                        "a@x.io",
                        "10.0.0.1",
                        now + expected - Duration::from_millis(1)
                    )
                    .is_err()
            );
            now += expected;
            assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
            expected *= 2;
        }
    }

    #[test]
    fn the_wait_between_tries_never_exceeds_the_cap() {
        let throttle = Arc::new(LoginThrottle::new());
        let mut now = Instant::now();
        fail(&throttle, "a@x.io", "10.0.0.1", FREE_PER_PAIR, now);
        // 5 s, 10 s ... 640 s, then the cap: all within the hour, so nothing is forgotten.
        let mut waits = Vec::new();
        for _ in 0..10 {
            let wait = throttle
                .attempt_at("a@x.io", "10.0.0.1", now)
                .expect_err("every try beyond the free ones waits");
            waits.push(wait);
            now += wait;
            assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
        }
        assert_eq!(waits[7], Duration::from_secs(640), "{waits:?}");
        assert_eq!(waits[8..], [MAX_DELAY; 2], "{waits:?}");
    }

    #[test]
    fn a_guesser_slows_only_their_own_address_not_the_victim_elsewhere() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        fail(&throttle, "victim@x.io", "10.6.6.6", FREE_PER_PAIR, now);
        assert!(throttle.attempt_at("victim@x.io", "10.6.6.6", now).is_err());

        // Another attacking address starts afresh, and so does the victim at home.
        assert!(throttle.attempt_at("victim@x.io", "10.7.7.7", now).is_ok());
        let victim = throttle
            .attempt_at("victim@x.io", "192.0.2.10", now)
            .expect("the victim's own address is not slowed");
        victim.succeeded();
    }

    #[test]
    fn one_email_is_capped_across_every_address() {
        let throttle = Arc::new(LoginThrottle::new());
        let start = Instant::now();
        for i in 0..PER_EMAIL / FREE_PER_PAIR {
            let ip = format!("10.0.{}.{}", i / 250, i % 250);
            fail(&throttle, "a@x.io", &ip, FREE_PER_PAIR, start);
        }
        let wait = throttle
            .attempt_at("a@x.io", "198.51.100.1", start)
            .expect_err("past the ceiling, even a fresh address waits");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(throttle.attempt_at("b@x.io", "198.51.100.1", start).is_ok());
        assert!(
            throttle
                .attempt_at("a@x.io", "198.51.100.1", start + WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn one_address_is_limited_across_emails() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        for i in 0..PER_IP {
            fail(&throttle, &format!("u{i}@x.io"), "10.0.0.1", 1, now);
        }
        let wait = throttle
            .attempt_at("new@x.io", "10.0.0.1", now)
            .expect_err("the address is over its limit");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(throttle.attempt_at("new@x.io", "10.0.0.2", now).is_ok());
    }

    #[test]
    fn attempts_still_running_count_so_a_burst_cannot_slip_past() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        // Guesses in flight at once, none answered yet.
        let in_flight: Vec<Attempt> = (0..FREE_PER_PAIR)
            .map(|_| throttle.attempt_at("a@x.io", "10.0.0.1", now).unwrap())
            .collect();
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_err());
        drop(in_flight);
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_err());
    }

    #[test]
    fn a_success_forgives_the_pair_but_not_other_addresses_failures() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        fail(&throttle, "a@x.io", "10.6.6.6", FREE_PER_PAIR, now);
        fail(&throttle, "a@x.io", "10.0.0.1", FREE_PER_PAIR - 1, now);
        throttle
            .attempt_at("a@x.io", "10.0.0.1", now)
            .unwrap()
            .succeeded();
        // The pair starts again with all its free tries...
        fail(&throttle, "a@x.io", "10.0.0.1", FREE_PER_PAIR, now);
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_err());
        // ...while the guesser's address still waits.
        assert!(throttle.attempt_at("a@x.io", "10.6.6.6", now).is_err());
    }

    #[test]
    fn a_withdrawn_attempt_does_not_count_but_leaves_earlier_failures() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        fail(&throttle, "a@x.io", "10.0.0.1", FREE_PER_PAIR - 1, now);
        for _ in 0..10 {
            throttle
                .attempt_at("a@x.io", "10.0.0.1", now)
                .expect("withdrawn attempts leave room")
                .withdrawn();
        }
        fail(&throttle, "a@x.io", "10.0.0.1", 1, now);
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_err());
    }

    #[test]
    fn refused_tries_do_not_lengthen_the_wait() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        fail(&throttle, "a@x.io", "10.0.0.1", FREE_PER_PAIR, now);
        for _ in 0..50 {
            assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_err());
        }
        assert!(
            throttle
                .attempt_at("a@x.io", "10.0.0.1", now + FIRST_DELAY)
                .is_ok()
        );
    }

    #[test]
    fn sign_ups_are_limited_per_address_for_an_hour() {
        let throttle = LoginThrottle::new();
        let start = Instant::now();
        for i in 0..SIGN_UPS_PER_IP {
            assert!(
                throttle.sign_up_at("10.0.0.1", start).is_ok(),
                "sign-up {i}"
            );
        }
        let wait = throttle
            .sign_up_at("10.0.0.1", start)
            .expect_err("one sign-up too many");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(throttle.sign_up_at("10.0.0.2", start).is_ok());
        assert!(throttle.sign_up_at("10.0.0.1", start + WINDOW).is_ok());
        // Sign-ups and sign-ins are separate budgets.
        let throttle = Arc::new(throttle);
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", start).is_ok());
    }

    #[test]
    fn the_refusal_says_when_to_try_again_in_seconds_or_minutes() {
        let cases = [
            (
                Refusal::SignIn(Duration::from_millis(300)),
                1,
                "Try again in 1 second.",
            ),
            (
                Refusal::SignIn(Duration::from_secs(8)),
                8,
                "Try again in 8 seconds.",
            ),
            (
                Refusal::SignIn(Duration::from_secs(61)),
                61,
                "Try again in 2 minutes.",
            ),
            (
                Refusal::SignUp(Duration::from_secs(3599)),
                3599,
                "Try again in 60 minutes.",
            ),
        ];
        for (refusal, secs, sentence) in cases {
            match too_many(refusal) {
                AppError::TooManyRequests {
                    retry_after_secs,
                    message,
                } => {
                    assert_eq!(retry_after_secs, secs, "{refusal:?}");
                    assert!(message.ends_with(sentence), "{refusal:?}: {message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn made_up_emails_share_one_bucket_so_they_neither_pile_up_nor_dodge_the_wait() {
        let throttle = Arc::new(LoginThrottle::new());
        let now = Instant::now();
        for n in 0..FREE_PER_PAIR {
            let junk = format!("{}{n}", "x".repeat(10_000));
            drop(throttle.attempt_at(&junk, "10.0.0.1", now).ok().unwrap());
        }
        assert!(
            throttle
                .attempt_at("yet another junk", "10.0.0.1", now)
                .is_err(),
            "a new made-up email from the same address waits like the others"
        );
        assert_eq!(
            throttle.lock().len(),
            3,
            "one pair, one address and one email key, however many made-up emails"
        );
        assert!(throttle.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
    }
}
