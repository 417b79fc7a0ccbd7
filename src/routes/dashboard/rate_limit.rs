//! `POST /tokens/{id}/rate-limit`: sets or clears a token's rate limit from its page.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::view::{Flash, HtmlError, post_only, redirect};
use crate::db;
use crate::domain::{RateLimit, TokenId};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_only("/tokens/{id}/rate-limit", set_rate_limit));
}

#[derive(Deserialize)]
pub struct RateLimitForm {
    #[serde(default)]
    rate_limit: String,
}

/// Sets or clears a token's rate limit, through the write path: the token is found in
/// the current account and the person's right to manage it checked under the write lock.
async fn set_rate_limit(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RateLimitForm>,
) -> Result<HttpResponse, HtmlError> {
    let id = TokenId(id.parse::<i32>().map_err(|_| AppError::NotFound)?);
    let limit = RateLimit::parse_optional(&form.rate_limit).map_err(AppError::invalid)?;
    let token = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::tokens::set_rate_limit(tx, id, limit),
        )
        .await?;
    signed_in.flash(Flash::success(match limit {
        Some(limit) => format!(
            "Token “{}” may now make at most {limit}. Calls over it get 429.",
            token.name
        ),
        None => format!("Token “{}” has no rate limit now.", token.name),
    }));
    Ok(redirect(&format!("/tokens/{}", token.id)))
}
