//! `GET /metrics`: Prometheus text on its own address (`KEYWARD_METRICS_BIND`), never on the
//! API's; the guard's outcomes counted by reason, latency by route pattern, and nothing
//! secret in the page.

use std::collections::HashMap;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::{
    TestApp, Token, assert_error_envelope, basic, eventually, spawn_app, spawn_app_with,
    unknown_key,
};
use crate::support::process::keyward_binary;
use crate::support::store::TestDb;

/// A server with metrics on, on a free port of their own.
pub(crate) async fn spawn_measured_app() -> TestApp {
    spawn_app_with(|config| {
        config.metrics_bind = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await
}

/// One scrape: every sample line as `series -> value`, and the page as it came.
pub(crate) struct Scrape {
    samples: HashMap<String, f64>,
    page: String,
}

impl Scrape {
    /// The value of one series, such as `keyward_guard_outcomes_total{reason="ok"}`; a
    /// series the page doesn't have is 0.
    pub(crate) fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    fn guard(&self, reason: &str) -> f64 {
        self.value(&format!(
            "keyward_guard_outcomes_total{{reason=\"{reason}\"}}"
        ))
    }
}

pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let address = app
        .metrics_address
        .as_deref()
        .expect("this server has metrics on");
    let response = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("the metrics address should answer");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let page = response.text().await.expect("a text body");
    let samples = page
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect();
    Scrape { samples, page }
}

/// Runs SQL on the test's store (either backend): for states no route makes at once.
async fn execute(app: &TestApp, sql: String) {
    let db = app.db.path.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = keyward::db::open(&db).unwrap_or_else(|e| panic!("open {db}: {e:#}"));
        conn.batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
    .await
    .expect("the statement should not panic");
}

async fn status(app: &TestApp, path: &str, token: &Token) -> u16 {
    app.get_with_auth(path, token).await.status().as_u16()
}

#[tokio::test]
async fn metrics_are_off_by_default_and_the_api_never_serves_them() {
    let app = spawn_app().await;
    assert_eq!(
        app.metrics_address, None,
        "no metrics address unless one is set"
    );
    assert_eq!(app.state.config.metrics_bind, None);
    assert_error_envelope(
        app.get_without_auth("/metrics").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn the_metrics_address_serves_metrics_and_the_api_address_does_not() {
    let app = spawn_measured_app().await;
    let metrics_address = app.metrics_address.clone().expect("metrics are on");
    assert_ne!(metrics_address, app.address);

    let scraped = scrape(&app).await;
    assert!(
        scraped
            .page
            .contains("# TYPE keyward_guard_outcomes_total counter"),
        "{}",
        scraped.page
    );
    // The API's own address answers /metrics as it answers any unknown path.
    assert_error_envelope(
        app.get_without_auth("/metrics").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // And the metrics address serves nothing else.
    let other = app
        .client
        .get(format!("{metrics_address}/clusters"))
        .send()
        .await
        .expect("the metrics address should answer");
    assert_error_envelope(other, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn each_guarded_call_counts_once_under_its_reason() {
    let app = spawn_measured_app().await;
    let account = app.create_account("Counted Inc").await;
    let good = app.create_token(&account, "good", "read").await;
    let revoked = app.create_token(&account, "revoked", "read").await;
    let expired = app.create_token(&account, "expired", "read").await;
    let limited = app
        .create_token_with(&account, "limited", "read", &["--rate-limit", "1"])
        .await;
    let suspended_account = app.create_account("Suspended Inc").await;
    let suspended = app.create_token(&suspended_account, "ci", "read").await;
    app.revoke(&revoked.key).await;
    app.pick_up_changes().await;
    // Not yet cached, so the guard reads these states from the store.
    execute(
        &app,
        format!(
            "UPDATE tokens SET expires_at = '2000-01-01 00:00:00' WHERE key = '{}';
             UPDATE accounts SET api_state = 'suspended' WHERE slug = '{suspended_account}';",
            expired.key
        ),
    )
    .await;
    let wrong = Token {
        key: good.key.clone(),
        secret: limited.secret.clone(),
    };
    let unknown = Token {
        key: unknown_key(),
        secret: good.secret.clone(),
    };
    let before = scrape(&app).await;

    // Each reason a different number of times, so no two can be mistaken for each other.
    for _ in 0..3 {
        assert_eq!(status(&app, "/plans", &good).await, 200);
    }
    for _ in 0..2 {
        let missing = app.get_without_auth("/plans").await;
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..4 {
        let malformed = app.get_with_header("/plans", Some(basic("no colon"))).await;
        assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        assert_eq!(status(&app, "/plans", &unknown).await, 401);
    }
    for _ in 0..6 {
        assert_eq!(status(&app, "/plans", &wrong).await, 401);
    }
    for _ in 0..7 {
        assert_eq!(status(&app, "/plans", &revoked).await, 401);
    }
    for _ in 0..8 {
        assert_eq!(status(&app, "/plans", &expired).await, 401);
    }
    for _ in 0..9 {
        assert_eq!(status(&app, "/plans", &suspended).await, 403);
    }
    // A read-only token creating a cluster: let in, then refused for the scope.
    for _ in 0..10 {
        let refused = app
            .post_json("/clusters", &good, &json!({"name": "Nope"}))
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(status(&app, "/plans", &limited).await, 200);
    for _ in 0..11 {
        assert_eq!(status(&app, "/plans", &limited).await, 429);
    }

    let after = scrape(&app).await;
    let expected = [
        ("ok", 3.0 + 1.0),
        ("missing", 2.0),
        ("malformed", 4.0),
        ("unknown_key", 5.0),
        ("wrong_secret", 6.0),
        ("revoked", 7.0),
        ("expired", 8.0),
        ("suspended", 9.0),
        ("scope", 10.0),
        ("rate_limited", 11.0),
        ("unavailable", 0.0),
    ];
    for (reason, calls) in expected {
        assert_eq!(
            after.guard(reason) - before.guard(reason),
            calls,
            "reason {reason}:\n{}",
            after.page
        );
    }
    // The cache answered the good token's repeated calls; its first call was a read.
    let hits = "keyward_token_cache_hits_total";
    assert!(
        after.value(hits) - before.value(hits) >= 3.0,
        "{}",
        after.page
    );
    assert!(
        after.value("keyward_token_cache_entries") >= 1.0,
        "{}",
        after.page
    );
}

#[tokio::test]
async fn latency_is_labelled_by_route_pattern_never_by_path() {
    let app = spawn_measured_app().await;
    let (_, token) = app.account_with_token("Routed Inc").await;
    let slug = app.create_cluster(&token, "Routed cluster").await;
    for _ in 0..3 {
        assert_eq!(
            status(&app, &format!("/clusters/{slug}"), &token).await,
            200
        );
    }
    let stray = "/no-such-page-customer-4711";
    assert_eq!(
        app.get_without_auth(stray).await.status(),
        StatusCode::NOT_FOUND
    );

    let scraped = scrape(&app).await;
    let one_cluster = "keyward_http_request_duration_seconds_count{route=\"/clusters/{slug}\",method=\"GET\",status=\"2xx\"}";
    assert_eq!(scraped.value(one_cluster), 3.0, "{}", scraped.page);
    assert!(
        scraped.page.contains("route=\"unmatched\""),
        "{}",
        scraped.page
    );
    assert!(
        !scraped.page.contains(&slug),
        "a concrete path reached a label"
    );
    assert!(
        !scraped.page.contains("customer-4711"),
        "a stray path reached a label"
    );
}

#[tokio::test]
async fn nothing_secret_reaches_the_scrape() {
    let app = spawn_measured_app().await;
    let (_, token) = app.account_with_token("Discreet Inc").await;
    assert_eq!(status(&app, "/plans", &token).await, 200);
    let guessed = Token {
        key: token.key.clone(),
        secret: "kws_NotTheSecretButStillNotForTheScrape".to_string(),
    };
    assert_eq!(status(&app, "/plans", &guessed).await, 401);

    let scraped = scrape(&app).await;
    assert!(scraped.guard("ok") >= 1.0, "the calls were counted");
    for secret in [&token.secret, &guessed.secret, &token.key] {
        assert!(
            !scraped.page.contains(secret.as_str()),
            "{secret} is in the scrape"
        );
    }
}

#[tokio::test]
async fn store_side_figures_appear_pool_waits_invalidation_lag_and_active_tokens() {
    let app = spawn_measured_app().await;
    let (account, token) = app.account_with_token("Gauged Inc").await;
    let second = app.create_token(&account, "second", "read").await;
    app.create_token(&account, "third", "read").await;
    let other = app.create_account("Empty Inc").await;
    assert_eq!(status(&app, "/plans", &second).await, 200);
    app.revoke(&second.key).await;
    app.pick_up_changes().await;
    assert_eq!(status(&app, "/plans", &token).await, 200);

    // The gauge is refreshed by a background loop (every 200 ms in tests).
    let mine = format!("keyward_active_tokens{{account=\"{account}\"}}");
    let empty = format!("keyward_active_tokens{{account=\"{other}\"}}");
    let counted = eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let scraped = scrape(&app).await;
            scraped.value(&mine) == 2.0 && scraped.samples.contains_key(&empty)
        },
    )
    .await;
    let scraped = scrape(&app).await;
    assert!(
        counted,
        "two active tokens of three, and none:\n{}",
        scraped.page
    );
    assert_eq!(scraped.value(&empty), 0.0);
    assert!(
        scraped.value("keyward_invalidation_lag_seconds_count") >= 1.0,
        "the revocation's note was applied:\n{}",
        scraped.page
    );
    assert!(
        scraped.value("keyward_db_pool_wait_seconds_count") >= 1.0,
        "the store was used:\n{}",
        scraped.page
    );
    assert!(
        scraped.page.contains("keyward_argon2_queue_depth 0"),
        "{}",
        scraped.page
    );
}

#[tokio::test]
async fn operators_can_turn_the_per_account_gauge_off() {
    let app = spawn_app_with(|config| {
        config.metrics_bind = Some("127.0.0.1:0".parse().expect("an address"));
        config.metrics_per_account = false;
    })
    .await;
    app.account_with_token("Unlisted Inc").await;
    // Longer than several refreshes, which would have set the gauge were it on.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let scraped = scrape(&app).await;
    assert!(scraped.page.contains("keyward_guard_outcomes_total"));
    assert!(
        !scraped.page.contains("keyward_active_tokens{"),
        "{}",
        scraped.page
    );
}

#[test]
fn a_bad_metrics_address_stops_the_start_with_one_clear_line() {
    let db = TestDb::new();
    let output = keyward_binary(
        &["serve"],
        &[
            ("KEYWARD_DATABASE_URL", db.path.as_str()),
            ("KEYWARD_BIND", "127.0.0.1:0"),
            ("KEYWARD_METRICS_BIND", "metrics.example:port"),
        ],
    );
    assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{output:?}");
    let stderr = output.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("KEYWARD_METRICS_BIND") && stderr.contains("metrics.example:port"),
        "{stderr}"
    );
}
