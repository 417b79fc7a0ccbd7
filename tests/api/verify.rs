//! `GET /verify`: a proxy asks whether a request may pass. An active token gets a 204
//! naming its account, key and scopes; anything else gets exactly the guard's answer.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};

use crate::support::admin::{SuspendedBy, account_id, assert_suspended, operator, submit};
use crate::support::api::{TestApp, Token, assert_401, assert_error_envelope, basic, spawn_app};
use crate::support::browser::{email_for, signed_up};

async fn verify(app: &TestApp, path: &str, token: &Token) -> reqwest::Response {
    app.get_with_auth(path, token).await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_active_token_gets_a_204_naming_its_account_key_and_scopes() {
    let app = spawn_app().await;
    let (slug, token) = app.account_with_token("Proxied Inc").await;
    // The proxied request is a browser's: its Accept is HTML, and that is no reason to refuse.
    let response = app
        .client
        .get(app.url("/verify"))
        .basic_auth(&token.key, Some(&token.secret))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "x-keyward-account"), Some(slug.as_str()));
    assert_eq!(
        header(&response, "x-keyward-token"),
        Some(token.key.as_str())
    );
    assert_eq!(header(&response, "x-keyward-scopes"), Some("read,write"));
    assert_eq!(response.text().await.unwrap(), "");

    // nginx keeps the original method on its subrequest: a POST is checked the same way.
    let post = app
        .client
        .post(app.url("/verify"))
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn every_refusal_is_exactly_the_guards() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Refused Inc").await;
    assert_401(app.get_without_auth("/verify").await, false).await;
    let wrong = Token {
        key: token.key.clone(),
        secret: "kws_wrong".into(),
    };
    assert_401(verify(&app, "/verify", &wrong).await, false).await;
    let empty = app
        .get_with_header("/verify", Some(basic(&format!("{}:", token.key))))
        .await;
    assert_401(empty, true).await;
    let garbage = app
        .get_with_header("/verify", Some(HeaderValue::from_static("Digest nonsense")))
        .await;
    assert_401(garbage, false).await;
    let bearer = app
        .get_with_header("/verify", Some(HeaderValue::from_static("Bearer nonsense")))
        .await;
    let checked = crate::support::api::check_401_after(
        bearer,
        Some(crate::support::api::WRONG_SCHEME),
        crate::support::api::SUPPORT_EMAIL,
    )
    .await;
    assert_eq!(checked, Ok(()));

    app.revoke(&token.key).await;
    app.pick_up_changes().await;
    assert_401(verify(&app, "/verify", &token).await, false).await;
}

#[tokio::test]
async fn a_suspended_account_gets_the_guards_403() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Suspended Proxy Co").await;
    let kept = owner.create_token("behind nginx").await;
    assert_eq!(
        verify(&app, "/verify", &kept.token).await.status(),
        StatusCode::NO_CONTENT
    );
    let op = operator(&app, &email_for("verify operator")).await;
    let account = account_id(&op, "Suspended Proxy Co").await;
    submit(
        &op,
        "/admin",
        &format!("/admin/accounts/{account}/api-access"),
        &[("state", "suspended"), ("reason", "review")],
    )
    .await;
    assert_suspended(
        verify(&app, "/verify", &kept.token).await,
        SuspendedBy::Operator,
    )
    .await;
}

#[tokio::test]
async fn a_required_scope_comes_from_the_query_or_the_proxys_header() {
    let app = spawn_app().await;
    let slug = app.create_account("Scoped Inc").await;
    let reader = app.create_token(&slug, "reader", "read").await;

    assert_eq!(
        verify(&app, "/verify?scope=read", &reader).await.status(),
        StatusCode::NO_CONTENT
    );
    let errors = assert_error_envelope(
        verify(&app, "/verify?scope=write", &reader).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(errors[0].contains("'write' scope"), "{errors:?}");

    let by_header = app
        .client
        .get(app.url("/verify"))
        .basic_auth(&reader.key, Some(&reader.secret))
        .header("X-Keyward-Required-Scope", "write")
        .send()
        .await
        .unwrap();
    assert_error_envelope(by_header, StatusCode::FORBIDDEN).await;

    // A misspelt scope in the proxy's setting fails closed, naming it.
    let errors = assert_error_envelope(
        verify(&app, "/verify?scope=wirte", &reader).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(errors[0].contains("wirte"), "{errors:?}");

    // Without credentials, the 401 comes first, whatever scope is asked for.
    let anonymous = app
        .client
        .get(app.url("/verify?scope=wirte"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().get(AUTHORIZATION).is_none());
}

#[tokio::test]
async fn a_parameter_or_header_verify_does_not_know_fails_closed_with_a_400() {
    let app = spawn_app().await;
    let slug = app.create_account("Typo Inc").await;
    let read_only = app.create_token(&slug, "reader", "read").await;
    for path in [
        "/verify?scopes=write",
        "/verify?Scope=write",
        "/verify?scope=read&x=1",
    ] {
        let errors = assert_error_envelope(
            verify(&app, path, &read_only).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            errors[0].contains("it knows only: scope"),
            "{path}: {errors:?}"
        );
    }
    let plural = app
        .client
        .get(app.url("/verify"))
        .basic_auth(&read_only.key, Some(&read_only.secret))
        .header("X-Keyward-Required-Scopes", "write")
        .send()
        .await
        .unwrap();
    let errors = assert_error_envelope(plural, StatusCode::BAD_REQUEST).await;
    assert!(
        errors[0].contains("x-keyward-required-scopes"),
        "{errors:?}"
    );
    // What it does know still works.
    assert_eq!(
        verify(&app, "/verify?scope=read", &read_only)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
}
