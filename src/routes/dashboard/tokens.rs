//! `/tokens`: list, create (the secret is shown once), show with its trail, and revoke
//! after a confirmation step.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::audit::EventRow;
use super::layout::{Flash, Layout, SignedIn, TimeView};
use super::token_usage::{self, RowUsage, TokenUsageView};
use super::{HtmlError, page_method_not_allowed, post_only, redirect, render, render_with_status};
use crate::auth::csrf::{CsrfForm, site_origin};
use crate::charts::BarChart;
use crate::db::{self, tokens::FromForm, tokens::Status, tokens::TokenFilter, tokens::TokenView};
use crate::domain::{RateLimit, Reason, Scope, Scopes, TokenId, TokenName, UserId, random_base62};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tokens")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(
        web::resource("/tokens/new")
            .route(web::get().to(new))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(
        web::resource("/tokens/{id}")
            .route(web::get().to(show))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(
        web::resource("/tokens/{id}/confirm-revoke")
            .route(web::get().to(confirm_revoke))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(post_only("/tokens/{id}/revoke", revoke));
}

/// A token shaped for the pages: every value already formatted.
pub struct TokenRow {
    pub id: i32,
    pub name: String,
    pub key: String,
    pub hint: String,
    pub scopes: String,
    pub status: &'static str,
    pub created: TimeView,
    pub expires: Option<TimeView>,
    pub last_used: Option<TimeView>,
    pub last_used_ip: String,
    pub creator: String,
    pub revoked: Option<TimeView>,
    pub revoked_by: String,
    pub revoke_reason: String,
    /// "60 requests per minute", or "None".
    pub rate_limit: String,
    /// The limit as the form's field holds it: a number, or empty.
    pub rate_limit_value: String,
    /// Filled in for the list only.
    pub usage: Option<RowUsage>,
}

impl From<&TokenView> for TokenRow {
    fn from(view: &TokenView) -> Self {
        let t = &view.token;
        Self {
            id: t.id,
            name: t.name.clone(),
            key: t.key.clone(),
            hint: t.secret_hint.clone(),
            scopes: t.scopes.names().join(", "),
            status: t.status().as_str(),
            created: TimeView::new(t.created_at),
            expires: t.expires_at.map(TimeView::new),
            last_used: t.last_used_at.map(TimeView::new),
            last_used_ip: t.last_used_ip.clone().unwrap_or_default(),
            creator: view
                .creator_email
                .clone()
                .unwrap_or_else(|| "command line".into()),
            revoked: t.revoked_at.map(TimeView::new),
            revoked_by: view
                .revoker_email
                .clone()
                .unwrap_or_else(|| "an operator tool".into()),
            revoke_reason: t.revoke_reason.clone().unwrap_or_default(),
            rate_limit: t
                .rate_limit_per_minute
                .map(|l| l.to_string())
                .unwrap_or_else(|| "None".into()),
            rate_limit_value: t
                .rate_limit_per_minute
                .map(|l| l.per_minute().to_string())
                .unwrap_or_default(),
            usage: None,
        }
    }
}

pub struct MemberOption {
    pub id: i32,
    pub email: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "tokens/list.html")]
struct ListPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    sees_all: bool,
    members: Vec<MemberOption>,
    status_filter: String,
    filtered: bool,
    /// The account's calls per day, for those who see every token.
    account_chart: Option<BarChart>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    member: Option<String>,
    status: Option<String>,
}

async fn list(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, HtmlError> {
    let account = signed_in.account_id()?;
    let sees_all = signed_in.can(Action::SeeAllTokens);
    let status = query.status.as_deref().and_then(Status::parse);
    let member = query
        .member
        .as_deref()
        .and_then(|m| m.parse::<i32>().ok())
        .map(UserId);
    // Members see their own tokens; admins see everyone's and may filter by member.
    let filter = TokenFilter {
        creator: if sees_all {
            member
        } else {
            Some(signed_in.user_id())
        },
        status,
    };
    let (views, members) = db::run(&state.pool, move |conn| {
        let views = db::tokens::list_for_account(conn, account, &filter)?;
        let members = if sees_all {
            db::memberships::list(conn, account)?
        } else {
            Vec::new()
        };
        Ok((views, members))
    })
    .await?;
    let (mut usage, account_chart) = token_usage::for_list(&state, account, sees_all).await?;
    let tokens = views
        .iter()
        .map(|view| TokenRow {
            usage: usage.remove(&view.token.token_id()),
            ..TokenRow::from(view)
        })
        .collect();
    render(&ListPage {
        layout: signed_in.layout("API tokens", "/tokens")?,
        tokens,
        account_chart,
        sees_all,
        members: members
            .into_iter()
            .map(|m| MemberOption {
                id: m.user_id.0,
                selected: Some(m.user_id) == member,
                email: m.email,
            })
            .collect(),
        status_filter: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        filtered: status.is_some() || member.is_some(),
    })
}

/// The new-token form's one-use nonce: how many base62 characters it has.
const NONCE_LEN: usize = 24;

pub struct ExpiryChoice {
    pub days: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "tokens/new.html")]
