//! Loops that run beside the server, each on its own interval and off the async workers:
//! picking up revocations and suspensions made by other processes, writing `last_used`
//! figures, logging tokens that have expired, sweeping expired sessions, and (with
//! metrics on) refreshing the gauges read from the database.

use std::time::Duration;

use actix_web::web::Data;

use crate::db;
use crate::error::AppError;
use crate::state::AppState;

/// How often expired dashboard sessions are deleted. A session left idle, never signed
/// out of, stays until then; nobody is waiting on the sweep, so it runs here.
const SESSION_SWEEP: Duration = Duration::from_secs(600);

/// Starts every loop on the current Tokio runtime. They end when the runtime does.
pub fn spawn(state: Data<AppState>) {
    let config = state.config.clone();
    every(
        config.invalidation_poll_interval,
        "poll for revocations",
        &state,
        |state| {
            let mut conn = state.pool.get()?;
            state.apply_invalidations(&mut conn).map(drop)
        },
    );
    every(
        config.usage_flush_interval,
        "record token use",
        &state,
        |state| state.usage.flush(&state.pool).map(drop),
    );
    every(
        config.expiry_sweep_interval,
        "log expired tokens",
        &state,
        |state| {
            let mut conn = state.pool.get()?;
            db::tokens::log_expired(&mut conn).map(drop)
        },
    );
    every(SESSION_SWEEP, "sweep expired sessions", &state, |state| {
        let mut conn = state.pool.get()?;
        db::sessions::delete_expired(&mut conn, db::now()).map(drop)
    });
    if state.metrics.enabled() {
        every(
            config.metrics_refresh_interval,
            "refresh the metrics",
            &state,
            refresh_metrics,
        );
    }
}

/// Runs `job` on the blocking pool every `interval`; a failure is logged and retried at
/// the next tick.
fn every<F>(interval: Duration, what: &'static str, state: &Data<AppState>, job: F)
where
    F: Fn(&AppState) -> Result<(), AppError> + Send + Sync + 'static,
{
    let state = state.clone();
    let job = std::sync::Arc::new(job);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (state, job) = (state.clone(), job.clone());
            match tokio::task::spawn_blocking(move || job(&state)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "could not {what}"),
                Err(err) => tracing::warn!(error = %err, "task to {what} failed"),
            }
        }
    });
}

/// Drains the histograms' recent samples into their buckets (nothing else does when no
/// one scrapes), and, unless turned off, counts each account's active tokens: a grouped
/// read of the tokens table, so it runs here and not at each scrape.
fn refresh_metrics(state: &AppState) -> Result<(), AppError> {
    state.metrics.upkeep();
    if state.metrics.per_account() {
        let mut conn = state.pool.get()?;
        let counts = db::tokens::active_per_account(&mut conn, db::now())?;
        state.metrics.set_active_tokens(&counts);
    }
    Ok(())
}
