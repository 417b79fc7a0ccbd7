//! `GET /healthz` and `GET /readyz`: unguarded, for load balancers.
//!
//! `/healthz` says the process answers. It touches nothing, so it stays cheap enough to
//! be the guard benchmark's baseline. `/readyz` says the instance can do its work: it asks
//! the database for `SELECT 1` through the pool, within [`READY_TIMEOUT`], and answers a
//! 503 envelope when it can't, so a load balancer drains an instance whose database is
//! gone, and sends traffic back once it returns.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::db;
use crate::error::AppError;
use crate::state::AppState;

/// Load balancers check every few seconds; an answer slower than this is a "no".
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` says when the database doesn't answer. The cause goes to the log.
pub const NOT_READY: &str =
    "The database can't be reached, so this instance can't serve requests right now.";

/// `GET /healthz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    healthy: bool,
    status: u16,
}

/// `GET /readyz`'s answer while the database answers.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    ready: bool,
    status: u16,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses(
        (status = 200, description = "The server is up", body = Health),
        (status = 422, response = super::schemas::Unprocessable),
    )
)]
pub async fn check() -> HttpResponse {
    super::answer(
        StatusCode::OK,
        &Health {
            healthy: true,
            status: StatusCode::OK.as_u16(),
        },
    )
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    responses(
        (status = 200, description = "The database answers: send traffic", body = Ready),
        (status = 422, response = super::schemas::Unprocessable),
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = state.pool.clone();
    let answered = web::block(move || db::ping(&pool, READY_TIMEOUT)).await?;
    match answered {
        Ok(()) => Ok(super::answer(
            StatusCode::OK,
            &Ready {
                ready: true,
                status: StatusCode::OK.as_u16(),
            },
        )),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: the database did not answer");
            Err(AppError::Unavailable {
                retry_after_secs: 5,
                message: NOT_READY.into(),
            })
        }
    }
}
