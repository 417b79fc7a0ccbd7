//! The cookie that carries a sign-in from its right password to its second step. The
//! browser holds a random value; the database only its SHA-256 (`db::two_factor`), so the
//! waiting step can't be carried to another browser, nor named from a copy of the database.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::domain::{SecretDigest, random_base62};

/// `__Host-` pinned to this host and path when served over HTTPS, like the session's.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-keyward_sign_in"
    } else {
        "keyward_sign_in"
    }
}

/// A new waiting step's cookie, and the digest its row is stored under.
pub fn issue(https: bool, lifetime_minutes: i64) -> (Cookie<'static>, Vec<u8>) {
    let value = random_base62(43);
    let digest = SecretDigest::of(&value).as_bytes().to_vec();
    let cookie = Cookie::build(cookie_name(https), value)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .max_age(Duration::minutes(lifetime_minutes))
        .finish();
    (cookie, digest)
}

/// The digest of the cookie this browser sent, if any.
pub fn digest_of(req: &HttpRequest, https: bool) -> Option<Vec<u8>> {
    req.cookie(cookie_name(https))
        .map(|c| SecretDigest::of(c.value()).as_bytes().to_vec())
}

/// Tells the browser to drop the cookie, once the step is done or dead.
pub fn removal(https: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(cookie_name(https), "")
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    cookie
}
