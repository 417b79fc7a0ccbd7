//! `/access-tokens`: a token with the `tokens` scope manages the account's tokens, as its
//! maker could, never handing on more than it holds, and is named in the audit log.

use keyward::db;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_helpers::join;
use crate::dashboard_helpers::{email_for, read_created_page, signed_up};
use crate::helpers::{TestApp, Token, assert_401, assert_error_envelope, expect_json, spawn_app};

/// The account's audit log, newest first, as (action, actor, detail).
async fn audit_log(app: &TestApp, slug: &str) -> Vec<(String, String, String)> {
    let pool = app.state.pool.clone();
    let slug = slug.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("a connection");
        let account = db::accounts::find_by_slug(&mut conn, &slug).expect("the account");
        let (events, _) =
            db::audit::list_for_account(&mut conn, account.account_id(), &Default::default(), 1)
                .expect("the log");
        events
            .into_iter()
            .map(|e| (e.action.to_string(), e.actor_label, e.detail))
            .collect()
    })
    .await
    .expect("the audit read")
}

fn token_from(body: &Value) -> Token {
    Token {
        key: body["access_token"]["key"].as_str().expect("a key").into(),
        secret: body["access_token"]["secret"]
            .as_str()
            .expect("a secret, once")
            .into(),
    }
}

