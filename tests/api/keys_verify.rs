//! `POST /keys/verify`: a backend service with a `verify` token asks about a key its own
//! user sent, and always gets a 200 with a code.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::admin::{account_id, execute_sql, operator, submit};
use crate::support::api::{
    TestApp, Token, assert_error_envelope, eventually, expect_json, spawn_app, spawn_app_at,
    unknown_key,
};
use crate::support::browser::email_for;
use crate::support::store::TestDb;

/// An account with a verifier (scope `verify`) and a manager (scope `tokens`).
async fn account(app: &TestApp, name: &str) -> (String, Token, Token) {
    let slug = app.create_account(name).await;
    let verifier = app.create_token(&slug, "backend", "verify").await;
    // A token may hand on only the permissions it holds.
    let manager = app
        .create_token_with(
            &slug,
            "issuer",
            "read,tokens",
            &["--permissions", "documents.read,billing.write,admin"],
        )
        .await;
    (slug, verifier, manager)
}

/// A customer's key, made through the API with `fields` besides a name and scopes.
async fn issue(app: &TestApp, manager: &Token, fields: Value) -> Token {
    let mut body = json!({"name": "customer", "scopes": ["read"]});
    for (k, v) in fields.as_object().expect("an object") {
        body[k] = v.clone();
    }
    let made = expect_json(
        app.post_json("/access-tokens", manager, &body).await,
        StatusCode::CREATED,
    )
    .await;
    Token {
        key: made["access_token"]["key"].as_str().unwrap().into(),
        secret: made["access_token"]["secret"].as_str().unwrap().into(),
    }
}

async fn verify(app: &TestApp, verifier: &Token, body: Value) -> Value {
    expect_json(
        app.post_json("/keys/verify", verifier, &body).await,
        StatusCode::OK,
    )
    .await
}

async fn verify_key(app: &TestApp, verifier: &Token, key: &Token, extra: Value) -> Value {
    let mut body = json!({"key": key.key, "secret": key.secret});
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    verify(app, verifier, body).await
}

#[tokio::test]
async fn a_valid_key_is_told_with_what_it_carries_and_spends_a_credit() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Docs Inc").await;
    let key = issue(
        &app,
        &manager,
        json!({
            "permissions": ["documents.read", "billing.write"],
            "meta": {"plan": "pro"},
            "external_id": "cus_42",
            "credits": {"remaining": 2},
            "rate_limit_per_minute": 10,
        }),
    )
    .await;
    let query = json!({"permissions": "documents.read AND (billing.write OR admin)"});

    let first = verify_key(&app, &verifier, &key, query.clone()).await;
    assert_eq!(first["valid"], json!(true), "{first}");
    assert_eq!(first["code"], json!("VALID"));
    assert_eq!(first["key"], json!(key.key));
    assert_eq!(first["name"], json!("customer"));
    assert_eq!(first["external_id"], json!("cus_42"));
    assert_eq!(first["meta"], json!({"plan": "pro"}));
    assert_eq!(
        first["permissions"],
        json!(["billing.write", "documents.read"])
    );
    assert_eq!(first["scopes"], json!(["read"]));
    assert_eq!(first["expires"], Value::Null);
    assert_eq!(first["credits"], json!({"remaining": 1}));
    assert_eq!(first["ratelimit"]["limit"], json!(10));
    assert_eq!(first["ratelimit"]["remaining"], json!(9));
    assert!(first["ratelimit"]["reset"].as_i64().unwrap() > 0);

    let second = verify_key(&app, &verifier, &key, query.clone()).await;
    assert_eq!(second["credits"], json!({"remaining": 0}));
    let third = verify_key(&app, &verifier, &key, query).await;
    assert_eq!(third["valid"], json!(false));
    assert_eq!(third["code"], json!("USAGE_EXCEEDED"));
    assert_eq!(third["credits"], json!({"remaining": 0}));
}

#[tokio::test]
async fn missing_permissions_are_insufficient_and_spend_nothing() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Perm Inc").await;
    let key = issue(
        &app,
        &manager,
        json!({"permissions": ["documents.read"], "credits": {"remaining": 5}}),
    )
    .await;
    let refused = verify_key(
        &app,
        &verifier,
        &key,
        json!({"permissions": "documents.read AND billing.write"}),
    )
    .await;
    assert_eq!(
        refused["code"],
        json!("INSUFFICIENT_PERMISSIONS"),
        "{refused}"
    );
    assert_eq!(refused["valid"], json!(false));
    assert_eq!(refused["credits"], json!({"remaining": 5}));
    // OR, and AND binding tighter: "a OR b AND c" is a OR (b AND c).
    let either = verify_key(
        &app,
        &verifier,
        &key,
        json!({"permissions": "documents.read OR billing.write AND admin"}),
    )
    .await;
    assert_eq!(either["code"], json!("VALID"), "{either}");
    assert_eq!(either["credits"], json!({"remaining": 4}));
}

