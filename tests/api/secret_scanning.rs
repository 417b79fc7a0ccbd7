//! `POST /secret-scanning/report`: a scanner reports strings it found; every live Keyward
//! secret among them has its token revoked by the system, and the answer labels each
//! string without saying whose it was.

use keyward::auth::report_keys::ReportKeys;
use keyward::domain::TokenSecret;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::admin::{audit_log, find_event};
use crate::support::api::{
    TestApp, assert_401, assert_error_envelope, expect_json, spawn_app, spawn_app_with,
};
use crate::support::browser::signed_up;

const REPORT: &str = "/secret-scanning/report";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn item(token: &str, url: &str) -> Value {
    json!({"token": token, "type": "keyward_api_token", "url": url, "source": "content"})
}

async fn send(app: &TestApp, body: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(REPORT))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("the server should answer")
}

async fn verdicts(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("a JSON answer");
    body.as_array()
        .expect("an array, as GitHub expects")
        .clone()
}

#[tokio::test]
async fn a_leaked_live_secret_is_revoked_by_the_system_and_nothing_else_is_touched() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Leaky Widgets").await;
    let leaked = owner.create_token("pushed to github").await;
    let kept = owner.create_token("still private").await;
    let unknown = TokenSecret::generate();
    let url = "https://github.com/leaky/widgets/blob/abc123/.env";
    let body = json!([
        item(&leaked.token.secret, url),
        item("kws_not-even-close", url),
        item(unknown.expose(), url),
    ])
    .to_string();

    let response = send(&app, &body, &[]).await;
    let text_answer = verdicts(response).await;
    let labels: Vec<&str> = text_answer
        .iter()
        .map(|v| v["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["true_positive", "false_positive", "false_positive"]
    );
    assert_eq!(
        text_answer[0]["token_hash"],
        sha256_hex(&leaked.token.secret)
    );
    assert_eq!(
        text_answer[1]["token_hash"],
        sha256_hex("kws_not-even-close")
    );
    assert_eq!(text_answer[0]["token_type"], "keyward_api_token");
    let shown = serde_json::to_string(&text_answer).unwrap();
    for private in ["Leaky", "leaky-widgets", &leaked.token.key] {
        assert!(
            !shown.contains(private),
            "the answer names no account or key: {shown}"
        );
    }

    assert_401(app.get_with_auth("/plans", &leaked.token).await, false).await;
    expect_json(
        app.get_with_auth("/plans", &kept.token).await,
        StatusCode::OK,
    )
    .await;

    let rows = audit_log(&owner, "").await;
    let event = find_event(&rows, "token.revoked", &leaked.token.key);
    assert_eq!(event.actor, "system");
    assert!(
        event.detail.contains(url) && event.detail.contains("content"),
        "{event:?}"
    );

    // Reported again: still ours, and nothing more is written.
    let again = verdicts(send(&app, &body, &[]).await).await;
    assert_eq!(again[0]["label"], "true_positive");
    let rows_after = audit_log(&owner, "").await;
    assert_eq!(
        rows_after.len(),
        rows.len(),
        "a second report writes nothing"
    );
}

