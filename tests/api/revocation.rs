//! Revocation: once a revoke has answered, the token stops working on every worker, including
//! when the revoke came from another process through the database.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::support::api::{assert_401, http_client, spawn_app, status_with, unpooled_client};
use crate::support::process::{
    ServerProcess, binary_account_with_token, binary_token, keyward_binary_ok,
};
use crate::support::store::TestDb;

/// How long a revocation made by another process may take to reach a running server.
const PROPAGATION: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(50);

#[tokio::test]
async fn a_token_revoked_from_the_command_line_is_refused_by_every_worker() {
    let app = spawn_app().await;
    let (account, token) = app.account_with_token("Leaky").await;
    let sibling = app.create_token(&account, "sibling", "read,write").await;
    let url = app.url("/clusters/");
    // A new connection per request spreads the requests over both workers, so each has
    // the token in whatever it caches before the revoke.
    let fresh = unpooled_client();
    for _ in 0..10 {
        assert_eq!(status_with(&fresh, &url, &token).await, StatusCode::OK);
        assert_eq!(status_with(&fresh, &url, &sibling).await, StatusCode::OK);
    }

    app.revoke(&token.key).await;

    let refused = crate::helpers::eventually(PROPAGATION, POLL, || async {
        status_with(&fresh, &url, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused,
        "the revoked token still worked {PROPAGATION:?} after the revoke"
    );
    assert_401(app.get_with_auth("/clusters/", &token).await, false).await;
    for attempt in 0..20 {
        let status = status_with(&fresh, &url, &token).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt} on a new connection got in"
        );
    }
    // Revoking one token leaves its siblings alone.
    assert_eq!(status_with(&fresh, &url, &sibling).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_revocation_has_taken_effect_no_request_gets_through() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Hammered").await;
    let url = app.url("/clusters/");
    let pooled = http_client();
    let fresh = unpooled_client();

    // Open several keep-alive connections (pinned to their workers) and let each worker
    // see the token as valid.
    let mut warmup = JoinSet::new();
    for _ in 0..8 {
        let (client, url, token) = (pooled.clone(), url.clone(), token.clone());
        warmup.spawn(async move { status_with(&client, &url, &token).await });
    }
    while let Some(status) = warmup.join_next().await {
        assert_eq!(status.expect("warm-up request"), StatusCode::OK);
    }

    app.revoke(&token.key).await;
    // No sleep: poll straight away until the server has picked the revocation up.
    let refused = crate::helpers::eventually(PROPAGATION, Duration::from_millis(10), || async {
        status_with(&fresh, &url, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused,
        "the revoked token still worked {PROPAGATION:?} after the revoke"
    );

    // 200 requests over 8 concurrent callers: half reuse the warm connections, half open new ones.
    let mut callers = JoinSet::new();
    for caller in 0..8 {
        let client = if caller % 2 == 0 {
            pooled.clone()
        } else {
            fresh.clone()
        };
        let (url, token) = (url.clone(), token.clone());
        callers.spawn(async move {
            let mut let_in = Vec::new();
            for i in 0..25 {
                let status = status_with(&client, &url, &token).await;
                if status != StatusCode::UNAUTHORIZED {
                    let_in.push(format!("caller {caller} request {i}: {status}"));
                }
            }
            let_in
        });
    }
    let mut let_in = Vec::new();
    while let Some(result) = callers.join_next().await {
        let_in.extend(result.expect("caller task"));
    }
    assert!(
        let_in.is_empty(),
        "requests with a revoked token were not refused:\n{}",
        let_in.join("\n")
    );
}

#[tokio::test]
async fn the_binary_cli_revokes_on_a_running_binary_server() {
    let db = TestDb::new();
    let (account, token) = binary_account_with_token(&db.path, "Other Process", "ci").await;
    let sibling = binary_token(&db.path, &account, "sibling").await;
    let server = ServerProcess::start(&db.path).await;
    let url = server.url("/clusters/");
    let fresh = unpooled_client();
    for _ in 0..4 {
        assert_eq!(status_with(&fresh, &url, &token).await, StatusCode::OK);
    }

    keyward_binary_ok(
        &db.path,
        &["token", "revoke", &token.key, "--reason", "leaked in a log"],
    )
    .await;

    let refused = crate::helpers::eventually(PROPAGATION, POLL, || async {
        status_with(&fresh, &url, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused,
        "the token revoked by `keyward token revoke` still worked after {PROPAGATION:?}"
    );
    let pooled = http_client();
    for attempt in 0..100 {
        let client = if attempt % 2 == 0 { &pooled } else { &fresh };
        let status = status_with(client, &url, &token).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt} after the revoke got in"
        );
    }
    assert_eq!(
        status_with(&fresh, &url, &sibling).await,
        StatusCode::OK,
        "the sibling token still works"
    );
}

/// A server whose poll for other processes' changes never comes in a test's lifetime:
/// whatever it refuses at once, it refuses because the change itself emptied its cache.
async fn app_that_never_polls() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|config| {
        config.invalidation_poll_interval = Duration::from_secs(3600);
    })
    .await
}

#[tokio::test]
async fn revocations_made_through_the_dashboard_take_effect_before_the_page_answers() {
    use crate::support::admin::{
        SuspendedBy, account_id, assert_api_refuses, assert_api_works, assert_suspended, call_api,
        join, member_id, operator, submit,
    };
    use crate::support::browser::{email_for, signed_up};

    let app = app_that_never_polls().await;
    let owner = signed_up(&app.address, "No Poll Co").await;
    let member_email = email_for("no poll member");
    let member = join(&owner, &member_email, "member").await;
    let own = owner.create_token("revoked on its page").await;
    let members = member.create_token("member's token").await;
    let leaked = owner.create_token("leaked").await;
    let kept = owner.create_token("kept").await;
    for token in [&own, &members, &leaked, &kept] {
        assert_api_works(&app, &token.token).await;
    }

    // A token revoked on its page.
    owner.revoke(own.id, "rotated").await;
    assert_api_refuses(&app, &own.token).await;

    // A member removed with their tokens.
    let id = member_id(&owner, &member_email).await;
    submit(&owner, "/members", &format!("/members/{id}/remove"), &[]).await;
    assert_api_refuses(&app, &members.token).await;

    // An operator's revocation, and an operator's suspension.
    let op = operator(&app, &email_for("no poll operator")).await;
    let fields = [("key", leaked.token.key.as_str()), ("reason", "leaked")];
    submit(&op, "/admin", "/admin/revoke", &fields).await;
    assert_api_refuses(&app, &leaked.token).await;
    let account = account_id(&op, "No Poll Co").await;
    let path = format!("/admin/accounts/{account}/api-access");
    submit(
        &op,
        "/admin",
        &path,
        &[("state", "suspended"), ("reason", "review")],
    )
    .await;
    assert_suspended(call_api(&app, &kept.token).await, SuspendedBy::Operator).await;
    submit(&op, "/admin", &path, &[("state", "active")]).await;
    assert_api_works(&app, &kept.token).await;
}
