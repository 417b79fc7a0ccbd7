//! CSRF protection for the dashboard's forms. Every form carries a hidden `csrf_token`,
//! compared in constant time with what only this browser holds:
//! - signed in, a synchronizer token kept in the session;
//! - anonymous (sign-in, sign-up, an invitation), a signed double-submit cookie. An
//!   anonymous visitor has no session, so their forms cost the server no database row.
//!
//! And when the browser sends `Origin`, it must be this site's (see `origin`).

use actix_session::{Session, SessionExt};
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::origin::site_origin;
use super::session::keys::USER_ID;
use crate::domain::random_base62;
use crate::error::AppError;

const SESSION_KEY: &str = "csrf";

type HmacSha256 = Hmac<Sha256>;

/// The session's CSRF token, made on first use. Only for signed-in sessions: anything put
/// in an anonymous session is never stored.
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

/// The token for the forms of a page anyone may open: the session's when signed in, else
/// the anonymous cookie's (issued with this response if the browser has none that is fresh).
pub fn form_token(req: &HttpRequest) -> Result<String, AppError> {
    let session = req.get_session();
    if is_signed_in(&session) {
        token(&session)
    } else {
        anonymous_token(req)
    }
}

fn is_signed_in(session: &Session) -> bool {
    matches!(session.get::<i32>(USER_ID), Ok(Some(_)))
}

fn check_session_token(session: &Session, sent: &str) -> Result<(), AppError> {
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

/// When the browser sends `Origin`, it must be this site's.
pub fn check_origin(req: &HttpRequest) -> Result<(), AppError> {
    match req.headers().get(actix_web::http::header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin.as_bytes() == site_origin(req).as_bytes() => Ok(()),
        Some(_) => Err(rejected()),
    }
}

// ---------------------------------------------------------------------------------------------
// Anonymous forms: a signed double-submit cookie
// ---------------------------------------------------------------------------------------------

/// How long an anonymous form's cookie is good for. A page older than half of this gets a
/// fresh one, so a form is never shown with less than 6 hours left.
const ANONYMOUS_LIFETIME_SECS: i64 = 12 * 3600;

/// Signs and checks anonymous forms' CSRF cookies. Built once at start from the session
/// key's material, under a label of its own: the session cookie's key and this one can't
/// stand in for each other.
///
/// The cookie is `NONCE.ISSUED.MAC`: a random nonce, the Unix time it was issued, and an
/// HMAC-SHA256 of both. The form carries the nonce. A cross-site form can't read the
/// cookie, a forged cookie fails the MAC, and the cookie is `SameSite=Strict`, so a
/// cross-site POST doesn't even carry it.
#[derive(Clone)]
pub struct AnonymousCsrf {
    key: [u8; 32],
    https: bool,
}

/// A cookie value that passed its MAC and is within its lifetime.
struct Genuine<'a> {
    nonce: &'a str,
    issued: i64,
}

/// The cookie issued while handling this request, for `set_issued_cookie` to send.
#[derive(Clone)]
struct Issued {
    nonce: String,
    cookie: Cookie<'static>,
}

impl AnonymousCsrf {
    pub fn new(key_material: &[u8], https: bool) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(key_material).expect("HMAC takes a key of any length");
        mac.update(b"keyward: the CSRF cookie of anonymous forms, v1");
        Self {
            key: mac.finalize().into_bytes().into(),
            https,
        }
    }

    /// `__Host-` pinned to this host and path when served over HTTPS, like the session's.
    pub fn cookie_name(&self) -> &'static str {
        if self.https {
            "__Host-keyward_csrf"
        } else {
            "keyward_csrf"
        }
    }

    fn mac(&self, nonce: &str, issued: i64) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(nonce.as_bytes());
        mac.update(b".");
        mac.update(issued.to_string().as_bytes());
        mac
    }

    fn issue(&self, now: i64) -> Issued {
        let nonce = random_base62(32);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&nonce, now).finalize().into_bytes());
        let cookie = Cookie::build(self.cookie_name(), format!("{nonce}.{now}.{signature}"))
            .path("/")
            .http_only(true)
            .secure(self.https)
            .same_site(SameSite::Strict)
            .finish();
        Issued { nonce, cookie }
    }

    fn verify<'a>(&self, value: &'a str, now: i64) -> Option<Genuine<'a>> {
        let mut parts = value.splitn(3, '.');
        let (nonce, issued, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let issued: i64 = issued.parse().ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // Constant time: the MAC says nothing about how close a forgery came.
        self.mac(nonce, issued).verify_slice(&signature).ok()?;
        let age = now.checked_sub(issued)?;
        (0..=ANONYMOUS_LIFETIME_SECS)
            .contains(&age)
            .then_some(Genuine { nonce, issued })
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn anonymous_csrf(req: &HttpRequest) -> Result<&AnonymousCsrf, AppError> {
    req.app_data::<web::Data<AnonymousCsrf>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| AppError::internal("the anonymous CSRF key is missing"))
}

