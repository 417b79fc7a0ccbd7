//! `/account/passkeys`: a person's passkeys (WebAuthn). They add one (the browser's
//! `navigator.credentials.create`, driven by `static/passkeys.js`), name and rename it,
//! see when it was last used, and remove it (in sudo mode, like turning a second factor
//! off). Listing, renaming and removing work without JavaScript; adding can't.
//!
//! Adding is two requests: `register/begin` answers the options as JSON and sets the
//! ceremony's cookie; the page's form then posts the browser's answer, as JSON in a field,
//! to `register`, like any other form.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::assets;
use super::ceremony::begin_ceremony;
use super::session::{CsrfForm, NoFields, SignedIn};
use super::sudo::{self, SudoForm};
use super::view::{
    Flash, HtmlError, Layout, TimeView, get_only, post_only, redirect, render_with_status,
};
use crate::auth::webauthn;
use crate::db::{
    self,
    passkeys::{PasskeySummary, Registered},
};
use crate::domain::PasskeyName;
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/account/passkeys", list))
        .service(post_only("/account/passkeys/register/begin", begin))
        .service(post_only("/account/passkeys/register", register))
        .service(post_only("/account/passkeys/{id}/rename", rename))
        .service(post_only("/account/passkeys/{id}/remove", remove));
}

/// One passkey, as the page shows it.
struct PasskeyView {
    id: i32,
    name: String,
    added: TimeView,
    last_used: Option<TimeView>,
}

impl From<PasskeySummary> for PasskeyView {
    fn from(row: PasskeySummary) -> Self {
        Self {
            id: row.id,
            name: row.name,
            added: TimeView::new(row.created_at),
            last_used: row.last_used_at.map(TimeView::new),
        }
    }
}

#[derive(Template)]
#[template(path = "account/passkeys.html")]
struct PasskeysPage {
    layout: Layout,
    passkeys: Vec<PasskeyView>,
    /// The most one person may have, and whether they have it.
    max: usize,
    full: bool,
    /// What the add form held, shown again with its errors.
    name: String,
    errors: Vec<String>,
    passkeys_js: String,
}

async fn page(
    signed_in: &SignedIn,
    state: &AppState,
    name: String,
    errors: Vec<String>,
) -> Result<HttpResponse, HtmlError> {
    let user = signed_in.user_id();
    let rows = db::run(&state.pool, move |conn| db::passkeys::list(conn, user)).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_with_status(
        &PasskeysPage {
            layout: signed_in.layout("Passkeys", "")?,
            full: rows.len() >= db::passkeys::MOST_PASSKEYS,
            max: db::passkeys::MOST_PASSKEYS,
            passkeys: rows.into_iter().map(PasskeyView::from).collect(),
            name,
            errors,
            passkeys_js: assets::passkeys_js_href(),
        },
        status,
    )
}

async fn list(signed_in: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    page(&signed_in, &state, String::new(), Vec::new()).await
}

/// Starts adding a passkey: the options for `navigator.credentials.create`, as JSON. Its
/// errors are JSON too (`{"errors": [...]}`), for the script to show.
async fn begin(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let user = signed_in.user.clone();
    begin_ceremony(
        &req,
        &state,
        &webauthn::COOKIE,
        move |conn, relying_party, digest| {
            db::passkeys::start_registration(conn, relying_party, digest, &user)
        },
    )
    .await
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    name: String,
    /// The browser's answer, as JSON (`static/passkeys.js` fills it in).
    #[serde(default)]
    credential: String,
}

/// Adds the passkey. A sudo-mode change, as removing one is: a passkey signs in alone and
/// outlives a password change, so a borrowed session must not plant one. The sudo page
/// carries the answer on, within the ceremony's 5 minutes.
async fn register(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    sudo_form: SudoForm<RegisterForm>,
) -> Result<HttpResponse, HtmlError> {
    if let Some(check) = sudo::check(&req, &signed_in, &state, &sudo_form).await? {
        return Ok(check);
    }
    let form = sudo_form.form;
    let name = match PasskeyName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => return page(&signed_in, &state, form.name, vec![e]).await,
    };
    let answer = match db::passkeys::parse_answer::<RegisterPublicKeyCredential>(&form.credential) {
        Ok(answer) => answer,
        Err(e) => return page(&signed_in, &state, form.name, e.messages()).await,
    };
    let relying_party = webauthn::relying_party(&req)?;
    let https = state.config.is_https();
    let Some(digest) = webauthn::COOKIE.digest_of(&req, https) else {
        let gone = vec![db::passkeys::CEREMONY_GONE.to_string()];
        return page(&signed_in, &state, form.name, gone).await;
    };
    let mail_on = state.mail_on();
    let added = name.clone();
    let registered = state
        .write(signed_in.principal(), None, move |tx| {
            db::passkeys::register(tx, &relying_party, &digest, &added, &answer, mail_on)
        })
        .await?;
    if let Registered::Refused(refusal) = registered {
        let refused = page(&signed_in, &state, form.name, vec![refusal]).await;
        return with_cookie_removed(refused, https);
    }
    signed_in.flash(Flash::success(format!(
        "The passkey \"{name}\" was added. Use it to sign in, with or without your password."
    )));
    with_cookie_removed(Ok(redirect("/account/passkeys")), https)
}

/// The ceremony is spent whatever came of it: the browser may drop its cookie.
fn with_cookie_removed(
    response: Result<HttpResponse, HtmlError>,
    https: bool,
) -> Result<HttpResponse, HtmlError> {
    let mut response = response?;
    response
        .add_cookie(&webauthn::COOKIE.removal(https))
        .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
    Ok(response)
}

#[derive(Deserialize)]
struct RenameForm {
    #[serde(default)]
    name: String,
}

async fn rename(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<i32>,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> Result<HttpResponse, HtmlError> {
    let id = id.into_inner();
    let name = match PasskeyName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => return page(&signed_in, &state, String::new(), vec![e]).await,
    };
    let renamed = name.clone();
    state
        .write(signed_in.principal(), None, move |tx| {
            db::passkeys::rename(tx, id, &renamed)
        })
        .await?;
    signed_in.flash(Flash::success(format!(
        "The passkey is now named \"{name}\"."
    )));
    Ok(redirect("/account/passkeys"))
}

async fn remove(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<i32>,
    form: SudoForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let id = id.into_inner();
    let mail_on = state.mail_on();
    match state
        .write(signed_in.principal(), None, move |tx| {
            db::passkeys::remove(tx, id, mail_on)
        })
        .await
    {
        Ok(()) => {}
        Err(AppError::Invalid(errors)) => {
            return page(&signed_in, &state, String::new(), errors).await;
        }
        Err(other) => return Err(other.into()),
    }
    signed_in.flash(Flash::success(
        "The passkey was removed. It no longer signs you in.",
    ));
    Ok(redirect("/account/passkeys"))
}
