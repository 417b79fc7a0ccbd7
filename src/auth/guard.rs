//! The guard in front of every API route. It lets a request through only with the key
//! and secret of an active token, within the token's rate limit, and answers everything
//! else with the 401 envelope (or 403, or 429).
//!
//! Per request it does a SHA-256 of the header and a lookup among the headers this thread
//! has already let in; a header it hasn't seen is parsed, its secret hashed and compared
//! in constant time with the cached token's. No argon2, and no database write. A key that
//! exists but isn't cached yet reads the database once; an unknown key reads nothing. The
//! call is then counted in memory for the token's usage history (`usage`), which a
//! background loop writes in batches. The actix middleware is in `require_token`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix_web::dev::{Payload, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::NaiveDateTime;

use super::basic::{self, BasicError};
use super::cache::{CachedToken, Found, Presented, TokenCache};
use super::clock::CallTime;
use super::ratelimit::RateLimits;
use super::usage::{Outcome, UsageRecorder};
use crate::db::Pool;
use crate::domain::{Scope, SecretDigest, TokenId, TokenKey, TokenSecret};
use crate::error::{AppError, AuthFailure};
use crate::metrics::{GuardReason, Metrics};

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
    /// The operator's API documentation, which the 429 body points to.
    fn docs_url(&self) -> &str;
    /// Whether a proxy in front sets `Forwarded` / `X-Forwarded-For` (and so whether
    /// they name the client).
    fn trust_forwarded_headers(&self) -> bool;
    /// Where each call's outcome is counted (pre-registered handles: an atomic add).
    fn metrics(&self) -> &Metrics;
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

    /// A 403 naming the scope when the token lacks it.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.token.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "This API token does not have the '{}' scope that this request needs.",
                scope.as_str()
            )))
        }
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
pub(super) fn answered<S: GuardState, B>(
    response: &mut ServiceResponse<B>,
    id: TokenId,
    expires_at: Option<NaiveDateTime>,
    now: CallTime,
    ip: Option<IpAddr>,
) {
    // The state is borrowed from the request, not cloned: every worker would otherwise
    // bump one shared reference count on every call.
    let status = response.status();
    if let Some(state) = response.request().app_data::<web::Data<S>>() {
        state.usage().record(id, Outcome::of(status), now.at(), ip);
        state.metrics().guard(GuardReason::answered(status));
    }
    if let Some(at) = expires_at.filter(|_| status.is_success()) {
        add_expiry_header(response, &at);
    }
}

/// The guard's decision for one call, before any handler runs: the token, or the refusal
/// (401, 403 for a suspended account, 429 over the token's rate limit). A refusal that
/// concerns a known token is counted in its history here; the caller counts the call's
/// outcome once it has answered. `/verify` uses it; the middleware (`require_token`) takes
/// the same two steps, [`check`] then [`settle`], without awaiting when it needn't.
pub async fn admit(
    state: &impl GuardState,
    header: Option<&[u8]>,
    ip: Option<IpAddr>,
    now: CallTime,
) -> Result<Arc<CachedToken>, AppError> {
    settle(state, check(state, header, now).await, ip, now)
}

