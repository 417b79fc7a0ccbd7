//! The guard in front of every API route. It lets a request through only with the key
//! and secret of an active token, within the token's rate limit, and answers everything
//! else with the 401 envelope (or 403, or 429).
//!
//! Per request it parses the header, hashes the secret (SHA-256) and compares it in
//! constant time with the cached token's. No argon2, and no database write. A key that
//! exists but isn't cached yet reads the database once, and so does a key this instance
//! hasn't heard of, within a budget of such reads a second (`cache::UnknownKeyBudget`). The
//! call is then counted in memory for the token's usage history (`usage`), which a
//! background loop writes in batches. The actix middleware is in `require_token`.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::{Payload, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::NaiveDateTime;

use super::basic::{self, BasicError};
use super::cache::{CachedToken, Found, TokenCache};
use super::memo;
use crate::db::Pool;
use crate::domain::{Scope, SecretDigest, TokenId, TokenKey, TokenSecret};
use crate::error::{AppError, AuthFailure};
use crate::limits::credits::{CreditLedger, Spend};
use crate::limits::per_token::RateLimits;
use crate::metrics::{GuardReason, Metrics};
use crate::usage::{Outcome, UsageRecorder};

/// What the guard needs from the server's shared state, and all it may see of it. The
/// server's `AppState` provides it; the guard itself knows nothing above `auth`.
pub trait GuardState: 'static {
    /// For the one read on a cache miss.
    fn pool(&self) -> &Pool;
    fn cache(&self) -> &TokenCache;
    /// Where each call is counted, to be written in batches off the hot path.
    fn usage(&self) -> &UsageRecorder;
    /// The per-token limiters of this instance.
    fn rate_limits(&self) -> &RateLimits;
    /// Named in the 401 and 403 bodies.
    fn support_email(&self) -> &str;
    /// The client's address, as `auth::client_addr` decides it for every part of the server.
    fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr>;
    /// The operator's API documentation, which the 429 body points to.
    fn docs_url(&self) -> &str;
    /// Where each call's outcome is counted (pre-registered handles: an atomic add).
    fn metrics(&self) -> &Metrics;
    /// The live balance of every token with a credit limit.
    fn credits(&self) -> &CreditLedger;
}

/// The token a request was authenticated with, and the client's address as the guard
/// judged it. Handlers take it as an argument.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    token: Arc<CachedToken>,
    ip: Option<IpAddr>,
}

impl ApiCaller {
    pub fn new(token: Arc<CachedToken>, ip: Option<IpAddr>) -> Self {
        Self { token, ip }
    }

    pub fn token(&self) -> &CachedToken {
        &self.token
    }

    /// A 403 naming the scope when the token lacks it: the one check of a token's scopes
    /// (`policy::require_scope`), made before any work.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        crate::policy::require_scope(self.token.scopes, scope).map_err(AppError::forbidden)
    }

    /// The calling token as the actor of a change that `scope` allows: the scope is checked
    /// here, once; the write then re-reads only what can change (see [`Self::principal`]).
    pub fn acting_with(&self, scope: Scope) -> Result<crate::db::tx::Principal, AppError> {
        self.require(scope)?;
        self.principal()
    }

    pub fn account(&self) -> crate::domain::AccountId {
        self.token.account_id
    }

    /// The calling token as the write path's actor: read again inside every write, so a
    /// token revoked after this request was let in changes nothing. The audit log gets
    /// the address the usage history gets: the forwarded one only behind a trusted proxy.
    pub fn principal(&self) -> Result<crate::db::tx::Principal, AppError> {
        Ok(crate::db::tx::Principal::Token {
            id: self.token.id,
            key: TokenKey::parse(&self.token.key).map_err(AppError::internal)?,
            account: self.token.account_id,
            ip: self.ip.map(|ip| ip.to_string()),
        })
    }
}

impl FromRequest for ApiCaller {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Only the guard puts a caller here; a route without the guard fails loudly.
        std::future::ready(
            req.extensions()
                .get::<ApiCaller>()
                .cloned()
                .ok_or_else(|| AppError::internal("API route is missing the token guard")),
        )
    }
}

