//! The guard in front of every API route. It lets a request through only with the key
//! and secret of an active token, and answers everything else with the 401 envelope.
//!
//! Per request it does a cache lookup, a SHA-256 and a constant-time compare: no argon2,
//! and no database write. A key that exists but isn't cached yet reads the database once;
//! an unknown key reads nothing.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};

use super::basic::{self, BasicError};
use super::cache::{CachedToken, TokenCache};
use super::usage::UsageRecorder;
use crate::db::Pool;
use crate::domain::{Scope, TokenKey, TokenSecret};
use crate::error::{AppError, AuthFailure};

/// What the guard needs from the server's shared state, and all it may see of it. The
/// server's `AppState` provides it; the guard itself knows nothing above `auth`.
pub trait GuardState: 'static {
    /// For the one read on a cache miss.
    fn pool(&self) -> &Pool;
    fn cache(&self) -> &TokenCache;
    /// Where each use is noted, to be written in batches off the hot path.
    fn usage(&self) -> &UsageRecorder;
    /// Named in the 401 and 403 bodies.
    fn support_email(&self) -> &str;
}

/// The token a request was authenticated with. Handlers take it as an argument.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Arc<CachedToken>);

impl ApiCaller {
    /// A 403 naming the scope when the token lacks it.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.0.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "This API token does not have the '{}' scope that this request needs.",
                scope.as_str()
            )))
        }
    }

    pub fn account(&self) -> crate::domain::AccountId {
        self.0.account_id
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

/// actix middleware: `.wrap(from_fn(guard::require_token::<S, _>))`, where the app's
/// data holds a `web::Data<S>`.
pub async fn require_token<S: GuardState, B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<S>>().cloned() else {
        let err = AppError::internal("application state is missing");
        return Ok(req
            .into_response(err.error_response())
            .map_into_right_body());
    };
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    // The peer address, not X-Forwarded-For, which any client can write.
    let ip = req.peer_addr().map(|a| a.ip());
    match authenticate(state.get_ref(), header).await {
        Ok(token) => {
            state
                .usage()
                .record(token.id, chrono::Utc::now().naive_utc(), ip);
            let expires_at = token.expires_at;
            req.extensions_mut().insert(ApiCaller(token));
            let mut res = next.call(req).await?;
            if let Some(at) = expires_at.filter(|_| res.status().is_success()) {
                add_expiry_header(&mut res, &at);
            }
            Ok(res.map_into_left_body())
        }
        Err(err) => Ok(req
            .into_response(err.error_response())
            .map_into_right_body()),
    }
}

/// The header that tells a client when its token stops working, as GitHub's API does with
/// `GitHub-Authentication-Token-Expiration`: on every successful answer to a token that
/// has an expiry.
pub const TOKEN_EXPIRES: HeaderName = HeaderName::from_static("keyward-token-expires");

fn add_expiry_header<B>(res: &mut ServiceResponse<B>, at: &chrono::NaiveDateTime) {
    if let Ok(value) = HeaderValue::from_str(&crate::timefmt::rfc3339(at)) {
        res.headers_mut().insert(TOKEN_EXPIRES, value);
    }
}

/// Decides whether the header belongs to an active token of an active account.
pub async fn authenticate(
    state: &impl GuardState,
    header: Option<&[u8]>,
) -> Result<Arc<CachedToken>, AppError> {
    let denied = |failure| AppError::Unauthorized {
        failure,
        support: state.support_email().to_string(),
    };
    let credentials = basic::parse(header).map_err(|e| match e {
        BasicError::EmptyPassword => denied(AuthFailure::EmptyPassword),
        BasicError::Missing | BasicError::Malformed => denied(AuthFailure::Inactive),
    })?;
    let key = TokenKey::parse(&credentials.user).map_err(|_| denied(AuthFailure::Inactive))?;
    let secret =
        TokenSecret::parse(&credentials.password).map_err(|_| denied(AuthFailure::Inactive))?;

    // Hashed before the lookup, whether or not the key exists, so that an unknown key is
    // not answered measurably faster than a known key with a wrong secret.
    let digest = secret.digest();
    let token = state
        .cache()
        .lookup(state.pool(), key)
        .await?
        .ok_or_else(|| denied(AuthFailure::Inactive))?;
    if token.digest != digest || token.revoked {
        return Err(denied(AuthFailure::Inactive));
    }
    if token.is_expired_at(chrono::Utc::now().naive_utc()) {
        return Err(denied(AuthFailure::Inactive));
    }
    if token.account_suspended {
        return Err(AppError::forbidden(format!(
            "Your API access has been suspended due to a Terms of Service violation. Please contact {}.",
            state.support_email()
        )));
    }
    Ok(token)
}
