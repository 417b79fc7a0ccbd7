//! `/login` and `POST /logout`.
//!
//! A wrong password and an unknown email get the same page, after the same argon2 work,
//! and both count against the sign-in limit.
//!
//! `/login/passkey` signs in with a passkey alone (a discoverable credential): its
//! `begin` answers the options for `navigator.credentials.get` as JSON, and the page's
//! script posts the browser's answer back in a `credential` field. Anyone may begin, so
//! beginnings are limited per address; each answer counts against the sign-in limit of
//! the passkey's owner, like a password.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::assets;
use super::ceremony::begin_ceremony;
use super::session::{CsrfForm, NoFields, UserSession, landing, public_layout, sign_in};
use super::view::{
    Flash, HtmlError, Layout, page_method_not_allowed, post_only, redirect, render,
    render_with_status,
};
use crate::auth::{client_addr, webauthn};
use crate::db::{self, passkeys::SignIn, tx::Principal};
use crate::domain::{Email, Password};
use crate::error::AppError;
use crate::state::AppState;
use webauthn_rs::prelude::PublicKeyCredential;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(form))
            .route(web::post().to(submit))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(post_only("/login/passkey/begin", begin_passkey))
    .service(post_only("/login/passkey", passkey))
    .service(post_only("/logout", logout));
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    email: String,
    /// The sign-up link shows only when anyone may sign up.
    signup_open: bool,
    /// Without mail, the page says how a forgotten password is reset.
    mail_on: bool,
    /// The single sign-on provider's name, for its button; `None` while SSO is off.
    sso_name: Option<String>,
    passkeys_js: String,
}

