//! CSRF protection for the dashboard's forms: a synchronizer token kept in the session,
//! sent back as the hidden `csrf_token` field, compared in constant time; and, when the
//! browser sends `Origin`, that origin must be ours.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::domain::random_base62;
use crate::error::AppError;
use crate::routes::dashboard::HtmlError;
use crate::state::AppState;

const SESSION_KEY: &str = "csrf";

/// The session's CSRF token, made on first use.
pub fn token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(token)) = session.get::<String>(SESSION_KEY) {
        return Ok(token);
    }
    let token = random_base62(32);
    session
        .insert(SESSION_KEY, &token)
        .map_err(|e| AppError::internal(format!("session: {e}")))?;
    Ok(token)
}

/// A fresh token, for when the session changes hands (sign-in).
pub fn rotate(session: &Session) -> Result<String, AppError> {
    session.remove(SESSION_KEY);
    token(session)
}

fn rejected() -> AppError {
    AppError::forbidden(
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

fn check_token(session: &Session, sent: &str) -> Result<(), AppError> {
    let expected = session
        .get::<String>(SESSION_KEY)
        .ok()
        .flatten()
        .ok_or_else(rejected)?;
    if expected.as_bytes().ct_eq(sent.as_bytes()).into() {
        Ok(())
    } else {
        Err(rejected())
    }
}

/// The origin this site is served from: the public URL if set, else what the browser used.
pub fn site_origin(req: &HttpRequest) -> String {
    if let Some(state) = req.app_data::<web::Data<AppState>>()
        && let Some(url) = &state.config.public_url
    {
        return url.clone();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn check_origin(req: &HttpRequest) -> Result<(), AppError> {
    match req.headers().get(actix_web::http::header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin.as_bytes() == site_origin(req).as_bytes() => Ok(()),
        Some(_) => Err(rejected()),
    }
}

#[derive(Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf_token: String,
}

/// A urlencoded form that passed the CSRF checks. Every dashboard POST takes one.
pub struct CsrfForm<T>(pub T);

/// A form with nothing but its CSRF token, such as logout.
#[derive(Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = HtmlError;
    type Future = LocalBoxFuture<'static, Result<Self, HtmlError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            check_origin(&req)?;
            let body = body.await.map_err(|_| {
                AppError::invalid("The form could not be read; it may be too large.")
            })?;
            let field: TokenField = serde_urlencoded::from_bytes(&body).map_err(|_| rejected())?;
            check_token(&req.get_session(), &field.csrf_token)?;
            let form = serde_urlencoded::from_bytes(&body)
                .map_err(|e| AppError::invalid(format!("The form could not be read: {e}.")))?;
            Ok(CsrfForm(form))
        })
    }
}
