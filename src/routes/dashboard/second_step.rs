//! `/login/two-factor`: the sign-in's second step. A right password for a person with a
//! second factor leads here with a cookie of its own (`auth::pending`); a right code (from
//! the authenticator or a recovery code) starts the session as `/login` would.
//!
//! Every code is a sign-in attempt (`auth::throttle`), and a wrong one, a malformed one and
//! one of the wrong length all get the same answer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, landing, public_layout, sign_in};
use super::view::{HtmlError, Layout, page_method_not_allowed, redirect, render_with_status};
use crate::auth::{client_addr, pending};
use crate::db::{self, two_factor::Step, tx::Principal};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login/two-factor")
            .route(web::get().to(form))
            .route(web::post().to(submit))
            .default_service(web::to(page_method_not_allowed)),
    );
}

#[derive(Template)]
#[template(path = "login_two_factor.html")]
struct SecondStepPage {
    layout: Layout,
    error: Option<String>,
}

/// Back to the password, saying why.
const START_AGAIN: &str = "/login?second_step=ended";

fn page(req: &HttpRequest, error: Option<String>) -> Result<HttpResponse, HtmlError> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let page = SecondStepPage {
        layout: public_layout("Two-factor sign-in", req)?,
        error,
    };
    render_with_status(&page, status)
}

/// The live waiting sign-in this browser's cookie names, and its user.
async fn waiting(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<(Vec<u8>, db::users::User)>, AppError> {
    let Some(digest) = pending::digest_of(req, state.config.is_https()) else {
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
    if waiting(&req, &state).await?.is_none() {
        return Ok(redirect(START_AGAIN));
    }
    page(&req, None)
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, HtmlError> {
    let Some((digest, user)) = waiting(&req, &state).await? else {
        return Ok(redirect(START_AGAIN));
    };
    let key = state.secret_key()?;
    let ip = client_addr::text_of(&req).unwrap_or_default();
    let attempt = state.throttle.attempt(&user.email, &ip).await?;
    let visitor = Principal::Visitor {
        ip: Some(ip).filter(|i| !i.is_empty()),
    };
    let unix_now = db::now().and_utc().timestamp();
    let mail_on = state.mail_on();
    let step = state
        .write(visitor, None, move |tx| {
            let check = db::two_factor::code_check(key, form.code, unix_now);
            db::two_factor::second_step(tx, &digest, mail_on, check)
        })
        .await?;
    let https = state.config.is_https();
    match step {
        Step::SignedIn { user, account } => {
            attempt.succeeded().await;
            sign_in(&req, user.user_id(), account)?;
            let mut response = redirect(landing(user.operator, account));
            response
                .add_cookie(&pending::removal(https))
                .map_err(|e| AppError::internal(format!("cookie: {e}")))?;
            Ok(response)
        }
        // The attempt stays counted as a failure.
        Step::Wrong { left: 0 } => {
            drop(attempt);
            Ok(redirect(START_AGAIN))
        }
        Step::Wrong { left } => {
            drop(attempt);
            page(
                &req,
                Some(format!(
                    "That code is not right. Type the 6 digits your authenticator app shows now, or an unused recovery code. {left} {} left.",
                    if left == 1 { "try" } else { "tries" }
                )),
            )
        }
        Step::Gone => {
            attempt.withdrawn().await;
            Ok(redirect(START_AGAIN))
        }
    }
}
