//! The JSON API. Every route but `/healthz` and `/readyz` sits behind the token guard, and every
//! answer, success or error, carries `"status"`.

mod access_tokens;
mod catalogue;
mod clusters;
mod health;
mod key_fields;
mod keys;
mod negotiation;
pub mod openapi;
mod refusals;
mod schemas;
pub mod secret_scanning;
mod token;
mod token_views;
pub mod verify;

pub use catalogue::{Catalogue, Links};

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, ResponseError, guard, web};
use serde::de::DeserializeOwned;

use crate::auth;
use crate::error::{AppError, JSON_UTF8};
use crate::state::AppState;

/// A service behind the token guard: it wraps `json_only` first and the guard last. The
/// last wrap runs first, so a request without a valid token gets the 401 and nothing else.
/// A macro, as `Scope` and `Resource` share no trait for `wrap`.
macro_rules! guarded {
    ($service:expr) => {
        $service
            .wrap(from_fn(negotiation::json_only))
            .wrap(from_fn(auth::require_token::require_token::<AppState>))
    };
}

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
        web::resource("/openapi.json")
            .guard(guard::Get())
            .wrap(from_fn(negotiation::json_only))
            .to(openapi::document),
    )
    .service(
        guarded!(web::scope("/clusters"))
            .service(list(|r| {
                r.route(web::get().to(clusters::list))
                    .route(web::post().to(clusters::create))
                    .default_service(web::to(method_not_allowed))
            }))
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
        guarded!(web::scope("/plans"))
            .service(list(|r| get_only(r, catalogue::plans)))
            .service(get_only(web::resource("/{slug}"), catalogue::plan))
            .default_service(web::to(not_found)),
    )
    .service(
        guarded!(web::scope("/spaces"))
            .service(list(|r| get_only(r, catalogue::spaces)))
            // The path has slashes; the handler looks it up exactly as sent.
            .service(get_only(web::resource("/{path:.+}"), catalogue::space))
            .default_service(web::to(not_found)),
    )
    .service(
        guarded!(web::scope("/releases"))
            .service(list(|r| get_only(r, catalogue::releases)))
            .service(get_only(web::resource("/{slug}"), catalogue::release))
            .default_service(web::to(not_found)),
    )
    .service(
        guarded!(web::resource("/token"))
            .route(web::get().to(token::show))
            .route(web::delete().to(token::revoke_itself))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        guarded!(web::scope("/access-tokens").wrap(from_fn(refusals::audited)))
            .service(list(|r| {
                r.route(web::get().to(access_tokens::list))
                    .route(web::post().to(access_tokens::create))
                    .default_service(web::to(method_not_allowed))
            }))
            .service(
                web::resource("/{key}")
                    .route(web::get().to(access_tokens::show))
                    .route(web::patch().to(access_tokens::change))
                    .route(web::delete().to(access_tokens::revoke))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{key}/roll")
                    .route(web::post().to(access_tokens::roll))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    )
    // Forward auth: the guard's own check, answered to a proxy. No content negotiation:
    // the proxied request's `Accept` is the browser's, not ours to judge.
    .service(web::resource("/verify").to(verify::verify))
    .service(
        guarded!(web::resource("/keys/verify"))
            .route(web::post().to(keys::verify))
            .default_service(web::to(method_not_allowed)),
    )
    // Anyone may report a leaked secret; the handler bounds what that costs.
    .service(
        web::resource("/secret-scanning/report")
            .wrap(from_fn(negotiation::json_only))
            .route(web::post().to(secret_scanning::report))
            .default_service(web::to(method_not_allowed)),
    );
}

pub async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// A list's resource, at both `/plans` and `/plans/`. Two static resources rather than one
/// `web::resource(["", "/"])`: actix matches a resource of several patterns with a regex
/// set, on every request that reaches its scope, where one static pattern is a string
/// comparison.
fn list(make: impl Fn(actix_web::Resource) -> actix_web::Resource) -> Vec<actix_web::Resource> {
    ["", "/"].map(|path| make(web::resource(path))).into()
}

/// A GET-only resource: any other method is a 405.
fn get_only<F, Args>(resource: actix_web::Resource, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    resource
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// Serialises `body` as the answer, labelled as Bonsai labels its answers. Each body is a
/// type that `/openapi.json` describes, with its `"status"` as Bonsai's answers carry it.
fn answer(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes.into()),
        Err(err) => AppError::internal(format!("serialising an answer: {err}")).error_response(),
    }
}

/// An answer already serialised.
fn json_bytes(status: StatusCode, body: actix_web::web::Bytes) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
        .body(body)
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
