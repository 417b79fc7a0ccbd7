//! What survives the server process: tokens, revocations and clusters across a restart and a
//! `kill -9` (Child::kill sends SIGKILL on Unix).

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::{
    assert_401, cluster_slugs, created_slug, expect_json, http_client, plan_and_space, status_with,
};
use crate::support::process::{
    ServerProcess, binary_account_with_token, binary_token, keyward_binary_ok,
};
use crate::support::store::TestDb;

#[tokio::test]
async fn tokens_and_revocations_survive_a_restart() {
    let db = TestDb::new();
    let (account, kept) = binary_account_with_token(&db.path, "Restarted", "kept").await;
    let dropped = binary_token(&db.path, &account, "dropped").await;
    let server = ServerProcess::start(&db.path).await;
    let client = http_client();
    assert_eq!(
        status_with(&client, &server.url("/clusters/"), &kept).await,
        StatusCode::OK
    );
    assert_eq!(
        status_with(&client, &server.url("/clusters/"), &dropped).await,
        StatusCode::OK
    );

    // Revoke, then kill the server before it has necessarily noticed.
    keyward_binary_ok(
        &db.path,
        &["token", "revoke", &dropped.key, "--reason", "rotated"],
    )
    .await;
    server.kill();
    let server = ServerProcess::start(&db.path).await;

    assert_eq!(
        status_with(&client, &server.url("/clusters/"), &kept).await,
        StatusCode::OK
    );
    let response = client
        .get(server.url("/clusters/"))
        .basic_auth(&dropped.key, Some(&dropped.secret))
        .send()
        .await
        .expect("the restarted server should answer");
    assert_401(response, false).await;
}

#[tokio::test]
async fn a_shown_secret_and_an_answered_write_survive_kill_9() {
    let db = TestDb::new();
    let (account, used) = binary_account_with_token(&db.path, "Crashy", "used").await;
    let server = ServerProcess::start(&db.path).await;
    let client = http_client();
    let plans = expect_json(
        client
            .get(server.url("/plans"))
            .basic_auth(&used.key, Some(&used.secret))
            .send()
            .await
            .expect("the server should answer"),
        StatusCode::OK,
    )
    .await;
    let (plan, space) = plan_and_space(&plans);
    let created = client
        .post(server.url("/clusters"))
        .basic_auth(&used.key, Some(&used.secret))
        .json(&json!({"name": "Durable", "plan": plan, "space": space}))
        .send()
        .await
        .expect("the server should answer");
    let durable = created_slug(&expect_json(created, StatusCode::ACCEPTED).await);
    // A second token whose secret has been printed but which was never used.
    let unused = binary_token(&db.path, &account, "unused").await;

    server.kill();
    let server = ServerProcess::start(&db.path).await;

    assert_eq!(
        status_with(&client, &server.url("/clusters/"), &used).await,
        StatusCode::OK
    );
    assert_eq!(
        status_with(&client, &server.url("/clusters/"), &unused).await,
        StatusCode::OK
    );
    let list = expect_json(
        client
            .get(server.url("/clusters/"))
            .basic_auth(&used.key, Some(&used.secret))
            .send()
            .await
            .expect("the server should answer"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        cluster_slugs(&list),
        [durable],
        "the cluster answered with 202 is still there"
    );
}

/// Credits spent are written within a second: a `kill -9` after that loses none of them,
/// and the restarted server goes on from the balance the store holds.
#[tokio::test]
async fn credits_spent_before_kill_9_are_still_spent_after_it() {
    use diesel::prelude::*;

    let db = TestDb::new();
    let (account, _) = binary_account_with_token(&db.path, "Metered", "admin").await;
    let metered = crate::support::api::parse_token_output(
        &keyward_binary_ok(
            &db.path,
            &[
                "token",
                "create",
                "--account",
                &account,
                "--name",
                "metered",
                "--scopes",
                "read",
                "--credits",
                "10",
            ],
        )
        .await,
    );
    let server = ServerProcess::start(&db.path).await;
    let client = http_client();
    for _ in 0..4 {
        assert_eq!(
            status_with(&client, &server.url("/plans"), &metered).await,
            StatusCode::OK
        );
    }
    let remaining = || {
        let key = metered.key.clone();
        let mut conn = db.connect();
        async move {
            keyward::db::schema::tokens::table
                .filter(keyward::db::schema::tokens::key.eq(key))
                .select(keyward::db::schema::tokens::credits_remaining)
                .first::<Option<i64>>(&mut conn)
                .expect("the token's row")
        }
    };
    let written = crate::support::api::eventually(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(100),
        || async { remaining().await == Some(6) },
    )
    .await;
    assert!(
        written,
        "the spending reaches the store within the flush interval"
    );
    server.kill();

    let server = ServerProcess::start(&db.path).await;
    for _ in 0..6 {
        assert_eq!(
            status_with(&client, &server.url("/plans"), &metered).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status_with(&client, &server.url("/plans"), &metered).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
