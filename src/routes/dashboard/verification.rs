//! An address proven by mail: the link a sign-up gets (`/verify-email/{token}`), the one a
//! new address gets (`/confirm-email/{token}`), and the person's own email and notices
//! pages (`/account/email`, `/account/notices`). A link's page asks for one press of a
//! button, so a mail scanner that fetches links changes nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::recovery::{MessagePage, dead_link};
use super::session::{CsrfForm, NoFields, SignedIn, public_layout};
use super::view::{
    Flash, HtmlError, Layout, page_method_not_allowed, post_only, redirect, render,
    render_with_status,
};
use crate::db::{self, email_links::Purpose, notices::Preferences, tx::Principal};
use crate::domain::{Email, Password};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/verify-email/{token}")
            .route(web::get().to(verify_form))
            .route(web::post().to(verify))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(
        web::resource("/confirm-email/{token}")
            .route(web::get().to(confirm_form))
            .route(web::post().to(confirm))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(
        web::resource("/account/email")
            .route(web::get().to(email_page))
            .route(web::post().to(change_email))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(post_only("/account/email/verify", resend))
    .service(
        web::resource("/account/notices")
            .route(web::get().to(notices_page))
            .route(web::post().to(save_notices))
            .default_service(web::to(page_method_not_allowed)),
    );
}

/// What differs between the two kinds of address link.
struct LinkKind {
    purpose: Purpose,
    path: &'static str,
    heading: &'static str,
    explanation: &'static str,
    button: &'static str,
}

const VERIFY: LinkKind = LinkKind {
    purpose: Purpose::Verify,
    path: "/verify-email",
    heading: "Verify your email address",
    explanation: "Press the button to confirm that this address is yours.",
    button: "Verify my address",
};

const CONFIRM: LinkKind = LinkKind {
    purpose: Purpose::Change,
    path: "/confirm-email",
    heading: "Confirm your new email address",
    explanation: "Press the button to sign in with this address from now on. Your old address will be told.",
    button: "Use this address",
};

#[derive(Template)]
#[template(path = "recovery/confirm_link.html")]
struct ConfirmLinkPage {
    layout: Layout,
    heading: &'static str,
    explanation: &'static str,
    button: &'static str,
    action: String,
}

async fn link_form(
    req: &HttpRequest,
    state: &AppState,
    kind: &LinkKind,
    token: String,
) -> Result<HttpResponse, HtmlError> {
    let lookup = token.clone();
    let purpose = kind.purpose;
    let open = db::run(&state.pool, move |conn| {
        db::verification::link_is_open(conn, purpose, &lookup)
    })
    .await?;
    if !open {
        return dead_link(req, "/account/email", "Sign in to ask for a new link");
    }
    render(&ConfirmLinkPage {
        layout: public_layout(kind.heading, req)?,
        heading: kind.heading,
        explanation: kind.explanation,
        button: kind.button,
        action: format!("{}/{token}", kind.path),
    })
}

/// Follows the link, and answers with what it did.
async fn follow(
    req: &HttpRequest,
    state: &AppState,
    kind: &LinkKind,
    token: String,
) -> Result<HttpResponse, HtmlError> {
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let purpose = kind.purpose;
    let done = state
        .write(Principal::Visitor { ip }, None, move |tx| match purpose {
            Purpose::Change => db::verification::confirm_change(tx, &token),
            _ => db::verification::verify(tx, &token),
        })
        .await;
    let (status, heading, paragraph) = match done {
        Ok(email) => (
            StatusCode::OK,
            "Your address is verified",
            format!("{email} is verified. You sign in with it from now on."),
        ),
        Err(AppError::NotFound) => {
            return dead_link(req, "/account/email", "Sign in to ask for a new link");
        }
        Err(AppError::Invalid(messages)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "This address can't be used",
            messages.join(" "),
        ),
        Err(other) => return Err(other.into()),
    };
    render_with_status(
        &MessagePage {
            layout: public_layout(heading, req)?,
            heading: heading.into(),
            paragraphs: vec![paragraph],
            link: Some(("/tokens".into(), "Go to your tokens".into())),
        },
        status,
    )
}

async fn verify_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    link_form(&req, &state, &VERIFY, token.into_inner()).await
}

async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    follow(&req, &state, &VERIFY, token.into_inner()).await
}

async fn confirm_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    link_form(&req, &state, &CONFIRM, token.into_inner()).await
}

async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    follow(&req, &state, &CONFIRM, token.into_inner()).await
}

// ---------------------------------------------------------------------------------------------
// The person's own address and notices
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/email.html")]
struct EmailPage {
    layout: Layout,
    email: String,
    verified: bool,
    /// Taken on trust: no mail proved it (see `db::users::Address`).
    assumed: bool,
    mail_on: bool,
    /// The single sign-on provider's name, while this person isn't connected to it.
    connect_with: Option<String>,
    errors: Vec<String>,
    new_email: String,
}

