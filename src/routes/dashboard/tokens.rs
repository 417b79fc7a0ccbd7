//! `/tokens`: create (the secret is shown once), show with its trail, and revoke
//! after a confirmation step.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::sudo::{self, SudoForm};
use super::token_pages::{curl_line, token_id, visible_token};
use super::usage_view::{self, TokenUsageView};
use super::view::{
    Choice, EventRow, Flash, HtmlError, Layout, TokenRow, get_only, page_method_not_allowed,
    post_only, redirect, render, render_with_status,
};
use crate::db::{self, tokens::FromForm, tokens::Status};
use crate::domain::{
    KeyFieldsText, LifetimeLimit, RateLimit, Reason, Scope, Scopes, TokenId, TokenName,
    random_base62,
};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tokens")
            .route(web::get().to(super::token_list::list))
            .route(web::post().to(create))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(get_only("/tokens/new", new))
    .configure(super::token_edit::configure)
    .service(get_only("/tokens/{id}", show))
    .service(get_only("/tokens/{id}/confirm-revoke", confirm_revoke))
    .service(post_only("/tokens/{id}/revoke", revoke));
}

/// The new-token form's one-use nonce: how many base62 characters it has.
const NONCE_LEN: usize = 24;

#[derive(Template)]
#[template(path = "tokens/new.html")]
struct NewPage {
    layout: Layout,
    nonce: String,
    name: String,
    errors: Vec<String>,
    read: bool,
    write: bool,
    tokens: bool,
    verify: bool,
    expiries: Vec<Choice>,
    /// The account's lifetime policy, in words, when it has one.
    limit_note: Option<String>,
    rate_limit: String,
    /// Permissions, meta, external id, credits and allowed IPs, as typed.
    fields: KeyFieldsText,
}

const EXPIRIES: [(&str, &str); 5] = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
];

/// The expiries the form offers: all of them, or those within the account's limit.
fn offered_expiries(limit: Option<LifetimeLimit>) -> Vec<(&'static str, &'static str)> {
    EXPIRIES
        .into_iter()
        .filter(|(days, _)| match limit {
            None => true,
            Some(limit) => days.parse::<i32>().is_ok_and(|d| d <= limit.days()),
        })
        .collect()
}

/// The form's expiry: `None` for never, else days from now. Only the offered choices.
fn parse_expiry(
    raw: &str,
    limit: Option<LifetimeLimit>,
) -> Result<Option<chrono::NaiveDateTime>, String> {
    let offered = offered_expiries(limit);
    if !offered.iter().any(|(days, _)| *days == raw) {
        return Err(match limit {
            Some(limit) => limit.refusal(),
            None => "Choose when the token expires from the list: never, 7, 30, 90 or 365 days."
                .to_string(),
        });
    }
    Ok(raw
        .parse::<i64>()
        .ok()
        .map(|d| db::now() + chrono::Duration::days(d)))
}

fn new_page(
    signed_in: &SignedIn,
    form: Option<&NewTokenForm>,
    errors: Vec<String>,
) -> Result<NewPage, AppError> {
    // Kept with the token the form makes (see `db::tokens::create_from_form`), not in
    // the session: opening the form writes nothing.
    let nonce = random_base62(NONCE_LEN);
    let limit = signed_in.account()?.0.max_token_lifetime_days;
    let offered = offered_expiries(limit);
    // The default is 90 days, or the longest the account allows.
    let fallback = offered
        .iter()
        .find(|(days, _)| *days == "90")
        .or(offered.last())
        .map_or("", |(days, _)| days);
    let chosen = form.map_or(fallback, |f| f.expires_in_days.as_str());
    Ok(NewPage {
        layout: signed_in.layout("New API token", "/tokens")?,
        nonce,
        name: form.map(|f| f.name.clone()).unwrap_or_default(),
        errors,
        read: form.is_none_or(|f| f.read.is_some()),
        write: form.is_some_and(|f| f.write.is_some()),
        tokens: form.is_some_and(|f| f.tokens.is_some()),
        verify: form.is_some_and(|f| f.verify.is_some()),
        fields: form.map(|f| f.fields.clone()).unwrap_or_default(),
        limit_note: limit.map(|l| format!("This account's tokens may live at most {l}.")),
        expiries: offered
            .into_iter()
            .map(|(days, label)| Choice {
                value: days.to_string(),
                label: label.to_string(),
                selected: days == chosen,
            })
            .collect(),
        rate_limit: form.map(|f| f.rate_limit.clone()).unwrap_or_default(),
    })
}

