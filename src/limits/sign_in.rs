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
//! Counted in the database (`db::sign_in_counts`), so several instances on one store share one
//! limit rather than granting one each, and a restart forgets nothing. The check and the
//! count it allows are one write transaction (`db::tx::transact`), so concurrent tries, on one
//! instance or many, take turns. If that write fails (a full disk, the database gone), the
//! try is refused with a 503: a guess is never let through uncounted. The times are the
//! instances' own clocks, so they should agree to within a second, as NTP keeps them.

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::db::sign_in_counts::{self as counts, Kind};
use crate::db::{self, DbConnection, Pool};
use crate::domain::Email;
use crate::error::AppError;

/// Failures one (email, address) pair may have before each further try must wait.
pub const FREE_PER_PAIR: i64 = 5;
/// The wait after the first failure beyond the free ones; it doubles with each failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(5);
/// The longest a pair ever waits between tries.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
pub const PER_IP: i64 = 300;
pub const PER_EMAIL: i64 = 1000;
pub const SIGN_UPS_PER_IP: i64 = 20;
/// Requests that mail a link (reset, verification, sign-up with mail on) per email an hour:
/// enough for a person who lost a mail, too few to flood an inbox.
pub const MAIL_PER_EMAIL: i64 = 5;
/// The same per address, whatever the emails.
pub const MAIL_PER_IP: i64 = 30;
const WINDOW: Duration = Duration::from_secs(3600);
/// The one key for every sign-in whose email isn't an email address.
const NOT_AN_EMAIL: &str = "(not an email)";

/// How one key's recent events limit the next.
#[derive(Clone, Copy)]
enum Rule {
    /// At most this many an hour.
    Ceiling(i64),
    /// `free` at once; then each must wait, doubling from [`FIRST_DELAY`], after the last.
    Progressive { free: i64 },
}

/// How long from `then` to `now`, nothing if `then` is later.
fn since(then: NaiveDateTime, now: NaiveDateTime) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

fn window_start(now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::from_std(WINDOW).unwrap_or(chrono::Duration::MAX)
}

impl Rule {
    /// How long the next event under `(kind, key)` must wait, given its events in the
    /// last hour.
    fn wait(
        self,
        conn: &mut DbConnection,
        kind: Kind,
        key: &str,
        now: NaiveDateTime,
    ) -> Result<Option<Duration>, AppError> {
        let start = window_start(now);
        let recent = counts::recent(conn, kind, key, start)?;
        Ok(match self {
            Rule::Ceiling(limit) => {
                if recent.count < limit {
                    return Ok(None);
                }
                // Wait until enough of the oldest have left the window to make room for one.
                counts::nth_since(conn, kind, key, start, recent.count - limit)?
                    .map(|oldest| WINDOW.saturating_sub(since(oldest, now)))
            }
            Rule::Progressive { free } => {
                let Some(beyond) = recent.count.checked_sub(free).filter(|b| *b >= 0) else {
                    return Ok(None);
                };
                let delay = u32::try_from(beyond)
                    .ok()
                    .and_then(|n| FIRST_DELAY.checked_mul(2u32.checked_pow(n)?))
                    .map_or(MAX_DELAY, |d| d.min(MAX_DELAY));
                recent.latest.and_then(|last| {
                    let waited = since(last, now);
                    (waited < delay).then(|| delay - waited)
                })
            }
        })
    }
}

/// The limits, counted in the store the pool reaches.
pub struct LoginThrottle {
    pool: Pool,
}

/// A password check counted as failed, until it is forgiven.
#[derive(Clone, PartialEq, Eq)]
pub struct Started {
    /// Marks this attempt's rows, so it can be uncounted alone.
    attempt: i64,
    /// The (address, email) key, whose every failure a success forgives.
    pair: String,
}

/// Says nothing of whose it is.
impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").finish_non_exhaustive()
    }
}

/// A password check in progress. Dropped without [`Attempt::succeeded`], it stays
/// counted as a failure.
pub struct Attempt {
    pool: Pool,
    started: Started,
}

/// Says nothing of whose it is.
impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").finish_non_exhaustive()
    }
}