#[tokio::test]
async fn unknown_revoked_malformed_and_other_accounts_keys_are_the_same_not_found() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Mine Inc").await;
    let (_, other_verifier, other_manager) = account(&app, "Theirs Inc").await;
    let theirs = issue(
        &app,
        &other_manager,
        json!({"external_id": "secret-customer"}),
    )
    .await;
    let revoked = issue(&app, &manager, json!({})).await;
    assert_eq!(
        app.delete(&format!("/access-tokens/{}", revoked.key), &manager)
            .await
            .status(),
        StatusCode::OK
    );
    let mine = issue(&app, &manager, json!({})).await;
    let bare = json!({"valid": false, "code": "NOT_FOUND", "status": 200});

    for (what, body) in [
        (
            "unknown",
            json!({"key": unknown_key(), "secret": mine.secret}),
        ),
        (
            "revoked",
            json!({"key": revoked.key, "secret": revoked.secret}),
        ),
        (
            "another account's",
            json!({"key": theirs.key, "secret": theirs.secret}),
        ),
        (
            "a wrong secret",
            json!({"key": mine.key, "secret": theirs.secret}),
        ),
        ("malformed", json!({"key": "kw_nope", "secret": "hunter2"})),
        ("empty", json!({"key": "", "secret": ""})),
    ] {
        assert_eq!(verify(&app, &verifier, body).await, bare, "{what}");
    }
    // Tenancy both ways: the other account's verifier can't see this account's good key.
    let asked = verify_key(&app, &other_verifier, &mine, json!({})).await;
    assert_eq!(asked, bare);
    assert_eq!(
        verify_key(&app, &verifier, &mine, json!({})).await["code"],
        json!("VALID")
    );
}

#[tokio::test]
async fn an_expired_key_and_a_suspended_account_are_told_apart() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Late Inc").await;
    let expired = issue(&app, &manager, json!({})).await;
    execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET expires_at = '2020-01-01 00:00:00' WHERE key = '{}'",
            expired.key
        ),
    )
    .await;
    let answer = verify_key(&app, &verifier, &expired, json!({})).await;
    assert_eq!(answer["code"], json!("EXPIRED"), "{answer}");
    assert_eq!(answer["valid"], json!(false));
    assert_eq!(answer["expires"], json!("2020-01-01T00:00:00Z"));

    let customer = issue(&app, &manager, json!({})).await;
    let op = operator(&app, &email_for("keys operator")).await;
    let id = account_id(&op, "Late Inc").await;
    submit(
        &op,
        "/admin",
        &format!("/admin/accounts/{id}/api-access"),
        &[("state", "suspended"), ("reason", "review")],
    )
    .await;
    // The verifier of a suspended account may still ask, and is told its keys are off;
    // its own other calls are refused.
    let answer = verify_key(&app, &verifier, &customer, json!({})).await;
    assert_eq!(answer["code"], json!("DISABLED"), "{answer}");
    assert_eq!(answer["valid"], json!(false));
    assert_eq!(
        app.get_with_auth("/access-tokens", &manager).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_key_over_its_rate_limit_is_rate_limited() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Busy Inc").await;
    let key = issue(&app, &manager, json!({"rate_limit_per_minute": 1})).await;
    assert_eq!(
        verify_key(&app, &verifier, &key, json!({})).await["code"],
        json!("VALID")
    );
    let limited = verify_key(&app, &verifier, &key, json!({})).await;
    assert_eq!(limited["code"], json!("RATE_LIMITED"), "{limited}");
    assert_eq!(limited["ratelimit"]["remaining"], json!(0));
    // The key's own API calls share the limit.
    assert_eq!(
        app.get_with_auth("/plans", &key).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_key_is_judged_by_the_address_the_verifier_vouches_for() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Net Inc").await;
    let key = issue(
        &app,
        &manager,
        json!({"allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    // The verifier's own address (127.0.0.1 here) is judged when it names none.
    let own = verify_key(&app, &verifier, &key, json!({})).await;
    assert_eq!(own["code"], json!("FORBIDDEN"), "{own}");
    let inside = verify_key(&app, &verifier, &key, json!({"ip": "10.20.30.40"})).await;
    assert_eq!(inside["code"], json!("VALID"), "{inside}");
    let v6 = verify_key(&app, &verifier, &key, json!({"ip": "2001:db8::7"})).await;
    assert_eq!(v6["code"], json!("VALID"));
    let outside = verify_key(&app, &verifier, &key, json!({"ip": "192.0.2.1"})).await;
    assert_eq!(outside["code"], json!("FORBIDDEN"));
}

#[tokio::test]
async fn only_a_verify_token_may_ask_and_a_bad_question_is_a_422() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Ask Inc").await;
    let key = issue(&app, &manager, json!({})).await;
    let refused = app
        .post_json(
            "/keys/verify",
            &manager,
            &json!({"key": key.key, "secret": key.secret}),
        )
        .await;
    let errors = assert_error_envelope(refused, StatusCode::FORBIDDEN).await;
    assert!(errors[0].contains("'verify'"), "{errors:?}");

    let cases = [
        (
            json!({"key": key.key, "secret": key.secret, "permissions": "a AND (b OR"}),
            "position 11",
        ),
        (
            json!({"key": key.key, "secret": key.secret, "permissions": "a AND Admin"}),
            "position 6",
        ),
        (
            json!({"key": key.key, "secret": key.secret, "permissions": "x".repeat(1001)}),
            "1000",
        ),
        (
            json!({"key": key.key, "secret": key.secret, "permissions": format!("{}a{}", "(".repeat(11), ")".repeat(11))}),
            "10 levels",
        ),
        (
            json!({"key": key.key, "secret": key.secret, "extra": 1}),
            "unknown field",
        ),
        (json!({"secret": key.secret}), "'key' is required"),
        (
            json!({"key": key.key, "secret": key.secret, "ip": "not-an-ip"}),
            "'ip'",
        ),
    ];
    for (body, expected) in cases {
        let response = app.post_json("/keys/verify", &verifier, &body).await;
        let errors = assert_error_envelope(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{body}: {errors:?}"
        );
    }
}

#[tokio::test]
async fn a_daily_refill_happens_at_the_first_use_of_a_new_day() {
    let app = spawn_app().await;
    let (_, verifier, manager) = account(&app, "Refill Inc").await;
    let key = issue(
        &app,
        &manager,
        json!({"credits": {"remaining": 1, "refill": {"interval": "daily", "amount": 3}}}),
    )
    .await;
    // Spent out and last refilled long ago, as yesterday's key would be.
    execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET credits_remaining = 0, credits_refilled_at = '2020-01-01 00:00:00' WHERE key = '{}'",
            key.key
        ),
    )
    .await;
    let refilled = verify_key(&app, &verifier, &key, json!({})).await;
    assert_eq!(refilled["code"], json!("VALID"), "{refilled}");
    assert_eq!(refilled["credits"], json!({"remaining": 2}));
    // Written with the next usage batch: the store has the refill and the spending.
    let path = format!("/access-tokens/{}", key.key);
    let written = eventually(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let shown = expect_json(app.get_with_auth(&path, &manager).await, StatusCode::OK).await;
            shown["access_token"]["credits"]["remaining"] == json!(2)
        },
    )
    .await;
    assert!(written, "the refill and the spending reach the store");
    // Same day: no second refill.
    verify_key(&app, &verifier, &key, json!({})).await;
    verify_key(&app, &verifier, &key, json!({})).await;
    let spent = verify_key(&app, &verifier, &key, json!({})).await;
    assert_eq!(spent["code"], json!("USAGE_EXCEEDED"), "{spent}");
}

