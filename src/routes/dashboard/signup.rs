//! `/signup`: creates an account and its owner, then signs the owner in; only when the
//! operator lets anyone sign up (`KEYWARD_SIGNUP=open`).
//!
//! With mail on, every sign-up answers "check your inbox", and a taken email learns of the
//! try by mail (`db::verification::sign_up`). With mail off, a sign-up for a taken email
//! has to say so, so sign-up tells whether an email has a sign-in. It tells nothing else, and no faster than it must: sign-ups are limited per
//! address, a taken email costs the same argon2 hash as a free one, and its answer
//! never depends on the password typed, so sign-up is no way to test a password.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, public_layout, sign_in};
use super::view::{
    Flash, HtmlError, Layout, page_method_not_allowed, redirect, render, render_with_status,
};
use crate::auth::client_addr;
use crate::db::{self, tx::Principal};
use crate::domain::{AccountName, Email, Password, SignupMode};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/signup")
            .route(web::get().to(form))
            .route(web::post().to(submit))
            .default_service(web::to(page_method_not_allowed)),
    );
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    errors: Vec<String>,
    account_name: String,
    email: String,
}

/// Refuses unless the operator lets anyone sign up (`KEYWARD_SIGNUP=open`).
fn require_open(state: &AppState) -> Result<(), AppError> {
    match state.config.signup {
        SignupMode::Open => Ok(()),
        SignupMode::InviteOnly => Err(AppError::forbidden(
            "Sign-up on this server is by invitation only. Ask an admin of your team's account for an invitation link.",
        )),
        SignupMode::Closed => Err(AppError::forbidden(
            "Sign-up on this server is closed: its operator creates accounts. Ask them for one.",
        )),
    }
}

async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    require_open(&state)?;
    render(&SignupPage {
        layout: public_layout("Create your account", &req)?,
        errors: Vec::new(),
        account_name: String::new(),
        email: String::new(),
    })
}

#[derive(Deserialize)]
struct SignupForm {
    #[serde(default)]
    account_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SignupForm>,
) -> Result<HttpResponse, HtmlError> {
    require_open(&state)?;
    let mut errors = Vec::new();
    let name = AccountName::parse(&form.account_name)
        .map_err(|e| errors.push(e))
        .ok();
    let email = Email::parse(&form.email).map_err(|e| errors.push(e)).ok();
    let password = Password::parse(form.password.clone())
        .map_err(|e| errors.push(e))
        .ok();
    if form.password != form.password_confirmation {
        errors.push("The two passwords don't match.".into());
    }
    let (Some(name), Some(email), Some(password), true) =
        (name, email, password, errors.is_empty())
    else {
        return again(&req, form, errors);
    };

    let ip = client_addr::text_of(&req);
    state
        .throttle
        .sign_up(ip.as_deref().unwrap_or_default())
        .await?;
    if state.mail_on() {
        // The same mail limit as a reset's: each sign-up mails the address.
        state
            .throttle
            .mail_request(&email, ip.as_deref().unwrap_or_default())
            .await?;
    }
    // Hashed before the email is looked at, so a taken one costs the same; and with no
    // database connection held while argon2 runs.
    let hash = state.passwords.hash(&password).await?;
    if state.mail_on() {
        return check_your_inbox(&req, &state, ip, name, email, hash).await;
    }
    let created = state
        .write(Principal::Visitor { ip }, None, move |tx| {
            db::accounts::sign_up(tx, &name, &email, &hash)
        })
        .await;
    match created {
        Ok((user, account)) => {
            sign_in(&req, user.user_id(), Some(account.account_id()))?.flash(Flash::success(
                format!(
                    "Welcome to Keyward. {} is ready: create its first API token.",
                    account.name
                ),
            ));
            Ok(redirect("/tokens"))
        }
        Err(AppError::Invalid(messages)) => again(&req, form, messages),
        Err(other) => Err(other.into()),
    }
}

/// With mail on, a sign-up answers the same for every address, new or taken: the
/// difference goes by mail (a link to verify, or word that someone tried), queued in the
/// sign-up's transaction and never sent inline.
async fn check_your_inbox(
    req: &HttpRequest,
    state: &AppState,
    ip: Option<String>,
    name: AccountName,
    email: Email,
    hash: String,
) -> Result<HttpResponse, HtmlError> {
    let shown = email.to_string();
    state
        .write(Principal::Visitor { ip }, None, move |tx| {
            db::verification::sign_up(tx, &name, &email, &hash)
        })
        .await?;
    render(&InboxPage {
        layout: public_layout("Check your inbox", req)?,
        email: shown,
    })
}

#[derive(Template)]
#[template(path = "signup_sent.html")]
struct InboxPage {
    layout: Layout,
    email: String,
}

/// The form again, with what was typed (never the passwords) and what to fix.
fn again(
    req: &HttpRequest,
    form: SignupForm,
    errors: Vec<String>,
) -> Result<HttpResponse, HtmlError> {
    render_with_status(
        &SignupPage {
            layout: public_layout("Create your account", req)?,
            errors,
            account_name: form.account_name,
            email: form.email,
        },
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
    )
}