impl Attempt {
    /// The password was right: this attempt no longer counts against the limits, and the
    /// pair's earlier failures are forgiven too, since the person has shown they know it.
    /// A forgiveness that can't be written is logged, not shown: the person is in, and the
    /// failures it would have removed age out within the hour.
    pub async fn succeeded(self) {
        let started = self.started;
        let done = db::run(&self.pool, move |conn| succeeded(conn, &started)).await;
        if let Err(err) = done {
            tracing::warn!(error = %err, "could not forgive a successful sign-in's failures");
        }
    }

    /// No password was checked after all (the server was too busy to hash): no guess was
    /// made, so this attempt doesn't count.
    pub async fn withdrawn(self) {
        let attempt = self.started.attempt;
        let done = db::run(&self.pool, move |conn| withdrawn(conn, attempt)).await;
        if let Err(err) = done {
            tracing::warn!(error = %err, "could not uncount a withdrawn sign-in");
        }
    }
}

/// Which limit refused, so the sentence can say what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    SignIn(Duration),
    SignUp(Duration),
    Mail(Duration),
}

impl Refusal {
    pub fn wait(self) -> Duration {
        match self {
            Refusal::SignIn(wait) | Refusal::SignUp(wait) | Refusal::Mail(wait) => wait,
        }
    }
}

impl LoginThrottle {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Starts a password check for `email` from `ip`, or says how long to wait.
    pub async fn attempt(&self, email: &str, ip: &str) -> Result<Attempt, AppError> {
        let (email, ip) = (email.to_string(), ip.to_string());
        let started = db::run(&self.pool, move |conn| {
            attempt_at(conn, &email, &ip, db::now())
        })
        .await?
        .map_err(|wait| too_many(Refusal::SignIn(wait)))?;
        Ok(Attempt {
            pool: self.pool.clone(),
            started,
        })
    }

    /// Counts a sign-up from `ip`, or says how long to wait.
    pub async fn sign_up(&self, ip: &str) -> Result<(), AppError> {
        let ip = ip.to_string();
        db::run(&self.pool, move |conn| sign_up_at(conn, &ip, db::now()))
            .await?
            .map_err(|wait| too_many(Refusal::SignUp(wait)))
    }

    /// Counts a request that mails a link to `email`, from `ip`, or says how long to wait.
    /// Counted whether or not the email has a sign-in, so the answer tells nothing.
    pub async fn mail_request(&self, email: &Email, ip: &str) -> Result<(), AppError> {
        let (email, ip) = (email.clone(), ip.to_string());
        db::run(&self.pool, move |conn| {
            mail_request_at(conn, &email, &ip, db::now())
        })
        .await?
        .map_err(|wait| too_many(Refusal::Mail(wait)))
    }
}

/// Counts a request that mails `email` a link, from `ip` at `now`, unless it must wait.
pub fn mail_request_at(
    conn: &mut DbConnection,
    email: &Email,
    ip: &str,
    now: NaiveDateTime,
) -> Result<Result<(), Duration>, AppError> {
    record_at(
        conn,
        &[
            (
                Kind::MailEmail,
                email.as_str(),
                Rule::Ceiling(MAIL_PER_EMAIL),
            ),
            (Kind::MailIp, ip, Rule::Ceiling(MAIL_PER_IP)),
        ],
        rand::random::<i64>(),
        now,
    )
}

/// Counts a password check for `email` from `ip` at `now` as failed, unless a rule says
/// to wait.
pub fn attempt_at(
    conn: &mut DbConnection,
    email: &str,
    ip: &str,
    now: NaiveDateTime,
) -> Result<Result<Started, Duration>, AppError> {
    // Keyed by the address as typed only when it is one: anything else shares one
    // bucket, so a flood of made-up "emails" (up to the form's size each) can neither
    // fill the table with keys nor dodge the per-pair wait. No account has such an email,
    // so no one can be locked out through that bucket.
    let email = Email::parse(email.trim())
        .map(|e| e.as_str().to_lowercase())
        .unwrap_or_else(|_| NOT_AN_EMAIL.to_string());
    let pair = format!("{ip} {email}");
    let attempt = rand::random::<i64>();
    let counted = record_at(
        conn,
        &[
            (
                Kind::Pair,
                pair.as_str(),
                Rule::Progressive {
                    free: FREE_PER_PAIR,
                },
            ),
            (Kind::Ip, ip, Rule::Ceiling(PER_IP)),
            (Kind::Email, email.as_str(), Rule::Ceiling(PER_EMAIL)),
        ],
        attempt,
        now,
    )?;
    Ok(counted.map(|()| Started { attempt, pair }))
}

