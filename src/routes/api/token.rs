//! `/token`, the calling token itself: `GET` describes it, so other services can check
//! one; `DELETE` revokes it, so a job that leaked its own token can kill it with the token
//! alone.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::guard::ApiCaller;
use crate::db;
use crate::error::AppError;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/token",
    tag = "tokens",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The calling token", body = super::schemas::CallingTokenBody),
        super::schemas::Guarded,
    )
)]
pub async fn show(caller: ApiCaller) -> Result<HttpResponse, AppError> {
    let token = caller.token();
    Ok(super::ok(
        StatusCode::OK,
        json!({
            "token": {
                "key": token.key,
                "name": token.name,
                "scopes": token.scopes.names(),
                "account": { "slug": token.account_slug, "name": token.account_name },
                "created_at": crate::timefmt::rfc3339(&token.created_at),
                "expires_at": token.expires_at.as_ref().map(crate::timefmt::rfc3339),
                "rate_limit": token.rate_limit.map(|l| json!({ "requests_per_minute": l.per_minute() })),
            }
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/token",
    tag = "tokens",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The calling token is revoked", body = super::schemas::Message),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
/// Revokes the calling token. It needs no scope: holding the secret is enough to stop it.
/// The audit log names the token as the one who revoked it.
pub async fn revoke_itself(
    caller: ApiCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let who = caller.principal()?;
    let token = state
        .write(who, Some(caller.account()), db::tokens::revoke_itself)
        .await?;
    Ok(super::ok(
        StatusCode::OK,
        json!({
            "message": format!(
                "The token {} is revoked. Every request that uses it now gets 401.",
                token.key
            ),
        }),
    ))
}
