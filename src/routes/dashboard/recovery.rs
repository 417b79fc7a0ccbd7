//! `/password-reset`: a forgotten password. The request page answers the same whether or
//! not the email has a sign-in; the mailed link (or the one `keyward user reset-password`
//! prints) works once, for 30 minutes, and setting the password ends every session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, public_layout};
use super::view::{
    HtmlError, Layout, page_method_not_allowed, redirect, render, render_with_status,
};
use crate::db::{self, email_links::Purpose, tx::Principal};
use crate::domain::{Email, Password};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/password-reset")
            .route(web::get().to(request_form))
            .route(web::post().to(request))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(
        web::resource("/password-reset/{token}")
            .route(web::get().to(choose_form))
            .route(web::post().to(choose))
            .default_service(web::to(page_method_not_allowed)),
    );
}

/// A page of a heading, a few sentences and a link: answers that need no form.
#[derive(Template)]
#[template(path = "message.html")]
pub(super) struct MessagePage {
    pub layout: Layout,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub link: Option<(String, String)>,
}

/// The page for a mailed link that is unknown, used or expired, with where to ask for a
/// new one. A 404, never a 500.
pub(super) fn dead_link(
    req: &HttpRequest,
    ask_again: &str,
    label: &str,
) -> Result<HttpResponse, HtmlError> {
    render_with_status(
        &MessagePage {
            layout: public_layout("This link doesn't work", req)?,
            heading: "This link doesn't work".into(),
            paragraphs: vec![
                "It is unknown, was used already, or has expired. Each link works once, for a limited time.".into(),
            ],
            link: Some((ask_again.into(), label.into())),
        },
        StatusCode::NOT_FOUND,
    )
}

fn ip_of(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

#[derive(Template)]
#[template(path = "recovery/request.html")]
struct RequestPage {
    layout: Layout,
    mail_on: bool,
    errors: Vec<String>,
    email: String,
}

async fn request_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    render(&RequestPage {
        layout: public_layout("Reset your password", &req)?,
        mail_on: state.mail_on(),
        errors: Vec::new(),
        email: String::new(),
    })
}

#[derive(Deserialize)]
struct RequestForm {
    #[serde(default)]
    email: String,
}

async fn request(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<RequestForm>,
) -> Result<HttpResponse, HtmlError> {
    let email = match (state.mail_on(), Email::parse(&form.email)) {
        (true, Ok(email)) => email,
        (mail_on, parsed) => {
            return render_with_status(
                &RequestPage {
                    layout: public_layout("Reset your password", &req)?,
                    mail_on,
                    errors: parsed.err().into_iter().collect(),
                    email: form.email,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let ip = ip_of(&req);
    state
        .throttle
        .mail_request(&email, ip.as_deref().unwrap_or_default())
        .await?;
    let shown = email.to_string();
    state
        .write(Principal::Visitor { ip }, None, move |tx| {
            db::recovery::request(tx, &email)
        })
        .await?;
    render(&MessagePage {
        layout: public_layout("Check your inbox", &req)?,
        heading: "Check your inbox".into(),
        paragraphs: vec![
            format!("If {shown} has a Keyward sign-in, we have mailed it a link to choose a new password."),
            "The link works once, for 30 minutes. If no mail arrives, check the address and your spam folder, then ask again.".into(),
        ],
        link: Some(("/login".into(), "Back to sign in".into())),
    })
}

#[derive(Template)]
#[template(path = "recovery/choose.html")]
struct ChoosePage {
    layout: Layout,
    token: String,
    errors: Vec<String>,
}

async fn link_open(state: &AppState, token: &str) -> Result<bool, AppError> {
    let token = token.to_string();
    db::run(&state.pool, move |conn| {
        db::verification::link_is_open(conn, Purpose::Reset, &token)
    })
    .await
}

async fn choose_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    if !link_open(&state, &token).await? {
        return dead_link(&req, "/password-reset", "Ask for a new link");
    }
    render(&ChoosePage {
        layout: public_layout("Choose a new password", &req)?,
        token,
        errors: Vec::new(),
    })
}

#[derive(Deserialize)]
struct ChooseForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

async fn choose(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<ChooseForm>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    // A dead link costs no argon2 hash.
    if !link_open(&state, &token).await? {
        return dead_link(&req, "/password-reset", "Ask for a new link");
    }
    let mut errors = Vec::new();
    let password = Password::parse(form.password.clone())
        .map_err(|e| errors.push(e))
        .ok();
    if form.password != form.password_confirmation {
        errors.push("The two passwords don't match.".into());
    }
    let (Some(password), true) = (password, errors.is_empty()) else {
        return render_with_status(
            &ChoosePage {
                layout: public_layout("Choose a new password", &req)?,
                token,
                errors,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let hash = state.passwords.hash(&password).await?;
    let reset = state
        .write(Principal::Visitor { ip: ip_of(&req) }, None, move |tx| {
            db::recovery::reset(tx, &token, &hash)
        })
        .await;
    match reset {
        Ok(_) => Ok(redirect("/login?password_reset=1")),
        // Used meanwhile, in another tab.
        Err(AppError::NotFound) => dead_link(&req, "/password-reset", "Ask for a new link"),
        Err(other) => Err(other.into()),
    }
}
