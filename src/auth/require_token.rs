//! The guard as actix middleware, in front of every API route but the health checks:
//! `.wrap(from_fn(require_token::<AppState>))`, where the app's data holds a `web::Data`
//! of the state.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

use super::guard::{self, ApiCaller, GuardState};
use crate::error::AppError;

/// Lets the request through to the route with its [`ApiCaller`], or answers the guard's
/// refusal without calling the route.
pub async fn require_token<S: GuardState>(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<S>>().cloned() else {
        let missing = AppError::internal("application state is missing");
        return Ok(req
            .into_response(missing.error_response())
            .map_into_right_body());
    };
    let state = state.get_ref();
    let now = chrono::Utc::now().naive_utc();
    let ip = state.client_ip(req.request());
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    let exemption = guard::Exemption::of(req.request());
    let token = match guard::admit_as(state, header, ip, now, exemption).await {
        Ok(token) => token,
        Err(error) => {
            return Ok(req
                .into_response(error.error_response())
                .map_into_right_body());
        }
    };
    req.extensions_mut()
        .insert(ApiCaller::new(token.clone(), ip));
    let mut response = next.call(req).await?;
    guard::answered(state, &mut response, &token, now, ip);
    Ok(response.map_into_left_body())
}
