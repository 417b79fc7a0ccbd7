//! Passkeys' relying party and the cookie that names a ceremony under way. The relying
//! party (its ID and origin) is this site's origin as `auth::origin` finds it: the
//! configured `KEYWARD_PUBLIC_URL`, else the request's own host. That is the address the
//! browser shows, so it is the one its authenticator signs for; taking it from the same
//! place as the CSRF origin check keeps the two in agreement.

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

use super::origin::site_origin;
use super::step_cookie::StepCookie;
use crate::error::AppError;

/// How long a ceremony (its challenge) lives, in minutes.
pub const CEREMONY_MINUTES: i64 = 5;

/// The relying party for this request's site.
pub fn relying_party(req: &HttpRequest) -> Result<Webauthn, AppError> {
    let origin = site_origin(req);
    let url = Url::parse(&origin)
        .map_err(|_| AppError::invalid("Passkeys need this site's address to be a URL."))?;
    // The origin alone: a public URL given with a path still names one origin.
    let url = Url::parse(&url.origin().ascii_serialization())
        .map_err(|_| AppError::invalid("Passkeys need this site's address to be a URL."))?;
    // WebAuthn ties a passkey to a domain name; browsers refuse an IP address as one.
    let Some(rp_id) = url.domain().map(str::to_string) else {
        return Err(AppError::invalid(
            "Passkeys need this site to be reached by a domain name (such as localhost), not an IP address.",
        ));
    };
    WebauthnBuilder::new(&rp_id, &url)
        .and_then(|builder| builder.rp_name("Keyward").build())
        .map_err(|e| AppError::internal(format!("passkey relying party for {origin}: {e}")))
}

/// The cookie that names a ceremony under way (`db::passkeys` keeps its digest).
pub const COOKIE: StepCookie = StepCookie::new("__Host-keyward_passkey", "keyward_passkey");

/// Sudo mode's own ceremony: the sudo page can interrupt a passkey's registration, whose
/// ceremony waits under [`COOKIE`] until the change goes on.
pub const SUDO_COOKIE: StepCookie =
    StepCookie::new("__Host-keyward_passkey_sudo", "keyward_passkey_sudo");

/// The answer to a ceremony's start: its options for `navigator.credentials`, as JSON,
/// with the cookie that names it. Never cached: each challenge is used once.
pub fn challenge(options: serde_json::Value, cookie: Cookie<'static>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .cookie(cookie)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(options)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use actix_web::{http::header, web};

    use webauthn_rs::prelude::Uuid;

    use super::*;
    use crate::config::Config;

    fn request(public_url: Option<&str>, host: &str) -> HttpRequest {
        let mut config = Config::for_database("unused.db");
        config.public_url = public_url.map(str::to_string);
        TestRequest::default()
            .insert_header((header::HOST, host))
            .app_data(web::Data::new(config))
            .to_http_request()
    }

    #[test]
    fn the_relying_party_is_the_public_urls_host_else_the_requests() {
        let cases = [
            (
                Some("https://keys.example.com/some/path"),
                "127.0.0.1:9",
                "keys.example.com",
                "https://keys.example.com",
            ),
            (None, "localhost:8080", "localhost", "http://localhost:8080"),
        ];
        for (public_url, host, rp_id, origin) in cases {
            let rp = relying_party(&request(public_url, host)).expect("a relying party");
            let options = rp
                .start_passkey_registration(Uuid::new_v4(), "a", "a", None)
                .expect("a challenge")
                .0;
            assert_eq!(options.public_key.rp.id, rp_id, "{public_url:?} {host}");
            let allowed: Vec<String> = rp
                .get_allowed_origins()
                .iter()
                .map(|u| u.origin().ascii_serialization())
                .collect();
            assert_eq!(allowed, [origin], "{public_url:?} {host}");
        }
    }

    #[test]
    fn an_ip_address_is_refused_with_a_sentence() {
        for host in ["127.0.0.1:8080", "[::1]:8080"] {
            match relying_party(&request(None, host)) {
                Err(AppError::Invalid(messages)) => {
                    assert!(messages[0].contains("domain name"), "{messages:?}")
                }
                Err(other) => panic!("{host}: {other}"),
                Ok(_) => panic!("{host}: a relying party for an IP address"),
            }
        }
    }
}