/// Counts a sign-up from `ip` at `now`, unless it must wait.
pub fn sign_up_at(
    conn: &mut DbConnection,
    ip: &str,
    now: NaiveDateTime,
) -> Result<Result<(), Duration>, AppError> {
    record_at(
        conn,
        &[(Kind::SignUp, ip, Rule::Ceiling(SIGN_UPS_PER_IP))],
        rand::random::<i64>(),
        now,
    )
}

/// Forgives a check that succeeded: its own rows, and every failure of its pair.
pub fn succeeded(conn: &mut DbConnection, started: &Started) -> Result<(), AppError> {
    db::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        counts::forget_key(conn, Kind::Pair, &started.pair)?;
        counts::forget_attempt(conn, started.attempt)
    })
}

/// Uncounts a check that never ran.
pub fn withdrawn(conn: &mut DbConnection, attempt: i64) -> Result<(), AppError> {
    db::tx::as_system(conn, |tx| counts::forget_attempt(tx.conn, attempt))
}

/// Records an event under every key, unless one of their rules says to wait; then
/// records nothing, so refused tries never lengthen the wait. One write transaction:
/// concurrent callers, in this process or another, check and count one at a time.
fn record_at(
    conn: &mut DbConnection,
    keys: &[(Kind, &str, Rule)],
    attempt: i64,
    now: NaiveDateTime,
) -> Result<Result<(), Duration>, AppError> {
    db::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        counts::prune(conn, window_start(now))?;
        let mut wait: Option<Duration> = None;
        for (kind, key, rule) in keys {
            if let Some(until) = rule.wait(conn, *kind, key, now)? {
                wait = Some(wait.map_or(until, |w| w.max(until)));
            }
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        let keys: Vec<(Kind, &str)> = keys.iter().map(|(kind, key, _)| (*kind, *key)).collect();
        counts::count(conn, &keys, attempt, now)?;
        Ok(Ok(()))
    })
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
        Refusal::Mail(_) => "Too many emails asked for, for this address or from your network.",
    };
    AppError::TooManyRequests {
        retry_after_secs: secs.max(1),
        message: format!("{what} Try again in {when}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of its own, in a temporary directory, and a connection to it.
    struct Store {
        conn: db::Conn,
        _dir: tempfile::TempDir,
    }

    impl Store {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("throttle.db");
            let pool = db::connect(path.to_str().expect("UTF-8")).expect("a fresh store");
            Self {
                conn: pool.get().expect("a connection"),
                _dir: dir,
            }
        }

        fn attempt_at(
            &mut self,
            email: &str,
            ip: &str,
            now: NaiveDateTime,
        ) -> Result<Started, Duration> {
            attempt_at(&mut self.conn, email, ip, now).expect("the store answers")
        }

        fn sign_up_at(&mut self, ip: &str, now: NaiveDateTime) -> Result<(), Duration> {
            sign_up_at(&mut self.conn, ip, now).expect("the store answers")
        }

        fn succeeded(&mut self, started: Started) {
            succeeded(&mut self.conn, &started).expect("the store answers");
        }

        fn withdrawn(&mut self, started: Started) {
            withdrawn(&mut self.conn, started.attempt).expect("the store answers");
        }

        /// Fails `n` times for `email` from `ip`, all at `now`, each allowed.
        fn fail(&mut self, email: &str, ip: &str, n: i64, now: NaiveDateTime) {
            for i in 0..n {
                assert!(
                    self.attempt_at(email, ip, now).is_ok(),
                    "failure {} of {n} for {email} from {ip} was refused",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn after_the_free_failures_each_try_from_the_pair_waits_twice_as_long() {
        let mut store = Store::new();
        let mut now = db::now();
        store.fail("a@x.io", "10.0.0.1", FREE_PER_PAIR, now);

        let mut expected = FIRST_DELAY;
        for _ in 0..8 {
            let wait = store
                .attempt_at("A@x.io", "10.0.0.1", now)
                .expect_err("a try right after a failure beyond the free ones waits");
            assert_eq!(wait, expected);
            // Just before the wait is over, still refused; at its end, allowed (and failed).
            assert!(
                store
                    .attempt_at(
                        "a@x.io",
                        "10.0.0.1",
                        now + expected - Duration::from_millis(1)
                    )
                    .is_err()
            );
            now += expected;
            assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
            expected *= 2;
        }
    }

    #[test]
    fn the_wait_between_tries_never_exceeds_the_cap() {
        let mut store = Store::new();
        let mut now = db::now();
        store.fail("a@x.io", "10.0.0.1", FREE_PER_PAIR, now);
        // 5 s, 10 s ... 640 s, then the cap: all within the hour, so nothing is forgotten.
        let mut waits = Vec::new();
        for _ in 0..10 {
            let wait = store
                .attempt_at("a@x.io", "10.0.0.1", now)
                .expect_err("every try beyond the free ones waits");
            waits.push(wait);
            now += wait;
            assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
        }
        assert_eq!(waits[7], Duration::from_secs(640), "{waits:?}");
        assert_eq!(waits[8..], [MAX_DELAY; 2], "{waits:?}");
    }

    #[test]
    fn a_guesser_slows_only_their_own_address_not_the_victim_elsewhere() {
        let mut store = Store::new();
        let now = db::now();
        store.fail("victim@x.io", "10.6.6.6", FREE_PER_PAIR, now);
        assert!(store.attempt_at("victim@x.io", "10.6.6.6", now).is_err());

        // Another attacking address starts afresh, and so does the victim at home.
        assert!(store.attempt_at("victim@x.io", "10.7.7.7", now).is_ok());
        let victim = store
            .attempt_at("victim@x.io", "192.0.2.10", now)
            .expect("the victim's own address is not slowed");
        store.succeeded(victim);
    }

    #[test]
    fn one_email_is_capped_across_every_address() {
        let mut store = Store::new();
        let start = db::now();
        for i in 0..PER_EMAIL / FREE_PER_PAIR {
            let ip = format!("10.0.{}.{}", i / 250, i % 250);
            store.fail("a@x.io", &ip, FREE_PER_PAIR, start);
        }
        let wait = store
            .attempt_at("a@x.io", "198.51.100.1", start)
            .expect_err("past the ceiling, even a fresh address waits");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(store.attempt_at("b@x.io", "198.51.100.1", start).is_ok());
        assert!(
            store
                .attempt_at("a@x.io", "198.51.100.1", start + WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn one_address_is_limited_across_emails() {
        let mut store = Store::new();
        let now = db::now();
        for i in 0..PER_IP {
            store.fail(&format!("u{i}@x.io"), "10.0.0.1", 1, now);
        }
        let wait = store
            .attempt_at("new@x.io", "10.0.0.1", now)
            .expect_err("the address is over its limit");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(store.attempt_at("new@x.io", "10.0.0.2", now).is_ok());
    }

    #[test]
    fn attempts_still_running_count_so_a_burst_cannot_slip_past() {
        let mut store = Store::new();
        let now = db::now();
        // Guesses in flight at once, none answered yet.
        let in_flight: Vec<Started> = (0..FREE_PER_PAIR)
            .map(|_| store.attempt_at("a@x.io", "10.0.0.1", now).unwrap())
            .collect();
        assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_err());
        drop(in_flight);
        assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_err());
    }

    #[test]
    fn a_success_forgives_the_pair_but_not_other_addresses_failures() {
        let mut store = Store::new();
        let now = db::now();
        store.fail("a@x.io", "10.6.6.6", FREE_PER_PAIR, now);
        store.fail("a@x.io", "10.0.0.1", FREE_PER_PAIR - 1, now);
        let right = store.attempt_at("a@x.io", "10.0.0.1", now).unwrap();
        store.succeeded(right);
        // The pair starts again with all its free tries...
        store.fail("a@x.io", "10.0.0.1", FREE_PER_PAIR, now);
        assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_err());
        // ...while the guesser's address still waits.
        assert!(store.attempt_at("a@x.io", "10.6.6.6", now).is_err());
    }

    #[test]
    fn a_withdrawn_attempt_does_not_count_but_leaves_earlier_failures() {
        let mut store = Store::new();
        let now = db::now();
        store.fail("a@x.io", "10.0.0.1", FREE_PER_PAIR - 1, now);
        for _ in 0..10 {
            let unchecked = store
                .attempt_at("a@x.io", "10.0.0.1", now)
                .expect("withdrawn attempts leave room");
            store.withdrawn(unchecked);
        }
        store.fail("a@x.io", "10.0.0.1", 1, now);
        assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_err());
    }

    #[test]
    fn refused_tries_do_not_lengthen_the_wait() {
        let mut store = Store::new();
        let now = db::now();
        store.fail("a@x.io", "10.0.0.1", FREE_PER_PAIR, now);
        for _ in 0..50 {
            assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_err());
        }
        assert!(
            store
                .attempt_at("a@x.io", "10.0.0.1", now + FIRST_DELAY)
                .is_ok()
        );
    }

    #[test]
    fn sign_ups_are_limited_per_address_for_an_hour() {
        let mut store = Store::new();
        let start = db::now();
        for i in 0..SIGN_UPS_PER_IP {
            assert!(store.sign_up_at("10.0.0.1", start).is_ok(), "sign-up {i}");
        }
        let wait = store
            .sign_up_at("10.0.0.1", start)
            .expect_err("one sign-up too many");
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
        assert!(store.sign_up_at("10.0.0.2", start).is_ok());
        assert!(store.sign_up_at("10.0.0.1", start + WINDOW).is_ok());
        // Sign-ups and sign-ins are separate budgets.
        assert!(store.attempt_at("a@x.io", "10.0.0.1", start).is_ok());
    }

    #[test]
    fn mailed_links_are_limited_per_email_and_per_address() {
        let mut store = Store::new();
        let now = db::now();
        let victim = Email::parse("victim@x.io").unwrap();
        for i in 0..MAIL_PER_EMAIL {
            let ip = format!("10.0.0.{i}");
            assert!(
                mail_request_at(&mut store.conn, &victim, &ip, now)
                    .unwrap()
                    .is_ok()
            );
        }
        assert!(
            mail_request_at(&mut store.conn, &victim, "10.9.9.9", now)
                .unwrap()
                .is_err(),
            "a fresh address can't flood the same inbox"
        );
        for i in 0..MAIL_PER_IP {
            let other = Email::parse(&format!("u{i}@x.io")).unwrap();
            let _ = mail_request_at(&mut store.conn, &other, "10.1.1.1", now).unwrap();
        }
        let fresh = Email::parse("fresh@x.io").unwrap();
        assert!(
            mail_request_at(&mut store.conn, &fresh, "10.1.1.1", now)
                .unwrap()
                .is_err(),
            "one address can't mail every inbox"
        );
        assert!(
            mail_request_at(&mut store.conn, &fresh, "10.1.1.2", now + WINDOW)
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn rows_older_than_the_hour_are_deleted_by_the_next_count() {
        let mut store = Store::new();
        let start = db::now();
        for i in 0..20 {
            store.fail(&format!("u{i}@x.io"), &format!("10.0.0.{i}"), 1, start);
        }
        assert_eq!(counts::keys_counted(&mut store.conn).unwrap(), 60);
        store.fail("late@x.io", "10.9.9.9", 1, start + WINDOW);
        assert_eq!(
            counts::keys_counted(&mut store.conn).unwrap(),
            3,
            "only the last attempt's pair, address and email are left"
        );
    }

    #[test]
    fn a_flood_within_the_hour_is_capped_keeping_the_newest_rows() {
        let mut store = Store::new();
        let now = db::now();
        for i in 0..10 {
            store.fail(&format!("u{i}@x.io"), &format!("10.0.0.{i}"), 1, now);
        }
        assert_eq!(counts::rows(&mut store.conn).unwrap(), 30);
        counts::prune_keeping(&mut store.conn, window_start(now), 6).unwrap();
        assert_eq!(counts::rows(&mut store.conn).unwrap(), 6);
        // The two newest attempts are what is left: their three keys each.
        assert_eq!(counts::keys_counted(&mut store.conn).unwrap(), 6);
        store.fail("u9@x.io", "10.0.0.9", FREE_PER_PAIR - 1, now);
        assert!(store.attempt_at("u9@x.io", "10.0.0.9", now).is_err());
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
        let mut store = Store::new();
        let now = db::now();
        for n in 0..FREE_PER_PAIR {
            let junk = format!("{}{n}", "x".repeat(10_000));
            assert!(store.attempt_at(&junk, "10.0.0.1", now).is_ok());
        }
        assert!(
            store
                .attempt_at("yet another junk", "10.0.0.1", now)
                .is_err(),
            "a new made-up email from the same address waits like the others"
        );
        assert_eq!(
            counts::keys_counted(&mut store.conn).unwrap(),
            3,
            "one pair, one address and one email key, however many made-up emails"
        );
        assert!(store.attempt_at("a@x.io", "10.0.0.1", now).is_ok());
    }
}
