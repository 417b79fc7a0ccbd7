//! Prometheus metrics: the handles the server counts into, and `GET /metrics` on its own
//! listener (`KEYWARD_METRICS_BIND`), never on the API's address.
//!
//! Each server owns its recorder (`PrometheusRecorder`, never installed as the process's
//! global one), so two servers in one process, as the tests run them, count apart. Every
//! handle is registered once, up front, so a guarded call adds one atomic increment: no
//! label strings are built or hashed for a counter on the hot path. The request-latency
//! histogram's series are found in the recorder by their labels (`request_timer`). With
//! metrics off every handle is a no-op and the request timer is not installed.
//!
//! Figures the server already keeps (the token cache's size and reads, argon2's queue)
//! are copied into gauges and counters when scraped, not counted twice.

mod request_timer;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use request_timer::LATENCY_BUCKETS;
pub use request_timer::{UNMATCHED, time_request};

/// Why the guard let a call in or refused it; one label value of
/// `keyward_guard_outcomes_total`. Every guarded call counts exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardReason {
    /// Let in, and not refused by its handler for a missing scope.
    Ok,
    /// No `Authorization` header.
    Missing,
    /// A header that isn't Basic credentials of a well-formed key and secret.
    Malformed,
    UnknownKey,
    WrongSecret,
    Revoked,
    Expired,
    /// The account's API access is suspended (403).
    Suspended,
    /// Let in, then refused for a scope the token lacks (403).
    Scope,
    /// Over the token's rate limit (429).
    RateLimited,
    /// The store could not be read for an uncached key (503).
    Unavailable,
    /// From an address outside the token's allowlist (403).
    Address,
    /// No credits left (429).
    NoCredits,
}

impl GuardReason {
    pub const ALL: [GuardReason; 13] = [
        GuardReason::Ok,
        GuardReason::Missing,
        GuardReason::Malformed,
        GuardReason::UnknownKey,
        GuardReason::WrongSecret,
        GuardReason::Revoked,
        GuardReason::Expired,
        GuardReason::Suspended,
        GuardReason::Scope,
        GuardReason::RateLimited,
        GuardReason::Unavailable,
        GuardReason::Address,
        GuardReason::NoCredits,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GuardReason::Ok => "ok",
            GuardReason::Missing => "missing",
            GuardReason::Malformed => "malformed",
            GuardReason::UnknownKey => "unknown_key",
            GuardReason::WrongSecret => "wrong_secret",
            GuardReason::Revoked => "revoked",
            GuardReason::Expired => "expired",
            GuardReason::Suspended => "suspended",
            GuardReason::Scope => "scope",
            GuardReason::RateLimited => "rate_limited",
            GuardReason::Unavailable => "unavailable",
            GuardReason::Address => "address",
            GuardReason::NoCredits => "no_credits",
        }
    }

    /// A call the guard let in, answered with `status`: a 403 from the handler is a
    /// missing scope (as `usage::Outcome::of` reads it too).
    pub fn answered(status: StatusCode) -> Self {
        Self::let_in(status == StatusCode::FORBIDDEN)
    }

    /// A call the guard let in, once its scopes were checked.
    pub fn let_in(refused_for_scope: bool) -> Self {
        if refused_for_scope {
            GuardReason::Scope
        } else {
            GuardReason::Ok
        }
    }
}

/// The names, for the README's table and the `# HELP` lines.
pub const GUARD_OUTCOMES: &str = "keyward_guard_outcomes_total";
pub const REQUEST_DURATION: &str = "keyward_http_request_duration_seconds";
pub const CACHE_ENTRIES: &str = "keyward_token_cache_entries";
pub const CACHE_HITS: &str = "keyward_token_cache_hits_total";
pub const CACHE_MISSES: &str = "keyward_token_cache_misses_total";
pub const UNKNOWN_KEY_READS: &str = "keyward_guard_unknown_key_reads_total";
pub const UNKNOWN_KEYS_UNREAD: &str = "keyward_guard_unknown_keys_unread_total";
pub const INVALIDATION_LAG: &str = "keyward_invalidation_lag_seconds";
pub const POOL_WAIT: &str = "keyward_db_pool_wait_seconds";
pub const POOL_TIMEOUTS: &str = "keyward_db_pool_timeouts_total";
pub const ARGON2_QUEUED: &str = "keyward_argon2_queue_depth";
pub const ARGON2_COMPLETED: &str = "keyward_argon2_completed_total";
pub const ARGON2_REFUSED: &str = "keyward_argon2_refused_total";
pub const ACTIVE_TOKENS: &str = "keyward_active_tokens";

/// Seconds: the poll interval is 250 ms, and the bar for other instances is 1 s.
const LAG_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// A server's metrics. `off()` when `KEYWARD_METRICS_BIND` is unset.
pub struct Metrics {
    /// `None`: metrics are off, every handle below is a no-op.
    recorder: Option<PrometheusRecorder>,
    per_account: bool,
    /// The exporter's handles for the guard's outcomes.
    guard: [Counter; GuardReason::ALL.len()],
    invalidation_lag: Histogram,
    pool_wait: Histogram,
    pool_timeouts: Counter,
    cache_entries: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    unknown_key_reads: Counter,
    unknown_keys_unread: Counter,
    argon2_queued: Gauge,
    argon2_completed: Counter,
    argon2_refused: Counter,
}

