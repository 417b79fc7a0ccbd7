//! Requests that match no route, or a route but not its method, still get the JSON envelope.

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};

use crate::support::api::{assert_error_envelope, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Lost").await;

    let response = app
        .client
        .get(app.url("/nope"))
        .basic_auth(&token.key, Some(&token.secret))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .expect("the server should answer");

    assert_error_envelope(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Wrong Verb").await;

    let mut failures = Vec::new();
    for (method, path) in [
        (Method::PATCH, "/plans"),
        // DELETE /token revokes the caller (self_revoke.rs); PATCH is no verb of it.
        (Method::PATCH, "/token"),
        (Method::PATCH, "/clusters"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .basic_auth(&token.key, Some(&token.secret))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .expect("the server should answer");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let is_envelope =
            body["status"] == 405 && body["errors"].as_array().is_some_and(|e| !e.is_empty());
        if status != StatusCode::METHOD_NOT_ALLOWED || !is_envelope {
            failures.push(format!("  {method} {path}: {status} {text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "expected a 405 envelope:\n{}",
        failures.join("\n")
    );
}
