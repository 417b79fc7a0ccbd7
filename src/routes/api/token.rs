//! `GET /token`: describes the calling token, so other services can check one.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use crate::auth::guard::ApiCaller;
use crate::error::AppError;

pub async fn show(caller: ApiCaller) -> Result<HttpResponse, AppError> {
    let token = &caller.0;
    Ok(super::ok(
        StatusCode::OK,
        json!({
            "token": {
                "key": token.key,
                "name": token.name,
                "scopes": token.scopes.names(),
                "account": { "slug": token.account_slug, "name": token.account_name },
                "created_at": crate::timefmt::rfc3339(&token.created_at),
                "expires_at": token.expires_at.as_ref().map(crate::timefmt::rfc3339),
                "rate_limit": token.rate_limit.map(|l| json!({ "requests_per_minute": l.per_minute() })),
            }
        }),
    ))
}