#[tokio::test]
async fn oversized_or_malformed_reports_are_refused_whole() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Bounded Co").await;
    let token = owner.create_token("kept").await;
    let many: Vec<Value> = (0..101).map(|_| item("x", "u")).collect();
    let mut with_secret = many.clone();
    with_secret[100] = item(&token.token.secret, "u");
    let huge = json!([item(&"x".repeat(70 * 1024), "u")]).to_string();
    let cases = [
        (json!(with_secret).to_string(), "at most 100"),
        (huge, "larger than 64 KiB"),
        (r#"{"token": "x"}"#.to_string(), "JSON array"),
        (r#"[{"url": "u"}]"#.to_string(), "token"),
    ];
    for (body, expected) in cases {
        let errors = assert_error_envelope(
            send(&app, &body, &[]).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            errors[0].contains(expected),
            "{errors:?} should say {expected:?}"
        );
    }
    expect_json(
        app.get_with_auth("/plans", &token.token).await,
        StatusCode::OK,
    )
    .await;
    let get = app.client.get(app.url(REPORT)).send().await.unwrap();
    assert_error_envelope(get, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn one_address_sending_too_many_reports_gets_a_429_with_retry_after() {
    let app = spawn_app().await;
    // The burst is 20, refilling one a second: 60 quick reports run past it.
    let mut refused = None;
    for _ in 0..60 {
        let response = send(&app, "[]", &[]).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = refused.expect("60 reports in a row should meet the limit");
    let wait: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(wait >= 1, "{wait}");
    let errors = assert_error_envelope(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(errors[0].contains("Try again"), "{errors:?}");
}

#[tokio::test]
async fn with_a_configured_key_only_signed_reports_are_taken() {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let signing = SigningKey::from_slice(&seed).expect("32 random bytes make a P-256 key");
    let pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a PEM public key");
    let keys = ReportKeys::parse(&pem).expect("the PEM parses as the operator's setting");
    let app = spawn_app_with(|config| config.secret_scanning_keys = keys).await;
    let owner = signed_up(&app.address, "Signed Co").await;
    let leaked = owner.create_token("leaked").await;
    let body = json!([item(&leaked.token.secret, "https://gist.github.com/x")]).to_string();
    let sign = |text: &str| {
        let signature: Signature = signing.sign(text.as_bytes());
        crate::helpers::base64(signature.to_der().as_bytes())
    };
    let id = (
        "Github-Public-Key-Identifier",
        "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c".to_string(),
    );

    let unsigned = send(&app, &body, std::slice::from_ref(&id)).await;
    let errors = assert_error_envelope(unsigned, StatusCode::FORBIDDEN).await;
    assert!(
        errors[0].contains("Github-Public-Key-Signature"),
        "{errors:?}"
    );
    let other_body = send(
        &app,
        &body,
        &[id.clone(), ("Github-Public-Key-Signature", sign("[]"))],
    )
    .await;
    assert_error_envelope(other_body, StatusCode::FORBIDDEN).await;
    let no_id = send(&app, &body, &[("Github-Public-Key-Signature", sign(&body))]).await;
    assert_error_envelope(no_id, StatusCode::FORBIDDEN).await;
    let not_base64 = send(
        &app,
        &body,
        &[id.clone(), ("Github-Public-Key-Signature", "%%%".into())],
    )
    .await;
    assert_error_envelope(not_base64, StatusCode::FORBIDDEN).await;
    expect_json(
        app.get_with_auth("/plans", &leaked.token).await,
        StatusCode::OK,
    )
    .await;

    let signed = send(
        &app,
        &body,
        &[id, ("Github-Public-Key-Signature", sign(&body))],
    )
    .await;
    assert_eq!(verdicts(signed).await[0]["label"], "true_positive");
    assert_401(app.get_with_auth("/plans", &leaked.token).await, false).await;
}

/// A signing key, and GitHub's key document naming it `id` beside a retired key.
fn github_keys(id: &str) -> (SigningKey, String) {
    let key = || {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        SigningKey::from_slice(&seed).expect("32 random bytes make a P-256 key")
    };
    let (retired, current): (SigningKey, SigningKey) = (key(), key());
    let pem = |k: &SigningKey| {
        k.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a PEM public key")
    };
    let document = json!({"public_keys": [
        {"key_identifier": "retired", "key": pem(&retired), "is_current": false},
        {"key_identifier": id, "key": pem(&current), "is_current": true},
    ]});
    (current, document.to_string())
}

#[tokio::test]
async fn unsigned_junk_from_behind_a_proxy_never_starves_signed_reports() {
    let (signing, document) = github_keys("current");
    let keys = ReportKeys::parse(&document).expect("GitHub's key document");
    let app = spawn_app_with(|config| {
        config.secret_scanning_keys = keys;
        config.trust_forwarded_headers = true;
    })
    .await;
    let owner = signed_up(&app.address, "Starved Co").await;
    let leaks: Vec<_> = [
        owner.create_token("first").await,
        owner.create_token("second").await,
    ]
    .into_iter()
    .collect();
    let junk_from = ("x-forwarded-for", "203.0.113.66".to_string());

    // Junk until the junk budget of that address is spent.
    let mut last = StatusCode::OK;
    for _ in 0..30 {
        last = send(&app, "[]", std::slice::from_ref(&junk_from))
            .await
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has its own budget.
    let elsewhere = send(&app, "[]", &[("x-forwarded-for", "198.51.100.7".into())]).await;
    assert_eq!(
        elsewhere.status(),
        StatusCode::FORBIDDEN,
        "unsigned, not limited"
    );

    // Signed reports, even from the junk's own address, draw on their own budget, signed
    // by whichever key of the document they name.
    for leak in &leaks {
        let body = json!([item(&leak.token.secret, "https://gist.github.com/x")]).to_string();
        let signature: Signature = signing.sign(body.as_bytes());
        let headers = [
            junk_from.clone(),
            ("Github-Public-Key-Identifier", "current".into()),
            (
                "Github-Public-Key-Signature",
                crate::helpers::base64(signature.to_der().as_bytes()),
            ),
        ];
        let answer = verdicts(send(&app, &body, &headers).await).await;
        assert_eq!(answer[0]["label"], "true_positive");
        assert_401(app.get_with_auth("/plans", &leak.token).await, false).await;
    }

    // Signed with the current key but naming the retired one: refused.
    let body = "[]";
    let signature: Signature = signing.sign(body.as_bytes());
    let wrong_id = send(
        &app,
        body,
        &[
            ("Github-Public-Key-Identifier", "retired".into()),
            (
                "Github-Public-Key-Signature",
                crate::helpers::base64(signature.to_der().as_bytes()),
            ),
        ],
    )
    .await;
    assert_error_envelope(wrong_id, StatusCode::FORBIDDEN).await;
}
