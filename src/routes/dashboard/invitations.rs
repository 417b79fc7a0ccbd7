//! `/invitations/{token}`: the one-time link an admin passes on. The invitee sets a
//! password (or, with an existing sign-in, confirms theirs) and joins the account.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, public_layout, sign_in};
use super::view::{
    Flash, HtmlError, Layout, page_method_not_allowed, redirect, render, render_with_status,
};
use crate::auth::client_addr;
use crate::db::{self, invitations::Joiner, tx::Principal};
use crate::domain::{AccountId, Email, Password};
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
        layout: public_layout("Join an account", req)?,
        token,
        account_name,
        role: invitation.role.to_string(),
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
struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: Option<String>,
}

async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    let ip = client_addr::text_of(&req);
    let joined = match joiner(&state, &token, &form, ip.clone()).await {
        Ok((account, joiner)) => {
            let token = token.clone();
            state
                .write(Principal::Visitor { ip }, Some(account), move |tx| {
                    db::invitations::accept(tx, &token, joiner)
                })
                .await
        }
        Err(err) => Err(err),
    };
    match joined {
        Ok(joined) => {
            sign_in(&req, joined.user, Some(joined.account))?.flash(Flash::success(format!(
                "Welcome to {}.",
                joined.account_name
            )));
            Ok(redirect("/tokens"))
        }
        Err(AppError::Invalid(errors)) => render_with_status(
            &page(&state, &req, token, errors).await?,
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(other) => Err(other.into()),
    }
}

/// What a new person is told when sign-up is closed: the invitation needs a sign-in.
const INVITEES_NEED_A_SIGN_IN: &str = "Sign-up on this server is closed, so an invitation can't create a sign-in. Ask the operator to create one for this email, then open the link again.";

/// Reads the invitation and does the slow password work before the write lock is
/// taken: checks an existing user's password (limited like sign-in), or hashes a new
/// one. The write then checks again that the invitation is still good.
async fn joiner(
    state: &AppState,
    token: &str,
    form: &AcceptForm,
    ip: Option<String>,
) -> Result<(AccountId, Joiner), AppError> {
    let lookup = token.to_string();
    let (invitation, existing) = db::run(&state.pool, move |conn| {
        let (invitation, _) = db::invitations::find_open(conn, &lookup)?;
        let email = Email::parse(&invitation.email).map_err(AppError::internal)?;
        let existing = db::users::find_by_email(conn, &email)?;
        Ok((invitation, existing))
    })
    .await?;
    let account = AccountId(invitation.account_id);
    let joiner = match existing {
        Some(user) => {
            // A password check like sign-in's, so it is limited like sign-in.
            let attempt = state
                .throttle
                .attempt(&user.email, ip.as_deref().unwrap_or_default())
                .await?;
            let typed = Password::for_sign_in(form.password.clone());
            match state
                .passwords
                .verify(Some(&user.password_hash), &typed)
                .await
            {
                Ok(true) => attempt.succeeded().await,
                Ok(false) => {
                    return Err(AppError::invalid(
                        "That is not the password of this email's Keyward sign-in.",
                    ));
                }
                Err(busy) => {
                    // Nothing was checked, so no guess was made.
                    attempt.withdrawn().await;
                    return Err(busy);
                }
            }
            Joiner::Existing(user.user_id())
        }
        None => {
            if !state.config.signup.lets_invitees_sign_up() {
                return Err(AppError::forbidden(INVITEES_NEED_A_SIGN_IN));
            }
            if form.password_confirmation.as_deref() != Some(form.password.as_str()) {
                return Err(AppError::invalid("The two passwords don't match."));
            }
            let password = Password::parse(form.password.clone()).map_err(AppError::invalid)?;
            Joiner::New(state.passwords.hash(&password).await?)
        }
    };
    Ok((account, joiner))
}
