//! `GET /healthz`: unguarded, for load balancers and for the guard's benchmark baseline.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

pub async fn check() -> HttpResponse {
    super::ok(StatusCode::OK, json!({ "healthy": true }))
}