#[tokio::test]
async fn a_managing_token_creates_lists_shows_and_revokes_tokens_and_is_named_in_the_log() {
    let app = spawn_app().await;
    let slug = app.create_account("Automation Inc").await;
    let manager = app
        .create_token(&slug, "terraform", "read,write,tokens")
        .await;

    // Create: the secret is in this answer and works at once.
    let response = app
        .post_json(
            "/access-tokens",
            &manager,
            &json!({"name": "deploys", "scopes": ["read"], "expires_in_days": 30}),
        )
        .await;
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "the answer with a secret must not be cached"
    );
    let created = expect_json(response, StatusCode::CREATED).await;
    assert_eq!(created["access_token"]["scopes"], json!(["read"]));
    assert_eq!(created["access_token"]["status"], "active");
    assert!(created["access_token"]["expires_at"].is_string());
    let deploys = token_from(&created);
    expect_json(app.get_with_auth("/plans", &deploys).await, StatusCode::OK).await;

    // List: both tokens, newest first, paginated, and never a secret or a digest.
    let list = expect_json(
        app.get_with_auth("/access-tokens", &manager).await,
        StatusCode::OK,
    )
    .await;
    let keys: Vec<&str> = list["access_tokens"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [deploys.key.as_str(), manager.key.as_str()]);
    assert_eq!(list["pagination"]["total_records"], 2);
    let text = list.to_string();
    for secret in [&deploys.secret, &manager.secret] {
        assert!(
            !text.contains(secret.as_str()),
            "a list shows no secret: {text}"
        );
    }
    assert!(!text.contains("digest") && !text.contains("hint"), "{text}");
    let first_page = expect_json(
        app.get_with_auth("/access-tokens?size=1&page=2", &manager)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first_page["access_tokens"][0]["key"], manager.key.as_str());
    assert_eq!(first_page["pagination"]["total_pages"], 2);

    // Show: one token, without its secret.
    let shown = expect_json(
        app.get_with_auth(&format!("/access-tokens/{}", deploys.key), &manager)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["access_token"]["name"], "deploys");
    assert!(shown["access_token"].get("secret").is_none(), "{shown}");

    // Revoke, with a reason: the token is refused from the next request on.
    let revoked = expect_json(
        app.client
            .delete(app.url(&format!("/access-tokens/{}", deploys.key)))
            .basic_auth(&manager.key, Some(&manager.secret))
            .json(&json!({"reason": "rotated by terraform"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(revoked["access_token"]["status"], "revoked");
    assert_eq!(
        revoked["access_token"]["revoke_reason"],
        "rotated by terraform"
    );
    assert_401(app.get_with_auth("/plans", &deploys).await, false).await;

    // The log names the calling token as the actor of both changes.
    let log = audit_log(&app, &slug).await;
    let by_manager: Vec<&str> = log
        .iter()
        .filter(|(_, actor, _)| actor.contains(&manager.key))
        .map(|(action, _, _)| action.as_str())
        .collect();
    assert_eq!(by_manager, ["token.revoked", "token.created"], "{log:?}");
    assert!(
        log.iter()
            .any(|(_, _, detail)| detail == "rotated by terraform")
    );
}

#[tokio::test]
async fn without_the_tokens_scope_every_route_is_a_403_naming_it() {
    let app = spawn_app().await;
    let (_, plain) = app.account_with_token("Plain Inc").await;
    let responses = [
        app.get_with_auth("/access-tokens", &plain).await,
        app.get_with_auth(&format!("/access-tokens/{}", plain.key), &plain)
            .await,
        app.post_json(
            "/access-tokens",
            &plain,
            &json!({"name": "x", "scopes": ["read"]}),
        )
        .await,
        app.delete(&format!("/access-tokens/{}", plain.key), &plain)
            .await,
    ];
    for response in responses {
        let errors = assert_error_envelope(response, StatusCode::FORBIDDEN).await;
        assert!(errors[0].contains("'tokens' scope"), "{errors:?}");
    }
    expect_json(app.get_with_auth("/plans", &plain).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_token_hands_on_no_scope_it_lacks_never_tokens_and_nothing_that_outlives_it() {
    let app = spawn_app().await;
    let slug = app.create_account("Careful Inc").await;
    let manager = app
        .create_token_with(&slug, "ci", "read,tokens", &["--expires-in-days", "10"])
        .await;
    let cases = [
        (
            json!({"name": "w", "scopes": ["read", "write"], "expires_in_days": 5}),
            "write",
        ),
        (
            json!({"name": "t", "scopes": ["tokens"], "expires_in_days": 5}),
            "'tokens'",
        ),
        (
            json!({"name": "long", "scopes": ["read"], "expires_in_days": 30}),
            "outlive",
        ),
        (
            json!({"name": "forever", "scopes": ["read"]}),
            "'expires_in_days'",
        ),
    ];
    for (body, expected) in cases {
        let errors = assert_error_envelope(
            app.post_json("/access-tokens", &manager, &body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(errors[0].contains(expected), "{body}: {errors:?}");
    }
    let list = expect_json(
        app.get_with_auth("/access-tokens", &manager).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        list["pagination"]["total_records"], 1,
        "nothing was made: {list}"
    );

    let ok = app
        .post_json(
            "/access-tokens",
            &manager,
            &json!({"name": "short", "scopes": ["read"], "expires_in_days": 9}),
        )
        .await;
    expect_json(ok, StatusCode::CREATED).await;
}

#[tokio::test]
async fn another_accounts_key_is_a_404_and_its_token_keeps_working() {
    let app = spawn_app().await;
    let ours = app.create_account("Ours Inc").await;
    let manager = app.create_token(&ours, "admin", "read,tokens").await;
    let (_, theirs) = app.account_with_token("Theirs Inc").await;
    let path = format!("/access-tokens/{}", theirs.key);
    assert_error_envelope(
        app.get_with_auth(&path, &manager).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error_envelope(app.delete(&path, &manager).await, StatusCode::NOT_FOUND).await;
    for malformed in ["/access-tokens/not-a-key", "/access-tokens/kw_%3A"] {
        assert_error_envelope(
            app.get_with_auth(malformed, &manager).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    expect_json(app.get_with_auth("/plans", &theirs).await, StatusCode::OK).await;
}

#[tokio::test]
async fn bad_bodies_are_422s_that_name_the_field() {
    let app = spawn_app().await;
    let slug = app.create_account("Typo Inc").await;
    let manager = app.create_token(&slug, "ci", "read,tokens").await;
    let cases = [
        ("{}", "'name' is required"),
        (r#"{"name": "x"}"#, "'scopes' is required"),
        (
            r#"{"name": "x", "scopes": "read"}"#,
            "'scopes' must be a list",
        ),
        (
            r#"{"name": "x", "scopes": ["root"]}"#,
            "'scopes': \"root\" is not a scope",
        ),
        (r#"{"name": "", "scopes": ["read"]}"#, "'name': "),
        (
            r#"{"name": "x", "scopes": ["read"], "expires_in_days": -1}"#,
            "'expires_in_days'",
        ),
        (
            r#"{"name": "x", "scopes": ["read"], "colour": "red"}"#,
            "colour",
        ),
        ("[1, 2]", "not valid JSON"),
        ("", "empty"),
    ];
    for (body, expected) in cases {
        let errors = assert_error_envelope(
            app.send_raw_json(reqwest::Method::POST, "/access-tokens", &manager, body)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{body:?}: {errors:?} should mention {expected:?}"
        );
    }
    let long_reason = json!({ "reason": "x".repeat(501) }).to_string();
    let errors = assert_error_envelope(
        app.send_raw_json(
            reqwest::Method::DELETE,
            &format!("/access-tokens/{}", manager.key),
            &manager,
            &long_reason,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(errors[0].starts_with("'reason'"), "{errors:?}");
    expect_json(
        app.get_with_auth("/access-tokens", &manager).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn a_members_token_acts_for_the_member_granted_in_the_dashboard() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Team Inc").await;
    let owners = owner.create_token("owner's").await;
    let member = join(&owner, &email_for("token member"), "member").await;

    // The dashboard grants `tokens`.
    let form = member.token_form().await;
    let page = member
        .submit_token(&form, "member automation", &["read", "tokens"], "")
        .await;
    let managing = read_created_page(&page).token;
    let described = expect_json(app.get_with_auth("/token", &managing).await, StatusCode::OK).await;
    assert_eq!(described["token"]["scopes"], json!(["read", "tokens"]));

    // It sees and manages its member's tokens only, as the member could in the dashboard.
    let made = expect_json(
        app.post_json(
            "/access-tokens",
            &managing,
            &json!({"name": "member's deploy", "scopes": ["read"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(made["access_token"]["name"], "member's deploy");
    let list = expect_json(
        app.get_with_auth("/access-tokens", &managing).await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = list["access_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["member's deploy", "member automation"], "{list}");
    // What a token makes belongs to the member it acts for.
    assert_eq!(
        list["access_tokens"][0]["creator"],
        list["access_tokens"][1]["creator"]
    );
    assert!(list["access_tokens"][0]["creator"].is_string(), "{list}");
    let path = format!("/access-tokens/{}", owners.token.key);
    assert_error_envelope(
        app.get_with_auth(&path, &managing).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error_envelope(app.delete(&path, &managing).await, StatusCode::FORBIDDEN).await;
    expect_json(
        app.get_with_auth("/plans", &owners.token).await,
        StatusCode::OK,
    )
    .await;

    // It may revoke itself; from then on it is refused.
    let own = format!("/access-tokens/{}", managing.key);
    expect_json(app.delete(&own, &managing).await, StatusCode::OK).await;
    assert_401(app.get_with_auth("/access-tokens", &managing).await, false).await;
}

/// The guard let a request in, then the token was revoked before its write ran: the write
/// reads the token again and refuses, so nothing is made. (The store call is made here
/// directly, as the handler would after the guard, since no client can time that gap.)
#[tokio::test]
async fn a_token_revoked_after_the_guard_let_it_in_makes_nothing() {
    use keyward::db::tx::{Principal, transact};
    use keyward::domain::{Scopes, TokenKey, TokenName};

    let app = spawn_app().await;
    let slug = app.create_account("Raced Inc").await;
    let manager = app.create_token(&slug, "ci", "read,tokens").await;
    let described = expect_json(app.get_with_auth("/token", &manager).await, StatusCode::OK).await;
    assert_eq!(described["token"]["key"], manager.key.as_str());
    app.revoke(&manager.key).await;

    let pool = app.state.pool.clone();
    let (key, account_slug) = (manager.key.clone(), slug.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("a connection");
        let account = db::accounts::find_by_slug(&mut conn, &account_slug).unwrap();
        let key = TokenKey::parse(&key).unwrap();
        let row = db::tokens::find_by_key_any_account(&mut conn, &key)
            .unwrap()
            .expect("the token's row");
        let who = Principal::Token {
            id: row.token.token_id(),
            key,
            account: account.account_id(),
            ip: None,
        };
        transact(&mut conn, &who, Some(account.account_id()), |tx| {
            db::tokens::create_by_token(
                tx,
                db::tokens::TokenRequest {
                    name: TokenName::parse("too late").unwrap(),
                    scopes: Scopes::parse("read").unwrap(),
                    expires_at: None,
                    rate_limit: None,
                    fields: Default::default(),
                },
            )
        })
        .map(|_| ())
        .map_err(|e| e.messages())
    })
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Err(vec!["This API token is no longer active.".to_string()])
    );
    let listed = app
        .cli(&["token", "list", "--account", &slug])
        .await
        .expect("token list");
    assert_eq!(listed.lines().count(), 1, "nothing was made: {listed}");
    let log = audit_log(&app, &slug).await;
    assert!(
        !log.iter().any(|(_, actor, _)| actor.contains(&manager.key)),
        "the revoked token did nothing: {log:?}"
    );
}

fn rolled_path(token: &Token) -> String {
    format!("/access-tokens/{}/roll", token.key)
}

#[tokio::test]
async fn a_managing_token_rolls_a_token_whose_old_secret_works_through_the_grace() {
    let app = spawn_app().await;
    let slug = app.create_account("Rolling Inc").await;
    let manager = app.create_token(&slug, "terraform", "read,tokens").await;
    let deploys = app.create_token(&slug, "deploys", "read").await;

    let response = app
        .post_json(&rolled_path(&deploys), &manager, &json!({"grace": "1h"}))
        .await;
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "the answer with a secret must not be cached"
    );
    let rolled = expect_json(response, StatusCode::CREATED).await;
    let successor = token_from(&rolled);
    assert_ne!(successor.key, deploys.key);
    assert_eq!(rolled["access_token"]["name"], "deploys");
    assert_eq!(rolled["access_token"]["scopes"], json!(["read"]));
    assert_eq!(rolled["rolled_from"]["key"], deploys.key.as_str());
    assert!(rolled["rolled_from"].get("secret").is_none(), "{rolled}");

    // The old token now expires within the hour, and works until then; the new one works.
    let old_expiry = rolled["rolled_from"]["expires_at"]
        .as_str()
        .expect("the old token's new expiry");
    let old_expiry = chrono::DateTime::parse_from_rfc3339(old_expiry).expect("RFC 3339");
    let until = old_expiry.signed_duration_since(chrono::Utc::now());
    assert!(
        until > chrono::Duration::minutes(55) && until <= chrono::Duration::hours(1),
        "the grace is an hour: {until}"
    );
    expect_json(app.get_with_auth("/plans", &deploys).await, StatusCode::OK).await;
    expect_json(
        app.get_with_auth("/plans", &successor).await,
        StatusCode::OK,
    )
    .await;

    // Rolling it again finds the successor and names it; nothing more is made.
    let errors = assert_error_envelope(
        app.post_json(&rolled_path(&deploys), &manager, &json!({"grace": "now"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(errors[0].contains(&successor.key), "{errors:?}");
    expect_json(app.get_with_auth("/plans", &deploys).await, StatusCode::OK).await;

    // Both tokens' logs name the calling token.
    let log = audit_log(&app, &slug).await;
    let rolls: Vec<&str> = log
        .iter()
        .filter(|(action, actor, _)| action == "token.rolled" && actor.contains(&manager.key))
        .map(|(_, _, detail)| detail.as_str())
        .collect();
    assert_eq!(rolls.len(), 2, "{log:?}");
    assert!(
        rolls.iter().any(|d| d.contains(&successor.key)),
        "{rolls:?}"
    );
}

#[tokio::test]
async fn rolling_with_no_grace_stops_the_old_secret_at_once() {
    let app = spawn_app().await;
    let slug = app.create_account("Abrupt Inc").await;
    let manager = app
        .create_token(&slug, "terraform", "read,write,tokens")
        .await;
    let leaked = app.create_token(&slug, "leaked", "read,write").await;

    let rolled = expect_json(
        app.post_json(&rolled_path(&leaked), &manager, &json!({"grace": "now"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_401(app.get_with_auth("/plans", &leaked).await, false).await;
    let successor = token_from(&rolled);
    expect_json(
        app.get_with_auth("/plans", &successor).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rolled["access_token"]["scopes"], json!(["read", "write"]));
}

#[tokio::test]
async fn a_token_may_not_roll_itself_a_tokens_holder_or_one_with_more_than_it_holds() {
    let app = spawn_app().await;
    let slug = app.create_account("Guarded Inc").await;
    let manager = app.create_token(&slug, "ci", "read,tokens").await;
    let other_manager = app.create_token(&slug, "terraform", "read,tokens").await;
    let writer = app.create_token(&slug, "writer", "read,write").await;
    let cases = [
        (&manager, "DELETE /token"),
        (&other_manager, "'tokens' scope"),
        (&writer, "write"),
    ];
    for (target, expected) in cases {
        let errors = assert_error_envelope(
            app.post_json(&rolled_path(target), &manager, &json!({"grace": "now"}))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(errors[0].contains(expected), "{}: {errors:?}", target.key);
        // Nothing changed: the target still works, with no successor.
        expect_json(app.get_with_auth("/plans", target).await, StatusCode::OK).await;
    }
    let list = expect_json(
        app.get_with_auth("/access-tokens", &manager).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        list["pagination"]["total_records"], 3,
        "nothing made: {list}"
    );
    let log = audit_log(&app, &slug).await;
    assert!(
        !log.iter().any(|(action, _, _)| action == "token.rolled"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_bad_grace_is_a_422_naming_the_choices_and_a_foreign_key_a_404() {
    let app = spawn_app().await;
    let slug = app.create_account("Picky Inc").await;
    let manager = app.create_token(&slug, "ci", "read,tokens").await;
    let target = app.create_token(&slug, "deploys", "read").await;
    let path = rolled_path(&target);
    for body in [
        "{}",
        r#"{"grace": "2h"}"#,
        r#"{"grace": 3600}"#,
        r#"{"grace": null}"#,
    ] {
        let errors = assert_error_envelope(
            app.send_raw_json(reqwest::Method::POST, &path, &manager, body)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            errors[0].starts_with("'grace'") && errors[0].contains("now, 1h, 24h or 7d"),
            "{body}: {errors:?}"
        );
    }
    let errors = assert_error_envelope(
        app.send_raw_json(
            reqwest::Method::POST,
            &path,
            &manager,
            r#"{"grace": "1h", "colour": "red"}"#,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(errors[0].contains("colour"), "{errors:?}");

    let (_, theirs) = app.account_with_token("Theirs Inc").await;
    for foreign in [rolled_path(&theirs), "/access-tokens/not-a-key/roll".into()] {
        assert_error_envelope(
            app.post_json(&foreign, &manager, &json!({"grace": "now"}))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    expect_json(app.get_with_auth("/plans", &theirs).await, StatusCode::OK).await;

    // Without the `tokens` scope: a 403. Another method: a 405.
    let errors = assert_error_envelope(
        app.post_json(&path, &target, &json!({"grace": "now"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(errors[0].contains("'tokens' scope"), "{errors:?}");
    assert_error_envelope(
        app.get_with_auth(&path, &manager).await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    expect_json(app.get_with_auth("/plans", &target).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_minted_token_is_limited_no_more_than_its_maker() {
    let app = spawn_app().await;
    let slug = app.create_account("Limits Passed On").await;
    let maker = app
        .create_token_with(&slug, "limited", "read,tokens", &["--rate-limit", "5"])
        .await;
    let mint =
        |limit: Value| json!({"name": "child", "scopes": ["read"], "rate_limit_per_minute": limit});

    for looser in [Value::Null, json!(6), json!(100_000_000)] {
        let errors = assert_error_envelope(
            app.post_json("/access-tokens", &maker, &mint(looser.clone()))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            errors
                .iter()
                .any(|e| e.contains("'rate_limit_per_minute'")
                    && e.contains("5 requests per minute")),
            "{looser}: {errors:?}"
        );
    }
    for within in [5, 2] {
        let created = expect_json(
            app.post_json("/access-tokens", &maker, &mint(json!(within)))
                .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            created["access_token"]["rate_limit"]["requests_per_minute"],
            within
        );
    }

    // A maker without a limit hands on whatever it is asked for, or none.
    let free = app.create_token(&slug, "free", "read,tokens").await;
    expect_json(
        app.post_json("/access-tokens", &free, &mint(Value::Null))
            .await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn refused_attempts_on_the_token_api_are_audited_with_what_the_token_was_told() {
    let app = spawn_app().await;
    let slug = app.create_account("Probed Inc").await;
    let manager = app.create_token(&slug, "terraform", "read,tokens").await;
    let reader = app.create_token(&slug, "reader", "read").await;

    let attempts = [
        (
            app.post_json(
                "/access-tokens",
                &manager,
                &json!({"name": "x", "scopes": ["write"]}),
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            app.get_with_auth("/access-tokens/kw_Zq8UnknownKey000", &manager)
                .await,
            StatusCode::NOT_FOUND,
        ),
        (
            app.post_json("/access-tokens", &manager, &json!({"name": ""}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            app.get_with_auth("/access-tokens", &reader).await,
            StatusCode::FORBIDDEN,
        ),
    ];
    for (response, status) in attempts {
        assert_eq!(response.status(), status);
    }

    let refused: Vec<(String, String, String)> = audit_log(&app, &slug)
        .await
        .into_iter()
        .filter(|(action, _, _)| action == "token.api_refused")
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    let (_, actor, detail) = &refused[0];
    assert!(actor.contains(&reader.key), "{actor}");
    assert!(detail.starts_with("GET /access-tokens: 403"), "{detail}");
    let (_, actor, detail) = &refused[3];
    assert!(actor.contains(&manager.key), "{actor}");
    assert!(
        detail.starts_with("POST /access-tokens: 403") && detail.contains("can't grant write"),
        "{detail}"
    );
    assert!(
        refused[2]
            .2
            .starts_with("GET /access-tokens/kw_Zq8UnknownKey000: 404")
    );
    assert!(refused[1].2.starts_with("POST /access-tokens: 422"));
}

#[tokio::test]
async fn a_token_probing_in_a_loop_is_audited_within_its_budget_and_still_answered() {
    let app = spawn_app().await;
    let slug = app.create_account("Looping Probe").await;
    let manager = app.create_token(&slug, "leaked", "read,tokens").await;
    let burst = REFUSAL_BURST;

    let attempts = burst + 15;
    for attempt in 0..attempts {
        let response = app
            .get_with_auth("/access-tokens/kw_Zq8UnknownKey000", &manager)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "attempt {attempt} was not answered as before"
        );
    }

    let refused = audit_log(&app, &slug)
        .await
        .into_iter()
        .filter(|(action, _, _)| action == "token.api_refused")
        .count();
    // The burst, and at most one more that a minute's refill could add meanwhile.
    assert!(
        (burst..=burst + 1).contains(&refused),
        "{refused} audit rows for {attempts} refused attempts; the budget is {burst} at once"
    );
}

/// Refused attempts one token may have audited at once (`limits::refusal_audits::RefusalBudget::BURST`).
const REFUSAL_BURST: usize = 20;
