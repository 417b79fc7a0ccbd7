//! `GET /token`: describes the calling token, so other services can check one.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::{assert_401, expect_json, spawn_app};

#[tokio::test]
async fn a_token_describes_itself() {
    let app = spawn_app().await;
    let account = app.create_account("Acme Inc").await;
    let token = app.create_token(&account, "deploy bot", "read,write").await;

    let response = app.get_with_auth("/token", &token).await;
    let text = response.text().await.expect("a body");
    assert!(
        !text.contains(&token.secret),
        "the secret must never be sent back: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");

    assert_eq!(body["status"], 200, "{body}");
    let described = &body["token"];
    assert_eq!(described["key"], json!(token.key), "{body}");
    assert_eq!(described["name"], "deploy bot", "{body}");
    assert_eq!(described["scopes"], json!(["read", "write"]), "{body}");
    assert_eq!(described["account"]["slug"], json!(account), "{body}");
    assert_eq!(described["account"]["name"], "Acme Inc", "{body}");
    assert!(
        described.get("expires_at").is_some_and(|e| e.is_null()),
        "a token without expiry says `\"expires_at\": null`: {body}"
    );
}

#[tokio::test]
async fn scopes_default_to_read_and_write() {
    let app = spawn_app().await;
    let account = app.create_account("Defaults").await;
    // No --scopes: the command line's default.
    let out = app
        .cli(&["token", "create", "--account", &account, "--name", "plain"])
        .await
        .expect("token create");
    let token = crate::helpers::parse_token_output(&out);

    let body = expect_json(app.get_with_auth("/token", &token).await, StatusCode::OK).await;

    assert_eq!(body["token"]["scopes"], json!(["read", "write"]), "{body}");
}

#[tokio::test]
async fn a_read_only_token_with_an_expiry_says_so() {
    let app = spawn_app().await;
    let account = app.create_account("Limited").await;
    let token = app
        .create_token_with(&account, "reporting", "read", &["--expires-in-days", "30"])
        .await;

    let body = expect_json(app.get_with_auth("/token", &token).await, StatusCode::OK).await;

    assert_eq!(body["token"]["scopes"], json!(["read"]), "{body}");
    assert!(
        body["token"]["expires_at"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "an expiring token gives its expiry as a string: {body}"
    );
}

#[tokio::test]
async fn describing_a_token_needs_that_token() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Someone").await;

    let response = app
        .client
        .get(app.url("/token"))
        .basic_auth(&token.key, Some("kws_not-the-secret"))
        .send()
        .await
        .expect("the server should answer");

    assert_401(response, false).await;
}

/// The line `token list` prints for a key.
fn listed_line(listed: &str, key: &str) -> String {
    listed
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("{key} is not in the token list:\n{listed}"))
        .to_string()
}

#[tokio::test]
async fn a_successful_call_is_recorded_as_the_tokens_last_use() {
    let app = spawn_app().await;
    let (account, used) = app.account_with_token("Usage").await;
    let idle = app.create_token(&account, "idle", "read,write").await;
    let list = || async {
        app.cli(&["token", "list", "--account", &account])
            .await
            .expect("token list")
    };
    let before = list().await;
    assert!(
        listed_line(&before, &used.key).contains("never"),
        "a new token was never used: {before}"
    );

    // A refused attempt is not a use; a successful call is.
    let refused = app
        .client
        .get(app.url("/clusters/"))
        .basic_auth(&idle.key, Some(&used.secret))
        .send()
        .await
        .expect("the server should answer");
    assert_401(refused, false).await;
    assert_eq!(
        app.get_with_auth("/clusters/", &used).await.status(),
        StatusCode::OK
    );

    let recorded = crate::helpers::eventually(
        std::time::Duration::from_secs(3),
        std::time::Duration::from_millis(100),
        || async {
            let line = listed_line(&list().await, &used.key);
            !line.contains("never") && line.contains("127.0.0.1")
        },
    )
    .await;
    let after = list().await;
    assert!(
        recorded,
        "the call's time and address never reached the token list:\n{after}"
    );
    assert!(
        listed_line(&after, &idle.key).contains("never"),
        "a refused attempt was recorded as a use:\n{after}"
    );
}

#[tokio::test]
async fn a_stored_scope_that_does_not_parse_is_an_error_never_more_rights() {
    let app = spawn_app().await;
    let account = app.create_account("Tampered").await;
    let token = app.create_token(&account, "reader", "read").await;
    // A bad migration or a hand edit leaves a value no version of Keyward wrote.
    crate::admin_helpers::execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET scopes = 'read,superuser' WHERE key = '{}'",
            token.key
        ),
    )
    .await;

    for path in ["/token", "/plans"] {
        let response = app.get_with_auth(path, &token).await;
        let body = expect_json(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert_eq!(
            body["status"], 500,
            "GET {path} with an unreadable scope: {body}"
        );
    }
}