struct NewPage {
    layout: Layout,
    nonce: String,
    name: String,
    errors: Vec<String>,
    read: bool,
    write: bool,
    expiries: Vec<ExpiryChoice>,
    rate_limit: String,
}

const EXPIRIES: [(&str, &str); 5] = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
];

fn new_page(
    signed_in: &SignedIn,
    form: Option<&NewTokenForm>,
    errors: Vec<String>,
) -> Result<NewPage, AppError> {
    // Kept with the token the form makes (see `db::tokens::create_from_form`), not in
    // the session: opening the form writes nothing.
    let nonce = random_base62(NONCE_LEN);
    let chosen = form.map(|f| f.expires_in_days.as_str()).unwrap_or("90");
    Ok(NewPage {
        layout: signed_in.layout("New API token", "/tokens")?,
        nonce,
        name: form.map(|f| f.name.clone()).unwrap_or_default(),
        errors,
        read: form.is_none_or(|f| f.read.is_some()),
        write: form.is_some_and(|f| f.write.is_some()),
        expiries: EXPIRIES
            .iter()
            .map(|(days, label)| ExpiryChoice {
                days,
                label,
                selected: *days == chosen,
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
pub struct NewTokenForm {
    #[serde(default)]
    name: String,
    read: Option<String>,
    write: Option<String>,
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
    CsrfForm(form): CsrfForm<NewTokenForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::CreateToken)?;
    // Each form may create one token. A resubmission (reload, back button, a double
    // click) lands on the token's page, which never shows the secret.
    let nonce_is_ours =
        form.nonce.len() == NONCE_LEN && form.nonce.bytes().all(|b| b.is_ascii_alphanumeric());
    if !nonce_is_ours {
        Flash::error("That form has expired. Fill it in again.").set(&signed_in.session);
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
    let scopes = Scopes::new(chosen).map_err(|e| errors.push(e)).ok();
    let expires_at = match form.expires_in_days.as_str() {
        "" => Ok(None),
        days => match days.parse::<i64>() {
            Ok(d @ 1..=3650) => Ok(Some(db::now() + chrono::Duration::days(d))),
            _ => {
                errors.push("Choose when the token expires from the list.".to_string());
                Err(())
            }
        },
    };
    let rate_limit = RateLimit::parse_optional(&form.rate_limit)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(scopes), Ok(expires_at), Some(rate_limit)) =
        (name, scopes, expires_at, rate_limit)
    else {
        let page = new_page(&signed_in, Some(&form), errors)?;
        return render_with_status(&page, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
    };

    let request = db::tokens::TokenRequest {
        name,
        scopes,
        expires_at,
        rate_limit,
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
        curl: format!(
            "curl -u {}:{} {}/clusters/",
            token.key,
            secret.expose(),
            site_origin(&req)
        ),
        name: token.name,
        key: token.key,
        secret: secret.expose().to_string(),
    };
    // The one page that holds a secret. Like every page, it is sent `no-store`.
    render(&page)
}

/// The token, if this user may see it: another account's token is a 404, a colleague's
/// token, for a member, a 403.
async fn visible_token(
    signed_in: &SignedIn,
    state: &AppState,
    id: i32,
) -> Result<TokenView, AppError> {
    let account = signed_in.account_id()?;
    let view = db::run(&state.pool, move |conn| {
        db::tokens::find_for_account(conn, account, TokenId(id))
    })
    .await?;
    signed_in.require(Action::ManageToken {
        creator: view.token.user_id.map(UserId),
    })?;
    Ok(view)
}

#[derive(Template)]
#[template(path = "tokens/show.html")]
struct ShowPage {
    layout: Layout,
    token: TokenRow,
    events: Vec<EventRow>,
    /// Every event here is about this token; the column would repeat it.
    show_target: bool,
    usage: TokenUsageView,
}

fn token_id(raw: &str) -> Result<i32, AppError> {
    raw.parse::<i32>().map_err(|_| AppError::NotFound)
}

async fn show(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    let account = view.token.account();
    let id = view.token.token_id();
    let trail = db::run(&state.pool, move |conn| {
        db::audit::list_for_token(conn, account, id)
    })
    .await?;
    let usage = token_usage::for_token(&state, account, id).await?;
    render(&ShowPage {
        layout: signed_in.layout(&format!("Token {}", view.token.name), "/tokens")?,
        token: TokenRow::from(&view),
        events: trail.into_iter().map(EventRow::from).collect(),
        show_target: false,
        usage,
    })
}

#[derive(Template)]
#[template(path = "tokens/revoke.html")]
struct ConfirmPage {
    layout: Layout,
    token: TokenRow,
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
    render(&ConfirmPage {
        layout: signed_in.layout("Revoke token", "/tokens")?,
        token: TokenRow::from(&view),
    })
}

#[derive(Deserialize)]
pub struct RevokeForm {
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
    Flash::success(format!(
        "Token “{}” ({}) was revoked. Requests that use it now get 401.",
        token.name, token.key
    ))
    .set(&signed_in.session);
    Ok(redirect(&format!("/tokens/{}", token.id)))
}
