//! The session cookie's name and attributes, over plain HTTP and behind an HTTPS public URL.

use crate::dashboard_helpers::SetCookie;
use crate::helpers::{spawn_app, spawn_app_with};

async fn login_page_cookie(address: &str, client: &reqwest::Client) -> SetCookie {
    let response = client
        .get(format!("{address}/login"))
        .send()
        .await
        .expect("the login page answers");
    let header = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("keyward_session="))
        .expect("the login page starts a session (it holds the form's CSRF token)")
        .to_string();
    SetCookie::parse(&header)
}

#[tokio::test]
async fn over_http_the_cookie_is_keyward_session_without_secure() {
    let app = spawn_app().await;
    let cookie = login_page_cookie(&app.address, &app.client).await;
    assert_eq!(cookie.name, "keyward_session");
    assert_eq!(cookie.attribute("HttpOnly"), Some(None));
    assert_eq!(cookie.attribute("SameSite"), Some(Some("Lax")));
    assert_eq!(cookie.attribute("Path"), Some(Some("/")));
    assert_eq!(cookie.attribute("Secure"), None);
}

#[tokio::test]
async fn behind_an_https_public_url_the_cookie_is_secure_and_host_prefixed() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("https://keys.example.com".into());
    })
    .await;
    let cookie = login_page_cookie(&app.address, &app.client).await;
    assert_eq!(cookie.name, "__Host-keyward_session");
    assert_eq!(cookie.attribute("Secure"), Some(None));
    assert_eq!(cookie.attribute("HttpOnly"), Some(None));
    assert_eq!(cookie.attribute("Path"), Some(Some("/")));
    assert_eq!(
        cookie.attribute("Domain"),
        None,
        "__Host- cookies must not name a domain"
    );
}
