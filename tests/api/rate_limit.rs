//! Per-token rate limits: set at creation (dashboard form or `--rate-limit`) or on the
//! token's page, shown in lists and `GET /token`, and enforced by the guard with a 429 in
//! Bonsai's words and a `Retry-After` in whole seconds. The limits here are tiny, so the
//! stories never wait for a window to pass.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::admin::{audit_log, join};
use crate::support::api::{TestApp, Token, assert_error_envelope, expect_json, spawn_app};
use crate::support::browser::{Browser, Page, read_created_page, signed_up};

const TOO_MANY: &str = "You are making too many requests to the API.";
/// The server's own API page, where the 429 points when no `KEYWARD_DOCS_URL` is set.
const READ_THE_DOCS: &str = "Please read the documentation at /docs/api";

/// The `Retry-After` of a 429, which must be whole seconds.
fn retry_after(response: &reqwest::Response) -> u64 {
    let value = response
        .headers()
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .expect("ASCII");
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is whole seconds, got {value:?}"))
}

/// Calls `GET /plans` `n` times and returns the statuses.
async fn statuses(app: &TestApp, token: &Token, n: usize) -> Vec<u16> {
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        seen.push(app.get_with_auth("/plans", token).await.status().as_u16());
    }
    seen
}

#[tokio::test]
async fn the_call_after_the_limit_gets_a_429_in_bonsais_words() {
    let app = spawn_app().await;
    let account = app.create_account("Limited Inc").await;
    let token = app
        .create_token_with(&account, "ci", "read", &["--rate-limit", "3"])
        .await;

    assert_eq!(statuses(&app, &token, 3).await, [200, 200, 200]);
    let refused = app.get_with_auth("/plans", &token).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // 3 a minute: the next call is allowed 20 s after the burst, give or take the test's
    // own time; whole seconds, rounded up.
    let wait = retry_after(&refused);
    assert!((1..=20).contains(&wait), "Retry-After: {wait}");
    let errors = assert_error_envelope(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(errors, [TOO_MANY, READ_THE_DOCS]);

    // Every route behind the guard counts against the same limit.
    let response = app.get_with_auth("/token", &token).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_429_points_to_the_operators_docs_and_the_default_page_exists() {
    let app = crate::support::api::spawn_app_with(|config| {
        config.docs_url = "https://docs.example.test/api#rate-limits".into();
    })
    .await;
    let account = app.create_account("Docs Inc").await;
    let token = app
        .create_token_with(&account, "ci", "read", &["--rate-limit", "1"])
        .await;
    assert_eq!(statuses(&app, &token, 2).await, [200, 429]);
    let refused = app.get_with_auth("/plans", &token).await;
    let errors = assert_error_envelope(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        errors,
        [
            TOO_MANY,
            "Please read the documentation at https://docs.example.test/api#rate-limits"
        ]
    );
    assert!(!errors.concat().contains("bonsai"));

    // The default, the server's own page, is there and says how to authenticate.
    let page = Browser::new(&app.address).get("/docs/api").await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains("HTTP Basic Auth")
        .assert_contains("Retry-After");
}

#[tokio::test]
async fn a_limit_is_the_tokens_own_and_no_limit_means_none() {
    let app = spawn_app().await;
    let account = app.create_account("Two Tokens Inc").await;
    let limited = app
        .create_token_with(&account, "limited", "read", &["--rate-limit", "1"])
        .await;
    let free = app.create_token(&account, "free", "read").await;

    assert_eq!(statuses(&app, &limited, 2).await, [200, 429]);
    assert_eq!(statuses(&app, &free, 30).await, vec![200; 30]);
    // A wrong secret for the limited key is a 401, whatever the limit says.
    let wrong = Token {
        key: limited.key.clone(),
        secret: free.secret.clone(),
    };
    assert_eq!(statuses(&app, &wrong, 1).await, [401]);
}

#[tokio::test]
async fn get_token_and_the_command_line_show_the_limit() {
    let app = spawn_app().await;
    let account = app.create_account("Shown Inc").await;
    let limited = app
        .create_token_with(&account, "limited", "read", &["--rate-limit", "600"])
        .await;
    let free = app.create_token(&account, "free", "read").await;

    let body = expect_json(app.get_with_auth("/token", &limited).await, StatusCode::OK).await;
    assert_eq!(
        body["token"]["rate_limit"],
        json!({"requests_per_minute": 600}),
        "{body}"
    );
    let body = expect_json(app.get_with_auth("/token", &free).await, StatusCode::OK).await;
    assert!(body["token"]["rate_limit"].is_null(), "{body}");

    let listed = app
        .cli(&["token", "list", "--account", &account])
        .await
        .expect("token list");
    let line = |key: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line(&limited.key).ends_with("at most 600 requests per minute"),
        "{listed}"
    );
    assert!(line(&free.key).ends_with("no rate limit"), "{listed}");
}

#[tokio::test]
async fn the_command_line_refuses_a_limit_that_is_not_one() {
    let app = spawn_app().await;
    let account = app.create_account("Bad Limits Inc").await;
    for bad in ["0", "-5", "ten", "100000001", "1.5"] {
        let flag = format!("--rate-limit={bad}");
        let refused = app
            .cli(&[
                "token",
                "create",
                "--account",
                &account,
                "--name",
                "ci",
                &flag,
            ])
            .await
            .expect_err(&format!("{flag} should be refused"));
        assert!(refused.contains("from 1 to 100000000"), "{flag}: {refused}");
    }
    let listed = app
        .cli(&["token", "list", "--account", &account])
        .await
        .unwrap();
    assert!(listed.trim().is_empty(), "nothing was made: {listed}");
}

/// Creates a token with the form, its rate limit field filled with `limit`.
async fn create_with_limit(browser: &Browser, name: &str, limit: &str) -> Page {
    let form = browser.token_form().await;
    browser
        .post(
            "/tokens",
            &[
                ("csrf_token", &form.csrf),
                ("nonce", &form.nonce),
                ("name", name),
                ("read", "1"),
                ("expires_in_days", ""),
                ("rate_limit", limit),
            ],
        )
        .await
}

async fn set_limit(browser: &Browser, id: i32, limit: &str) -> Page {
    let csrf = browser.csrf_from(&format!("/tokens/{id}")).await;
    browser
        .post(
            &format!("/tokens/{id}/rate-limit"),
            &[("csrf_token", &csrf), ("rate_limit", limit)],
        )
        .await
}

#[tokio::test]
async fn a_limit_set_in_the_dashboard_is_shown_audited_and_enforced() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Dashboard Limits").await;
    let created = read_created_page(&create_with_limit(&owner, "ci", "120").await);

    let list = owner.get("/tokens").await;
    list.assert_contains("limit 120/min");
    owner
        .get(&format!("/tokens/{}", created.id))
        .await
        .assert_contains("120 requests per minute");

    // Tightened on the token's page: the next calls meet the new limit at once.
    set_limit(&owner, created.id, "2")
        .await
        .assert_redirect(&format!("/tokens/{}", created.id));
    owner
        .get(&format!("/tokens/{}", created.id))
        .await
        .assert_contains("may now make at most 2 requests per minute")
        .assert_contains("2 requests per minute");
    assert_eq!(statuses(&app, &created.token, 3).await, [200, 200, 429]);
    let body = expect_json(
        app.get_with_auth("/token", &created.token).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(body["status"], 429);

    // Cleared: no limit at all.
    set_limit(&owner, created.id, "").await;
    assert_eq!(statuses(&app, &created.token, 5).await, vec![200; 5]);

    let trail = audit_log(&owner, "?action=token.rate_limit_changed").await;
    let details: Vec<&str> = trail.iter().map(|row| row.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "from at most 2 requests per minute to no limit",
            "from at most 120 requests per minute to at most 2 requests per minute",
        ]
    );
}

