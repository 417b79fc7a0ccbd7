//! A token works on its first call, wherever it was made; a flood of made-up keys costs
//! each server a bounded number of database reads. A server knows the keys it loaded at
//! start and those its change log announced; a key it hasn't heard of yet (made a moment
//! ago by the command line or another instance) is read from the store by itself, within
//! a budget of such reads a second, and refused unread only past it.

use std::time::{Duration, Instant};

use keyward::domain::{TokenKey, TokenSecret};
use reqwest::StatusCode;

use crate::metrics::scrape;
use crate::support::api::{Token, assert_401, parse_token_output, spawn_app_with};
use crate::support::browser::signed_up;
use crate::support::process::keyward_binary_ok;

/// Credentials of the published shape, with a secret whose checksum is right, that no
/// database holds: what someone guessing or replaying keys would send.
fn unknown_credentials() -> Token {
    Token {
        key: TokenKey::generate().as_str().to_string(),
        secret: TokenSecret::generate().expose().to_string(),
    }
}

/// A server that never polls in a test's lifetime: it learns of a key made elsewhere only
/// by reading it when a call names it.
async fn app_that_never_polls() -> crate::helpers::TestApp {
    spawn_app_with(|config| {
        config.invalidation_poll_interval = Duration::from_secs(3600);
    })
    .await
}

/// `keyward ARGS...` as another process on the app's store, as an operator's script runs it.
async fn binary(app: &crate::helpers::TestApp, args: &[&str]) -> Token {
    parse_token_output(&keyward_binary_ok(&app.db.path, args).await)
}

#[tokio::test]
async fn a_token_the_command_line_creates_while_the_server_runs_works_on_its_first_call() {
    let app = app_that_never_polls().await;
    let account = app.create_account("Scripted Keys").await;

    for round in 0..20 {
        let name = format!("ci job {round}");
        let token = binary(
            &app,
            &["token", "create", "--account", &account, "--name", &name],
        )
        .await;
        // No sleep and no poll: the very next call.
        let status = app.get_with_auth("/token", &token).await.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "round {round}: a token made by `keyward token create` was refused on its first call"
        );
    }
}

#[tokio::test]
async fn a_successor_the_command_line_rolls_works_on_its_first_call_and_the_old_secret_does_not() {
    let app = app_that_never_polls().await;
    let account = app.create_account("Rolled Keys").await;

    for round in 0..20 {
        let name = format!("deployer {round}");
        let old = binary(
            &app,
            &["token", "create", "--account", &account, "--name", &name],
        )
        .await;
        let new = binary(&app, &["token", "roll", &old.key, "--grace", "now"]).await;
        assert_ne!(new.key, old.key);

        let status = app.get_with_auth("/token", &new).await.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "round {round}: the successor of a roll was refused on its first call"
        );
        // Read for the first time after the roll: the store says it was rolled with no grace.
        assert_401(app.get_with_auth("/token", &old).await, false).await;
    }
}

#[tokio::test]
async fn a_token_created_in_the_dashboard_works_on_the_very_next_request() {
    let app = app_that_never_polls().await;
    let owner = signed_up(&app.address, "Fresh Keys").await;

    let created = owner.create_token("just made").await;

    assert_eq!(
        app.get_with_auth("/token", &created.token).await.status(),
        StatusCode::OK,
        "the new token was refused on the request right after the page showed it"
    );
}

/// Reads a second the flood test allows: small, so a debug build outruns it.
const BUDGET: u32 = 20;

#[tokio::test]
async fn a_flood_of_unknown_keys_reads_the_store_no_more_than_the_budget_allows() {
    let app = spawn_app_with(|config| {
        config.metrics_bind = Some("127.0.0.1:0".parse().expect("an address"));
        config.unknown_key_reads_per_second = BUDGET;
    })
    .await;
    let before = scrape(&app).await;
    let reads = |s: &crate::metrics::Scrape| s.value("keyward_guard_unknown_key_reads_total");
    let unread = |s: &crate::metrics::Scrape| s.value("keyward_guard_unknown_keys_unread_total");

    let flood = 300;
    let started = Instant::now();
    for attempt in 0..flood {
        let response = app
            .get_with_auth("/clusters/", &unknown_credentials())
            .await;
        if let Err(problem) =
            crate::helpers::check_401(response, false, crate::helpers::SUPPORT_EMAIL).await
        {
            panic!("attempt {attempt} with an unknown key: not the contracted 401: {problem}");
        }
    }
    let elapsed = started.elapsed();
    let after = scrape(&app).await;

    let (read, refused) = (
        reads(&after) - reads(&before),
        unread(&after) - unread(&before),
    );
    assert_eq!(
        read + refused,
        f64::from(flood),
        "every unknown key is either read or refused unread"
    );
    // The budget's burst (a tenth of a second's worth, at least one) and its rate since.
    let allowed = (f64::from(BUDGET) / 10.0).max(1.0) + f64::from(BUDGET) * elapsed.as_secs_f64();
    assert!(
        read <= allowed.ceil(),
        "{read} reads for {flood} unknown keys in {elapsed:?}; the budget allows {allowed:.0}"
    );
    assert!(
        refused > 0.0,
        "{flood} unknown keys in {elapsed:?} never exceeded a budget of {BUDGET}/s"
    );
}

#[tokio::test]
async fn a_known_key_with_a_wrong_secret_is_answered_from_the_cache() {
    let app = spawn_app_with(|_| {}).await;
    let (_, known) = app.account_with_token("Known Keys").await;
    assert_eq!(
        app.get_with_auth("/token", &known).await.status(),
        StatusCode::OK
    );
    let before = app.state.cache.database_reads();

    let wrong = Token {
        key: known.key.clone(),
        secret: TokenSecret::generate().expose().to_string(),
    };
    assert_401(app.get_with_auth("/token", &wrong).await, false).await;

    assert_eq!(
        app.state.cache.database_reads(),
        before,
        "a wrong secret for a cached key read the database"
    );
}
