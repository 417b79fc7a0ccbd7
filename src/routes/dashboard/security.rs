//! `/account/sessions` and `/account/password`: a person's own sign-ins and password.
//! They see every browser signed in as them and can end any of those sessions, or all
//! but this one; changing the password ends every other session.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, NoFields, SignedIn};
use super::view::{
    Flash, HtmlError, Layout, TimeView, get_only, page_method_not_allowed, post_only, redirect,
    render, render_with_status,
};
use crate::auth::client_addr;
use crate::db::{self, sessions::SessionSummary};
use crate::domain::{Password, SessionId};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/account/sessions", list))
        .service(post_only("/account/sessions/end-others", end_others))
        .service(post_only("/account/sessions/{id}/end", end_one))
        .service(
            web::resource("/account/password")
                .route(web::get().to(password_form))
                .route(web::post().to(change_password))
                .default_service(web::to(page_method_not_allowed)),
        );
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/// One session, as the list shows it.
struct SessionView {
    id: i32,
    browser: String,
    ip: String,
    created: TimeView,
    last_seen: TimeView,
    current: bool,
}

impl SessionView {
    /// `sso_name`: the provider's name, for a session that began there ("via Corp SSO").
    fn new(row: SessionSummary, current: Option<SessionId>, sso_name: Option<&str>) -> Self {
        let mut browser = browser_label(row.user_agent.as_deref());
        if row.via_sso {
            browser = format!("{browser} via {}", sso_name.unwrap_or("single sign-on"));
        }
        Self {
            current: Some(row.session_id()) == current,
            id: row.id,
            browser,
            ip: row.ip.unwrap_or_else(|| "unknown".into()),
            created: TimeView::new(row.created_at),
            last_seen: TimeView::new(row.last_seen_at),
        }
    }
}

/// A short name for the browser a User-Agent describes, such as "Firefox on Linux":
/// enough to recognise one's own devices, and nothing to execute or trust.
fn browser_label(user_agent: Option<&str>) -> String {
    const UNKNOWN: &str = "UNKNOWN";
    let parsed = user_agent
        .filter(|agent| !agent.trim().is_empty())
        .and_then(|agent| woothee::parser::Parser::new().parse(agent));
    match parsed {
        Some(ua) if ua.name != UNKNOWN && ua.os != UNKNOWN => format!("{} on {}", ua.name, ua.os),
        Some(ua) if ua.name != UNKNOWN => ua.name.to_string(),
        _ => "Unknown browser".to_string(),
    }
}

#[derive(Template)]
#[template(path = "account/sessions.html")]
struct SessionsPage {
    layout: Layout,
    email: String,
    sessions: Vec<SessionView>,
    /// How many sessions other than this one.
    others: usize,
}

async fn list(signed_in: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    let user = signed_in.user_id();
    let rows = db::run(&state.pool, move |conn| {
        db::sessions::list_for_user(conn, user, db::now())
    })
    .await?;
    let sessions: Vec<SessionView> = rows
        .into_iter()
        .map(|row| {
            let sso_name = state.oidc.as_ref().map(|o| o.name());
            SessionView::new(row, signed_in.session_id, sso_name)
        })
        .collect();
    render(&SessionsPage {
        others: sessions.iter().filter(|s| !s.current).count(),
        sessions,
        email: signed_in.user.email.clone(),
        layout: signed_in.layout("Your sessions", "")?,
    })
}

/// This session's row; a signed-in request always has one, as the store names it on load.
fn this_session(signed_in: &SignedIn) -> Result<SessionId, AppError> {
    signed_in
        .session_id
        .ok_or_else(|| AppError::internal("a signed-in session without a row id"))
}

async fn end_one(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<i32>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    let id = SessionId(id.into_inner());
    if Some(id) == signed_in.session_id {
        // Ending this session is signing out.
        signed_in.session.end();
        return Ok(redirect("/login?signed_out=1"));
    }
    state
        .write(signed_in.principal(), None, move |tx| {
            db::sessions::end(tx, id)
        })
        .await?;
    signed_in.flash(Flash::success(
        "That session has ended. Its browser is signed out.",
    ));
    Ok(redirect("/account/sessions"))
}