async fn new(signed_in: SignedIn) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::CreateToken)?;
    render(&new_page(&signed_in, None, Vec::new())?)
}

#[derive(Deserialize)]
struct NewTokenForm {
    #[serde(default)]
    name: String,
    read: Option<String>,
    write: Option<String>,
    /// `tokens` lets the token manage the account's tokens through `/access-tokens`.
    tokens: Option<String>,
    /// `verify` lets the token verify the account's keys through `/keys/verify`.
    verify: Option<String>,
    #[serde(flatten)]
    fields: KeyFieldsText,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    nonce: String,
    /// Requests per minute; empty for no limit.
    #[serde(default)]
    rate_limit: String,
}

#[derive(Template)]
#[template(path = "tokens/created.html")]
struct CreatedPage {
    layout: Layout,
    id: i32,
    name: String,
    key: String,
    secret: String,
    curl: String,
}

async fn create(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    sudo_form: SudoForm<NewTokenForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::CreateToken)?;
    // A token that can make tokens hands on everything the person may do: sudo mode.
    if sudo_form.form.tokens.is_some()
        && let Some(check) = sudo::check(&req, &signed_in, &state, &sudo_form).await?
    {
        return Ok(check);
    }
    let form = sudo_form.form;
    // Each form may create one token. A resubmission (reload, back button, a double
    // click) lands on the token's page, which never shows the secret.
    let nonce_is_ours =
        form.nonce.len() == NONCE_LEN && form.nonce.bytes().all(|b| b.is_ascii_alphanumeric());
    if !nonce_is_ours {
        signed_in.flash(Flash::error("That form has expired. Fill it in again."));
        return Ok(redirect("/tokens/new"));
    }

    let mut errors = Vec::new();
    let name = TokenName::parse(&form.name)
        .map_err(|e| errors.push(e))
        .ok();
    let mut chosen = Vec::new();
    if form.read.is_some() {
        chosen.push(Scope::Read);
    }
    if form.write.is_some() {
        chosen.push(Scope::Write);
    }
    if form.tokens.is_some() {
        chosen.push(Scope::Tokens);
    }
    if form.verify.is_some() {
        chosen.push(Scope::Verify);
    }
    let scopes = Scopes::new(chosen).map_err(|e| errors.push(e)).ok();
    // The limit as it stood when the request began, for the form's answer; the write
    // checks it again under the lock.
    let limit = signed_in.account()?.0.max_token_lifetime_days;
    let expires_at = parse_expiry(&form.expires_in_days, limit).map_err(|e| errors.push(e));
    let rate_limit = RateLimit::parse_optional(&form.rate_limit)
        .map_err(|e| errors.push(e))
        .ok();
    let fields = form
        .fields
        .parse()
        .map_err(|mut e| errors.append(&mut e))
        .ok();
    let (Some(name), Some(scopes), Ok(expires_at), Some(rate_limit), Some(fields)) =
        (name, scopes, expires_at, rate_limit, fields)
    else {
        let page = new_page(&signed_in, Some(&form), errors)?;
        return render_with_status(&page, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
    };

    let request = db::tokens::TokenRequest {
        name,
        scopes,
        expires_at,
        rate_limit,
        fields,
    };
    let nonce = form.nonce.clone();
    let made = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::tokens::create_from_form(tx, request, &nonce),
        )
        .showing_once()
        .await?;
    let (token, secret) = match made {
        FromForm::Created(token, secret) => (*token, secret),
        FromForm::AlreadyCreated(id) => return Ok(redirect(&format!("/tokens/{id}"))),
    };

    let page = CreatedPage {
        layout: signed_in.layout("Your new API token", "/tokens")?,
        id: token.id,
        curl: curl_line(&req, &token.key, &secret),
        name: token.name,
        key: token.key,
        secret: secret.expose().to_string(),
    };
    // The one page that holds a secret. Like every page, it is sent `no-store`.
    render(&page)
}

