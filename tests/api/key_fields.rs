//! What a token carries for its verifiers, through `/access-tokens` (set at creation,
//! changed by `PATCH`, each change audited), the command line, and the rules the guard and
//! forward auth apply with them: the allowed IPs and the credits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::admin::count_rows;
use crate::support::api::{
    TestApp, Token, assert_error_envelope, expect_json, spawn_app, status_with,
};

async fn manager(app: &TestApp, name: &str, extra: &[&str]) -> Token {
    let slug = app.create_account(name).await;
    app.create_token_with(&slug, "issuer", "read,tokens", extra)
        .await
}

/// A manager that may be used only from this machine.
async fn manager_fenced(app: &TestApp) -> Token {
    manager(app, "Fenced Inc", &["--allowed-ips", "127.0.0.0/8"]).await
}

async fn create(app: &TestApp, manager: &Token, body: Value) -> Value {
    expect_json(
        app.post_json("/access-tokens", manager, &body).await,
        StatusCode::CREATED,
    )
    .await
}

fn token_of(made: &Value) -> Token {
    Token {
        key: made["access_token"]["key"].as_str().unwrap().into(),
        secret: made["access_token"]["secret"].as_str().unwrap().into(),
    }
}

async fn patch(app: &TestApp, manager: &Token, key: &str, body: &Value) -> reqwest::Response {
    app.send_raw_json(
        Method::PATCH,
        &format!("/access-tokens/{key}"),
        manager,
        &body.to_string(),
    )
    .await
}