async fn email_page_for(
    signed_in: &SignedIn,
    state: &AppState,
    errors: Vec<String>,
    new_email: String,
) -> Result<EmailPage, AppError> {
    let connect_with = match state.oidc.as_deref() {
        Some(oidc) => {
            let linked = state.linked_to_provider(signed_in.user_id()).await?;
            (!linked).then(|| oidc.name().to_string())
        }
        None => None,
    };
    Ok(EmailPage {
        layout: signed_in.layout("Your email address", "")?,
        email: signed_in.user.email.clone(),
        verified: signed_in.user.email_verified_at.is_some(),
        assumed: signed_in.user.email_assumed,
        mail_on: state.mail_on(),
        connect_with,
        errors,
        new_email,
    })
}

async fn email_page(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    render(&email_page_for(&signed_in, &state, Vec::new(), String::new()).await?)
}

#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    current_password: String,
}

/// Asks for a link to a new address. The current password is checked first (limited like
/// a sign-in), so a borrowed session can't move the sign-in to someone else's address.
async fn change_email(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ChangeForm>,
) -> Result<HttpResponse, HtmlError> {
    if !state.mail_on() {
        return Err(AppError::invalid(
            "This server sends no mail, so an address can't be changed here.",
        )
        .into());
    }
    let again = async |errors: Vec<String>, typed: String| {
        render_with_status(
            &email_page_for(&signed_in, &state, errors, typed).await?,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let new_email = match Email::parse(&form.new_email) {
        Ok(email) => email,
        Err(e) => return again(vec![e], form.new_email).await,
    };
    let ip = signed_in.ip.clone().unwrap_or_default();
    let attempt = state.throttle.attempt(&signed_in.user.email, &ip).await?;
    let typed = Password::for_sign_in(form.current_password);
    match state
        .passwords
        .verify(Some(&signed_in.user.password_hash), &typed)
        .await
    {
        Ok(true) => attempt.succeeded().await,
        Ok(false) => {
            return again(
                vec!["That is not your current password.".into()],
                form.new_email,
            )
            .await;
        }
        Err(busy) => {
            attempt.withdrawn().await;
            return Err(busy.into());
        }
    }
    state.throttle.mail_request(&new_email, &ip).await?;
    let shown = new_email.to_string();
    let changed = state
        .write(signed_in.principal(), None, move |tx| {
            db::verification::request_change(tx, &new_email)
        })
        .await;
    match changed {
        Ok(()) => {
            signed_in.flash(Flash::success(format!(
                "We mailed a link to {shown}. Your address changes when it is followed."
            )));
            Ok(redirect("/account/email"))
        }
        Err(AppError::Invalid(errors)) => again(errors, shown).await,
        Err(other) => Err(other.into()),
    }
}

async fn resend(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    if !state.mail_on() {
        return Err(AppError::invalid("This server sends no mail.").into());
    }
    let email = Email::parse(&signed_in.user.email).map_err(AppError::internal)?;
    let ip = signed_in.ip.clone().unwrap_or_default();
    state.throttle.mail_request(&email, &ip).await?;
    state
        .write(signed_in.principal(), None, db::verification::resend)
        .await?;
    signed_in.flash(Flash::success(format!("We mailed a new link to {email}.")));
    Ok(redirect("/account/email"))
}

#[derive(Template)]
#[template(path = "account/notices.html")]
struct NoticesPage {
    layout: Layout,
    email: String,
    mail_on: bool,
    preferences: Preferences,
}

async fn notices_page(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    let user = signed_in.user_id();
    let preferences = db::run(&state.pool, move |conn| {
        db::notices::preferences(conn, user)
    })
    .await?;
    render(&NoticesPage {
        layout: signed_in.layout("Notices", "")?,
        email: signed_in.user.email.clone(),
        mail_on: state.mail_on(),
        preferences,
    })
}

/// A checkbox is sent only when ticked.
#[derive(Deserialize)]
struct NoticesForm {
    expiry_digest: Option<String>,
    revocations: Option<String>,
    new_ip: Option<String>,
}

async fn save_notices(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<NoticesForm>,
) -> Result<HttpResponse, HtmlError> {
    let chosen = Preferences {
        expiry_digest: form.expiry_digest.is_some(),
        revocations: form.revocations.is_some(),
        new_ip: form.new_ip.is_some(),
    };
    state
        .write(signed_in.principal(), None, move |tx| {
            db::notices::set_preferences(tx, chosen)
        })
        .await?;
    signed_in.flash(Flash::success("Your notices are saved."));
    Ok(redirect("/account/notices"))
}
