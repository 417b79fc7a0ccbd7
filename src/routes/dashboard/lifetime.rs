//! `/account/token-lifetime`: the account's longest allowed token lifetime. Owners set it;
//! admins see it with the tokens that outlive it, to roll or revoke them. Those tokens
//! keep working until their own expiry, as GitHub's policy does.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::sudo::{self, SudoForm};
use super::view::{
    Choice, Flash, HtmlError, Layout, TokenRow, get_only, redirect, render, render_with_status,
};
use crate::db;
use crate::domain::LifetimeLimit;
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub const PATH: &str = "/account/token-lifetime";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only(PATH, show).route(web::post().to(set)));
}

#[derive(Template)]
#[template(path = "account/token_lifetime.html")]
struct LifetimePage {
    layout: Layout,
    current: String,
    has_limit: bool,
    can_set: bool,
    choices: Vec<Choice>,
    outliving: Vec<TokenRow>,
    errors: Vec<String>,
}

/// "No limit", or "30 days".
pub fn in_words(limit: Option<LifetimeLimit>) -> String {
    limit.map_or_else(|| "no limit".to_string(), |l| l.to_string())
}

async fn page(
    signed_in: &SignedIn,
    state: &AppState,
    errors: Vec<String>,
) -> Result<LifetimePage, AppError> {
    signed_in.require(Action::SeeAllTokens)?;
    let account = signed_in.account_id()?;
    // Read now, not from the request's start: this page is where a change shows.
    let (limit, outliving) = db::run(&state.pool, move |conn| {
        let limit = db::accounts::find(conn, account)?.max_token_lifetime_days;
        let outliving = match limit {
            Some(limit) => db::tokens::outliving(conn, account, limit)?,
            None => Vec::new(),
        };
        Ok((limit, outliving))
    })
    .await?;
    let choices = std::iter::once(None)
        .chain(LifetimeLimit::ALL.into_iter().map(Some))
        .map(|choice| Choice {
            value: choice.map_or_else(|| "none".to_string(), |l| l.days().to_string()),
            label: choice.map_or_else(|| "No limit".to_string(), |l| l.to_string()),
            selected: choice == limit,
        })
        .collect();
    Ok(LifetimePage {
        layout: signed_in.layout("Token lifetime", "/members")?,
        current: in_words(limit),
        has_limit: limit.is_some(),
        can_set: signed_in.can(Action::SetTokenLifetime),
        choices,
        outliving: outliving.iter().map(TokenRow::from).collect(),
        errors,
    })
}

async fn show(signed_in: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    render(&page(&signed_in, &state, Vec::new()).await?)
}

#[derive(Deserialize)]
pub struct LifetimeForm {
    #[serde(default)]
    max_days: String,
}

async fn set(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    form: SudoForm<LifetimeForm>,
) -> Result<HttpResponse, HtmlError> {
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let limit = match LifetimeLimit::parse_setting(&form.form.max_days) {
        Ok(limit) => limit,
        Err(message) => {
            signed_in.require(Action::SetTokenLifetime)?;
            let page = page(&signed_in, &state, vec![message]).await?;
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::accounts::set_token_lifetime(tx, limit),
        )
        .await?;
    signed_in.flash(Flash::success(match limit {
        Some(limit) => format!(
            "New tokens of this account may live at most {limit}. Tokens made before keep their own expiry."
        ),
        None => "Tokens of this account may live as long as their creators choose.".to_string(),
    }));
    Ok(redirect(PATH))
}
