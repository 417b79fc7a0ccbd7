//! Rolling a token from its page: a confirmation that asks how long the old secret keeps
//! working, then the new secret, shown once, exactly as at creation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::token_pages::{curl_line, token_id, visible_token};
use super::view::{
    Choice, HtmlError, Layout, TimeView, TokenRow, get_only, post_only, redirect, render,
    render_with_status,
};
use crate::db::{self, tokens::Status, tokens::TokenView};
use crate::domain::{Grace, TokenId};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/tokens/{id}/confirm-roll", confirm))
        .service(post_only("/tokens/{id}/roll", roll));
}

#[derive(Template)]
#[template(path = "tokens/roll.html")]
struct ConfirmPage {
    layout: Layout,
    token: TokenRow,
    graces: Vec<Choice>,
    lifetime_note: String,
    errors: Vec<String>,
}

/// Whether the token may be rolled at all; the write checks again under the lock.
fn rollable(view: &TokenView) -> bool {
    view.token.status() == Status::Active && view.token.rolled_to.is_none()
}

fn confirm_page(
    signed_in: &SignedIn,
    view: &TokenView,
    chosen: Option<Grace>,
    errors: Vec<String>,
) -> Result<ConfirmPage, AppError> {
    let chosen = chosen.unwrap_or(Grace::OneDay);
    let limit = signed_in.account()?.0.max_token_lifetime_days;
    let t = &view.token;
    // In whole days, rounded: a "7 days" token is made a moment before its expiry is set.
    let lifetime = t
        .expires_at
        .map(|e| ((e - t.created_at).num_seconds() + 43_200) / 86_400);
    let lifetime_note = match (lifetime, limit) {
        (None, None) => "Like this one, it never expires.".to_string(),
        (None, Some(limit)) => format!("It expires in {limit}, the longest this account allows."),
        (Some(days), Some(limit)) if days > i64::from(limit.days()) => {
            format!("It expires in {limit}, the longest this account allows.")
        }
        (Some(days), _) => format!("Like this one, it expires {days} days after it is made."),
    };
    Ok(ConfirmPage {
        layout: signed_in.layout("Roll token", "/tokens")?,
        token: TokenRow::from(view),
        graces: Grace::ALL
            .into_iter()
            .map(|g| Choice {
                value: g.as_str().to_string(),
                label: g.label().to_string(),
                selected: g == chosen,
            })
            .collect(),
        lifetime_note,
        errors,
    })
}

async fn confirm(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    if !rollable(&view) {
        return Ok(redirect(&format!("/tokens/{}", view.token.id)));
    }
    render(&confirm_page(&signed_in, &view, None, Vec::new())?)
}

#[derive(Deserialize)]
pub struct RollForm {
    #[serde(default)]
    grace: String,
}

#[derive(Template)]
#[template(path = "tokens/rolled.html")]
struct RolledPage {
    layout: Layout,
    id: i32,
    name: String,
    key: String,
    secret: String,
    curl: String,
    old_id: i32,
    old_key: String,
    /// When the old secret stops working; `None` once it has.
    old_until: Option<TimeView>,
}

async fn roll(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RollForm>,
) -> Result<HttpResponse, HtmlError> {
    let id = TokenId(token_id(&id)?);
    let grace = match Grace::parse(&form.grace) {
        Ok(grace) => grace,
        Err(message) => {
            let view = visible_token(&signed_in, &state, id.0).await?;
            let page = confirm_page(&signed_in, &view, None, vec![message])?;
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let period = grace.duration();
    // The write path finds the token in the current account, checks under the write
    // lock that this user may manage it and that it has no successor yet, and makes one.
    let rolled = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::tokens::roll(tx, id, period),
        )
        .showing_once()
        .await?;
    let now = db::now();
    let page = RolledPage {
        layout: signed_in.layout("Your rolled API token", "/tokens")?,
        id: rolled.new.id,
        curl: curl_line(&req, &rolled.new.key, &rolled.secret),
        name: rolled.new.name,
        key: rolled.new.key,
        secret: rolled.secret.expose().to_string(),
        old_id: rolled.old.id,
        old_key: rolled.old.key,
        old_until: rolled
            .old
            .expires_at
            .filter(|e| *e > now)
            .map(TimeView::new),
    };
    // Like the creation page, the one place this secret is ever shown; sent `no-store`.
    render(&page)
}
