//! `/token`, the calling token itself: `GET` describes it, so other services can check
//! one; `DELETE` revokes it, so a job that leaked its own token can kill it with the token
//! alone.

use super::token_views::{CallingTokenBody, CallingTokenView, Message};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

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
        (status = 200, description = "The calling token", body = CallingTokenBody),
        super::schemas::Guarded,
    )
)]
pub async fn show(caller: ApiCaller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let remaining = state.credits.remaining(caller.token());
    Ok(super::answer(
        StatusCode::OK,
        &CallingTokenBody {
            token: CallingTokenView::of(caller.token(), remaining),
            status: StatusCode::OK.as_u16(),
        },
    ))
}

#[utoipa::path(
    delete,
    path = "/token",
    tag = "tokens",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The calling token is revoked", body = Message),
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
    Ok(super::answer(
        StatusCode::OK,
        &Message {
            message: format!(
                "The token {} is revoked. Every request that uses it now gets 401.",
                token.key
            ),
            status: StatusCode::OK.as_u16(),
        },
    ))
}