/// What the server keeps anyway, copied in at each scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub cache_entries: usize,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub unknown_key_reads: u64,
    pub unknown_keys_unread: u64,
    pub argon2_queued: usize,
    pub argon2_completed: u64,
    pub argon2_refused: u64,
}

impl Metrics {
    /// Counts nothing and renders nothing.
    pub fn off() -> Self {
        Self {
            recorder: None,
            per_account: false,
            guard: std::array::from_fn(|_| Counter::noop()),
            invalidation_lag: Histogram::noop(),
            pool_wait: Histogram::noop(),
            pool_timeouts: Counter::noop(),
            cache_entries: Gauge::noop(),
            cache_hits: Counter::noop(),
            cache_misses: Counter::noop(),
            unknown_key_reads: Counter::noop(),
            unknown_keys_unread: Counter::noop(),
            argon2_queued: Gauge::noop(),
            argon2_completed: Counter::noop(),
            argon2_refused: Counter::noop(),
        }
    }

    /// A recorder of this server's own, with every fixed handle registered now.
    /// `per_account`: whether `keyward_active_tokens{account}` is kept.
    pub fn on(per_account: bool) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(INVALIDATION_LAG.into()),
                LAG_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(POOL_WAIT.into()),
                    LATENCY_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(REQUEST_DURATION.into()),
                    LATENCY_BUCKETS,
                )
            })
            // Only an empty bucket list is refused, and these are constants.
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        describe(&recorder);
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_name(name), &METADATA);
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_name(name), &METADATA);
        let histogram =
            |name: &'static str| recorder.register_histogram(&Key::from_name(name), &METADATA);
        let guard = GuardReason::ALL.map(|reason| {
            recorder.register_counter(
                &Key::from_parts(GUARD_OUTCOMES, vec![Label::new("reason", reason.as_str())]),
                &METADATA,
            )
        });
        Self {
            guard,
            invalidation_lag: histogram(INVALIDATION_LAG),
            pool_wait: histogram(POOL_WAIT),
            pool_timeouts: counter(POOL_TIMEOUTS),
            cache_entries: gauge(CACHE_ENTRIES),
            cache_hits: counter(CACHE_HITS),
            cache_misses: counter(CACHE_MISSES),
            unknown_key_reads: counter(UNKNOWN_KEY_READS),
            unknown_keys_unread: counter(UNKNOWN_KEYS_UNREAD),
            argon2_queued: gauge(ARGON2_QUEUED),
            argon2_completed: counter(ARGON2_COMPLETED),
            argon2_refused: counter(ARGON2_REFUSED),
            per_account,
            recorder: Some(recorder),
        }
    }

    pub fn enabled(&self) -> bool {
        self.recorder.is_some()
    }

    /// Whether the per-account gauge is kept (and its query run).
    pub fn per_account(&self) -> bool {
        self.enabled() && self.per_account
    }

    /// One guarded call's outcome: an atomic add, or nothing with metrics off.
    pub fn guard(&self, reason: GuardReason) {
        self.guard[reason as usize].increment(1);
    }

    /// Notes applied to this process's caches, each as old as `now - note.at`.
    pub fn invalidations_applied(
        &self,
        now: chrono::NaiveDateTime,
        written: impl Iterator<Item = chrono::NaiveDateTime>,
    ) {
        if !self.enabled() {
            return;
        }
        for at in written {
            // Another instance's clock may run ahead of this one: a note from the future
            // is as fresh as can be, not a negative lag.
            let lag = (now - at).to_std().unwrap_or(Duration::ZERO);
            self.invalidation_lag.record(lag.as_secs_f64());
        }
    }

    /// The pool's events, for `r2d2::Builder::event_handler`.
    pub fn pool_events(self: &Arc<Self>) -> Box<dyn r2d2::HandleEvent> {
        Box::new(PoolEvents(self.clone()))
    }

    /// The active tokens of each account, by slug; accounts missing from `counts` are
    /// left as they were (an account is never deleted, so every one is in the query).
    pub fn set_active_tokens(&self, counts: &[(String, i64)]) {
        let Some(recorder) = self.recorder.as_ref().filter(|_| self.per_account) else {
            return;
        };
        for (slug, count) in counts {
            // Registering again returns the same gauge; this runs once per refresh, not
            // per request.
            let key = Key::from_parts(ACTIVE_TOKENS, vec![Label::new("account", slug.clone())]);
            recorder.register_gauge(&key, &METADATA).set(*count as f64);
        }
    }

    /// Moves the histograms' recent samples into their buckets. Without an exporter task
    /// of its own the recorder does this only when rendered, so an unscraped server would
    /// keep every sample; a background loop calls it every second.
    pub fn upkeep(&self) {
        if let Some(recorder) = &self.recorder {
            recorder.handle().run_upkeep();
        }
    }

    /// The Prometheus text page, with the figures of `snapshot` copied in first.
    pub fn render(&self, snapshot: Snapshot) -> Option<String> {
        let recorder = self.recorder.as_ref()?;
        self.cache_entries.set(snapshot.cache_entries as f64);
        self.cache_hits.absolute(snapshot.cache_hits);
        self.cache_misses.absolute(snapshot.cache_misses);
        self.unknown_key_reads.absolute(snapshot.unknown_key_reads);
        self.unknown_keys_unread
            .absolute(snapshot.unknown_keys_unread);
        self.argon2_queued.set(snapshot.argon2_queued as f64);
        self.argon2_completed.absolute(snapshot.argon2_completed);
        self.argon2_refused.absolute(snapshot.argon2_refused);
        Some(recorder.handle().render())
    }

    /// One answered request, for `keyward_http_request_duration_seconds`.
    pub(crate) fn request_took(
        &self,
        route: String,
        method: &'static str,
        status: &'static str,
        took: Duration,
    ) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let labels = vec![
            Label::new("route", route),
            Label::new("method", method),
            Label::new("status", status),
        ];
        recorder
            .register_histogram(&Key::from_parts(REQUEST_DURATION, labels), &METADATA)
            .record(took.as_secs_f64());
    }
}

