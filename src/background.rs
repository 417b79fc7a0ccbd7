//! Loops that run beside the server, each on its own interval and off the async workers:
//! picking up revocations and suspensions made by other processes, writing `last_used`
//! figures, logging tokens that have expired, sweeping expired sessions, and (with
//! metrics on) refreshing the gauges read from the database.

use std::time::Duration;

use actix_web::web::Data;

use crate::error::AppError;
use crate::state::AppState;
use crate::{db, mail};

/// How often expired dashboard sessions are deleted. A session left idle, never signed
/// out of, stays until then; nobody is waiting on the sweep, so it runs here.
const SESSION_SWEEP: Duration = Duration::from_secs(600);

/// How often, with mail off, messages queued anyway are dropped.
const MAIL_OFF_SWEEP: Duration = Duration::from_secs(60);

/// How often the metrics' histogram samples are moved into their buckets (the exporter's
/// own task would do it every 5 s; it isn't run, see `metrics`).
const HISTOGRAM_UPKEEP: Duration = Duration::from_secs(1);

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
        // Credits ride with the usage batch: both are what calls spent since the last tick.
        |state| {
            let used = state.usage.flush(&state.pool).map(drop);
            state.credits.flush(&state.pool)?;
            used
        },
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
    match state.mailer.clone() {
        Some(mailer) => {
            every(
                config.mail_poll_interval,
                "send mail",
                &state,
                move |state| {
                    let mut conn = state.pool.get()?;
                    mail::sender::deliver_due(&mut conn, &mailer).map(drop)
                },
            );
            every(config.notice_interval, "queue notices", &state, |state| {
                let mut conn = state.pool.get()?;
                mail::sender::queue_notices(&mut conn)
            });
        }
        // Notices queued by the store (or the command line) while mail is off are dropped,
        // so the outbox doesn't grow.
        None => every(MAIL_OFF_SWEEP, "drop unsendable notices", &state, |state| {
            let mut conn = state.pool.get()?;
            db::outbox::discard_notices(&mut conn).map(drop)
        }),
    }
    if state.metrics.enabled() {
        // Samples wait in memory until moved into their buckets: at 70,000 requests a
        // second, 15 s of them held 14 MiB in the guard benchmark; one second's, under 1.
        every(HISTOGRAM_UPKEEP, "bucket the histograms", &state, |state| {
            state.metrics.upkeep();
            Ok(())
        });
    }
    if state.metrics.per_account() {
        every(
            config.metrics_refresh_interval,
            "count active tokens per account",
            &state,
            count_active_tokens,
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

/// Each account's active tokens, for the per-account gauge: a grouped read of the tokens
/// table, so it runs here on an interval and not at each scrape.
fn count_active_tokens(state: &AppState) -> Result<(), AppError> {
    let mut conn = state.pool.get()?;
    let counts = db::tokens::active_per_account(&mut conn, db::now())?;
    state.metrics.set_active_tokens(&counts);
    Ok(())
}
