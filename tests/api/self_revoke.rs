//! `DELETE /token`: a token revokes itself with nothing but its own key and secret, as a CI
//! job that leaked its token would.

use reqwest::StatusCode;

use crate::support::admin::{
    SuspendedBy, assert_api_refuses, assert_api_works, assert_suspended, audit_log, find_event,
    submit,
};
use crate::support::api::{Token, assert_401, expect_json, spawn_app};
use crate::support::browser::{read_created_page, signed_up};

#[tokio::test]
async fn a_token_revokes_itself_and_its_next_call_is_a_401() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Leaky CI").await;
    let leaked = owner.create_token("ci job").await;
    let sibling = owner.create_token("deploys").await;

    let body = expect_json(app.delete("/token", &leaked.token).await, StatusCode::OK).await;
    let message = body["message"].as_str().expect("a message");
    assert!(message.contains(&leaked.token.key), "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");

    assert_401(app.get_with_auth("/token", &leaked.token).await, false).await;
    assert_api_refuses(&app, &leaked.token).await;
    assert_api_works(&app, &sibling.token).await;

    // The log names the token itself as who revoked it, and the page says so.
    let revoked = audit_log(&owner, "?action=token.revoked").await;
    let event = find_event(&revoked, "token.revoked", &leaked.token.key);
    assert_eq!(
        event.actor,
        format!("API token {} (ci job)", leaked.token.key),
        "{event:?}"
    );
    owner
        .get(&format!("/tokens/{}", leaked.id))
        .await
        .assert_contains("by the token itself");
}

#[tokio::test]
async fn a_read_only_token_may_still_revoke_itself() {
    let app = spawn_app().await;
    let account = app.create_account("Read Only").await;
    let token = app.create_token(&account, "reader", "read").await;

    expect_json(app.delete("/token", &token).await, StatusCode::OK).await;

    assert_api_refuses(&app, &token).await;
}

#[tokio::test]
async fn without_the_secret_nothing_is_revoked() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Guarded").await;
    let token = owner.create_token("ci").await;
    let guess = Token {
        key: token.token.key.clone(),
        secret: format!("{}x", token.token.secret),
    };

    assert_401(app.delete("/token", &guess).await, false).await;

    assert_api_works(&app, &token.token).await;
}

#[tokio::test]
async fn a_revoked_token_cannot_revoke_itself_again() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Twice").await;
    let form = owner.token_form().await;
    let token = read_created_page(&owner.submit_token(&form, "ci", &["read"], "").await);

    expect_json(app.delete("/token", &token.token).await, StatusCode::OK).await;
    assert_401(app.delete("/token", &token.token).await, false).await;

    let revoked = audit_log(&owner, "?action=token.revoked").await;
    assert_eq!(revoked.len(), 1, "revoked once: {revoked:?}");
}

#[tokio::test]
async fn a_token_over_its_rate_limit_may_still_revoke_itself() {
    let app = spawn_app().await;
    let account = app.create_account("Throttled CI").await;
    let token = app
        .create_token_with(&account, "ci", "read", &["--rate-limit", "1"])
        .await;
    assert_api_works(&app, &token).await;
    let limited = app.get_with_auth("/plans", &token).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);

    expect_json(app.delete("/token", &token).await, StatusCode::OK).await;
    assert_401(app.get_with_auth("/token", &token).await, false).await;
}

#[tokio::test]
async fn a_suspended_accounts_token_may_revoke_itself_and_do_nothing_else() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Suspended CI").await;
    let leaked = owner.create_token("ci job").await;
    submit(
        &owner,
        "/members",
        "/account/api-access",
        &[("state", "suspended")],
    )
    .await;
    assert_suspended(
        app.get_with_auth("/plans", &leaked.token).await,
        SuspendedBy::Owners,
    )
    .await;
    assert_suspended(
        app.get_with_auth("/token", &leaked.token).await,
        SuspendedBy::Owners,
    )
    .await;

    expect_json(app.delete("/token", &leaked.token).await, StatusCode::OK).await;
    assert_401(app.get_with_auth("/token", &leaked.token).await, false).await;
    let revoked = audit_log(&owner, "?action=token.revoked").await;
    find_event(&revoked, "token.revoked", &leaked.token.key);
}

#[tokio::test]
async fn a_reason_can_neither_name_another_actor_nor_carry_a_direction_override() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Forged Reasons").await;
    let token = owner.create_token("ci job").await;

    let page = owner.revoke(token.id, "Deploy \u{202e}txt.exe").await;
    page.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("U+202E");
    assert_api_works(&app, &token.token).await;

    owner
        .revoke(token.id, "Revoked by the token itself (DELETE /token).")
        .await
        .assert_redirect(&format!("/tokens/{}", token.id));
    let shown = owner.get(&format!("/tokens/{}", token.id)).await;
    let text = shown.text();
    assert!(!text.contains("by the token itself:"), "{text}");
    assert!(
        text.contains(&format!(
            "by {}: “Revoked by the token itself (DELETE /token).”",
            crate::support::browser::email_for("Forged Reasons")
        )),
        "{text}"
    );
}
