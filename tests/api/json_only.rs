//! The API speaks JSON only. A body must be labelled `application/json`, and the client must
//! accept a JSON answer; anything else is a 422 in the envelope, whose sentence names the
//! header, as Bonsai answers. A form or a text body never creates or changes a cluster, even
//! when it holds valid JSON: a cross-site form could send it with a browser's cached credentials.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::api::{Token, assert_401, assert_error_envelope, expect_json, spawn_app};

const NOT_ACCEPTABLE: &str =
    "The Accept header specifies a response format other than application/json.";

#[tokio::test]
async fn a_body_not_labelled_json_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Labelled").await;
    let keeper = app.create_cluster(&token, "Keeper").await;
    let valid = r#"{"name": "Sneaky"}"#;
    let keeper_path = format!("/clusters/{keeper}");

    // (method, path, Content-Type or none, body, the sentence)
    let cases: [(Method, &str, Option<&str>, &str, &str); 8] = [
        (
            Method::POST,
            "/clusters",
            Some("text/plain"),
            valid,
            "The Content-Type header specifies text/plain.",
        ),
        (
            Method::POST,
            "/clusters/",
            Some("text/plain;charset=UTF-8"),
            valid,
            "The Content-Type header specifies text/plain.",
        ),
        (
            Method::POST,
            "/clusters",
            Some("application/x-www-form-urlencoded"),
            "name=Sneaky",
            "The Content-Type header specifies application/x-www-form-urlencoded.",
        ),
        (
            Method::POST,
            "/clusters",
            Some("multipart/form-data; boundary=x"),
            "--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nSneaky\r\n--x--\r\n",
            "The Content-Type header specifies multipart/form-data.",
        ),
        (
            Method::POST,
            "/clusters",
            Some("application/xml"),
            "<cluster><name>Sneaky</name></cluster>",
            "The Content-Type header specifies application/xml.",
        ),
        (
            Method::POST,
            "/clusters",
            None,
            valid,
            "The Content-Type header is missing; send the body as application/json.",
        ),
        (
            Method::PUT,
            &keeper_path,
            Some("text/plain"),
            r#"{"name": "Renamed"}"#,
            "The Content-Type header specifies text/plain.",
        ),
        (
            Method::PUT,
            &keeper_path,
            Some("application/json-patch+json"),
            r#"{"name": "Renamed"}"#,
            "The Content-Type header specifies application/json-patch+json.",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, content_type, body, sentence) in cases {
        let mut request = app
            .client
            .request(method.clone(), app.url(path))
            .basic_auth(&token.key, Some(&token.secret))
            .body(body.to_string());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let response = request.send().await.expect("the server should answer");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let expected = json!({"errors": [sentence], "status": 422});
        let got: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status != StatusCode::UNPROCESSABLE_ENTITY || got != expected {
            failures.push(format!(
                "  {method} {path} ({content_type:?}): {status} {text}\n    expected {expected}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not refused as expected:\n{}",
        failures.join("\n")
    );

    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{keeper}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["cluster"]["name"], "Keeper", "{shown}");
    assert_eq!(app.cluster_slugs(&token).await, [keeper]);
}

#[tokio::test]
async fn json_with_parameters_is_json() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Charset").await;
    let (plan, space) = app.a_plan_and_space(&token).await;

    let response = app
        .client
        .post(app.url("/clusters"))
        .basic_auth(&token.key, Some(&token.secret))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(json!({"name": "Typed", "plan": plan, "space": space}).to_string())
        .send()
        .await
        .expect("the server should answer");

    expect_json(response, StatusCode::ACCEPTED).await;
}

/// `GET path` with the token (if any) and the Accept header (if any).
async fn get_accepting(
    app: &crate::helpers::TestApp,
    path: &str,
    token: Option<&Token>,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.basic_auth(&token.key, Some(&token.secret));
    }
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    request.send().await.expect("the server should answer")
}

#[tokio::test]
async fn every_api_route_answers_only_clients_that_accept_json() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Picky").await;
    let routes = ["/clusters", "/clusters/", "/plans", "/token", "/healthz"];
    let acceptable = [
        None,
        Some("*/*"),
        Some("application/*"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/html,application/xhtml+xml,*/*;q=0.8"),
    ];
    let unacceptable = [
        "text/html",
        "application/xml",
        "text/*",
        "application/json;q=0",
        "image/png, text/plain",
    ];

    let mut failures = Vec::new();
    for path in routes {
        for accept in acceptable {
            let response = get_accepting(&app, path, Some(&token), accept).await;
            if response.status() != StatusCode::OK {
                failures.push(format!(
                    "  {path} with Accept {accept:?}: {} (expected 200)",
                    response.status()
                ));
            }
        }
        for accept in unacceptable {
            let response = get_accepting(&app, path, Some(&token), Some(accept)).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let expected = json!({"errors": [NOT_ACCEPTABLE], "status": 422});
            let got: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if status != StatusCode::UNPROCESSABLE_ENTITY || got != expected {
                failures.push(format!("  {path} with Accept {accept:?}: {status} {text}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Accept was not honoured:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn both_headers_wrong_names_both() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Doubly Wrong").await;

    let response = app
        .client
        .post(app.url("/clusters"))
        .basic_auth(&token.key, Some(&token.secret))
        .header(ACCEPT, "text/html")
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"name": "Nope"}"#)
        .send()
        .await
        .expect("the server should answer");

    let errors = assert_error_envelope(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        errors,
        [
            NOT_ACCEPTABLE,
            "The Content-Type header specifies text/plain."
        ]
    );
    assert!(app.cluster_slugs(&token).await.is_empty());
}

#[tokio::test]
async fn without_a_token_the_answer_is_the_401_whatever_the_headers() {
    let app = spawn_app().await;

    let response = app
        .client
        .post(app.url("/clusters"))
        .header(ACCEPT, "text/html")
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"name": "Anonymous"}"#)
        .send()
        .await
        .expect("the server should answer");

    assert_401(response, false).await;
}

#[tokio::test]
async fn an_oversized_body_gets_a_413_in_the_envelope() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Oversized Inc").await;
    let huge = json!({"name": "x".repeat(300 * 1024)});
    let response = app.post_json("/clusters", &token, &huge).await;
    let errors = assert_error_envelope(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(errors[0].contains("larger than"), "{errors:?}");
}
