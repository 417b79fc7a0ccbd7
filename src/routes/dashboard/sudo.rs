//! Sudo mode: a sensitive change (a token that can make tokens, a member's role or removal,
//! turning the second factor off or making new recovery codes, the email address, the
//! account's settings) needs the person to have proved it was them within the window
//! (`KEYWARD_SUDO_MINUTES`, an hour by default): by their password, or by their second
//! factor if they have one (a code, or a passkey through the page's script and its own
//! ceremony, `/account/sudo/passkey/begin`). Signing in counts.
//!
//! When it is stale, the change is interrupted by a page that asks for the proof and
//! carries every field of the form as it was sent, and posts it all back to the same
//! address: once proved, the change goes on as first asked.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::assets;
use super::ceremony::begin_check;
use super::session::{CsrfForm, NoFields, SignedIn, checked_form};
use super::view::{HtmlError, Layout, post_only, render_with_status};
use crate::auth::{client_addr, webauthn};
use crate::db::{self, passkeys::CheckFor};
use crate::domain::{Password, SecondFactor};
use crate::error::AppError;
use crate::state::AppState;

/// The proof fields the sudo page adds; never handed on to the change itself.
const PASSWORD_FIELD: &str = "sudo_password";
const CODE_FIELD: &str = "sudo_code";
/// A passkey's answer to the sudo ceremony, as JSON (`static/passkeys.js` fills it in).
const PASSKEY_FIELD: &str = "sudo_passkey";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_only("/account/sudo/passkey/begin", begin_passkey));
}

/// A form that passed the CSRF checks, with its raw fields kept for the sudo page and the
/// proof it carries, if any.
pub(crate) struct SudoForm<T> {
    pub form: T,
    fields: Vec<(String, String)>,
    password: Option<String>,
    code: Option<String>,
    passkey: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for SudoForm<T> {
    type Error = HtmlError;
    type Future = LocalBoxFuture<'static, Result<Self, HtmlError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = super::session::form_body(body).await?;
            let form = checked_form::<T>(&req, &body)?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|e| AppError::invalid(format!("The form could not be read: {e}.")))?;
            let mut password = None;
            let mut code = None;
            let mut passkey = None;
            let mut fields = Vec::new();
            for (name, value) in pairs {
                match name.as_str() {
                    PASSWORD_FIELD => password = Some(value),
                    CODE_FIELD => code = Some(value),
                    PASSKEY_FIELD => passkey = Some(value),
                    "csrf_token" => {}
                    _ => fields.push((name, value)),
                }
            }
            Ok(SudoForm {
                form,
                fields,
                password: password.filter(|p| !p.is_empty()),
                code: code.filter(|c| !c.trim().is_empty()),
                passkey: passkey.filter(|p| !p.is_empty()),
            })
        })
    }
}

#[derive(Template)]
#[template(path = "sudo.html")]
struct SudoPage {
    layout: Layout,
    action: String,
    fields: Vec<(String, String)>,
    two_factor: bool,
    /// Whether the person has a passkey, which the page's script offers.
    passkeys: bool,
    passkeys_js: String,
    /// A fresh sign-in at the provider instead: its name and where it starts.
    sso: Option<(String, String)>,
    error: Option<String>,
}

/// Whether the person proved it was them within the window.
pub(crate) fn is_fresh(signed_in: &SignedIn, state: &AppState) -> bool {
    let now = db::now().and_utc().timestamp();
    now - signed_in.session.checked_at() <= state.config.sudo_window.num_seconds()
}

/// `None`: go on with the change. `Some(page)`: answer with this page, which asks for the
/// proof (again, with the refusal, if a wrong one came) and carries the form.
pub(crate) async fn check<T>(
    req: &HttpRequest,
    signed_in: &SignedIn,
    state: &AppState,
    form: &SudoForm<T>,
) -> Result<Option<HttpResponse>, HtmlError> {
    if is_fresh(signed_in, state) {
        return Ok(None);
    }
    let user = signed_in.user_id();
    let (two_factor, passkeys) = db::run(&state.pool, move |conn| {
        Ok((
            db::two_factor::is_enabled(conn, user)?,
            db::passkeys::count(conn, user)? > 0,
        ))
    })
    .await?;
    let linked = state.linked_to_provider(user).await?;
    let sso = state
        .oidc
        .as_ref()
        .filter(|_| linked)
        .map(|oidc| (oidc.name().to_string(), reauth_href(req)));
    let offered = Offered {
        two_factor,
        passkeys,
        sso,
    };
    let page = |error| page(req, signed_in, form, &offered, error);
    let proved = match (&form.password, &form.code, &form.passkey) {
        (None, None, None) => return page(None).map(Some),
        (Some(password), ..) => check_password(req, signed_in, state, password).await?,
        (None, Some(code), _) => two_factor && check_code(signed_in, state, code).await?,
        (None, None, Some(answer)) => {
            passkeys && check_passkey(req, signed_in, state, answer).await?
        }
    };
    if !proved {
        let refusal = if form.password.is_none() && form.code.is_none() {
            "Your passkey's answer was not accepted. Nothing was changed yet."
        } else if two_factor {
            "That password or code is not right. Nothing was changed yet."
        } else {
            "That password is not right. Nothing was changed yet."
        };
        return page(Some(refusal.into())).map(Some);
    }
    signed_in.session.mark_checked()?;
    Ok(None)
}

