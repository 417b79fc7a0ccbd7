//! Every dashboard form that changes state is a POST that must carry the session's CSRF token
//! and, when the browser names its origin, come from this site. Anything else is a 403 page
//! and changes nothing.

use reqwest::StatusCode;

use crate::support::api::{TestApp, expect_json, spawn_app};
use crate::support::browser::{Browser, CaseFailures, CreatedToken, PASSWORD, html_page_problem};

const FOREIGN_ORIGIN: &str = "http://evil.example";

/// Every POST route with otherwise valid fields, so that only the CSRF check can refuse it.
/// The new-token form's nonce is left out: the CSRF check comes first either way.
fn post_routes(token_id: i32) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "/signup".to_string(),
            vec![
                ("account_name", "Forged Signup"),
                ("email", "forged.signup@example.test"),
                ("password", PASSWORD),
                ("password_confirmation", PASSWORD),
            ],
        ),
        (
            "/login".to_string(),
            vec![("email", "csrf.owner@example.test"), ("password", PASSWORD)],
        ),
        ("/logout".to_string(), vec![]),
        (
            "/tokens".to_string(),
            vec![
                ("name", "forged token"),
                ("read", "1"),
                ("expires_in_days", ""),
            ],
        ),
        (
            format!("/tokens/{token_id}/revoke"),
            vec![("reason", "forged revoke")],
        ),
    ]
}

/// A signed-in owner with one token, and the token.
async fn owner_with_token(app: &TestApp) -> (Browser, CreatedToken) {
    let browser = Browser::new(&app.address);
    browser
        .sign_up("CSRF Owner", "csrf.owner@example.test")
        .await;
    let created = browser.create_token("keep me").await;
    (browser, created)
}

/// Nothing the refused forms asked for happened: still signed in, the token still works,
/// no token and no account were made.
async fn assert_nothing_changed(app: &TestApp, browser: &Browser, created: &CreatedToken) {
    let list = browser.get("/tokens").await;
    list.assert_html_page(StatusCode::OK);
    assert!(
        !list.text().contains("forged token"),
        "a refused form created a token; body:\n{}",
        list.body
    );
    let response = app.get_with_auth("/clusters/", &created.token).await;
    expect_json(response, StatusCode::OK).await;
    // The forged sign-up's email is still free.
    Browser::new(&app.address)
        .sign_up("Forged Signup", "forged.signup@example.test")
        .await;
}

#[tokio::test]
async fn a_form_post_without_the_csrf_token_or_with_a_wrong_one_is_forbidden() {
    let app = spawn_app().await;
    let (browser, created) = owner_with_token(&app).await;
    let real = browser.csrf_from("/tokens").await;
    // The last character changed: to `x`, or to `y` when it already was an `x` (one
    // token in 64 ends in `x`, and then the "wrong" one would be the real one).
    let last = if real.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &real[..real.len() - 1]);
    assert_ne!(wrong, real);

    let mut failures = CaseFailures::default();
    for (path, fields) in post_routes(created.id) {
        for (variant, csrf) in [
            ("no csrf_token", None),
            ("a wrong csrf_token", Some(wrong.as_str())),
        ] {
            let mut form: Vec<(&str, &str)> = fields.clone();
            if let Some(csrf) = csrf {
                form.push(("csrf_token", csrf));
            }
            let page = browser.post(&path, &form).await;
            let problems = html_page_problem(&page, StatusCode::FORBIDDEN);
            failures.record(variant, problems.into_iter().collect(), &page);
        }
    }
    failures.assert_none("expected a 403 page");
    assert_nothing_changed(&app, &browser, &created).await;
}

#[tokio::test]
async fn a_form_post_from_another_origin_is_forbidden_even_with_the_right_token() {
    let app = spawn_app().await;
    let (browser, created) = owner_with_token(&app).await;
    let real = browser.csrf_from("/tokens").await;

    let mut failures = CaseFailures::default();
    for (path, fields) in post_routes(created.id) {
        let mut form: Vec<(&str, &str)> = fields.clone();
        form.push(("csrf_token", &real));
        let page = browser.post_from(FOREIGN_ORIGIN, &path, &form).await;
        let problems = html_page_problem(&page, StatusCode::FORBIDDEN);
        failures.record("foreign origin", problems.into_iter().collect(), &page);
    }
    failures.assert_none("expected a 403 page");
    assert_nothing_changed(&app, &browser, &created).await;
}

#[tokio::test]
async fn a_form_post_from_our_own_origin_with_the_token_goes_through() {
    let app = spawn_app().await;
    let (browser, created) = owner_with_token(&app).await;
    let csrf = browser
        .csrf_from(&format!("/tokens/{}/confirm-revoke", created.id))
        .await;

    browser
        .post_from(
            &app.address,
            &format!("/tokens/{}/revoke", created.id),
            &[("csrf_token", &csrf), ("reason", "same origin")],
        )
        .await
        .assert_redirect(&format!("/tokens/{}", created.id));
    browser
        .get(&format!("/tokens/{}", created.id))
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("same origin");
}