/// What the guard does once a call it let in has been answered: counts it in the token's
/// history and the metrics, and tells a token that expires when it does.
/// A credit spent to let the call in is given back unless it succeeded.
pub(super) fn answered<B>(
    state: &impl GuardState,
    response: &mut ServiceResponse<B>,
    token: &CachedToken,
    now: NaiveDateTime,
    ip: Option<IpAddr>,
) {
    let status = response.status();
    state.usage().record(token.id, Outcome::of(status), now, ip);
    state.metrics().guard(GuardReason::answered(status));
    if !status.is_success() {
        state.credits().refund(token);
    }
    if let Some(at) = token.expires_at.filter(|_| status.is_success()) {
        add_expiry_header(response, &at);
    }
}

/// The guard's decision for one call, before any handler runs: the token, or the refusal
/// (401, 403 for a suspended account, 429 over the token's rate limit). A refusal that
/// concerns a known token is counted in its history here; the caller counts the call's
/// outcome once it has answered. `/verify` uses it; the middleware (`require_token`) takes
/// the same two steps, [`check`] then [`settle`].
pub async fn admit(
    state: &impl GuardState,
    header: Option<&[u8]>,
    ip: Option<IpAddr>,
    now: NaiveDateTime,
) -> Result<Arc<CachedToken>, AppError> {
    admit_as(state, header, ip, now, Exemption::None).await
}

/// [`admit`], for a call that may be exempt from some refusals ([`Exemption`]).
pub async fn admit_as(
    state: &impl GuardState,
    header: Option<&[u8]>,
    ip: Option<IpAddr>,
    now: NaiveDateTime,
    exemption: Exemption,
) -> Result<Arc<CachedToken>, AppError> {
    settle(state, check(state, header, now).await, ip, now, exemption)
}

/// Whether the call is a token revoking itself (`DELETE /token`): revoking is always
/// allowed, so neither the token's rate limit nor its account's suspension stops it.
pub fn revokes_itself(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::DELETE && req.path() == "/token"
}

/// Whether the call asks about a key (`POST /keys/verify`): a suspended account's
/// verifier is let in, held to its other limits, to be told its keys are `DISABLED`.
pub fn asks_about_a_key(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::POST && req.path() == "/keys/verify"
}

/// What a call may do that others may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exemption {
    None,
    /// [`revokes_itself`]: nothing stops it.
    RevokingItself,
    /// [`asks_about_a_key`]: a suspension doesn't stop it.
    AskingAboutAKey,
}

impl Exemption {
    pub fn of(req: &HttpRequest) -> Self {
        if revokes_itself(req) {
            Exemption::RevokingItself
        } else if asks_about_a_key(req) {
            Exemption::AskingAboutAKey
        } else {
            Exemption::None
        }
    }
}