#[tokio::test]
async fn a_bad_limit_is_refused_with_the_rule_and_changes_nothing() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Refusals Inc").await;
    for bad in ["0", "-1", "abc", "1e3", "100000001", "999999999999"] {
        let page = create_with_limit(&owner, "ci", bad).await;
        page.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
            .assert_contains("from 1 to 100000000");
        assert_eq!(
            page.field_value("name").as_deref(),
            Some("ci"),
            "the form keeps what was typed"
        );
    }
    let created = owner.create_token("kept").await;
    let page = set_limit(&owner, created.id, "0").await;
    page.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("from 1 to 100000000");
    let body = expect_json(
        app.get_with_auth("/token", &created.token).await,
        StatusCode::OK,
    )
    .await;
    assert!(body["token"]["rate_limit"].is_null(), "{body}");
    let list = owner.get("/tokens").await;
    assert!(!list.text().contains("/min"), "no limit is shown");
}

#[tokio::test]
async fn only_those_who_manage_a_token_may_change_its_limit() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Guarded Inc").await;
    let created = owner.create_token("owner's").await;
    let member = join(&owner, "limits-member@example.com", "member").await;

    // A member may not limit a colleague's token: the token page itself is closed to them.
    let csrf = member.csrf_from("/tokens").await;
    let page = member
        .post(
            &format!("/tokens/{}/rate-limit", created.id),
            &[("csrf_token", &csrf), ("rate_limit", "1")],
        )
        .await;
    page.assert_html_page(StatusCode::FORBIDDEN);

    // Another account's token is a 404.
    let stranger = signed_up(&app.address, "Stranger Limits").await;
    let csrf = stranger.csrf_from("/tokens").await;
    let page = stranger
        .post(
            &format!("/tokens/{}/rate-limit", created.id),
            &[("csrf_token", &csrf), ("rate_limit", "1")],
        )
        .await;
    page.assert_html_page(StatusCode::NOT_FOUND);

    assert_eq!(statuses(&app, &created.token, 3).await, [200, 200, 200]);
}