#[tokio::test]
async fn credits_spent_survive_a_restart() {
    let mut first = spawn_app().await;
    let (_, verifier, manager) = account(&first, "Durable Inc").await;
    let key = issue(&first, &manager, json!({"credits": {"remaining": 5}})).await;
    for left in [4, 3, 2] {
        let answer = verify_key(&first, &verifier, &key, json!({})).await;
        assert_eq!(answer["credits"], json!({"remaining": left}));
    }
    let path = format!("/access-tokens/{}", key.key);
    let written = eventually(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let shown =
                expect_json(first.get_with_auth(&path, &manager).await, StatusCode::OK).await;
            // The manager's own call spends nothing of the customer's key.
            shown["access_token"]["credits"]["remaining"] == json!(2)
        },
    )
    .await;
    assert!(written, "spending is written within the flush interval");
    // The store outlives the server: keep it, stop the server, start another on it.
    let db = std::mem::replace(&mut first.db, TestDb::new());
    drop(first);
    let database = db.path.clone();
    let second = spawn_app_at(db, &database, |_| {}).await;
    let answer = verify_key(&second, &verifier, &key, json!({})).await;
    assert_eq!(answer["credits"], json!({"remaining": 1}), "{answer}");
}

#[tokio::test]
async fn two_instances_on_one_store_share_the_balance() {
    let a = spawn_app().await;
    let (_, verifier, manager) = account(&a, "Shared Inc").await;
    let key = issue(&a, &manager, json!({"credits": {"remaining": 10}})).await;
    let b = spawn_app_at(TestDb::new(), &a.db.path, |_| {}).await;
    for _ in 0..4 {
        assert_eq!(
            verify_key(&a, &verifier, &key, json!({})).await["code"],
            json!("VALID")
        );
    }
    for _ in 0..3 {
        assert_eq!(
            verify_key(&b, &verifier, &key, json!({})).await["code"],
            json!("VALID")
        );
    }
    // Each instance writes what it spent; neither overwrites the other.
    let path = format!("/access-tokens/{}", key.key);
    let shared = eventually(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let shown = expect_json(a.get_with_auth(&path, &manager).await, StatusCode::OK).await;
            shown["access_token"]["credits"]["remaining"] == json!(3)
        },
    )
    .await;
    assert!(shared, "the store holds 10 - 4 - 3");
    // Once an instance has written, it answers from the shared balance.
    let on_b = verify_key(&b, &verifier, &key, json!({})).await;
    assert_eq!(on_b["code"], json!("VALID"));
    assert!(
        on_b["credits"]["remaining"].as_i64().unwrap() <= 6,
        "{on_b}"
    );
}
