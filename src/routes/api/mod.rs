//! The JSON API. Every route but `/healthz` and `/readyz` sits behind the token guard, and every
//! answer, success or error, carries `"status"`.

mod clusters;
mod health;
mod negotiation;
mod plans;
mod token;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, guard, web};
use serde::de::DeserializeOwned;

use crate::auth::guard::require_token;
use crate::error::AppError;

// Each guarded service wraps `json_only` first and the guard last: the last wrap runs
// first, so a request without a valid token gets the 401 and nothing else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            // Only GET is claimed here; anything else falls through to the 404, as before.
            .guard(guard::Get())
            .wrap(from_fn(negotiation::json_only))
            .to(health::check),
    )
    .service(
        web::resource("/readyz")
            .guard(guard::Get())
            .wrap(from_fn(negotiation::json_only))
            .to(health::ready),
    )
    .service(
        web::scope("/clusters")
            .wrap(from_fn(negotiation::json_only))
            .wrap(from_fn(require_token))
            .service(
                web::resource(["", "/"])
                    .route(web::get().to(clusters::list))
                    .route(web::post().to(clusters::create))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{slug}")
                    .route(web::get().to(clusters::show))
                    .route(web::put().to(clusters::update))
                    .route(web::delete().to(clusters::delete))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    )
    .service(
        web::resource("/plans")
            .wrap(from_fn(negotiation::json_only))
            .wrap(from_fn(require_token))
            .route(web::get().to(plans::list))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/token")
            .wrap(from_fn(negotiation::json_only))
            .wrap(from_fn(require_token))
            .route(web::get().to(token::show))
            .default_service(web::to(method_not_allowed)),
    );
}

pub async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// A success body: the resource under its name, and `"status"`.
fn ok(status: actix_web::http::StatusCode, body: serde_json::Value) -> HttpResponse {
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        map.insert("status".into(), status.as_u16().into());
    }
    HttpResponse::build(status).json(body)
}

/// Parses a JSON body, with a 422 that names the problem. `negotiation::json_only` has
/// already refused any body not labelled `application/json`.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::invalid(
            "The request body is empty; send a JSON object.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| AppError::invalid(format!("The request body is not valid JSON: {e}.")))
}
