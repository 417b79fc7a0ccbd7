//! Where this site is served from, for the CSRF origin check and for every absolute link
//! (the curl line, invitation links): the configured public URL, else the request's own
//! `Host`. A proxy's `Forwarded`, `X-Forwarded-Host` and `X-Forwarded-Proto` count only
//! when the operator says a proxy in front sets them (`--trust-forwarded-headers`);
//! otherwise anyone could send them, and steer a link or pass the origin check.

use actix_web::http::header;
use actix_web::{HttpRequest, web};

use crate::config::Config;

/// The origin this site is served from, such as `https://keys.example.com`. Reads the
/// settings from the app's `web::Data<Config>`.
pub fn site_origin(req: &HttpRequest) -> String {
    let config = req.app_data::<web::Data<Config>>().map(|c| c.get_ref());
    origin_for(req, config)
}

fn origin_for(req: &HttpRequest, config: Option<&Config>) -> String {
    if let Some(url) = config.and_then(|c| c.public_url.as_ref()) {
        return url.clone();
    }
    if config.is_some_and(|c| c.trust_forwarded_headers) {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", own_host(req))
}

/// The host the client asked for: `Host` (HTTP/1.1), else the URI's authority (HTTP/2),
/// else the server's configured host name.
fn own_host(req: &HttpRequest) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| req.app_config().host().to_string())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn config(public_url: Option<&str>, trust: bool) -> Config {
        let mut config = Config::for_database("unused.db");
        config.public_url = public_url.map(str::to_string);
        config.trust_forwarded_headers = trust;
        config
    }

    fn forged() -> HttpRequest {
        TestRequest::default()
            .insert_header((header::HOST, "127.0.0.1:8080"))
            .insert_header(("X-Forwarded-Host", "evil.example"))
            .insert_header(("X-Forwarded-Proto", "https"))
            .insert_header((header::FORWARDED, "host=evil.example;proto=https"))
            .to_http_request()
    }

    #[test]
    fn forwarded_headers_are_ignored_unless_trusted() {
        let cases = [
            (None, false, "http://127.0.0.1:8080"),
            (None, true, "https://evil.example"),
            (
                Some("https://keys.example.com"),
                false,
                "https://keys.example.com",
            ),
            (
                Some("https://keys.example.com"),
                true,
                "https://keys.example.com",
            ),
        ];
        for (public_url, trust, expected) in cases {
            assert_eq!(
                origin_for(&forged(), Some(&config(public_url, trust))),
                expected,
                "public URL {public_url:?}, trusting forwarded headers: {trust}"
            );
        }
    }
}