/// The nonce for an anonymous page's forms: the browser's cookie's while it is fresh (so
/// several open tabs all work), else a new one whose cookie goes out with the response.
fn anonymous_token(req: &HttpRequest) -> Result<String, AppError> {
    if let Some(issued) = req.extensions().get::<Issued>() {
        return Ok(issued.nonce.clone());
    }
    let csrf = anonymous_csrf(req)?;
    let now = unix_now();
    if let Some(cookie) = req.cookie(csrf.cookie_name())
        && let Some(genuine) = csrf.verify(cookie.value(), now)
        && now - genuine.issued < ANONYMOUS_LIFETIME_SECS / 2
    {
        return Ok(genuine.nonce.to_string());
    }
    let issued = csrf.issue(now);
    let nonce = issued.nonce.clone();
    req.extensions_mut().insert(issued);
    Ok(nonce)
}

/// A fresh anonymous cookie with this response, for when the browser changes hands
/// (sign-in, sign-out): a nonce seen before then is worth nothing after.
pub fn rotate_anonymous(req: &HttpRequest) -> Result<(), AppError> {
    let issued = anonymous_csrf(req)?.issue(unix_now());
    req.extensions_mut().insert(issued);
    Ok(())
}

fn check_anonymous_token(req: &HttpRequest, sent: &str) -> Result<(), AppError> {
    let csrf = anonymous_csrf(req)?;
    let cookie = req.cookie(csrf.cookie_name()).ok_or_else(rejected)?;
    let genuine = csrf
        .verify(cookie.value(), unix_now())
        .ok_or_else(rejected)?;
    if genuine.nonce.as_bytes().ct_eq(sent.as_bytes()).into() {
        Ok(())
    } else {
        Err(rejected())
    }
}

/// Middleware for the dashboard: sends the anonymous CSRF cookie that a page issued.
pub async fn set_issued_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let issued = res.request().extensions_mut().remove::<Issued>();
    if let Some(issued) = issued {
        res.response_mut().add_cookie(&issued.cookie)?;
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------------
// Checking a form
// ---------------------------------------------------------------------------------------------

/// Checks a submitted form's `csrf_token` (`sent`). The dashboard's form extractor
/// calls this, after [`check_origin`], before it reads any other field.
pub fn check_token(req: &HttpRequest, sent: &str) -> Result<(), AppError> {
    // Signed in, only the session's token will do: a cookie planted by a sibling site
    // can't stand in for it.
    let session = req.get_session();
    if is_signed_in(&session) {
        check_session_token(&session, sent)
    } else {
        check_anonymous_token(req, sent)
    }
}

/// The answer to a form that fails the checks, or whose token can't even be read.
pub fn rejected() -> AppError {
    AppError::forbidden(
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn value(issued: &Issued) -> String {
        issued.cookie.value().to_string()
    }

    #[test]
    fn a_cookie_verifies_under_its_own_key_only() {
        let csrf = AnonymousCsrf::new(b"session key material, at least 32 bytes", false);
        let other = AnonymousCsrf::new(b"another server's key material, 32 bytes+", false);
        let issued = csrf.issue(NOW);

        let cookie = value(&issued);
        let genuine = csrf.verify(&cookie, NOW).expect("its own cookie verifies");
        assert_eq!(genuine.nonce, issued.nonce);
        assert!(other.verify(&value(&issued), NOW).is_none());
    }

    #[test]
    fn a_tampered_or_stale_cookie_is_refused() {
        let csrf = AnonymousCsrf::new(b"session key material, at least 32 bytes", false);
        let issued = csrf.issue(NOW);
        let good = value(&issued);
        let (nonce, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();

        let cases = [
            (
                "another nonce",
                format!("{}x.{NOW}.{signature}", &nonce[1..]),
            ),
            (
                "a later issue time",
                format!("{nonce}.{}.{signature}", NOW + 3600),
            ),
            ("no signature", format!("{nonce}.{NOW}.")),
            ("no dots", nonce.to_string()),
        ];
        for (label, forged) in cases {
            assert!(csrf.verify(&forged, NOW).is_none(), "{label} was accepted");
        }
        assert!(
            csrf.verify(&good, NOW + ANONYMOUS_LIFETIME_SECS + 1)
                .is_none(),
            "an expired cookie was accepted"
        );
        assert!(
            csrf.verify(&good, NOW - 1).is_none(),
            "a cookie from the future was accepted"
        );
    }

    #[test]
    fn over_https_the_cookie_is_host_prefixed_and_secure() {
        let csrf = AnonymousCsrf::new(b"session key material, at least 32 bytes", true);
        let cookie = csrf.issue(NOW).cookie;
        assert_eq!(cookie.name(), "__Host-keyward_csrf");
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Strict));
        assert_eq!(cookie.path(), Some("/"));
    }
}