#[derive(Template)]
#[template(path = "tokens/show.html")]
struct ShowPage {
    layout: Layout,
    token: TokenRow,
    events: Vec<EventRow>,
    /// Every event here is about this token; the column would repeat it.
    show_target: bool,
    /// Whether "Roll secret…" is offered: an active token with no successor yet.
    can_roll: bool,
    rolled_from: Option<TokenLink>,
    rolled_to: Option<TokenLink>,
    /// The token that made this one through the API, and those this one made.
    made_by: Option<TokenLink>,
    made: Vec<TokenLink>,
    usage: TokenUsageView,
    /// Permissions, meta, external id, credits and allowed IPs, in words.
    key_fields: super::key_fields_page::KeyFieldsShown,
}

/// A link to a token that a roll connects to this one.
pub struct TokenLink {
    pub id: i32,
    pub key: String,
}

async fn show(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    let account = view.token.account();
    let id = view.token.token_id();
    let (from, to) = (view.token.rolled_from, view.token.rolled_to);
    let maker = view.token.maker_token_id;
    let (trail, rolled_from, rolled_to, made_by, made) = db::run(&state.pool, move |conn| {
        let mut link = |other: Option<i32>| {
            other
                .map(|id| {
                    db::tokens::key_in_account(conn, account, TokenId(id))
                        .map(|key| TokenLink { id, key })
                })
                .transpose()
        };
        let (rolled_from, rolled_to, made_by) = (link(from)?, link(to)?, link(maker)?);
        let made = db::token_tree::made_by(conn, account, id)?
            .into_iter()
            .map(|(id, key)| TokenLink { id, key })
            .collect();
        Ok((
            db::audit::list_for_token(conn, account, id)?,
            rolled_from,
            rolled_to,
            made_by,
            made,
        ))
    })
    .await?;
    let usage = usage_view::for_token(&state, account, id).await?;
    render(&ShowPage {
        layout: signed_in.layout(&format!("Token {}", view.token.name), "/tokens")?,
        token: TokenRow::from(&view),
        events: trail.into_iter().map(EventRow::from).collect(),
        show_target: false,
        can_roll: view.token.status() == Status::Active && view.token.rolled_to.is_none(),
        rolled_from,
        rolled_to,
        made_by,
        made,
        usage,
        key_fields: super::key_fields_page::KeyFieldsShown::of(&view.token)?,
    })
}

#[derive(Template)]
#[template(path = "tokens/revoke.html")]
struct ConfirmPage {
    layout: Layout,
    token: TokenRow,
    /// The unrevoked tokens below this one, which go with it.
    descendants: usize,
}

async fn confirm_revoke(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    if view.token.revoked_at.is_some() {
        return Ok(redirect(&format!("/tokens/{}", view.token.id)));
    }
    let (account, id) = (view.token.account(), view.token.token_id());
    let descendants = db::run(&state.pool, move |conn| {
        db::token_tree::unrevoked_below(conn, account, id)
    })
    .await?;
    render(&ConfirmPage {
        layout: signed_in.layout("Revoke token", "/tokens")?,
        token: TokenRow::from(&view),
        descendants,
    })
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    reason: String,
}

async fn revoke(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, HtmlError> {
    let id = TokenId(token_id(&id)?);
    let reason = Reason::parse(&form.reason).map_err(AppError::invalid)?;
    // The write path finds the token in the current account and checks, under the write
    // lock, that this user may still manage it.
    let token = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::tokens::revoke(tx, id, &reason),
        )
        .await?;
    signed_in.flash(Flash::success(format!(
        "Token “{}” ({}) was revoked. Requests that use it now get 401.",
        token.name, token.key
    )));
    Ok(redirect(&format!("/tokens/{}", token.id)))
}
