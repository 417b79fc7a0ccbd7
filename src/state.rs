//! What every worker shares. Built once, outside `HttpServer::new`, and handed to each
//! worker's `App`, so that a revocation seen by one worker is seen by all.

use std::sync::Arc;

use crate::auth::cache::TokenCache;
use crate::auth::throttle::LoginThrottle;
use crate::auth::usage::UsageRecorder;
use crate::config::Config;
use crate::db::{self, Pool};
use crate::domain::{AccountId, Reason, TokenId};
use crate::error::AppError;

pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub cache: Arc<TokenCache>,
    pub usage: Arc<UsageRecorder>,
    pub throttle: Arc<LoginThrottle>,
}

impl AppState {
    pub fn new(pool: Pool, config: Config) -> Self {
        Self {
            pool,
            config: Arc::new(config),
            cache: Arc::new(TokenCache::new()),
            usage: Arc::new(UsageRecorder::new()),
            throttle: Arc::new(LoginThrottle::new()),
        }
    }

    /// Revokes one of the account's tokens. The order matters: the revocation commits,
    /// then leaves the cache, then the caller answers; so once anyone is told "revoked",
    /// no worker lets the token in again.
    pub async fn revoke_token(
        &self,
        account: AccountId,
        token: TokenId,
        actor: db::audit::Actor,
        reason: Reason,
    ) -> Result<db::tokens::Token, AppError> {
        let revoked = db::run(&self.pool, move |conn| {
            db::tokens::revoke(conn, account, token, &actor, reason.as_str())
        })
        .await?;
        self.sync_cache().await?;
        Ok(revoked)
    }

    /// Applies the invalidation log to this process's cache now. Call it after a change
    /// that wrote to the log and before answering, so that every worker already refuses
    /// what was revoked or suspended.
    pub async fn sync_cache(&self) -> Result<(), AppError> {
        let cache = self.cache.clone();
        db::run(&self.pool, move |conn| cache.apply_invalidations(conn)).await?;
        Ok(())
    }
}
