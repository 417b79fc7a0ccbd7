//! What every worker shares. Built once, outside `HttpServer::new`, and handed to each
//! worker's `App`, so that a revocation seen by one worker is seen by all.

use std::future::IntoFuture;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use crate::auth::cache::TokenCache;
use crate::auth::guard::GuardState;
use crate::auth::password::Argon2Pool;
use crate::cluster_pages::ClusterPages;
use crate::config::Config;
use crate::db::tx::{Principal, Tx};
use crate::db::{self, Pool};
use crate::domain::AccountId;
use crate::error::AppError;
use crate::limits::per_address::IpLimit;
use crate::limits::per_token::RateLimits;
use crate::limits::sign_in::LoginThrottle;
use crate::metrics::{Metrics, Snapshot};
use crate::usage::UsageRecorder;

/// A change for the write path: a store function's call, run once inside the transaction.
pub trait Change<T>: FnOnce(&mut Tx<'_>) -> Result<T, AppError> + Send + 'static {}

impl<T, F> Change<T> for F where F: FnOnce(&mut Tx<'_>) -> Result<T, AppError> + Send + 'static {}

/// A change on its way through the write path; it runs when awaited.
pub struct Write<'a, T, F> {
    state: &'a AppState,
    who: Principal,
    account: Option<AccountId>,
    change: F,
    shown_once: bool,
    answer: PhantomData<fn() -> T>,
}

impl<T, F> Write<'_, T, F> {
    /// For a change whose answer holds something shown only once, a new token's secret.
    /// Losing that answer would be worse than a late cache, so a failed log sync after
    /// the commit is logged, not returned: the poller learns the new key within one
    /// interval, and a creation revokes nothing that could be let in meanwhile.
    pub fn showing_once(mut self) -> Self {
        self.shown_once = true;
        self
    }
}

impl<'a, T: Send + 'static, F: Change<T>> IntoFuture for Write<'a, T, F> {
    type Output = Result<T, AppError>;
    type IntoFuture = LocalBoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let Write {
            state,
            who,
            account,
            change,
            shown_once,
            ..
        } = self;
        Box::pin(async move {
            let done = db::run(&state.pool, move |conn| {
                db::tx::transact(conn, &who, account, change)
            })
            .await?;
            match state.sync_cache().await {
                Err(err) if shown_once => {
                    tracing::warn!(error = %err, "the change waits for the next poll of the log");
                }
                synced => synced?,
            }
            Ok(done)
        })
    }
}

pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub cache: Arc<TokenCache>,
    pub usage: Arc<UsageRecorder>,
    /// Per-token rate limits: in memory, per server.
    pub rate_limits: Arc<RateLimits>,
    /// Live credit balances, written with the usage batch.
    pub credits: Arc<crate::limits::credits::CreditLedger>,
    pub throttle: Arc<LoginThrottle>,
    /// Rendered pages of `GET /clusters`, dropped through the invalidation log.
    pub cluster_pages: Arc<ClusterPages>,
    /// Every argon2 hash and check the server runs, bounded in number.
    pub passwords: Argon2Pool,
    /// Unsigned (or wrongly signed) leaked-secret reports per client address: anyone may
    /// send them.
    pub secret_reports: IpLimit,
    /// Refused token-API attempts each token may have audited (`routes::api::refusals`).
    pub refusal_audits: crate::limits::refusal_audits::RefusalBudget,
    /// Reports signed by a configured key, per client address: the scanner's own budget.
    pub signed_reports: IpLimit,
    /// Passwordless passkey sign-ins begun per client address: anyone may begin one, and
    /// each keeps a challenge in the database for a few minutes.
    pub passkey_starts: IpLimit,
    /// Prometheus handles; a no-op set unless `KEYWARD_METRICS_BIND` is given.
    pub metrics: Arc<Metrics>,
    /// The SMTP relay; `None` while mail is off (no `KEYWARD_SMTP_URL`).
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// Seals two-factor secrets; `None` when no key is set up (PostgreSQL without
    /// `KEYWARD_SECRET_KEY`), and two-factor sign-in is then off.
    pub secret_key: Option<Arc<crate::auth::secret_key::SecretKey>>,
    /// The OpenID Connect provider; `None` while single sign-on is off.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
    /// SSO sign-ins one address may start: each writes a row that waits 10 minutes.
    pub oidc_starts: IpLimit,
}

