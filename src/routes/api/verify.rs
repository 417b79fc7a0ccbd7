//! `GET /verify`: forward auth for a reverse proxy (nginx `auth_request`, Traefik
//! `ForwardAuth`, Envoy `ext_authz`). The proxy passes on the request's own
//! `Authorization`; an active token gets a 204 whose headers name its account, key and
//! scopes, for the proxy to hand upstream. Anything else gets exactly the guard's answer.
//!
//! This is the guard's hot path and nothing more: a cache lookup, a SHA-256, a constant-time
//! compare, and the in-memory use record. No database write.

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::guard::{self, ApiCaller};
use crate::domain::{PermissionQuery, Scope};
use crate::error::AppError;
use crate::metrics::GuardReason;
use crate::state::AppState;
use crate::usage::Outcome;

/// The header a proxy may set to demand a scope, as `?scope=` does.
pub const REQUIRED_SCOPE_HEADER: &str = "x-keyward-required-scope";

pub const ACCOUNT_HEADER: &str = "x-keyward-account";
pub const TOKEN_HEADER: &str = "x-keyward-token";
pub const SCOPES_HEADER: &str = "x-keyward-scopes";
pub const EXTERNAL_ID_HEADER: &str = "x-keyward-external-id";
pub const PERMISSIONS_HEADER: &str = "x-keyward-permissions";

#[utoipa::path(
    method(get, post, put, patch, delete, head, options),
    path = "/verify",
    tag = "integrations",
    security(("basic" = [])),
    params(
        ("scope" = Option<String>, Query, description = "A scope the token must hold (repeatable, or comma-separated)"),
        ("permissions" = Option<String>, Query, max_length = 1000, description = "A permission query the token must satisfy: names, AND, OR and parentheses, AND binding tighter"),
        ("X-Keyward-Required-Scope" = Option<String>, Header, description = "A scope the token must hold, set by the proxy"),
    ),
    responses(
        (status = 204, description = "The token may pass", headers(
            ("X-Keyward-Account" = String, description = "The account's slug"),
            ("X-Keyward-Token" = String, description = "The token's key"),
            ("X-Keyward-Scopes" = String, description = "The token's scopes, comma-separated"),
            ("X-Keyward-Permissions" = String, description = "The token's permissions, comma-separated"),
            ("X-Keyward-External-Id" = String, description = "The token's external id, when it has one"),
        )),
        (status = 400, response = super::schemas::BadRequest),
        super::schemas::Guarded,
    )
)]
/// Every method: nginx's subrequest keeps the original request's method, and Envoy's
/// check does too.
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let now = chrono::Utc::now().naive_utc();
    let ip = crate::auth::client_addr::client_ip(&req, &state.config);
    let caller = ApiCaller::new(guard::admit(state.get_ref(), header, ip, now).await?, ip);
    let scoped = required(&req).and_then(|(scopes, query)| {
        scopes
            .into_iter()
            .try_for_each(|scope| caller.require(scope))?;
        match query {
            Some(query) if !query.allows(&caller.token().permissions) => Err(AppError::forbidden(
                "This API token does not have the permissions this request needs.",
            )),
            _ => Ok(()),
        }
    });
    let outcome = match &scoped {
        Ok(()) => Outcome::Succeeded,
        Err(_) => Outcome::Forbidden,
    };
    state.usage.record(caller.token().id, outcome, now, ip);
    state.metrics.guard(GuardReason::let_in(scoped.is_err()));
    if scoped.is_err() {
        // The guard spent a credit to let the call in; a refusal spends none.
        state.credits.refund(caller.token());
    }
    scoped?;
    let token = caller.token();
    let mut response = HttpResponse::NoContent();
    response.insert_header((CACHE_CONTROL, "no-store"));
    // Slugs, keys and scope names are ASCII by construction, so each is a valid header value.
    for (name, value) in [
        (ACCOUNT_HEADER, token.account_slug.as_str()),
        (TOKEN_HEADER, token.key.as_str()),
        (SCOPES_HEADER, token.scopes.as_str()),
    ] {
        let value = HeaderValue::from_str(value).map_err(|e| AppError::internal(e.to_string()))?;
        response.insert_header((name, value));
    }
    // Permission names are ASCII; an external id may not be, and goes as its UTF-8 bytes.
    if let Ok(value) = HeaderValue::from_str(token.permissions.as_str()) {
        response.insert_header((PERMISSIONS_HEADER, value));
    }
    if let Some(id) = &token.external_id
        && let Ok(value) = HeaderValue::from_bytes(id.as_str().as_bytes())
    {
        response.insert_header((EXTERNAL_ID_HEADER, value));
    }
    Ok(response.finish())
}