/// The verdict made final: a refusal is counted (in the metrics, and in the token's history
/// when it concerns a known token), and an allowed token is held to its rate limit, unless
/// it is `revoking_itself`.
fn settle(
    state: &impl GuardState,
    verdict: Verdict,
    ip: Option<IpAddr>,
    now: NaiveDateTime,
    exemption: Exemption,
) -> Result<Arc<CachedToken>, AppError> {
    let revoking_itself = exemption == Exemption::RevokingItself;
    let token = match verdict {
        Verdict::Allowed(token) => token,
        Verdict::Suspended(token) if revoking_itself => return Ok(token),
        Verdict::Suspended(token) if exemption == Exemption::AskingAboutAKey => token,
        Verdict::Suspended(token) => {
            state.metrics().guard(GuardReason::Suspended);
            state.usage().record(token.id, Outcome::Forbidden, now, ip);
            return Err(suspended(state, &token));
        }
        Verdict::Refused {
            error,
            counted,
            reason,
        } => {
            state.metrics().guard(reason);
            if let Some((token, outcome)) = counted {
                state.usage().record(token, outcome, now, ip);
            }
            return Err(error);
        }
    };
    if revoking_itself {
        return Ok(token);
    }
    if !token.allowed_ips.allows(ip) {
        state.usage().record(token.id, Outcome::Forbidden, now, ip);
        state.metrics().guard(GuardReason::Address);
        return Err(AppError::forbidden(crate::error::OUTSIDE_ALLOWED_IPS));
    }
    if let Some(limit) = token.rate_limit
        && let Err(retry_after_secs) = state.rate_limits().check(token.rate_bucket, limit)
    {
        state
            .usage()
            .record(token.id, Outcome::RateLimited, now, ip);
        state.metrics().guard(GuardReason::RateLimited);
        let docs = state.docs_url().to_string();
        return Err(AppError::TokenRateLimited {
            retry_after_secs,
            docs,
        });
    }
    // Spent now, so two calls can't both take the last credit; `answered` gives it back
    // if the call is then refused.
    if state.credits().spend(&token, now) == Spend::Exhausted {
        state
            .usage()
            .record(token.id, Outcome::RateLimited, now, ip);
        state.metrics().guard(GuardReason::NoCredits);
        let docs = state.docs_url().to_string();
        return Err(AppError::NoCredits { docs });
    }
    Ok(token)
}

/// The header that tells a client when its token stops working, as GitHub's API does with
/// `GitHub-Authentication-Token-Expiration`: on every successful answer to a token that
/// has an expiry.
pub const TOKEN_EXPIRES: HeaderName = HeaderName::from_static("keyward-token-expires");

fn add_expiry_header<B>(res: &mut ServiceResponse<B>, at: &NaiveDateTime) {
    if let Ok(value) = HeaderValue::from_str(&crate::timefmt::rfc3339(at)) {
        res.headers_mut().insert(TOKEN_EXPIRES, value);
    }
}

/// What the guard made of a request's credentials.
pub enum Verdict {
    Allowed(Arc<CachedToken>),
    /// The token's own credentials, but its account's API access is suspended: refused
    /// with a 403, counted in its history, unless it is revoking itself.
    Suspended(Arc<CachedToken>),
    /// Refused; `counted` names the token and the outcome when the refusal belongs in a
    /// token's history (a wrong secret for a known key, a suspended account).
    Refused {
        error: AppError,
        counted: Option<(TokenId, Outcome)>,
        /// For the metrics: why, in more detail than the 401 body may tell.
        reason: GuardReason,
    },
}

/// Decides whether the header belongs to an active token of an active account.
pub async fn authenticate(
    state: &impl GuardState,
    header: Option<&[u8]>,
) -> Result<Arc<CachedToken>, AppError> {
    match check(state, header, chrono::Utc::now().naive_utc()).await {
        Verdict::Allowed(token) => Ok(token),
        Verdict::Suspended(token) => Err(suspended(state, &token)),
        Verdict::Refused { error, .. } => Err(error),
    }
}

/// [`authenticate`], saying which token a refusal concerns.
pub async fn check(state: &impl GuardState, header: Option<&[u8]>, now: NaiveDateTime) -> Verdict {
    match in_memory(state, header, now) {
        Judged::Done(verdict) => verdict,
        Judged::Unread(unread) => unread.read(state, now).await,
    }
}

/// What the guard can decide without the database, which is every call but the first
/// with a key this instance hasn't cached yet.
enum Judged {
    Done(Verdict),
    Unread(Unread),
}

/// A well-formed key that may exist and isn't cached, with the digest of the secret sent.
struct Unread {
    key: TokenKey,
    digest: SecretDigest,
}

impl Unread {
    async fn read(self, state: &impl GuardState, now: NaiveDateTime) -> Verdict {
        let loaded = state.cache().load(state.pool(), self.key).await;
        // The read may have waited for the pool for seconds: a token that expired
        // meanwhile is expired. (A time chosen ahead of the clock, as tests do, stays.)
        let now = now.max(chrono::Utc::now().naive_utc());
        match loaded {
            Ok(Some(token)) => judge(state, token, &self.digest, now),
            Ok(None) => denied(state, GuardReason::UnknownKey, AuthFailure::Inactive),
            Err(error) => Verdict::Refused {
                error,
                counted: None,
                reason: GuardReason::Unavailable,
            },
        }
    }
}

