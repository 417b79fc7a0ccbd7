//! The dashboard's two cookies, their names and attributes, over plain HTTP and behind an
//! HTTPS public URL: the anonymous forms' CSRF cookie, which the sign-in page sets, and the
//! session cookie, which only signing in sets.

use reqwest::header::COOKIE;
use reqwest::redirect::Policy;

use crate::support::api::{TestApp, spawn_app, spawn_app_with};
use crate::support::browser::{PASSWORD, SetCookie, set_cookies};

fn only(cookies: &[SetCookie], name: &str) -> SetCookie {
    let named: Vec<&SetCookie> = cookies.iter().filter(|c| c.name == name).collect();
    assert_eq!(
        named.len(),
        1,
        "expected one {name} cookie among {cookies:?}"
    );
    named[0].clone()
}

/// Opens the sign-up page, then signs up with the CSRF cookie it set, sending that cookie by
/// hand: a `Secure` cookie would not travel back over the tests' plain HTTP on its own.
/// Returns the cookies the page set and those the sign-up set.
async fn sign_up(app: &TestApp, csrf_cookie: &str) -> (Vec<SetCookie>, Vec<SetCookie>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .build()
        .expect("a reqwest client");
    let page = client
        .get(app.url("/signup"))
        .send()
        .await
        .expect("the sign-up page answers");
    let page_cookies = set_cookies(&page);
    let cookie = only(&page_cookies, csrf_cookie);
    let body = page.text().await.expect("a body");
    let field = body
        .split_once("name=\"csrf_token\" value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(token, _)| token.to_string())
        .expect("the sign-up form carries a csrf_token");

    let signed_up = client
        .post(app.url("/signup"))
        .header(COOKIE, format!("{}={}", cookie.name, cookie.value))
        .form(&[
            ("csrf_token", field.as_str()),
            ("account_name", "Cookie Cutter"),
            ("email", "cookie.cutter@example.test"),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ])
        .send()
        .await
        .expect("the sign-up answers");
    assert_eq!(
        signed_up.status(),
        reqwest::StatusCode::SEE_OTHER,
        "sign-up should succeed"
    );
    (page_cookies, set_cookies(&signed_up))
}

#[tokio::test]
async fn over_http_the_form_cookie_and_the_session_cookie_have_plain_names_without_secure() {
    let app = spawn_app().await;
    let (page, signed_up) = sign_up(&app, "keyward_csrf").await;

    assert!(
        page.iter().all(|c| c.name != "keyward_session"),
        "an anonymous page starts no session: {page:?}"
    );
    let csrf = only(&page, "keyward_csrf");
    assert_eq!(csrf.attribute("HttpOnly"), Some(None));
    assert_eq!(csrf.attribute("SameSite"), Some(Some("Strict")));
    assert_eq!(csrf.attribute("Path"), Some(Some("/")));
    assert_eq!(csrf.attribute("Secure"), None);

    let session = only(&signed_up, "keyward_session");
    assert_eq!(session.attribute("HttpOnly"), Some(None));
    assert_eq!(session.attribute("SameSite"), Some(Some("Lax")));
    assert_eq!(session.attribute("Path"), Some(Some("/")));
    assert_eq!(session.attribute("Secure"), None);
}

#[tokio::test]
async fn behind_an_https_public_url_both_cookies_are_secure_and_host_prefixed() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("https://keys.example.com".into());
    })
    .await;
    let (page, signed_up) = sign_up(&app, "__Host-keyward_csrf").await;

    let csrf = only(&page, "__Host-keyward_csrf");
    let session = only(&signed_up, "__Host-keyward_session");
    for cookie in [csrf, session] {
        assert_eq!(cookie.attribute("Secure"), Some(None), "{cookie:?}");
        assert_eq!(cookie.attribute("HttpOnly"), Some(None), "{cookie:?}");
        assert_eq!(cookie.attribute("Path"), Some(Some("/")), "{cookie:?}");
        assert_eq!(
            cookie.attribute("Domain"),
            None,
            "__Host- cookies must not name a domain: {cookie:?}"
        );
    }
}

#[tokio::test]
async fn the_anonymous_form_cookie_is_rotated_at_sign_in_and_sign_out() {
    let app = spawn_app().await;
    let (page, signed_up) = sign_up(&app, "keyward_csrf").await;
    let before = only(&page, "keyward_csrf");
    let after = only(&signed_up, "keyward_csrf");
    assert_ne!(before.value, after.value, "a new nonce at sign-in");

    let browser = crate::support::browser::signed_up(&app.address, "Rotating Cookies").await;
    let signed_out = browser.log_out().await;
    let rotated = signed_out
        .set_cookie("keyward_csrf")
        .expect("a new form cookie at sign-out");
    assert_ne!(rotated.value, before.value);
    assert_ne!(rotated.value, after.value);
}