async fn end_others(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    let keep = this_session(&signed_in)?;
    let ended = state
        .write(signed_in.principal(), None, move |tx| {
            db::sessions::end_others(tx, keep)
        })
        .await?;
    signed_in.flash(Flash::success(match ended {
        0 => "There were no other sessions to end.".to_string(),
        1 => "1 other session ended. Only this browser is signed in now.".to_string(),
        n => format!("{n} other sessions ended. Only this browser is signed in now."),
    }));
    Ok(redirect("/account/sessions"))
}

// ---------------------------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    layout: Layout,
    email: String,
    errors: Vec<String>,
}

fn password_page(signed_in: &SignedIn, errors: Vec<String>) -> Result<HttpResponse, HtmlError> {
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    render_with_status(
        &PasswordPage {
            layout: signed_in.layout("Change your password", "")?,
            email: signed_in.user.email.clone(),
            errors,
        },
        status,
    )
}

async fn password_form(signed_in: SignedIn) -> Result<HttpResponse, HtmlError> {
    password_page(&signed_in, Vec::new())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

const WRONG_CURRENT: &str = "That is not your current password. Nothing was changed.";

async fn change_password(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, HtmlError> {
    // The new password's rules first: they cost nothing, and a typo shouldn't count as a
    // wrong guess of the current one.
    let mut errors = Vec::new();
    let new = Password::parse(form.password.clone())
        .map_err(|e| errors.push(e))
        .ok();
    if form.password != form.password_confirmation {
        errors.push("The two new passwords don't match.".into());
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return password_page(&signed_in, errors);
    };

    // Someone who found this browser signed in must not be able to guess the password here
    // faster than at sign-in.
    let ip = client_addr::text_of(&req).unwrap_or_default();
    let attempt = state.throttle.attempt(&signed_in.user.email, &ip).await?;
    let old_hash = signed_in.user.password_hash.clone();
    let current = Password::for_sign_in(form.current_password);
    // Both argon2 jobs go through the server's bounded pool, with no connection held.
    let right = match state.passwords.verify(Some(&old_hash), &current).await {
        Ok(right) => right,
        Err(busy) => {
            // Nothing was checked, so no guess was made.
            attempt.withdrawn().await;
            return Err(busy.into());
        }
    };
    if !right {
        // The attempt stays counted as a failure.
        drop(attempt);
        return password_page(&signed_in, vec![WRONG_CURRENT.into()]);
    }
    attempt.succeeded().await;
    let new_hash = state.passwords.hash(&new).await?;

    let keep = this_session(&signed_in)?;
    let ended = match state
        .write(signed_in.principal(), None, move |tx| {
            db::users::change_password(tx, &old_hash, &new_hash, keep)
        })
        .await
    {
        Ok(ended) => ended,
        Err(AppError::Invalid(errors)) => return password_page(&signed_in, errors),
        Err(other) => return Err(other.into()),
    };
    super::session::renew_id(&req)?;
    signed_in.flash(Flash::success(match ended {
        0 => "Your password was changed.".to_string(),
        1 => "Your password was changed, and your 1 other session was signed out.".to_string(),
        n => format!("Your password was changed, and your {n} other sessions were signed out."),
    }));
    Ok(redirect("/account/sessions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_short_readable_labels() {
        let cases = [
            (
                Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
                "Firefox on Linux",
            ),
            (
                Some(
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                ),
                "Chrome on Windows 10",
            ),
            (Some("curl/8.5.0"), "HTTP Library"),
            (Some(""), "Unknown browser"),
            (None, "Unknown browser"),
        ];
        for (agent, expected) in cases {
            assert_eq!(browser_label(agent), expected, "{agent:?}");
        }
    }
}