/// Reports one address may send at once, and then one per interval: a scanner sends a
/// few batches, and each costs up to one indexed read of 100 digests.
const SECRET_REPORTS_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(20).unwrap();
const SECRET_REPORTS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// A scanner that signs may send a backlog at once: each costs a signature check first.
const SIGNED_REPORTS_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(1000).unwrap();
const SIGNED_REPORTS_EVERY: std::time::Duration = std::time::Duration::from_millis(10);
/// A person may start a few SSO sign-ins at once (tabs, retries), then one every 3 s.
const OIDC_STARTS_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(20).unwrap();
const OIDC_STARTS_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
/// A person tries a passkey a few times in a row at most; a script trying more is held
/// to one every few seconds.
const PASSKEY_STARTS_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(10).unwrap();
const PASSKEY_STARTS_EVERY: std::time::Duration = std::time::Duration::from_secs(6);

impl AppState {
    pub fn new(pool: Pool, config: Config) -> Self {
        Self {
            throttle: Arc::new(LoginThrottle::new(pool.clone())),
            pool,
            passwords: Argon2Pool::new(config.password_threads),
            cache: Arc::new(TokenCache::with_budget(config.unknown_key_reads_per_second)),
            config: Arc::new(config),
            usage: Arc::new(UsageRecorder::new()),
            rate_limits: Arc::new(RateLimits::new()),
            credits: Arc::new(crate::limits::credits::CreditLedger::new()),
            cluster_pages: Arc::new(ClusterPages::new()),
            refusal_audits: Default::default(),
            secret_reports: IpLimit::new(
                "leaked-secret reports",
                SECRET_REPORTS_BURST,
                SECRET_REPORTS_EVERY,
            ),
            signed_reports: IpLimit::new(
                "signed leaked-secret reports",
                SIGNED_REPORTS_BURST,
                SIGNED_REPORTS_EVERY,
            ),
            passkey_starts: IpLimit::new(
                "passkey sign-ins",
                PASSKEY_STARTS_BURST,
                PASSKEY_STARTS_EVERY,
            ),
            metrics: Arc::new(Metrics::off()),
            mailer: None,
            secret_key: None,
            oidc: None,
            oidc_starts: IpLimit::new(
                "single sign-on starts",
                OIDC_STARTS_BURST,
                OIDC_STARTS_EVERY,
            ),
        }
    }

    /// The same state, signing in through `oidc`.
    pub fn with_oidc(mut self, oidc: Option<crate::auth::oidc::Oidc>) -> Self {
        self.oidc = oidc.map(Arc::new);
        self
    }

    /// The same state, sealing two-factor secrets with `key`.
    pub fn with_secret_key(mut self, key: Option<crate::auth::secret_key::SecretKey>) -> Self {
        self.secret_key = key.map(Arc::new);
        self
    }

    /// The key that seals two-factor secrets, or a page saying two-factor sign-in is off.
    pub fn secret_key(&self) -> Result<Arc<crate::auth::secret_key::SecretKey>, AppError> {
        self.secret_key.clone().ok_or_else(|| {
            AppError::Unavailable {
                retry_after_secs: 3600,
                message: "Two-factor sign-in is off on this server: its operator has not set KEYWARD_SECRET_KEY or KEYWARD_SECRET_KEY_FILE.".into(),
            }
        })
    }

    /// The same state, mailing through `mailer`.
    pub fn with_mailer(mut self, mailer: Option<crate::mail::Mailer>) -> Self {
        self.mailer = mailer.map(Arc::new);
        self
    }

