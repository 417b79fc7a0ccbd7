//! Cookies that bind a step in progress to the browser that began it: a sign-in waiting for
//! its second step (`pending`), a passkey ceremony (`webauthn`). The browser holds a random
//! value; the store only its SHA-256, so the step can't be carried to another browser, nor
//! named from a copy of the database.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::domain::{SecretDigest, random_base62};

/// One kind of step cookie, by its names over HTTPS and plain HTTP.
pub struct StepCookie {
    /// `__Host-` pinned to this host and path, like the session's.
    https_name: &'static str,
    http_name: &'static str,
}

impl StepCookie {
    pub const fn new(https_name: &'static str, http_name: &'static str) -> Self {
        Self {
            https_name,
            http_name,
        }
    }

    pub fn name(&self, https: bool) -> &'static str {
        if https {
            self.https_name
        } else {
            self.http_name
        }
    }

    /// A new step's cookie, and the digest its row is stored under.
    pub fn issue(&self, https: bool, lifetime_minutes: i64) -> (Cookie<'static>, Vec<u8>) {
        let value = random_base62(43);
        let digest = SecretDigest::of(&value).as_bytes().to_vec();
        let cookie = self
            .builder(https, value)
            .max_age(Duration::minutes(lifetime_minutes))
            .finish();
        (cookie, digest)
    }

    /// The digest of the cookie this browser sent, if any.
    pub fn digest_of(&self, req: &HttpRequest, https: bool) -> Option<Vec<u8>> {
        req.cookie(self.name(https))
            .map(|c| SecretDigest::of(c.value()).as_bytes().to_vec())
    }

    /// Tells the browser to drop the cookie, once the step is done or dead.
    pub fn removal(&self, https: bool) -> Cookie<'static> {
        let mut cookie = self.builder(https, String::new()).finish();
        cookie.make_removal();
        cookie
    }

    fn builder(&self, https: bool, value: String) -> actix_web::cookie::CookieBuilder<'static> {
        Cookie::build(self.name(https), value)
            .path("/")
            .http_only(true)
            .secure(https)
            .same_site(SameSite::Strict)
    }
}
