//! `GET /plans`: the plan catalogue. It never changes while the server runs, so its body
//! is serialised once and every request sends the same bytes.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use serde_json::json;

use crate::auth::guard::ApiCaller;
use crate::domain::Scope;
use crate::error::AppError;
use crate::plans::PLANS;

static BODY: LazyLock<Bytes> = LazyLock::new(|| {
    let body = json!({ "plans": PLANS, "status": StatusCode::OK.as_u16() });
    Bytes::from(body.to_string())
});

pub async fn list(caller: ApiCaller) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY.clone()))
}