    /// Whether `user` is linked to this server's provider; never with single sign-on off. A
    /// link to a provider the operator has since replaced counts for nothing.
    pub async fn linked_to_provider(&self, user: crate::domain::UserId) -> Result<bool, AppError> {
        let Some(oidc) = self.oidc.as_deref() else {
            return Ok(false);
        };
        let issuer = oidc.issuer().to_string();
        db::run(&self.pool, move |conn| {
            db::oidc::is_linked(conn, user, &issuer)
        })
        .await
    }

    /// Whether mail is on: sign-ups are verified and links are mailed.
    pub fn mail_on(&self) -> bool {
        self.mailer.is_some()
    }

    /// The same state, counting into `metrics` (built before the pool, which reports to it).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The figures the server keeps anyway, for a scrape.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let (cache_hits, cache_entries) = self.cache.hits_and_len();
        let argon2 = self.passwords.stats();
        Snapshot {
            cache_entries,
            cache_hits,
            cache_misses: self.cache.database_reads(),
            unknown_key_reads: self.cache.unknown_keys().spent(),
            unknown_keys_unread: self.cache.unknown_keys().refused(),
            argon2_queued: self.passwords.queued(),
            argon2_completed: argon2.completed,
            argon2_refused: argon2.refused,
        }
    }

    /// The server's one way to change anything: runs `change` through the write path
    /// (`db::tx::transact`: one IMMEDIATE transaction that re-reads who `who` is in
    /// `account` and checks the rules inside it), then applies the invalidation log, so
    /// that once the caller answers, every worker refuses whatever was revoked. If that
    /// last step fails, the caller answers with the error: the change is committed, but no
    /// page may say "revoked" before this process's cache has dropped the token.
    /// Await it; see [`Write::showing_once`] for the one exception.
    pub fn write<T, F: Change<T>>(
        &self,
        who: Principal,
        account: Option<AccountId>,
        change: F,
    ) -> Write<'_, T, F> {
        Write {
            state: self,
            who,
            account,
            change,
            shown_once: false,
            answer: PhantomData,
        }
    }

    /// Applies the invalidation log to this process's caches now.
    pub async fn sync_cache(&self) -> Result<(), AppError> {
        let (cache, pages) = (self.cache.clone(), self.cluster_pages.clone());
        let metrics = self.metrics.clone();
        db::run(&self.pool, move |conn| {
            apply_log(&cache, &pages, &metrics, conn)
        })
        .await?;
        Ok(())
    }

    /// Applies the invalidation log to this process's caches. Blocking: call off the
    /// async workers.
    pub fn apply_invalidations(
        &self,
        conn: &mut crate::db::DbConnection,
    ) -> Result<usize, AppError> {
        apply_log(&self.cache, &self.cluster_pages, &self.metrics, conn)
    }
}

/// One read of the log for both caches, so neither can pass a note the other missed.
/// Each note's age when applied is the invalidation lag the metrics show.
fn apply_log(
    cache: &TokenCache,
    pages: &ClusterPages,
    metrics: &Metrics,
    conn: &mut crate::db::DbConnection,
) -> Result<usize, AppError> {
    cache.apply_invalidations_and(conn, |notes| {
        pages.apply(notes);
        metrics.invalidations_applied(db::now(), notes.iter().map(|n| n.at));
    })
}

impl GuardState for AppState {
    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn cache(&self) -> &TokenCache {
        &self.cache
    }

    fn usage(&self) -> &UsageRecorder {
        &self.usage
    }

    fn rate_limits(&self) -> &RateLimits {
        &self.rate_limits
    }

    fn support_email(&self) -> &str {
        self.config.support_email.as_str()
    }

    fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        crate::auth::client_addr::client_ip(req, &self.config)
    }

    fn docs_url(&self) -> &str {
        &self.config.docs_url
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn credits(&self) -> &crate::limits::credits::CreditLedger {
        &self.credits
    }
}