#[tokio::test]
async fn the_fields_are_set_at_creation_changed_by_patch_and_each_change_is_audited() {
    let app = spawn_app().await;
    let manager = manager(
        &app,
        "Fields Inc",
        &["--permissions", "docs.read,docs.write"],
    )
    .await;
    let made = create(
        &app,
        &manager,
        json!({
            "name": "customer", "scopes": ["read"],
            "permissions": ["docs.read"], "meta": {"tier": 2}, "external_id": "cus_9",
            "credits": {"remaining": 10, "refill": {"interval": "monthly", "amount": 10}},
            "allowed_ips": ["192.0.2.0/24"],
        }),
    )
    .await;
    let shown = &made["access_token"];
    assert_eq!(shown["permissions"], json!(["docs.read"]));
    assert_eq!(shown["meta"], json!({"tier": 2}));
    assert_eq!(shown["external_id"], json!("cus_9"));
    assert_eq!(
        shown["credits"],
        json!({"remaining": 10, "refill": {"interval": "monthly", "amount": 10}})
    );
    assert_eq!(shown["allowed_ips"], json!(["192.0.2.0/24"]));
    let key = token_of(&made).key;

    let changed = expect_json(
        patch(
            &app,
            &manager,
            &key,
            &json!({"permissions": ["docs.read", "docs.write"], "meta": null, "credits": {"remaining": 3}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let shown = &changed["access_token"];
    assert_eq!(shown["permissions"], json!(["docs.read", "docs.write"]));
    assert_eq!(shown["meta"], Value::Null);
    assert_eq!(shown["external_id"], json!("cus_9"), "absent is left alone");
    assert_eq!(shown["credits"], json!({"remaining": 3, "refill": null}));
    assert_eq!(shown["allowed_ips"], json!(["192.0.2.0/24"]));
    let again = expect_json(
        app.get_with_auth(&format!("/access-tokens/{key}"), &manager)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["access_token"], changed["access_token"]);

    let audited = |action: &str| {
        format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = '{action}' AND target LIKE '%{key}%'"
        )
    };
    assert_eq!(count_rows(&app, &audited("token.created")).await, 1);
    assert_eq!(
        count_rows(&app, &audited("token.key_fields_changed")).await,
        1
    );
    // The same values again change and log nothing.
    let same = json!({"external_id": "cus_9"});
    expect_json(patch(&app, &manager, &key, &same).await, StatusCode::OK).await;
    assert_eq!(
        count_rows(&app, &audited("token.key_fields_changed")).await,
        1
    );
}

#[tokio::test]
async fn each_bad_input_is_a_422_naming_the_field_and_the_rule() {
    let app = spawn_app().await;
    let manager = manager(&app, "Bad Inc", &["--permissions", "a"]).await;
    let key = token_of(&create(&app, &manager, json!({"name": "c", "scopes": ["read"]})).await).key;
    let cases = [
        (json!({"colour": "red"}), "unknown field `colour`"),
        (
            json!({"meta": [1, 2]}),
            "'meta': meta must be a JSON object",
        ),
        (json!({"meta": "x"}), "'meta': meta must be a JSON object"),
        (
            json!({"meta": {"x": "y".repeat(4200)}}),
            "'meta': meta is at most 4096 bytes",
        ),
        (
            json!({"permissions": ["Read"]}),
            "'permissions': \"Read\" is not a permission",
        ),
        (
            json!({"permissions": ["a b"]}),
            "'permissions': \"a b\" is not a permission",
        ),
        (
            json!({"allowed_ips": ["10.0.0.1/40"]}),
            "'allowed_ips': \"10.0.0.1/40\" is not a CIDR",
        ),
        (
            json!({"allowed_ips": ["example.com"]}),
            "'allowed_ips': \"example.com\" is not a CIDR",
        ),
        (
            json!({"credits": {"remaining": -5}}),
            "'credits': 'remaining' is a whole number from 0",
        ),
        (
            json!({"credits": {"remaining": 1e300}}),
            "'credits': 'remaining' is a whole number",
        ),
        (
            json!({"credits": {"remaining": 10_000_000_000_000_i64}}),
            "'credits': 'remaining' is a whole number from 0 to 1000000000000",
        ),
        (
            json!({"credits": {"remaining": 1, "refill": {"interval": "hourly", "amount": 1}}}),
            "'credits': \"hourly\" is not a refill interval",
        ),
        (
            json!({"external_id": ""}),
            "'external_id': an external id is 1 to 128 characters",
        ),
        (
            json!({"external_id": "x".repeat(129)}),
            "'external_id': an external id is 1 to 128",
        ),
    ];
    for (body, expected) in cases {
        let response = patch(&app, &manager, &key, &body).await;
        let errors = assert_error_envelope(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{body}: {errors:?}"
        );
        // And the same at creation.
        let mut new = json!({"name": "c", "scopes": ["read"]});
        for (k, v) in body.as_object().unwrap() {
            new[k] = v.clone();
        }
        let response = app.post_json("/access-tokens", &manager, &new).await;
        let errors = assert_error_envelope(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{new}: {errors:?}"
        );
    }
}

#[tokio::test]
async fn a_token_hands_on_only_the_permissions_it_holds_and_the_credits_it_has_left() {
    let app = spawn_app().await;
    let manager = manager(
        &app,
        "Hand Inc",
        &["--permissions", "docs.read", "--credits", "100"],
    )
    .await;
    let more = app
        .post_json(
            "/access-tokens",
            &manager,
            &json!({"name": "c", "scopes": ["read"], "permissions": ["docs.read", "docs.write"], "credits": {"remaining": 1}}),
        )
        .await;
    let errors = assert_error_envelope(more, StatusCode::FORBIDDEN).await;
    assert!(errors[0].contains("docs.write"), "{errors:?}");
    for (credits, expected) in [
        (json!({"remaining": 101}), "more credits than it has left"),
        (Value::Null, "must have a credit limit too"),
        (
            json!({"remaining": 1, "refill": {"interval": "daily", "amount": 1}}),
            "refilled",
        ),
    ] {
        let body = json!({"name": "c", "scopes": ["read"], "credits": credits});
        let response = app.post_json("/access-tokens", &manager, &body).await;
        let errors = assert_error_envelope(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(errors[0].contains(expected), "{body}: {errors:?}");
    }
    let within = json!({"name": "c", "scopes": ["read"], "permissions": ["docs.read"], "credits": {"remaining": 50}});
    let made = create(&app, &manager, within).await;
    // Nor can a change grant afterwards what the maker couldn't at creation.
    let key = token_of(&made).key;
    let response = patch(&app, &manager, &key, &json!({"permissions": ["admin"]})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A token kept to some addresses hands on no wider a fence.
    let fenced = manager_fenced(&app).await;
    let wider = app
        .post_json(
            "/access-tokens",
            &fenced,
            &json!({"name": "c", "scopes": ["read"], "allowed_ips": ["0.0.0.0/0"]}),
        )
        .await;
    let errors = assert_error_envelope(wider, StatusCode::FORBIDDEN).await;
    assert!(errors[0].starts_with("'allowed_ips'"), "{errors:?}");
    let inside = json!({"name": "c", "scopes": ["read"], "allowed_ips": ["127.0.0.1"]});
    create(&app, &fenced, inside).await;
    // Nor can a token lift its own limits.
    let response = patch(
        &app,
        &manager,
        &manager.key,
        &json!({"credits": null, "allowed_ips": []}),
    )
    .await;
    let errors = assert_error_envelope(response, StatusCode::FORBIDDEN).await;
    assert!(errors[0].contains("itself"), "{errors:?}");
}

#[tokio::test]
async fn the_guard_refuses_a_key_outside_its_allowed_ips_with_a_403() {
    let app = spawn_app().await;
    let manager = manager(&app, "Fence Inc", &[]).await;
    let fenced = token_of(
        &create(
            &app,
            &manager,
            json!({"name": "c", "scopes": ["read"], "allowed_ips": ["10.0.0.0/8"]}),
        )
        .await,
    );
    let errors = assert_error_envelope(
        app.get_with_auth("/plans", &fenced).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        errors,
        [
            "This API token may not be used from this address: it is outside the token's allowed IPs."
        ]
    );
    let home = token_of(
        &create(
            &app,
            &manager,
            json!({"name": "c", "scopes": ["read"], "allowed_ips": ["127.0.0.0/8", "::1/128"]}),
        )
        .await,
    );
    assert_eq!(
        app.get_with_auth("/plans", &home).await.status(),
        StatusCode::OK
    );
    // The allowlist changes from the next call.
    let opened = patch(&app, &manager, &fenced.key, &json!({"allowed_ips": []})).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(
        app.get_with_auth("/plans", &fenced).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_guard_spends_a_credit_per_success_and_refuses_at_zero_with_a_429() {
    let app = spawn_app().await;
    let manager = manager(&app, "Metered Inc", &[]).await;
    let metered = token_of(
        &create(
            &app,
            &manager,
            json!({"name": "c", "scopes": ["read"], "credits": {"remaining": 2}}),
        )
        .await,
    );
    // A refusal spends none: an unknown plan is a 404.
    assert_eq!(
        app.get_with_auth("/plans/no-such-plan", &metered)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with_auth("/plans", &metered).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with_auth("/plans", &metered).await.status(),
        StatusCode::OK
    );
    let errors = assert_error_envelope(
        app.get_with_auth("/plans", &metered).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(errors[0], "This API token has no credits left.");
    assert!(
        errors[1].starts_with("Please read the documentation at "),
        "{errors:?}"
    );
    // A person tops it up: the new balance applies from the next call.
    let topped = patch(
        &app,
        &manager,
        &metered.key,
        &json!({"credits": {"remaining": 1}}),
    )
    .await;
    assert_eq!(topped.status(), StatusCode::OK);
    assert_eq!(
        app.get_with_auth("/plans", &metered).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with_auth("/plans", &metered).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn forward_auth_checks_permissions_and_names_them_and_the_external_id() {
    let app = spawn_app().await;
    let manager = manager(
        &app,
        "Proxy Inc",
        &["--permissions", "docs.read,docs.write"],
    )
    .await;
    let key = token_of(
        &create(
            &app,
            &manager,
            json!({"name": "c", "scopes": ["read"], "permissions": ["docs.read"], "external_id": "cus_ü"}),
        )
        .await,
    );
    let passed = app
        .get_with_auth("/verify?permissions=docs.read%20OR%20docs.write", &key)
        .await;
    assert_eq!(passed.status(), StatusCode::NO_CONTENT);
    assert_eq!(passed.headers()["x-keyward-permissions"], "docs.read");
    assert_eq!(
        passed.headers()["x-keyward-external-id"].as_bytes(),
        "cus_ü".as_bytes()
    );
    let refused = app
        .get_with_auth("/verify?permissions=docs.read%20AND%20docs.write", &key)
        .await;
    let errors = assert_error_envelope(refused, StatusCode::FORBIDDEN).await;
    assert!(errors[0].contains("permissions"), "{errors:?}");
    let unparsed = app
        .get_with_auth("/verify?permissions=docs.read%20AND", &key)
        .await;
    let errors = assert_error_envelope(unparsed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(errors[0].contains("position 13"), "{errors:?}");
}

#[tokio::test]
async fn forward_auth_spends_credits_and_honours_the_allowlist() {
    let app = spawn_app().await;
    let manager = manager(&app, "Proxy Credits Inc", &[]).await;
    let key = token_of(
        &create(
            &app,
            &manager,
            json!({"name": "c", "scopes": ["read"], "credits": {"remaining": 1}}),
        )
        .await,
    );
    let url = app.url("/verify?scope=write");
    // A refusal for a scope spends nothing...
    assert_eq!(
        status_with(&app.client, &url, &key).await,
        StatusCode::FORBIDDEN
    );
    let url = app.url("/verify");
    assert_eq!(
        status_with(&app.client, &url, &key).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_with(&app.client, &url, &key).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let fenced = token_of(
        &create(
            &app,
            &manager,
            json!({"name": "c", "scopes": ["read"], "allowed_ips": ["203.0.113.0/24"]}),
        )
        .await,
    );
    assert_eq!(
        status_with(&app.client, &url, &fenced).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_command_line_sets_the_fields_and_refuses_bad_ones() {
    let app = spawn_app().await;
    let slug = app.create_account("Cli Fields Inc").await;
    let manager = app.create_token(&slug, "issuer", "read,tokens").await;
    let made = app
        .create_token_with(
            &slug,
            "cli",
            "read",
            &[
                "--permissions",
                "docs.read,docs.write",
                "--meta",
                r#"{"plan":"pro"}"#,
                "--external-id",
                "cus_cli",
                "--credits",
                "7",
                "--credits-refill",
                "daily:7",
                "--allowed-ips",
                "10.0.0.0/8,2001:db8::/32",
            ],
        )
        .await;
    let shown = expect_json(
        app.get_with_auth(&format!("/access-tokens/{}", made.key), &manager)
            .await,
        StatusCode::OK,
    )
    .await;
    let shown = &shown["access_token"];
    assert_eq!(shown["permissions"], json!(["docs.read", "docs.write"]));
    assert_eq!(shown["meta"], json!({"plan": "pro"}));
    assert_eq!(shown["external_id"], json!("cus_cli"));
    assert_eq!(
        shown["credits"],
        json!({"remaining": 7, "refill": {"interval": "daily", "amount": 7}})
    );
    assert_eq!(shown["allowed_ips"], json!(["10.0.0.0/8", "2001:db8::/32"]));

    for (flag, value, expected) in [
        ("--allowed-ips", "10.0.0.0/99", "is not a CIDR"),
        ("--permissions", "Docs", "is not a permission"),
        ("--meta", "[1]", "must be a JSON object"),
        ("--credits", "lots", "whole number"),
        ("--credits", "10000000000001", "whole number"),
        ("--credits-refill", "weekly:5", "is not a refill interval"),
    ] {
        let refused = app
            .cli(&[
                "token",
                "create",
                "--account",
                &slug,
                "--name",
                "bad",
                flag,
                value,
            ])
            .await;
        let err = refused.expect_err(flag);
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
}

#[tokio::test]
async fn a_stored_field_that_cant_be_read_is_an_internal_error_not_no_limit() {
    use diesel::prelude::*;
    use keyward::db::schema::tokens;

    let app = spawn_app().await;
    let manager = manager(&app, "Damaged Inc", &[]).await;
    let limited = json!({"name": "metered", "scopes": ["read"], "credits": {"remaining": 5, "refill": {"interval": "daily", "amount": 5}}});
    let key = token_of(&create(&app, &manager, limited).await).key;
    let shown = expect_json(
        app.get_with_auth(&format!("/access-tokens/{key}"), &manager)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["access_token"]["credits"]["remaining"], 5);

    // The store is damaged by hand: a refill interval no version of Keyward writes.
    let changed = diesel::update(tokens::table.filter(tokens::key.eq(&key)))
        .set(tokens::credits_refill_interval.eq("fortnightly"))
        .execute(&mut app.db.connect())
        .expect("the row is changed");
    assert_eq!(changed, 1);

    // Neither the token nor the list shows `credits: null`, which reads as "no limit".
    for path in [
        format!("/access-tokens/{key}"),
        "/access-tokens".to_string(),
    ] {
        let response = app.get_with_auth(&path, &manager).await;
        let errors = assert_error_envelope(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert!(
            !errors.iter().any(|e| e.contains("fortnightly")),
            "{path}: the answer keeps the store's details to the log: {errors:?}"
        );
    }
}

#[tokio::test]
async fn get_token_tells_a_token_its_permissions_where_it_may_be_used_and_its_credits_left() {
    let app = spawn_app().await;
    let manager = manager(&app, "Self Inc", &["--permissions", "docs.read"]).await;
    let bounded = json!({"name": "bounded", "scopes": ["read"], "permissions": ["docs.read"],
        "allowed_ips": ["127.0.0.0/8"], "credits": {"remaining": 3}});
    let bounded = token_of(&create(&app, &manager, bounded).await);

    // Each call spends a credit, this one too: the answer counts it.
    for left in [2, 1] {
        let described =
            expect_json(app.get_with_auth("/token", &bounded).await, StatusCode::OK).await;
        let token = &described["token"];
        assert_eq!(token["permissions"], json!(["docs.read"]));
        assert_eq!(token["allowed_ips"], json!(["127.0.0.0/8"]));
        assert_eq!(token["credits"], json!({"remaining": left}), "{described}");
    }

    // A token with no limits says so.
    let described = expect_json(app.get_with_auth("/token", &manager).await, StatusCode::OK).await;
    assert_eq!(described["token"]["permissions"], json!(["docs.read"]));
    assert_eq!(described["token"]["allowed_ips"], json!([]));
    assert_eq!(described["token"]["credits"], Value::Null);
}
