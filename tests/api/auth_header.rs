//! The guard's reading of the `Authorization` header: every malformed or wrong value is the
//! contracted 401 (never a 400 or 500), and only an active token gets through.

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use crate::support::api::{
    SUPPORT_EMAIL, WRONG_SCHEME, assert_401, base64, basic, check_401, check_401_after,
    http_client, spawn_app, unknown_key,
};
use crate::support::process::{ServerProcess, binary_account_with_token};
use crate::support::store::TestDb;

/// What a row of the table expects.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// 200 with the clusters body.
    Allowed,
    /// The standard 401.
    Unauthorized,
    /// The 401 with the empty-password sentence first.
    NoPassword,
    /// The 401 with the sentence that says to use Basic Auth first.
    WrongScheme,
}

use Outcome::{Allowed, NoPassword, Unauthorized, WrongScheme};

fn header(value: String) -> Option<HeaderValue> {
    Some(
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| panic!("{value:?} should be a valid header value")),
    )
}

fn basic_bytes(bytes: &[u8]) -> Option<HeaderValue> {
    header(format!("Basic {}", base64(bytes)))
}

#[tokio::test]
async fn every_authorization_header_gets_the_contracted_answer() {
    let app = spawn_app().await;
    let (account, good) = app.account_with_token("Header Table").await;
    let other = app.create_token(&account, "other", "read,write").await;
    let revoked = app.create_token(&account, "revoked", "read,write").await;
    app.revoke(&revoked.key).await;
    let creds = format!("{}:{}", good.key, good.secret);

    let cases: Vec<(&str, Option<HeaderValue>, Outcome)> = vec![
        ("valid Basic credentials", Some(basic(&creds)), Allowed),
        (
            "scheme in lower case",
            header(format!("basic {}", base64(creds.as_bytes()))),
            Allowed,
        ),
        (
            "scheme in upper case",
            header(format!("BASIC {}", base64(creds.as_bytes()))),
            Allowed,
        ),
        ("no Authorization header", None, Unauthorized),
        (
            "empty header",
            Some(HeaderValue::from_static("")),
            Unauthorized,
        ),
        (
            "the word Basic alone",
            Some(HeaderValue::from_static("Basic")),
            Unauthorized,
        ),
        (
            "Basic and a trailing space",
            Some(HeaderValue::from_static("Basic ")),
            Unauthorized,
        ),
        (
            "credentials that are not base64",
            Some(HeaderValue::from_static("Basic !!!notbase64")),
            Unauthorized,
        ),
        (
            "decoded value without a colon",
            Some(basic("nocolonhere")),
            NoPassword,
        ),
        (
            "key and an empty password",
            Some(basic(&format!("{}:", good.key))),
            NoPassword,
        ),
        ("key alone, no colon", Some(basic(&good.key)), NoPassword),
        (
            "empty user name",
            Some(basic(&format!(":{}", good.secret))),
            Unauthorized,
        ),
        (
            "a real secret of another token",
            Some(basic(&format!("{}:{}", good.key, other.secret))),
            Unauthorized,
        ),
        (
            "the secret with more after a colon",
            Some(basic(&format!("{creds}:extra"))),
            Unauthorized,
        ),
        (
            "unknown key with a real secret",
            Some(basic(&format!("{}:{}", unknown_key(), good.secret))),
            Unauthorized,
        ),
        (
            "revoked token",
            Some(basic(&format!("{}:{}", revoked.key, revoked.secret))),
            Unauthorized,
        ),
        (
            "decoded bytes that are not UTF-8",
            basic_bytes(&[0xff, 0xfe, 0x3a, 0x41]),
            Unauthorized,
        ),
        (
            "raw header bytes that are not UTF-8",
            Some(
                HeaderValue::from_bytes(b"Basic \xff\xfe\x3aA")
                    .expect("obs-text is allowed in a header"),
            ),
            Unauthorized,
        ),
        (
            "control character in the secret",
            Some(basic(&format!("{}:\u{1}{}", good.key, good.secret))),
            Unauthorized,
        ),
        (
            "tab in the key",
            Some(basic(&format!("kw_\t{}:{}", &good.key[3..], good.secret))),
            Unauthorized,
        ),
        (
            "header over 8 KiB",
            Some(basic(&format!("{}:{}", good.key, "A".repeat(7000)))),
            Unauthorized,
        ),
        // RFC 7235 allows several spaces after the scheme, so only the size refuses the next row.
        (
            "valid credentials after several spaces",
            header(format!(
                "Basic{}{}",
                " ".repeat(100),
                base64(creds.as_bytes())
            )),
            Allowed,
        ),
        (
            "valid credentials padded past 8 KiB",
            header(format!(
                "Basic{}{}",
                " ".repeat(9000),
                base64(creds.as_bytes())
            )),
            Unauthorized,
        ),
        (
            "Bearer scheme",
            Some(HeaderValue::from_static("Bearer x")),
            WrongScheme,
        ),
        (
            "Bearer scheme with the real secret",
            header(format!("Bearer {}", good.secret)),
            WrongScheme,
        ),
        (
            "Token scheme with key:secret, any case",
            header(format!("tOKEN {creds}")),
            WrongScheme,
        ),
        ("Bearer alone", header("Bearer".to_string()), WrongScheme),
        (
            "Digest scheme",
            Some(HeaderValue::from_static("Digest username=x")),
            Unauthorized,
        ),
    ];
    assert!(cases.len() >= 17);
    let oversized = cases
        .iter()
        .find(|c| c.0 == "header over 8 KiB")
        .and_then(|c| c.1.clone());
    assert!(
        oversized.is_some_and(|v| v.len() > 9000),
        "the oversized row should really be over 8 KiB"
    );

    let mut failures = Vec::new();
    for (name, value, outcome) in cases {
        let response = app.get_with_header("/clusters/", value).await;
        let verdict = match outcome {
            Allowed => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if status == StatusCode::OK && body["clusters"].is_array() && body["status"] == 200
                {
                    Ok(())
                } else {
                    Err(format!("expected 200 with clusters, got {status}: {text}"))
                }
            }
            Unauthorized => check_401(response, false, SUPPORT_EMAIL).await,
            NoPassword => check_401(response, true, SUPPORT_EMAIL).await,
            WrongScheme => check_401_after(response, Some(WRONG_SCHEME), SUPPORT_EMAIL).await,
        };
        if let Err(problem) = verdict {
            failures.push(format!("  {name} ({outcome:?}): {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "rows that broke the contract:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_token_created_to_expire_at_once_is_refused() {
    let app = spawn_app().await;
    let account = app.create_account("Expiring").await;
    let expired = app
        .create_token_with(
            &account,
            "short-lived",
            "read,write",
            &["--expires-in-days", "0"],
        )
        .await;

    assert_401(app.get_with_auth("/clusters/", &expired).await, false).await;
    assert_401(app.get_with_auth("/token", &expired).await, false).await;
}

#[tokio::test]
async fn a_token_with_days_left_is_let_in() {
    let app = spawn_app().await;
    let account = app.create_account("Not Yet Expired").await;
    let token = app
        .create_token_with(
            &account,
            "month",
            "read,write",
            &["--expires-in-days", "30"],
        )
        .await;

    assert_eq!(
        app.get_with_auth("/clusters/", &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_api_route_is_guarded() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Guarded").await;
    let guarded = app.create_cluster(&token, "Guarded One").await;
    let guarded_url = app.url(&format!("/clusters/{guarded}"));

    let client = &app.client;
    let requests = [
        ("GET /clusters", client.get(app.url("/clusters"))),
        ("GET /clusters/", client.get(app.url("/clusters/"))),
        ("GET /clusters/{slug}", client.get(&guarded_url)),
        (
            "PUT /clusters/{slug}",
            client
                .put(&guarded_url)
                .json(&serde_json::json!({"name": "x"})),
        ),
        ("DELETE /clusters/{slug}", client.delete(&guarded_url)),
        (
            "POST /clusters",
            client
                .post(app.url("/clusters"))
                .json(&serde_json::json!({"name": "x"})),
        ),
        // The guard runs before the body is read: a bad body without credentials is a 401.
        (
            "POST /clusters, body not JSON",
            client
                .post(app.url("/clusters"))
                .header("content-type", "application/json")
                .body("{nope"),
        ),
        ("GET /plans", client.get(app.url("/plans"))),
        ("GET /plans/sandbox", client.get(app.url("/plans/sandbox"))),
        ("GET /spaces", client.get(app.url("/spaces"))),
        (
            "GET /spaces/{path}",
            client.get(app.url("/spaces/omc/bonsai/us-east-1/common")),
        ),
        (
            "GET /spaces/{unknown}",
            client.get(app.url("/spaces/x/../y")),
        ),
        ("GET /releases", client.get(app.url("/releases"))),
        (
            "GET /releases/{slug}",
            client.get(app.url("/releases/elasticsearch-7.10.2")),
        ),
        ("GET /token", client.get(app.url("/token"))),
    ];
    let mut failures = Vec::new();
    for (name, request) in requests {
        let response = request.send().await.expect("the server should answer");
        if let Err(problem) = check_401(response, false, SUPPORT_EMAIL).await {
            failures.push(format!("  {name}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "unguarded or wrongly refused:\n{}",
        failures.join("\n")
    );

    // Nothing was changed by the refused writes.
    assert_eq!(app.cluster_slugs(&token).await, [guarded]);
}

#[tokio::test]
async fn the_support_address_in_401_bodies_is_a_setting() {
    let db = TestDb::new();
    let server =
        ServerProcess::start_with(&db.path, &[("KEYWARD_SUPPORT_EMAIL", "help@example.org")]).await;
    let (_, token) = binary_account_with_token(&db.path, "Support Setting", "ci").await;
    let client = http_client();

    let wrong = client
        .get(server.url("/clusters/"))
        .basic_auth(&token.key, Some("kws_wrong"))
        .send()
        .await
        .expect("the server should answer");
    if let Err(problem) = check_401(wrong, false, "help@example.org").await {
        panic!("the 401 should name the configured support address: {problem}");
    }

    let no_password = client
        .get(server.url("/clusters/"))
        .basic_auth(&token.key, None::<&str>)
        .send()
        .await
        .expect("the server should answer");
    if let Err(problem) = check_401(no_password, true, "help@example.org").await {
        panic!("the empty-password 401 should name the configured support address: {problem}");
    }
}