/// Where a fresh sign-in at the provider starts, coming back to the page the change was
/// asked from (the form is asked again there).
fn reauth_href(req: &HttpRequest) -> String {
    let back = req
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.path().to_string())
        .unwrap_or_else(|| "/account/sessions".into());
    let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    format!("/auth/oidc?reauth=1&next={next}")
}

/// The ways of proving it that the page offers, besides the password.
struct Offered {
    two_factor: bool,
    passkeys: bool,
    sso: Option<(String, String)>,
}

fn page<T>(
    req: &HttpRequest,
    signed_in: &SignedIn,
    form: &SudoForm<T>,
    offered: &Offered,
    error: Option<String>,
) -> Result<HttpResponse, HtmlError> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    render_with_status(
        &SudoPage {
            layout: signed_in.layout("Confirm it's you", "")?,
            action: req.path().to_string(),
            fields: form.fields.clone(),
            two_factor: offered.two_factor,
            passkeys: offered.passkeys,
            passkeys_js: assets::passkeys_js_href(),
            sso: offered.sso.clone(),
            error,
        },
        status,
    )
}

/// The person's password, counted as a sign-in attempt like any password check.
async fn check_password(
    req: &HttpRequest,
    signed_in: &SignedIn,
    state: &AppState,
    password: &str,
) -> Result<bool, AppError> {
    let ip = client_addr::text_of(req).unwrap_or_default();
    let attempt = state.throttle.attempt(&signed_in.user.email, &ip).await?;
    let password = Password::for_sign_in(password.to_string());
    match state
        .passwords
        .verify(Some(&signed_in.user.password_hash), &password)
        .await
    {
        Ok(true) => {
            attempt.succeeded().await;
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(busy) => {
            attempt.withdrawn().await;
            Err(busy)
        }
    }
}

/// A code from the person's second factor, spent like one at sign-in.
async fn check_code(signed_in: &SignedIn, state: &AppState, code: &str) -> Result<bool, AppError> {
    let key = state.secret_key()?;
    let factor = SecondFactor::parse(code);
    let user = signed_in.user_id();
    let unix_now = db::now().and_utc().timestamp();
    spend_proof(signed_in, state, move |conn| {
        let Some(factor) = factor else {
            return Ok(false);
        };
        Ok(db::two_factor::spend(conn, &key, user, &factor, unix_now)?.is_some())
    })
    .await
}

/// A second-factor proof, counted as a sign-in attempt like one at the second step, and
/// spent in the store by `spend`, which says whether it was right. What the server itself
/// lacks (its key, the site's address) is an error before anything is counted.
async fn spend_proof<F>(signed_in: &SignedIn, state: &AppState, spend: F) -> Result<bool, AppError>
where
    F: FnOnce(&mut db::DbConnection) -> Result<bool, AppError> + Send + 'static,
{
    let ip = signed_in.ip.clone().unwrap_or_default();
    let attempt = state.throttle.attempt(&signed_in.user.email, &ip).await?;
    let proved = db::run(&state.pool, move |conn| {
        db::tx::as_system(conn, |tx| spend(tx.conn))
    })
    .await?;
    if proved {
        attempt.succeeded().await;
    }
    Ok(proved)
}

/// Starts the sudo page's passkey ceremony for the signed-in person: the options for
/// `navigator.credentials.get`, as JSON, naming only their passkeys.
async fn begin_passkey(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    begin_check(&req, &state, signed_in.user_id(), CheckFor::Sudo).await
}

/// A passkey's answer to the sudo ceremony this browser started, spent whatever comes of
/// it, and counted as an attempt like a code.
async fn check_passkey(
    req: &HttpRequest,
    signed_in: &SignedIn,
    state: &AppState,
    answer: &str,
) -> Result<bool, AppError> {
    let relying_party = webauthn::relying_party(req)?;
    let ceremony = webauthn::SUDO_COOKIE.digest_of(req, state.config.is_https());
    let user = signed_in.user_id();
    let answer = answer.to_string();
    spend_proof(signed_in, state, move |conn| match ceremony {
        Some(ceremony) => db::passkeys::sudo_check(conn, &relying_party, &ceremony, user, &answer),
        None => Ok(false),
    })
    .await
}
