//! `/login` and `POST /logout`.
//!
//! A wrong password and an unknown email get the same page, after the same argon2 work,
//! and both count against the sign-in limit.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::layout::{self, Layout};
use super::{HtmlError, redirect, render, render_with_status};
use crate::auth::csrf::{CsrfForm, NoFields};
use crate::auth::password;
use crate::db::{self, audit, audit::Actor};
use crate::domain::{Email, Password};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    email: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
}

pub async fn form(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, HtmlError> {
    let mut layout = Layout::public("Sign in", &req)?;
    if query.signed_out.is_some() {
        layout.flash = Some(layout::Flash::success("You have signed out."));
    }
    render(&LoginPage {
        layout,
        error: None,
        email: String::new(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

const MISMATCH: &str = "That email and password don't match an account. Check both and try again.";

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, HtmlError> {
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let attempt = state.throttle.attempt(&form.email, &ip)?;

    let email = Email::parse(&form.email).ok();
    let password = Password::for_sign_in(form.password);
    let actor_ip = Some(ip.clone()).filter(|i| !i.is_empty());
    let outcome = db::run(&state.pool, move |conn| {
        let user = match &email {
            Some(email) => db::users::find_by_email(conn, email)?,
            None => None,
        };
        let ok = password::verify(user.as_ref().map(|u| u.password_hash.as_str()), &password);
        let Some(user) = user else { return Ok(None) };
        let memberships = db::memberships::accounts_of(conn, user.user_id())?;
        let actor = Actor {
            user_id: Some(user.user_id()),
            label: user.email.clone(),
            ip: actor_ip,
        };
        let action = if ok {
            audit::action::LOGIN_SUCCEEDED
        } else {
            audit::action::LOGIN_FAILED
        };
        db::write(conn, |conn| {
            if ok {
                db::users::record_login(conn, user.user_id())?;
            }
            for (account, _) in &memberships {
                audit::record(
                    conn,
                    account.account_id(),
                    &actor,
                    audit::Event {
                        action,
                        target: &format!("user {}", user.email),
                        token: None,
                        detail: "",
                    },
                )?;
            }
            Ok(())
        })?;
        Ok(ok.then(|| {
            let account = memberships.first().map(|(a, _)| a.account_id());
            (user, account)
        }))
    })
    .await?;

    match outcome {
        Some((user, account)) => {
            attempt.succeeded();
            layout::sign_in(&req, user.user_id(), account)?;
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
                    layout: Layout::public("Sign in", &req)?,
                    error: Some(MISMATCH.into()),
                    email: form.email,
                },
                actix_web::http::StatusCode::UNAUTHORIZED,
            )
        }
    }
}

/// Ends the session on the server, so the cookie is worthless even if copied.
pub async fn logout(
    session: Session,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    session.purge();
    Ok(redirect("/login?signed_out=1"))
}
