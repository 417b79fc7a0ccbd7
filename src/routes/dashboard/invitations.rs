//! `/invitations/{token}`: the one-time link an admin passes on. The invitee sets a
//! password (or, with an existing sign-in, confirms theirs) and joins the account.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::layout::{self, Flash, Layout};
use super::{HtmlError, page_method_not_allowed, redirect, render, render_with_status};
use crate::auth::csrf::CsrfForm;
use crate::auth::password;
use crate::db::{self, audit, audit::Actor};
use crate::domain::{Email, Password};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/invitations/{token}")
            .route(web::get().to(show))
            .route(web::post().to(accept))
            .default_service(web::to(page_method_not_allowed)),
    );
}

#[derive(Template)]
#[template(path = "invitations/accept.html")]
struct AcceptPage {
    layout: Layout,
    token: String,
    account_name: String,
    email: String,
    role: String,
    has_sign_in: bool,
    errors: Vec<String>,
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    token: String,
    errors: Vec<String>,
) -> Result<AcceptPage, AppError> {
    let lookup = token.clone();
    let (invitation, account_name, has_sign_in) = db::run(&state.pool, move |conn| {
        let (invitation, account_name) = db::invitations::find_open(conn, &lookup)?;
        let email = Email::parse(&invitation.email).map_err(AppError::internal)?;
        let has_sign_in = db::users::find_by_email(conn, &email)?.is_some();
        Ok((invitation, account_name, has_sign_in))
    })
    .await?;
    Ok(AcceptPage {
        layout: Layout::public("Join an account", req)?,
        token,
        account_name,
        role: invitation.role.clone(),
        email: invitation.email,
        has_sign_in,
        errors,
    })
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    render(&page(&state, &req, token.into_inner(), Vec::new()).await?)
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: Option<String>,
}

async fn accept(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let lookup = token.clone();
    let throttle = state.throttle.clone();
    let joined = db::run(&state.pool, move |conn| {
        let (invitation, account_name) = db::invitations::find_open(conn, &lookup)?;
        let email = Email::parse(&invitation.email).map_err(AppError::internal)?;
        let existing = db::users::find_by_email(conn, &email)?;
        // The slow part, argon2, runs before the write lock is taken.
        let new_hash = match &existing {
            Some(user) => {
                // A password check like sign-in's, so it is limited like sign-in.
                let attempt = throttle.attempt(&user.email, ip.as_deref().unwrap_or_default())?;
                let typed = Password::for_sign_in(form.password.clone());
                if !password::verify(Some(&user.password_hash), &typed) {
                    return Err(AppError::invalid(
                        "That is not the password of this email's Keyward sign-in.",
                    ));
                }
                attempt.succeeded();
                None
            }
            None => {
                if form.password_confirmation.as_deref() != Some(form.password.as_str()) {
                    return Err(AppError::invalid("The two passwords don't match."));
                }
                let password = Password::parse(form.password.clone()).map_err(AppError::invalid)?;
                Some(password::hash(&password)?)
            }
        };
        db::write(conn, |conn| {
            db::invitations::mark_accepted(conn, invitation.id)?;
            let user = match (existing, new_hash) {
                (Some(user), _) => user,
                (None, Some(hash)) => db::users::create(conn, &email, &hash, false)?,
                (None, None) => return Err(AppError::internal("no password for a new user")),
            };
            let account = crate::domain::AccountId(invitation.account_id);
            // Two invitations to one person: the first made them a member already.
            if db::memberships::role_of(conn, user.user_id(), account)?.is_some() {
                return Err(AppError::invalid(format!(
                    "{email} is already a member of {account_name}. Sign in to use it."
                )));
            }
            db::users::record_login(conn, user.user_id())?;
            db::memberships::create(conn, user.user_id(), account, invitation.role())?;
            let actor = Actor {
                user_id: Some(user.user_id()),
                label: user.email.clone(),
                ip,
            };
            audit::record(
                conn,
                account,
                &actor,
                audit::Event {
                    action: audit::action::MEMBER_JOINED,
                    target: &format!("user {}", user.email),
                    token: None,
                    detail: &format!("as {}", invitation.role),
                },
            )?;
            Ok((user.user_id(), account, account_name))
        })
    })
    .await;
    match joined {
        Ok((user, account, account_name)) => {
            layout::sign_in(&req, user, Some(account))?;
            Flash::success(format!("Welcome to {account_name}.")).set(&session);
            Ok(redirect("/tokens"))
        }
        Err(AppError::Invalid(errors)) => render_with_status(
            &page(&state, &req, token, errors).await?,
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(other) => Err(other.into()),
    }
}
