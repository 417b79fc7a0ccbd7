//! `/login/two-factor`: the sign-in's second step. A right password for a person with a
//! second factor leads here with a cookie of its own (`auth::pending`); a right code (from
//! the authenticator or a recovery code) starts the session as `/login` would.
//!
//! Every code is a sign-in attempt (`limits::sign_in`), and a wrong one, a malformed one and
//! one of the wrong length all get the same answer.
//!
//! A person with a passkey may answer with it instead: `passkey/begin` starts the ceremony
//! for their passkeys (only while their sign-in waits, in this browser), and the page's
//! script posts the browser's answer here in a `credential` field, checked in the same
//! write as a code, and counted the same.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::assets;
use super::ceremony::begin_check;
use super::session::{CsrfForm, NoFields, landing, public_layout, sign_in};
use super::view::{
    HtmlError, Layout, page_method_not_allowed, post_only, redirect, render_with_status,
};
use crate::auth::{client_addr, pending, webauthn};
use crate::db::{
    self,
    passkeys::CheckFor,
    two_factor::{Spent, Step},
    tx::Principal,
};
use crate::domain::UserId;
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login/two-factor")
            .route(web::get().to(form))
            .route(web::post().to(submit))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(post_only("/login/two-factor/passkey/begin", begin_passkey));
}

#[derive(Template)]
#[template(path = "login_two_factor.html")]
struct SecondStepPage {
    layout: Layout,
    error: Option<String>,
    /// Which factors the person has: an authenticator app (and recovery codes), passkeys.
    totp: bool,
    passkeys: bool,
    passkeys_js: String,
}

/// Back to the password, saying why.
const START_AGAIN: &str = "/login?second_step=ended";

async fn page(
    req: &HttpRequest,
    state: &AppState,
    user: UserId,
    error: Option<String>,
) -> Result<HttpResponse, HtmlError> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let (totp, passkeys) = db::run(&state.pool, move |conn| {
        Ok((
            db::two_factor::is_enabled(conn, user)?,
            db::passkeys::count(conn, user)? > 0,
        ))
    })
    .await?;
    let page = SecondStepPage {
        layout: public_layout("Two-factor sign-in", req)?,
        error,
        totp,
        passkeys,
        passkeys_js: assets::passkeys_js_href(),
    };
    render_with_status(&page, status)
}

/// The live waiting sign-in this browser's cookie names, and its user.
async fn waiting(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<(Vec<u8>, db::users::User)>, AppError> {
    let Some(digest) = pending::COOKIE.digest_of(req, state.config.is_https()) else {
        return Ok(None);
    };
    let lookup = digest.clone();
    let user = db::run(&state.pool, move |conn| {
        db::two_factor::pending_user(conn, &lookup)
    })
    .await?;
    Ok(user.map(|user| (digest, user)))
}

async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    let Some((_, user)) = waiting(&req, &state).await? else {
        return Ok(redirect(START_AGAIN));
    };
    page(&req, &state, user.user_id(), None).await
}

/// Starts a passkey ceremony for the person whose sign-in waits in this browser: the
/// options for `navigator.credentials.get`, as JSON, naming only their passkeys.
async fn begin_passkey(
    req: HttpRequest,
    state: web::Data<AppState>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    let Some((_, user)) = waiting(&req, &state).await? else {
        return Err(AppError::invalid(
            "This sign-in has ended. Sign in again with your password.",
        ));
    };
    begin_check(&req, &state, user.user_id(), CheckFor::SecondStep).await
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
    /// A passkey's answer, as JSON, when the person used one instead of a code.
    #[serde(default)]
    credential: String,
}

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, HtmlError> {
    let Some((digest, user)) = waiting(&req, &state).await? else {
        return Ok(redirect(START_AGAIN));
    };
    let https = state.config.is_https();
    let with_passkey = !form.credential.is_empty();
    let check: Check = if with_passkey {
        let relying_party = webauthn::relying_party(&req)?;
        let ceremony = webauthn::COOKIE.digest_of(&req, https);
        Box::new(db::passkeys::answer_check(
            relying_party,
            ceremony,
            form.credential,
        ))
    } else {
        let key = state.secret_key()?;
        let unix_now = db::now().and_utc().timestamp();
        Box::new(db::two_factor::code_check(key, form.code, unix_now))
    };
    let ip = client_addr::text_of(&req).unwrap_or_default();
    let attempt = state.throttle.attempt(&user.email, &ip).await?;
    let visitor = Principal::Visitor {
        ip: Some(ip).filter(|i| !i.is_empty()),
    };
    let mail_on = state.mail_on();
    let step = state
        .write(visitor, None, move |tx| {
            db::two_factor::second_step(tx, &digest, mail_on, check)
        })
        .await?;
    let mut response = match step {
        Step::SignedIn { user, account } => {
            attempt.succeeded().await;
            sign_in(&req, user.user_id(), account)?;
            let mut response = redirect(landing(user.operator, account));
            response
                .add_cookie(&pending::COOKIE.removal(https))
                .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
            response
        }
        // The attempt stays counted as a failure.
        Step::Wrong { left: 0 } => {
            drop(attempt);
            redirect(START_AGAIN)
        }
        Step::Wrong { left } => {
            drop(attempt);
            let wrong = if with_passkey {
                "Your passkey's answer was not accepted. Try again."
            } else {
                "That code is not right. Type the 6 digits your authenticator app shows now, or an unused recovery code."
            };
            let tries = if left == 1 { "try" } else { "tries" };
            let message = format!("{wrong} {left} {tries} left.");
            page(&req, &state, user.user_id(), Some(message)).await?
        }
        Step::Gone => {
            attempt.withdrawn().await;
            redirect(START_AGAIN)
        }
    };
    if with_passkey {
        // The ceremony is spent whatever came of it.
        response
            .add_cookie(&webauthn::COOKIE.removal(https))
            .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
    }
    Ok(response)
}

/// How the second step's answer is checked: a code or a passkey's answer.
type Check =
    Box<dyn FnOnce(&mut db::DbConnection, UserId) -> Result<Option<Spent>, AppError> + Send>;
