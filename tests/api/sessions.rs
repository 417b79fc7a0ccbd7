//! Dashboard sessions: the cookie's attributes, a new id at sign-in, and an end on the server
//! at sign-out, so that a copied cookie is worth nothing afterwards.

use reqwest::StatusCode;

use crate::support::api::spawn_app;
use crate::support::browser::{Browser, PASSWORD, SESSION_COOKIE, email_for, signed_up};

#[tokio::test]
async fn a_visitor_who_is_not_signed_in_is_sent_to_sign_in() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);

    for path in [
        "/tokens",
        "/tokens/new",
        "/tokens/1",
        "/tokens/1/confirm-revoke",
    ] {
        browser.get(path).await.assert_redirect("/login");
    }
}

#[tokio::test]
async fn the_session_cookie_is_http_only_same_site_lax_for_the_whole_site_and_not_secure_over_http()
{
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);

    let signed_up = browser
        .submit_signup(
            "Cookie Jar Ltd",
            &email_for("Cookie Jar Ltd"),
            PASSWORD,
            PASSWORD,
        )
        .await;
    signed_up.assert_redirect("/tokens");
    let cookie = signed_up.session_set_cookie().unwrap_or_else(|| {
        panic!(
            "signing in should set {SESSION_COOKIE}; headers {:?}",
            signed_up.headers
        )
    });

    assert!(
        !cookie.value.is_empty(),
        "the session cookie should carry an id: {cookie:?}"
    );
    assert_eq!(
        cookie.attribute("HttpOnly"),
        Some(None),
        "the cookie should be HttpOnly: {cookie:?}"
    );
    assert!(
        cookie
            .attribute("SameSite")
            .flatten()
            .is_some_and(|v| v.eq_ignore_ascii_case("Lax")),
        "the cookie should be SameSite=Lax: {cookie:?}"
    );
    assert_eq!(
        cookie.attribute("Path"),
        Some(Some("/")),
        "the cookie should cover the whole site: {cookie:?}"
    );
    assert_eq!(
        cookie.attribute("Secure"),
        None,
        "over plain HTTP the cookie can't be Secure: {cookie:?}"
    );
}

#[tokio::test]
async fn signing_in_issues_a_new_session_id_and_a_planted_one_is_worthless_after() {
    let app = spawn_app().await;
    let victim_email = email_for("Fixation Target");
    signed_up(&app.address, "Fixation Target").await;
    // An attacker signs in to an account of their own and plants that session's cookie in
    // the victim's browser: anonymous visitors have no session id to plant.
    let attacker = signed_up(&app.address, "Fixation Attacker").await;
    let planted = attacker
        .session_cookie()
        .expect("a signed-in browser has a session cookie");

    let browser = Browser::with_session_cookie(&app.address, &planted);
    let csrf = browser.csrf_from("/login").await;
    browser
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", &victim_email),
                ("password", PASSWORD),
            ],
        )
        .await
        .assert_redirect("/tokens");
    let after = browser
        .session_cookie()
        .expect("a signed-in browser has a session cookie");

    assert_ne!(planted, after, "the session id must change at sign-in");
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&victim_email);
    // The planted id ended with the sign-in: whoever kept it holds nothing, not even the
    // attacker's own session.
    Browser::with_session_cookie(&app.address, &planted)
        .get("/tokens")
        .await
        .assert_redirect("/login");
}

#[tokio::test]
async fn after_signing_out_a_replayed_session_cookie_is_sent_to_sign_in() {
    let app = spawn_app().await;
    let browser = signed_up(&app.address, "Signing Off").await;
    let copied = browser
        .session_cookie()
        .expect("a signed-in browser has a session cookie");
    // The copy works while the session lives: the replay below proves something.
    Browser::with_session_cookie(&app.address, &copied)
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);

    browser
        .log_out()
        .await
        .assert_redirect("/login?signed_out=1");
    browser
        .get("/login?signed_out=1")
        .await
        .assert_contains("You have signed out.");

    browser.get("/tokens").await.assert_redirect("/login");
    Browser::with_session_cookie(&app.address, &copied)
        .get("/tokens")
        .await
        .assert_redirect("/login");
}
