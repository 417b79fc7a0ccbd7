//! Unknown keys cost nothing. Every server keeps a fingerprint of every key that exists and
//! refuses any other key without reading the database; it learns a new key from the same
//! change log that carries revocations: at once when the token was created through it, and
//! within one poll interval when another process created it.

use std::time::Duration;

use keyward::domain::{TokenKey, TokenSecret};
use reqwest::StatusCode;

use crate::support::api::{
    Token, assert_401, eventually, parse_token_output, spawn_app, spawn_app_with,
};
use crate::support::browser::signed_up;
use crate::support::process::keyward_binary_ok;

/// A generous bound on the test server's 100 ms poll, for a debug build on a busy machine.
const PROPAGATION: Duration = Duration::from_secs(5);

/// Credentials of the published shape, with a secret whose checksum is right, that no
/// database holds: what someone guessing or replaying keys would send.
fn unknown_credentials() -> Token {
    Token {
        key: TokenKey::generate().as_str().to_string(),
        secret: TokenSecret::generate().expose().to_string(),
    }
}

/// A server that never polls in a test's lifetime: it knows only the keys it loaded at
/// start and those whose creation it applied itself.
async fn app_that_never_polls() -> crate::helpers::TestApp {
    spawn_app_with(|config| {
        config.invalidation_poll_interval = Duration::from_secs(3600);
    })
    .await
}

#[tokio::test]
async fn an_unknown_key_is_refused_without_reading_the_database() {
    let app = spawn_app().await;
    let (_, known) = app.account_with_token("Known Keys").await;
    let reads = || app.state.cache.database_reads();

    // A key the server knows but hasn't cached costs one read; that is what the count counts.
    let before = reads();
    assert_eq!(
        app.get_with_auth("/token", &known).await.status(),
        StatusCode::OK
    );
    assert_eq!(reads(), before + 1, "the first use of a known key reads it");

    let before = reads();
    for attempt in 0..50 {
        let stranger = unknown_credentials();
        let response = app.get_with_auth("/clusters/", &stranger).await;
        if let Err(problem) =
            crate::helpers::check_401(response, false, crate::helpers::SUPPORT_EMAIL).await
        {
            panic!("attempt {attempt} with an unknown key: not the contracted 401: {problem}");
        }
    }
    // A known key with a wrong (well-formed) secret is answered from the cache, too.
    let wrong = Token {
        key: known.key.clone(),
        secret: TokenSecret::generate().expose().to_string(),
    };
    assert_401(app.get_with_auth("/token", &wrong).await, false).await;
    assert_eq!(
        reads(),
        before,
        "50 unknown keys and a wrong secret read the database"
    );
}

#[tokio::test]
async fn a_key_in_the_database_that_the_log_has_not_announced_is_unknown_until_it_is() {
    let app = app_that_never_polls().await;
    let account = app.create_account("Quiet Server").await;
    // Written straight to the file, as another process would; this server doesn't poll.
    let database = app.db.path.clone();
    let token = tokio::task::spawn_blocking(move || {
        crate::helpers::create_token(&database, &account, "unheard", "read", &[])
    })
    .await
    .expect("token create");
    let before = app.state.cache.database_reads();

    assert_401(app.get_with_auth("/token", &token).await, false).await;
    assert_eq!(
        app.state.cache.database_reads(),
        before,
        "the server refused the key without looking it up"
    );

    app.pick_up_changes().await;
    assert_eq!(
        app.get_with_auth("/token", &token).await.status(),
        StatusCode::OK,
        "once the log's creation note is applied, the key is known"
    );
}

#[tokio::test]
async fn a_token_created_by_the_command_line_in_another_process_works_within_a_poll() {
    let app = spawn_app().await;
    let account = app.create_account("Other Process Keys").await;

    // The real binary: another process, whose creation this server learns only by polling.
    let token = parse_token_output(
        &keyward_binary_ok(
            &app.db.path,
            &[
                "token",
                "create",
                "--account",
                &account,
                "--name",
                "from cli",
            ],
        )
        .await,
    );

    let works = eventually(PROPAGATION, Duration::from_millis(20), || async {
        app.get_with_auth("/token", &token).await.status() == StatusCode::OK
    })
    .await;
    assert!(
        works,
        "a token created by `keyward token create` still failed after {PROPAGATION:?}"
    );
}

#[tokio::test]
async fn a_token_created_in_the_dashboard_works_on_the_very_next_request() {
    // Without a poll, only the creation itself can have told the server the new key.
    let app = app_that_never_polls().await;
    let owner = signed_up(&app.address, "Fresh Keys").await;

    let created = owner.create_token("just made").await;

    assert_eq!(
        app.get_with_auth("/token", &created.token).await.status(),
        StatusCode::OK,
        "the new token was refused on the request right after the page showed it"
    );
}
