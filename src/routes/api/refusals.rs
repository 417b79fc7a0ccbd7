//! Refused attempts on the token API leave a trace: a token with the `tokens` scope (or
//! without it) that asks for more than it may, or for a token it can't see, gets its 403,
//! 404 or 422 and an audit row naming it, so an owner can see a leaked token probing.
//! The refused change itself was rolled back, with its own audit rows; this row is written
//! after, in a write of its own. Each token gets a budget of such rows (`limits::refusal_audits`):
//! a token probing in a loop leaves enough of a trace to be seen, and can't fill the disk
//! or hold the write lock with it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use crate::auth::guard::ApiCaller;
use crate::db;
use crate::error::AppError;
use crate::state::AppState;

/// actix middleware, inside the guard: `.wrap(from_fn(refusals::audited))`.
pub async fn audited(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let attempt = format!("{} {}", req.method(), req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let answered = next.call(req).await?;
    let status = answered.status();
    if !matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY
    ) {
        return Ok(answered);
    }
    let caller = answered.request().extensions().get::<ApiCaller>().cloned();
    let why = answered
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
        .map(|e| e.messages().join(" "))
        .unwrap_or_default();
    if let (Some(caller), Some(state)) = (caller, state)
        && state.refusal_audits.take(caller.token().id)
    {
        let detail = format!("{attempt}: {} {why}", status.as_u16());
        let logged = match caller.principal() {
            Ok(who) => {
                state
                    .write(who, Some(caller.account()), move |tx| {
                        db::tokens::log_refused(tx, &detail)
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        // The answer stands either way: a token revoked meanwhile has no standing to log.
        if let Err(error) = logged {
            tracing::warn!(%error, "could not log a refused token API attempt");
        }
    }
    Ok(answered)
}
