//! `last_used_at` and `last_used_ip`, gathered in memory by the guard and written in
//! batches, so an API request never writes to the database. A crash loses at most one
//! interval of "last used" figures, never a token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::NaiveDateTime;

use crate::db::{self, Pool};
use crate::domain::TokenId;
use crate::error::AppError;

#[derive(Default)]
pub struct UsageRecorder {
    // IpAddr is Copy: recording a use allocates nothing.
    latest: Mutex<HashMap<TokenId, (NaiveDateTime, Option<IpAddr>)>>,
}

impl UsageRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, token: TokenId, at: NaiveDateTime, ip: Option<IpAddr>) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        latest.insert(token, (at, ip));
    }

    /// Writes what has gathered since the last flush. Blocking: call off the async workers.
    pub fn flush(&self, pool: &Pool) -> Result<usize, AppError> {
        let batch: Vec<db::tokens::Usage> = {
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            latest
                .drain()
                .map(|(token, (at, ip))| db::tokens::Usage { token, at, ip })
                .collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let written = pool
            .get()
            .map_err(AppError::from)
            .and_then(|mut conn| db::tokens::record_usage(&mut conn, &batch));
        if let Err(err) = written {
            // Put the batch back so the next flush tries again, unless newer figures came in.
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            for usage in batch {
                latest.entry(usage.token).or_insert((usage.at, usage.ip));
            }
            return Err(err);
        }
        Ok(batch.len())
    }
}