fn in_memory(state: &impl GuardState, header: Option<&[u8]>, now: NaiveDateTime) -> Judged {
    // A client sends the same header call after call: once this thread has let it in, its
    // digest finds the token directly, and only the token's standing is judged again.
    let presented = header.and_then(memo::Presented::of);
    if let Some(token) = presented.and_then(|p| memo::recall(state.cache(), &p)) {
        return Judged::Done(judge_standing(state, token, now));
    }
    let refused = |reason, failure| Judged::Done(denied(state, reason, failure));
    let credentials = match basic::parse(header) {
        Ok(credentials) => credentials,
        Err(BasicError::EmptyPassword) => {
            return refused(GuardReason::Malformed, AuthFailure::EmptyPassword);
        }
        Err(BasicError::Missing) => return refused(GuardReason::Missing, AuthFailure::Inactive),
        Err(BasicError::OtherScheme) => {
            return refused(GuardReason::Malformed, AuthFailure::WrongScheme);
        }
        Err(BasicError::Malformed) => {
            return refused(GuardReason::Malformed, AuthFailure::Inactive);
        }
    };
    let (Ok(key), Ok(secret)) = (
        TokenKey::parse(credentials.user()),
        TokenSecret::parse(credentials.password()),
    ) else {
        return refused(GuardReason::Malformed, AuthFailure::Inactive);
    };

    // Hashed before the lookup, whether or not the key exists, so that an unknown key is
    // not answered measurably faster than a known key with a wrong secret.
    let digest = secret.digest();
    match state.cache().find(key.as_str()) {
        Found::Token { token, generation } => {
            let verdict = judge(state, token, &digest, now);
            if let (Verdict::Allowed(token), Some(presented)) = (&verdict, presented) {
                memo::remember(state.cache(), presented, token, generation);
            }
            Judged::Done(verdict)
        }
        Found::NoSuchKey => refused(GuardReason::UnknownKey, AuthFailure::Inactive),
        Found::Unread => Judged::Unread(Unread { key, digest }),
    }
}

/// The verdict on a token found for the key that was sent.
fn judge(
    state: &impl GuardState,
    token: Arc<CachedToken>,
    digest: &SecretDigest,
    now: NaiveDateTime,
) -> Verdict {
    if token.digest != *digest {
        return Verdict::Refused {
            error: unauthorized(state, AuthFailure::Inactive),
            counted: Some((token.id, Outcome::WrongSecret)),
            reason: GuardReason::WrongSecret,
        };
    }
    judge_standing(state, token, now)
}

/// The verdict on a token whose secret was sent: whether it may still be used.
fn judge_standing(state: &impl GuardState, token: Arc<CachedToken>, now: NaiveDateTime) -> Verdict {
    if token.revoked {
        return denied(state, GuardReason::Revoked, AuthFailure::Inactive);
    }
    if token.is_expired_at(now) {
        return denied(state, GuardReason::Expired, AuthFailure::Inactive);
    }
    if token.account_suspended {
        return Verdict::Suspended(token);
    }
    Verdict::Allowed(token)
}

/// The 403 of a suspended account, naming who suspended it.
fn suspended(state: &impl GuardState, token: &CachedToken) -> AppError {
    AppError::forbidden(crate::error::suspended(
        token.account_suspended_by_operator,
        state.support_email(),
    ))
}

/// The 401, counted in no token's history.
fn denied(state: &impl GuardState, reason: GuardReason, failure: AuthFailure) -> Verdict {
    Verdict::Refused {
        error: unauthorized(state, failure),
        counted: None,
        reason,
    }
}

fn unauthorized(state: &impl GuardState, failure: AuthFailure) -> AppError {
    AppError::Unauthorized {
        failure,
        support: state.support_email().to_string(),
    }
}
