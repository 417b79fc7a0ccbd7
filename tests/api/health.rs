//! `GET /healthz`: unguarded, so load balancers can ask without a token.

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use crate::support::api::spawn_app;

#[tokio::test]
async fn health_answers_without_a_token() {
    let app = spawn_app().await;

    let response = app.get_without_auth("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_ignores_a_bad_authorization_header() {
    let app = spawn_app().await;

    let response = app
        .get_with_header(
            "/healthz",
            Some(HeaderValue::from_static("Basic !!!notbase64")),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
}
