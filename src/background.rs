//! Loops that run beside the server: the `last_used` flusher, and the poller that
//! picks up revocations and suspensions made by other processes on the same database.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::db;
use crate::domain::AccountId;
use crate::state::AppState;

/// Applies every cache invalidation logged after `seen`, and advances it.
pub fn apply_invalidations(
    state: &AppState,
    seen: &AtomicI32,
) -> Result<usize, crate::error::AppError> {
    let mut conn = state.pool.get()?;
    let notes = db::invalidations::since(&mut conn, seen.load(Ordering::Acquire))?;
    for note in &notes {
        if let Some(key) = &note.token_key {
            state.cache.evict(key);
        }
        if let Some(account) = note.account_id {
            state.cache.evict_account(AccountId(account));
        }
    }
    if let Some(last) = notes.last() {
        seen.store(last.seq, Ordering::Release);
    }
    Ok(notes.len())
}

/// Starts both loops on the current Tokio runtime. They end when the runtime does.
pub fn spawn(state: actix_web::web::Data<AppState>, seen: Arc<AtomicI32>) {
    let poll = state.config.invalidation_poll_interval;
    let poller_state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let state = poller_state.clone();
            let seen = seen.clone();
            match tokio::task::spawn_blocking(move || apply_invalidations(&state, &seen)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "could not poll for revocations"),
                Err(err) => tracing::warn!(error = %err, "revocation poll task failed"),
            }
        }
    });

    let sweeper_state = state.clone();
    tokio::spawn(async move {
        // Anonymous visitors leave a session (it holds their sign-in form's CSRF token);
        // expired ones are swept here rather than on a request's path.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            let state = sweeper_state.clone();
            let swept = tokio::task::spawn_blocking(move || {
                let mut conn = state.pool.get()?;
                db::sessions::delete_expired(&mut conn, db::now())
            })
            .await;
            if let Ok(Err(err)) = swept {
                tracing::warn!(error = %err, "could not sweep expired sessions");
            }
        }
    });

    let sweep = state.config.expiry_sweep_interval;
    let expiry_state = state.clone();
    tokio::spawn(async move {
        // The guard logs an expiry when it refuses the token; a token that expires
        // unused is found here, so the audit log misses none.
        let mut tick = tokio::time::interval(sweep);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let state = expiry_state.clone();
            let swept = tokio::task::spawn_blocking(move || {
                let mut conn = state.pool.get()?;
                let expired = db::tokens::expired_unlogged(&mut conn)?;
                if expired.is_empty() {
                    return Ok(());
                }
                db::tokens::log_expired(&mut conn, &expired)
            })
            .await;
            if let Ok(Err(err)) = swept {
                tracing::warn!(error = %err, "could not log expired tokens");
            }
        }
    });

    let flush = state.config.usage_flush_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(flush);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let state = state.clone();
            match tokio::task::spawn_blocking(move || state.usage.flush(&state.pool)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "could not record token use"),
                Err(err) => tracing::warn!(error = %err, "token use flush task failed"),
            }
        }
    });
}