impl LoginPage {
    fn new(state: &AppState, layout: Layout, email: String, error: Option<String>) -> Self {
        Self {
            layout,
            error,
            email,
            signup_open: state.config.signup.is_open(),
            mail_on: state.mail_on(),
            sso_name: state.oidc.as_ref().map(|o| o.name().to_string()),
            passkeys_js: assets::passkeys_js_href(),
        }
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    signed_out: Option<String>,
    password_reset: Option<String>,
    /// The second step ran out of time or tries.
    second_step: Option<String>,
}

async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, HtmlError> {
    let mut layout = public_layout("Sign in", &req)?;
    if query.signed_out.is_some() {
        layout.flash = Some(Flash::success("You have signed out."));
    }
    if query.second_step.is_some() {
        layout.flash = Some(Flash::error(
            "That sign-in took longer than 5 minutes or had too many wrong codes. Sign in again with your password.",
        ));
    }
    if query.password_reset.is_some() {
        layout.flash = Some(Flash::success(
            "Your password was changed and every session ended. Sign in with the new one.",
        ));
    }
    render(&LoginPage::new(&state, layout, String::new(), None))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

const MISMATCH: &str = "That email and password don't match an account. Check both and try again.";

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, HtmlError> {
    let ip = client_addr::text_of(&req).unwrap_or_default();
    let attempt = state.throttle.attempt(&form.email, &ip).await?;

    let password = Password::for_sign_in(form.password);
    let sso_on = state.oidc.is_some();
    let (user, two_factor, sso_required) = match Email::parse(&form.email) {
        Ok(email) => {
            db::run(&state.pool, move |conn| {
                let user = db::users::find_by_email(conn, &email)?;
                let (two_factor, sso_required) = match &user {
                    Some(user) => (
                        db::two_factor::has_second_factor(conn, user.user_id())?,
                        match sso_on {
                            true => db::accounts::sso_required_of(conn, user.user_id())?,
                            false => None,
                        },
                    ),
                    None => (false, None),
                };
                Ok((user, two_factor, sso_required))
            })
            .await?
        }
        Err(_) => (None, false, None),
    };
    // argon2 runs with no database connection held, and as long for an unknown email or
    // a person with no password (made by a single sign-on), whom no password matches.
    let stored = user
        .as_ref()
        .filter(|u| u.has_password())
        .map(|u| u.password_hash.as_str());
    let ok = match state.passwords.verify(stored, &password).await {
        Ok(ok) => ok,
        Err(busy) => {
            // Nothing was checked, so no guess was made.
            attempt.withdrawn().await;
            return Err(busy.into());
        }
    };
    if let (true, Some(account)) = (ok, &sso_required) {
        // Told only after the right password, so the page gives nothing away to a guesser.
        attempt.withdrawn().await;
        // Someone who holds the password but isn't connected to the provider yet connects
        // now: the provider's verified word for the same address then signs them in.
        if let Some(user) = &user
            && state.oidc.is_some()
            && !state.linked_to_provider(user.user_id()).await?
        {
            let id = user.user_id();
            return super::sso::begin(&req, &state, db::oidc::CONNECT, Some(id), String::new())
                .await;
        }
        let layout = public_layout("Sign in", &req)?;
        let page = LoginPage::new(
            &state,
            layout,
            form.email,
            Some(sso_required_sentence(&state, account)),
        );
        return render_with_status(&page, StatusCode::FORBIDDEN);
    }
    if let (Some(user), true, true) = (&user, ok, two_factor) {
        // A right password and a second factor: no session yet, and no sign-in recorded,
        // but a step that waits for the code, in a cookie of its own. The attempt is
        // withdrawn, not forgiven: the pair's earlier failures (and the codes to come)
        // still count, so knowing the password buys no free guesses at the code.
        attempt.withdrawn().await;
        // No key check here: a passkey needs none, and a code's check asks for it
        // (`second_step::submit`), so a server without one still takes passkeys.
        let https = state.config.is_https();
        let (cookie, digest) =
            crate::auth::pending::COOKIE.issue(https, db::two_factor::PENDING_MINUTES);
        let id = user.user_id();
        db::run(&state.pool, move |conn| {
            db::two_factor::start_pending(conn, id, &digest)
        })
        .await?;
        let mut response = redirect("/login/two-factor");
        response
            .add_cookie(&cookie)
            .map_err(|e| crate::error::AppError::internal(format!("cookie: {e}")))?;
        return Ok(response);
    }
    let outcome = match user {
        Some(user) => {
            let visitor = Principal::Visitor {
                ip: Some(ip).filter(|i| !i.is_empty()),
            };
            let recorded = user.clone();
            let account = state
                .write(visitor, None, move |tx| {
                    db::users::record_sign_in(tx, &recorded, ok)
                })
                .await?;
            ok.then_some((user, account))
        }
        None => None,
    };

    match outcome {
        Some((user, account)) => {
            attempt.succeeded().await;
            sign_in(&req, user.user_id(), account)?;
            Ok(redirect(landing(user.operator, account)))
        }
        None => {
            // The attempt stays counted as a failure.
            drop(attempt);
            let layout = public_layout("Sign in", &req)?;
            let page = LoginPage::new(&state, layout, form.email, Some(MISMATCH.into()));
            render_with_status(&page, StatusCode::UNAUTHORIZED)
        }
    }
}

/// Starts a sign-in with a passkey alone: the browser offers whichever of this site's
/// passkeys the person picks.
async fn begin_passkey(
    req: HttpRequest,
    state: web::Data<AppState>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    state.passkey_starts.check(client_addr::of(&req))?;
    begin_ceremony(&req, &state, &webauthn::COOKIE, db::passkeys::start_sign_in).await
}

#[derive(Deserialize)]
struct PasskeyForm {
    /// The browser's answer, as JSON (`static/passkeys.js` fills it in).
    #[serde(default)]
    credential: String,
}

async fn passkey(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<PasskeyForm>,
) -> Result<HttpResponse, HtmlError> {
    let https = state.config.is_https();
    let sso_on = state.oidc.is_some();
    let refused = |message: String| -> Result<HttpResponse, HtmlError> {
        let layout = public_layout("Sign in", &req)?;
        let page = LoginPage::new(&state, layout, String::new(), Some(message));
        let mut response = render_with_status(&page, StatusCode::UNAUTHORIZED)?;
        response
            .add_cookie(&webauthn::COOKIE.removal(https))
            .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
        Ok(response)
    };
    let answer = match db::passkeys::parse_answer::<PublicKeyCredential>(&form.credential) {
        Ok(answer) => answer,
        Err(e) => return refused(e.messages().join(" ")),
    };
    let Some(digest) = webauthn::COOKIE.digest_of(&req, https) else {
        return refused(db::passkeys::CEREMONY_GONE.into());
    };
    let relying_party = webauthn::relying_party(&req)?;
    // The limits count per email, so the passkey's owner is looked up first; an unknown
    // passkey counts in the bucket of addresses that name no one.
    let claimed = {
        let (relying_party, answer) = (relying_party.clone(), answer.clone());
        db::run(&state.pool, move |conn| {
            db::passkeys::claimed_user(conn, &relying_party, &answer)
        })
        .await?
    };
    let email = claimed.map(|u| u.email).unwrap_or_default();
    let ip = client_addr::text_of(&req).unwrap_or_default();
    let attempt = state.throttle.attempt(&email, &ip).await?;
    let visitor = Principal::Visitor {
        ip: Some(ip).filter(|i| !i.is_empty()),
    };
    let outcome = state
        .write(visitor, None, move |tx| {
            db::passkeys::sign_in(tx, &relying_party, &digest, &answer, sso_on)
        })
        .await?;
    match outcome {
        SignIn::SignedIn { user, account } => {
            attempt.succeeded().await;
            sign_in(&req, user.user_id(), account)?;
            let mut response = redirect(landing(user.operator, account));
            response
                .add_cookie(&webauthn::COOKIE.removal(https))
                .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
            Ok(response)
        }
        SignIn::Refused(message) => {
            // The attempt stays counted as a failure.
            drop(attempt);
            refused(message)
        }
        SignIn::SsoRequired { account } => {
            // A right passkey: no guess was made, but no way past the provider either.
            attempt.withdrawn().await;
            let layout = public_layout("Sign in", &req)?;
            let page = LoginPage::new(
                &state,
                layout,
                String::new(),
                Some(sso_required_sentence(&state, &account)),
            );
            let mut response = render_with_status(&page, StatusCode::FORBIDDEN)?;
            response
                .add_cookie(&webauthn::COOKIE.removal(https))
                .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
            Ok(response)
        }
    }
}

/// Why a member of an account that requires single sign-on is not let in another way.
fn sso_required_sentence(state: &AppState, account: &str) -> String {
    let name = state.oidc.as_ref().map(|o| o.name()).unwrap_or_default();
    format!(
        "{account} requires its members to sign in with {name}. Use the \"Sign in with {name}\" button."
    )
}

/// Ends the session on the server, so the cookie is worthless even if copied.
async fn logout(
    req: HttpRequest,
    session: UserSession,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    session.end();
    // The browser changes hands: the anonymous forms' nonce from before is worth nothing.
    crate::auth::csrf::rotate_anonymous(&req)?;
    Ok(redirect("/login?signed_out=1"))
}