/// The verdict made final: a refusal is counted (in the metrics, and in the token's history
/// when it concerns a known token), and an allowed token is held to its rate limit.
pub(super) fn settle(
    state: &impl GuardState,
    verdict: Verdict,
    ip: Option<IpAddr>,
    now: CallTime,
) -> Result<Arc<CachedToken>, AppError> {
    let token = match verdict {
        Verdict::Allowed(token) => token,
        Verdict::Refused {
            error,
            counted,
            reason,
        } => {
            state.metrics().guard(reason);
            if let Some((token, outcome)) = counted {
                state.usage().record(token, outcome, now.at(), ip);
            }
            return Err(error);
        }
    };
    if let Some(limit) = token.rate_limit
        && let Err(retry_after_secs) = state.rate_limits().check(token.id, limit)
    {
        state
            .usage()
            .record(token.id, Outcome::RateLimited, now.at(), ip);
        state.metrics().guard(GuardReason::RateLimited);
        let docs = state.docs_url().to_string();
        return Err(AppError::TokenRateLimited {
            retry_after_secs,
            docs,
        });
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

/// The client's address: the peer's, unless the operator said a proxy in front sets
/// `Forwarded` or `X-Forwarded-For` (`--trust-forwarded-headers`); anyone else can write
/// those. A forwarded value that isn't an address (`unknown`, an obfuscated name) falls
/// back to the peer.
pub fn client_ip(req: &HttpRequest, state: &impl GuardState) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if !state.trust_forwarded_headers() {
        return peer;
    }
    req.connection_info()
        .realip_remote_addr()
        .and_then(parse_forwarded_ip)
        .or(peer)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_forwarded_ip(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"');
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
}

/// What the guard made of a request's credentials.
pub enum Verdict {
    Allowed(Arc<CachedToken>),
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
    match check(state, header, CallTime::now()).await {
        Verdict::Allowed(token) => Ok(token),
        Verdict::Refused { error, .. } => Err(error),
    }
}

/// [`authenticate`], saying which token a refusal concerns.
pub async fn check(state: &impl GuardState, header: Option<&[u8]>, now: CallTime) -> Verdict {
    match in_memory(state, header, now) {
        Judged::Done(verdict) => verdict,
        // Boxed, so that the future of every guarded request stays small: the database
        // read's future is large, and a request future over 1 KiB is allocated outside
        // malloc's per-thread cache, on every request, cached token or not.
        Judged::Unread(unread) => Box::pin(unread.read(state, now)).await,
    }
}

/// What the guard can decide without the database, which is every call but the first
/// with a key this instance hasn't cached yet.
pub(super) enum Judged {
    Done(Verdict),
    Unread(Unread),
}

/// A well-formed key that may exist and isn't cached, with the digest of the secret sent.
pub(super) struct Unread {
    key: TokenKey,
    digest: SecretDigest,
}

impl Unread {
    pub(super) async fn read(self, state: &impl GuardState, now: CallTime) -> Verdict {
        let loaded = state.cache().load(state.pool(), self.key).await;
        // The read may have waited for the pool for seconds: a token that expired
        // meanwhile is expired.
        let now = now.after_wait();
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

pub(super) fn in_memory(state: &impl GuardState, header: Option<&[u8]>, now: CallTime) -> Judged {
    // A client sends the same header call after call. Once this thread has verified it,
    // its digest finds the token directly. A header it hasn't verified (a new client, a
    // wrong secret, an unknown key) takes the whole path below, hashed secret and all.
    let presented = header.and_then(Presented::of);
    if let Some(token) = presented.and_then(|p| state.cache().verified(&p)) {
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
                state
                    .cache()
                    .remember_verified(presented, token, generation);
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
    now: CallTime,
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
fn judge_standing(state: &impl GuardState, token: Arc<CachedToken>, now: CallTime) -> Verdict {
    if token.revoked {
        return denied(state, GuardReason::Revoked, AuthFailure::Inactive);
    }
    if token.is_expired_at(now) {
        return denied(state, GuardReason::Expired, AuthFailure::Inactive);
    }
    if token.account_suspended {
        return Verdict::Refused {
            error: AppError::forbidden(crate::error::suspended(
                token.account_suspended_by_operator,
                state.support_email(),
            )),
            counted: Some((token.id, Outcome::Forbidden)),
            reason: GuardReason::Suspended,
        };
    }
    Verdict::Allowed(token)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_address_is_read_with_or_without_its_port() {
        let cases = [
            ("192.0.2.1", Some("192.0.2.1")),
            ("192.0.2.1:4711", Some("192.0.2.1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]:4711", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("\"[2001:db8::1]:4711\"", Some("2001:db8::1")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                parse_forwarded_ip(raw),
                expected.map(|e| e.parse::<IpAddr>().unwrap()),
                "{raw:?}"
            );
        }
    }
}