#[tokio::test]
async fn rate_limited_calls_are_counted_as_refusals_in_the_history() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Counted Limits").await;
    let created = read_created_page(&create_with_limit(&owner, "ci", "1").await);
    assert_eq!(statuses(&app, &created.token, 3).await, [200, 429, 429]);
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || state.usage.flush(&state.pool))
        .await
        .unwrap()
        .expect("flushed");
    let stored = crate::admin_helpers::count_rows(
        &app,
        "SELECT COUNT(*) FROM token_usage_days WHERE succeeded = 1 AND rate_limited = 2",
    )
    .await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_member_may_tighten_their_tokens_limit_but_only_an_admin_may_loosen_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Loosening Inc").await;
    let member = join(&owner, "loosening-member@example.com", "member").await;
    let created = member.create_token("member's").await;

    // The admin limits the member's token; the member may tighten it further.
    set_limit(&owner, created.id, "5")
        .await
        .assert_redirect(&format!("/tokens/{}", created.id));
    set_limit(&member, created.id, "3")
        .await
        .assert_redirect(&format!("/tokens/{}", created.id));

    // Neither raising nor clearing is theirs to do.
    for loosened in ["10", ""] {
        set_limit(&member, created.id, loosened)
            .await
            .assert_html_page(StatusCode::FORBIDDEN)
            .assert_contains("Only an owner or admin can raise or clear");
    }
    assert_eq!(
        statuses(&app, &created.token, 4).await,
        [200, 200, 200, 429]
    );

    // The owner may.
    set_limit(&owner, created.id, "")
        .await
        .assert_redirect(&format!("/tokens/{}", created.id));
}

#[tokio::test]
async fn a_rolled_token_and_its_successor_share_one_limit_through_the_grace() {
    let app = spawn_app().await;
    let account = app.create_account("Shared Buckets").await;
    let manager = app.create_token(&account, "manager", "read,tokens").await;
    let old = app
        .create_token_with(&account, "ci", "read", &["--rate-limit", "4"])
        .await;
    let rolled = expect_json(
        app.post_json(
            &format!("/access-tokens/{}/roll", old.key),
            &manager,
            &json!({"grace": "1h"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let new = Token {
        key: rolled["access_token"]["key"].as_str().unwrap().into(),
        secret: rolled["access_token"]["secret"].as_str().unwrap().into(),
    };

    assert_eq!(statuses(&app, &old, 2).await, [200, 200]);
    assert_eq!(statuses(&app, &new, 2).await, [200, 200]);
    assert_eq!(statuses(&app, &old, 1).await, [429], "the old secret");
    assert_eq!(statuses(&app, &new, 1).await, [429], "the successor");
}
