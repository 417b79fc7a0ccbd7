//! `GET /plans`: the plan catalogue.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use crate::auth::guard::ApiCaller;
use crate::domain::Scope;
use crate::error::AppError;
use crate::plans::PLANS;

pub async fn list(caller: ApiCaller) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    Ok(super::ok(StatusCode::OK, json!({ "plans": PLANS })))
}
