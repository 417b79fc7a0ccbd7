//! `/admin`: the operator console. Accounts with their counts; a token found by its key
//! or by a pasted (leaked) secret, across all accounts; revocation with a reason; and
//! suspending an account's API access. Every action lands in the affected account's
//! audit log with the operator as the actor.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::admin_accounts::AccountRow;
use super::forms::ApiAccessForm;
use super::session::{CsrfForm, SignedIn};
use super::view::{
    Flash, HtmlError, Layout, TimeView, TokenRow, page_method_not_allowed, post_only, redirect,
    render,
};
use crate::db;
use crate::domain::{AccountId, ApiState, Reason, TokenKey, TokenSecret};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin")
            .route(web::get().to(console))
            // Searching by a leaked secret is a POST, so the secret stays out of URLs,
            // browser history and proxy logs.
            .route(web::post().to(search))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(post_only("/admin/revoke", revoke))
    .service(post_only("/admin/accounts/{id}/api-access", api_access));
}

struct FoundToken {
    pub row: TokenRow,
    pub account_name: String,
    pub account_slug: String,
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct ConsolePage {
    layout: Layout,
    accounts: Vec<AccountRow>,
    query: String,
    found: Option<FoundToken>,
    search_error: Option<String>,
    /// Mail the outbox gave up on, newest first.
    failed_mail: Vec<FailedMail>,
}

/// A message that was never sent, and why.
struct FailedMail {
    pub kind: String,
    pub recipient: String,
    pub created: TimeView,
    pub failed: Option<TimeView>,
    pub attempts: i32,
    pub reason: String,
}

/// How many failed messages the console lists.
const FAILED_MAIL_SHOWN: i64 = 50;

/// The console's search form. Only ever read from a POST body, so a searched key or
/// secret is never in a URL, the browser's history or a proxy's log.
#[derive(Deserialize)]
struct SearchForm {
    #[serde(default)]
    q: String,
}

enum Lookup {
    Key(TokenKey),
    Secret(TokenSecret),
}

fn parse_lookup(raw: &str) -> Result<Lookup, String> {
    let raw = raw.trim();
    if raw.starts_with(SECRET_PREFIX) {
        return TokenSecret::parse(raw).map(Lookup::Secret);
    }
    TokenKey::parse(raw)
        .map(Lookup::Key)
        .map_err(|_| "Paste a token key (kw_…) or a full secret (kws_…).".to_string())
}

/// A key may come in the URL (keys are public, and revoking one lands back here);
/// a secret may not, so a `?q=kws_…` link finds nothing and says why.
async fn console(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<SearchForm>,
) -> Result<HttpResponse, HtmlError> {
    let q = query.into_inner().q;
    if q.trim().starts_with(SECRET_PREFIX) {
        signed_in.require(Action::OperatorConsole)?;
        return console_page(signed_in, state, String::new(), Some(SECRET_IN_URL.into())).await;
    }
    console_page(signed_in, state, q, None).await
}

const SECRET_PREFIX: &str = "kws_";
const SECRET_IN_URL: &str =
    "Secrets are searched only through the form, so they never appear in a URL. Paste it there.";

async fn search(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SearchForm>,
) -> Result<HttpResponse, HtmlError> {
    console_page(signed_in, state, form.q, None).await
}

async fn console_page(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    q: String,
    mut search_error: Option<String>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let lookup = (!q.trim().is_empty()).then(|| parse_lookup(&q));
    let wanted = match lookup {
        Some(Ok(lookup)) => Some(lookup),
        Some(Err(message)) => {
            search_error = Some(message);
            None
        }
        None => None,
    };
    let searched = wanted.is_some();
    let (accounts, found, failed_mail) = db::run(&state.pool, move |conn| {
        let accounts = db::accounts::list_with_counts(conn)?;
        let failed_mail = db::outbox::failed(conn, FAILED_MAIL_SHOWN)?;
        let found = match wanted {
            Some(Lookup::Key(key)) => db::tokens::find_by_key_any_account(conn, &key)?,
            Some(Lookup::Secret(secret)) => {
                db::tokens::find_by_digest_any_account(conn, &secret.digest())?
            }
            None => None,
        };
        let found = match found {
            Some(view) => {
                let account = db::accounts::find(conn, view.token.account())?;
                Some((view, account))
            }
            None => None,
        };
        Ok((accounts, found, failed_mail))
    })
    .await?;
    if searched && found.is_none() {
        search_error =
            Some("No token matches. Check that the whole key or secret was pasted.".into());
    }
    render(&ConsolePage {
        failed_mail: failed_mail
            .into_iter()
            .map(|row| FailedMail {
                kind: row.kind,
                recipient: row.recipient,
                created: TimeView::new(row.created_at),
                failed: row.failed_at.map(TimeView::new),
                attempts: row.attempts,
                reason: row.last_error.unwrap_or_default(),
            })
            .collect(),
        layout: signed_in.layout("Operator console", "/admin")?,
        accounts: accounts.into_iter().map(AccountRow::from).collect(),
        // A pasted secret is never written back into the page; the key stands in for it.
        query: match &found {
            Some((view, _)) => view.token.key.clone(),
            None if q.trim().starts_with(SECRET_PREFIX) => String::new(),
            None => q,
        },
        found: found.map(|(view, account)| FoundToken {
            row: TokenRow::from(&view),
            account_name: account.name,
            account_slug: account.slug,
        }),
        search_error,
    })
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    reason: String,
}

async fn revoke(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let key = TokenKey::parse(form.key.trim()).map_err(AppError::invalid)?;
    let reason = Reason::required(
        &form.reason,
        "Give a reason: the token's owners will read it.",
    )
    .map_err(AppError::invalid)?;
    let token = state
        .write(signed_in.operator(), None, move |tx| {
            db::tokens::revoke_by_key(tx, &key, &reason)
        })
        .await?;
    signed_in.flash(Flash::success(format!("Token {} was revoked.", token.key)));
    Ok(redirect(&format!("/admin?q={}", token.key)))
}

async fn api_access(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<ApiAccessForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let account = path
        .parse::<i32>()
        .map(AccountId)
        .map_err(|_| AppError::NotFound)?;
    let (api_state, reason) = form.parse()?;
    state
        .write(signed_in.operator(), Some(account), move |tx| {
            db::accounts::set_api_access(tx, api_state, &reason)
        })
        .await?;
    signed_in.flash(Flash::success(match api_state {
        ApiState::Suspended => "The account's API access is suspended.",
        ApiState::Active => "The account's API access is restored.",
    }));
    Ok(redirect("/admin"))
}
