//! HTTP routes: the JSON API under the token guard, and the server-rendered dashboard.

pub mod api;

use crate::error::AppError;

/// Any path no route claims.
pub async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