fn describe(recorder: &PrometheusRecorder) {
    use metrics::SharedString as S;
    let counters = [
        (GUARD_OUTCOMES, "Guarded API calls by the guard's outcome."),
        (CACHE_HITS, "Token lookups answered from the cache."),
        (CACHE_MISSES, "Token lookups that read the database."),
        (
            UNKNOWN_KEY_READS,
            "Keys this instance had not heard of, read from the database within the budget.",
        ),
        (
            UNKNOWN_KEYS_UNREAD,
            "Keys this instance had not heard of, refused unread: the budget was spent.",
        ),
        (
            POOL_TIMEOUTS,
            "Database connection checkouts that timed out.",
        ),
        (ARGON2_COMPLETED, "Password hashes and checks completed."),
        (
            ARGON2_REFUSED,
            "Password hashes and checks refused: the queue was full.",
        ),
    ];
    for (name, help) in counters {
        recorder.describe_counter(name.into(), None, S::const_str(help));
    }
    let gauges = [
        (CACHE_ENTRIES, "Tokens held in the guard's cache."),
        (
            ARGON2_QUEUED,
            "Password hashes and checks waiting for a thread.",
        ),
        (
            ACTIVE_TOKENS,
            "Tokens neither revoked nor expired, per account.",
        ),
    ];
    for (name, help) in gauges {
        recorder.describe_gauge(name.into(), None, S::const_str(help));
    }
    let histograms = [
        (
            INVALIDATION_LAG,
            "Age of a cache invalidation note when this process applied it.",
        ),
        (POOL_WAIT, "Time spent waiting for a database connection."),
    ];
    for (name, help) in histograms {
        recorder.describe_histogram(name.into(), Some(Unit::Seconds), S::const_str(help));
    }
}

/// r2d2's events: the wait of each checkout, and each timeout.
struct PoolEvents(Arc<Metrics>);

impl std::fmt::Debug for PoolEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolEvents")
    }
}

impl r2d2::HandleEvent for PoolEvents {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        self.0.pool_wait.record(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, _: r2d2::event::TimeoutEvent) {
        self.0.pool_timeouts.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_renders_nothing_and_counts_into_nothing() {
        let metrics = Metrics::off();
        metrics.guard(GuardReason::WrongSecret);
        assert!(!metrics.enabled());
        assert_eq!(metrics.render(Snapshot::default()), None);
    }

    #[test]
    fn each_reason_counts_under_its_own_label() {
        let metrics = Metrics::on(true);
        metrics.guard(GuardReason::WrongSecret);
        metrics.guard(GuardReason::WrongSecret);
        metrics.guard(GuardReason::Ok);
        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        assert!(
            page.contains("keyward_guard_outcomes_total{reason=\"wrong_secret\"} 2"),
            "{page}"
        );
        assert!(
            page.contains("keyward_guard_outcomes_total{reason=\"ok\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("keyward_guard_outcomes_total{reason=\"revoked\"} 0"),
            "{page}"
        );
    }

    #[test]
    fn a_note_from_a_clock_ahead_counts_as_no_lag() {
        let metrics = Metrics::on(false);
        let now = chrono::Utc::now().naive_utc();
        metrics.invalidations_applied(now, [now + chrono::Duration::seconds(5)].into_iter());
        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        assert!(
            page.contains("keyward_invalidation_lag_seconds_bucket{le=\"0.01\"} 1"),
            "{page}"
        );
    }

    #[test]
    fn the_per_account_gauge_can_be_turned_off() {
        let metrics = Metrics::on(false);
        metrics.set_active_tokens(&[("acme".to_string(), 3)]);
        let page = metrics.render(Snapshot::default()).expect("metrics are on");
        assert!(!page.contains("keyward_active_tokens{"), "{page}");
    }
}