/// The query parameters `/verify` knows.
const KNOWN_PARAMETERS: &[&str] = &["scope", "permissions"];

/// The scopes asked for ([`required_scopes`]) and the permission query, if one was sent
/// (`?permissions=`; a query that doesn't parse is a 422 naming the position).
fn required(req: &HttpRequest) -> Result<(Vec<Scope>, Option<PermissionQuery>), AppError> {
    let scopes = required_scopes(req)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| AppError::invalid("The query string could not be read."))?;
    let mut queries = pairs.into_iter().filter(|(name, _)| name == "permissions");
    let query = match (queries.next(), queries.next()) {
        (None, _) => None,
        (Some((_, raw)), None) => Some(
            PermissionQuery::parse(&raw)
                .map_err(|e| AppError::invalid(format!("'permissions': {e}.")))?,
        ),
        (Some(_), Some(_)) => {
            return Err(AppError::invalid(
                "'permissions' may be given once: join the names with AND or OR.",
            ));
        }
    };
    Ok((scopes, query))
}

/// Every scope asked for, by `?scope=` (repeatable, or comma-separated) and by the
/// [`REQUIRED_SCOPE_HEADER`]. They add up: a client that sends the header itself, past a
/// proxy that doesn't overwrite it, can only demand more, never less. A name that is no
/// scope is a 422, and a parameter or `X-Keyward-Required-…` header `/verify` doesn't
/// know (`?Scope=`, `?scopes=`) a 400, so a misspelt proxy setting fails closed.
fn required_scopes(req: &HttpRequest) -> Result<Vec<Scope>, AppError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| AppError::invalid("The query string could not be read."))?;
    if let Some((unknown, _)) = pairs
        .iter()
        .find(|(name, _)| !KNOWN_PARAMETERS.contains(&name.as_str()))
    {
        return Err(AppError::BadRequest(vec![format!(
            "/verify doesn't know the query parameter '{}'; it knows only: {}.",
            unknown.chars().take(100).collect::<String>(),
            KNOWN_PARAMETERS.join(", ")
        )]));
    }
    if let Some(unknown) = req.headers().keys().find(|name| {
        name.as_str().starts_with("x-keyward-required-") && name.as_str() != REQUIRED_SCOPE_HEADER
    }) {
        return Err(AppError::BadRequest(vec![format!(
            "/verify doesn't know the header '{unknown}'; the header that demands a scope is X-Keyward-Required-Scope."
        )]));
    }
    let from_query = pairs
        .into_iter()
        .filter(|(name, _)| name == "scope")
        .map(|(_, value)| value);
    let mut from_headers = Vec::new();
    for value in req.headers().get_all(REQUIRED_SCOPE_HEADER) {
        let text = value.to_str().map_err(|_| {
            AppError::invalid("The X-Keyward-Required-Scope header is not readable text.")
        })?;
        from_headers.push(text.to_string());
    }
    let mut scopes = Vec::new();
    for list in from_query.chain(from_headers) {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            scopes.push(Scope::parse(name).map_err(|e| {
                AppError::invalid(format!("The required scope can't be checked: {e}"))
            })?);
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn scopes_come_from_the_query_and_the_header_and_add_up() {
        let req = TestRequest::default()
            .uri("/verify?scope=read&scope=write")
            .insert_header((REQUIRED_SCOPE_HEADER, "tokens, read"))
            .to_http_request();
        let scopes = required_scopes(&req).expect("known scopes");
        assert_eq!(
            scopes,
            [Scope::Read, Scope::Write, Scope::Tokens, Scope::Read]
        );
        let none = TestRequest::default().uri("/verify").to_http_request();
        assert_eq!(required_scopes(&none).expect("no scopes"), []);
    }

    #[test]
    fn an_unknown_scope_is_refused_not_ignored() {
        let req = TestRequest::default()
            .uri("/verify?scope=admin")
            .to_http_request();
        let err = required_scopes(&req).expect_err("admin is no scope");
        assert!(err.messages()[0].contains("admin"));
    }
}
