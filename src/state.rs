//! What every worker shares. Built once, outside `HttpServer::new`, and handed to each
//! worker's `App`, so that a revocation seen by one worker is seen by all.

use std::sync::Arc;

use crate::auth::cache::TokenCache;
use crate::auth::password::Argon2Pool;
use crate::auth::throttle::LoginThrottle;
use crate::auth::usage::UsageRecorder;
use crate::config::Config;
use crate::db::tx::{Principal, Tx};
use crate::db::{self, Pool};
use crate::domain::AccountId;
use crate::error::AppError;

pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub cache: Arc<TokenCache>,
    pub usage: Arc<UsageRecorder>,
    pub throttle: Arc<LoginThrottle>,
    /// Every argon2 hash and check the server runs, bounded in number.
    pub passwords: Argon2Pool,
}

impl AppState {
    pub fn new(pool: Pool, config: Config) -> Self {
        Self {
            pool,
            passwords: Argon2Pool::new(config.password_threads),
            config: Arc::new(config),
            cache: Arc::new(TokenCache::new()),
            usage: Arc::new(UsageRecorder::new()),
            throttle: Arc::new(LoginThrottle::new()),
        }
    }

    /// The server's one way to change anything: runs `change` through the write path
    /// (`db::tx::transact`: one IMMEDIATE transaction that re-reads who `who` is in
    /// `account` and checks the rules inside it), then applies the invalidation log, so
    /// that once the caller answers, every worker refuses whatever was revoked. If that
    /// last step fails, the caller answers with the error: the change is committed, but no
    /// page may say "revoked" before this process's cache has dropped the token.
    pub async fn write<T, F>(
        &self,
        who: Principal,
        account: Option<AccountId>,
        change: F,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, AppError> + Send + 'static,
    {
        let done = self.commit(who, account, change).await?;
        self.sync_cache().await?;
        Ok(done)
    }

    /// [`write`](Self::write) for a change whose answer holds something shown only once,
    /// a new token's secret. Losing that answer would be worse than a late cache, so a
    /// failed log sync is logged, not returned: the poller learns the new key within one
    /// interval, and a creation revokes nothing that could be let in meanwhile.
    pub async fn write_showing_once<T, F>(
        &self,
        who: Principal,
        account: Option<AccountId>,
        change: F,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, AppError> + Send + 'static,
    {
        let done = self.commit(who, account, change).await?;
        if let Err(err) = self.sync_cache().await {
            tracing::warn!(error = %err, "the change waits for the next poll of the log");
        }
        Ok(done)
    }

    async fn commit<T, F>(
        &self,
        who: Principal,
        account: Option<AccountId>,
        change: F,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, AppError> + Send + 'static,
    {
        db::run(&self.pool, move |conn| {
            db::tx::transact(conn, &who, account, change)
        })
        .await
    }

    /// Applies the invalidation log to this process's cache now.
    pub async fn sync_cache(&self) -> Result<(), AppError> {
        let cache = self.cache.clone();
        db::run(&self.pool, move |conn| cache.apply_invalidations(conn)).await?;
        Ok(())
    }
}
