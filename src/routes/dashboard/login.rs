//! `/login` and `POST /logout`.
//!
//! A wrong password and an unknown email get the same page, after the same argon2 work,
//! and both count against the sign-in limit.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, NoFields, UserSession, public_layout, sign_in};
use super::view::{
    Flash, HtmlError, Layout, page_method_not_allowed, post_only, redirect, render,
    render_with_status,
};
use crate::auth::client_addr;
use crate::db::{self, tx::Principal};
use crate::domain::{Email, Password};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(form))
            .route(web::post().to(submit))
            .default_service(web::to(page_method_not_allowed)),
    )
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
}

#[derive(Deserialize)]
struct LoginQuery {
    signed_out: Option<String>,
    password_reset: Option<String>,
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
    if query.password_reset.is_some() {
        layout.flash = Some(Flash::success(
            "Your password was changed and every session ended. Sign in with the new one.",
        ));
    }
    render(&LoginPage {
        layout,
        error: None,
        email: String::new(),
        signup_open: state.config.signup.is_open(),
        mail_on: state.mail_on(),
    })
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
    let user = match Email::parse(&form.email) {
        Ok(email) => {
            db::run(&state.pool, move |conn| {
                db::users::find_by_email(conn, &email)
            })
            .await?
        }
        Err(_) => None,
    };
    // argon2 runs with no database connection held, and as long for an unknown email.
    let ok = match state
        .passwords
        .verify(user.as_ref().map(|u| u.password_hash.as_str()), &password)
        .await
    {
        Ok(ok) => ok,
        Err(busy) => {
            // Nothing was checked, so no guess was made.
            attempt.withdrawn().await;
            return Err(busy.into());
        }
    };
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
            // An operator who belongs to no account lands on the console; anyone else
            // on the token list, which says when they belong to no account yet.
            Ok(redirect(if account.is_none() && user.operator {
                "/admin"
            } else {
                "/tokens"
            }))
        }
        None => {
            // The attempt stays counted as a failure.
            drop(attempt);
            render_with_status(
                &LoginPage {
                    layout: public_layout("Sign in", &req)?,
                    error: Some(MISMATCH.into()),
                    email: form.email,
                    signup_open: state.config.signup.is_open(),
                    mail_on: state.mail_on(),
                },
                actix_web::http::StatusCode::UNAUTHORIZED,
            )
        }
    }
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
