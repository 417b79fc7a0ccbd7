//! `GET /healthz`: unguarded, for load balancers and for the guard's benchmark baseline.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses(
        (status = 200, description = "The server is up", body = super::openapi::Health),
        (status = 422, response = super::openapi::Unprocessable),
    )
)]
pub async fn check() -> HttpResponse {
    super::ok(StatusCode::OK, json!({ "healthy": true }))
}
