//! `GET /clusters` answers from rendered pages kept in memory. A kept page shows this
//! server's own writes at once, another process's within one poll of the invalidation
//! log, and is never served to another account.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::api::{TestApp, Token, cluster_slugs, expect_json, spawn_app, spawn_app_with};
use crate::support::process::ServerProcess;

/// A generous bound on the other process's 250 ms poll, for a debug build on a busy machine.
const PROPAGATION: Duration = Duration::from_secs(10);

async fn first_page(app: &TestApp, token: &Token) -> Value {
    expect_json(app.get_with_auth("/clusters/", token).await, StatusCode::OK).await
}

fn names(body: &Value) -> Vec<String> {
    body["clusters"]
        .as_array()
        .expect("a list of clusters")
        .iter()
        .map(|c| c["name"].as_str().expect("a name").to_string())
        .collect()
}

/// How many pages the server keeps.
fn kept(app: &TestApp) -> usize {
    app.state.cluster_pages.usage().0
}

#[tokio::test]
async fn a_kept_list_shows_this_servers_create_update_and_delete_at_once() {
    // The log is never polled here: whatever the list shows, the write itself made it so.
    let app = spawn_app_with(|config| {
        config.invalidation_poll_interval = Duration::from_secs(3600);
    })
    .await;
    let (_, token) = app.account_with_token("Cached Co").await;
    let first = app.create_cluster(&token, "First").await;

    assert_eq!(names(&first_page(&app, &token).await), ["First"]);
    assert_eq!(kept(&app), 1, "the first page is kept");
    assert_eq!(names(&first_page(&app, &token).await), ["First"]);

    let second = app.create_cluster(&token, "Second").await;
    let body = first_page(&app, &token).await;
    assert_eq!(names(&body), ["First", "Second"]);
    assert_eq!(body["pagination"]["total_records"], 2, "{body}");

    let renamed = app
        .put_json(
            &format!("/clusters/{first}"),
            &token,
            &json!({"name": "Renamed"}),
        )
        .await;
    expect_json(renamed, StatusCode::ACCEPTED).await;
    assert_eq!(
        names(&first_page(&app, &token).await),
        ["Renamed", "Second"]
    );

    let deleted = app.delete(&format!("/clusters/{second}"), &token).await;
    expect_json(deleted, StatusCode::ACCEPTED).await;
    let body = first_page(&app, &token).await;
    assert_eq!(cluster_slugs(&body), [first]);
    assert_eq!(body["pagination"]["total_records"], 1, "{body}");
}

#[tokio::test]
async fn a_cluster_made_by_another_server_shows_here_within_one_poll() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Two Servers").await;
    app.create_cluster(&token, "Made here").await;
    assert_eq!(names(&first_page(&app, &token).await), ["Made here"]);
    assert_eq!(kept(&app), 1, "the first page is kept");

    // Another server on the same file makes a cluster; this one learns of it from the log.
    let other = ServerProcess::start(&app.db.path).await;
    let made = app
        .client
        .post(other.url("/clusters"))
        .basic_auth(&token.key, Some(&token.secret))
        .json(&json!({"name": "Made there"}))
        .send()
        .await
        .expect("the other server answers");
    assert_eq!(made.status(), StatusCode::ACCEPTED);

    let seen = crate::helpers::eventually(PROPAGATION, Duration::from_millis(50), || async {
        names(&first_page(&app, &token).await) == ["Made here", "Made there"]
    })
    .await;
    assert!(
        seen,
        "still {:?} after {PROPAGATION:?}",
        names(&first_page(&app, &token).await)
    );
    other.kill();
}

#[tokio::test]
async fn a_kept_page_is_never_served_to_another_account() {
    let app = spawn_app().await;
    let (_, ours) = app.account_with_token("Ours").await;
    let (_, theirs) = app.account_with_token("Theirs").await;
    let our_cluster = app.create_cluster(&ours, "Our cluster").await;
    let their_cluster = app.create_cluster(&theirs, "Their cluster").await;

    // Twice each: the first answer is rendered and kept, the second comes from memory.
    for _ in 0..2 {
        assert_eq!(
            cluster_slugs(&first_page(&app, &ours).await),
            vec![our_cluster.as_str()]
        );
        assert_eq!(
            cluster_slugs(&first_page(&app, &theirs).await),
            vec![their_cluster.as_str()]
        );
    }
    assert_eq!(kept(&app), 2, "one page for each account");

    // A write in one account leaves the other's page alone, and is seen in its own.
    app.create_cluster(&ours, "Our second").await;
    assert_eq!(
        names(&first_page(&app, &ours).await),
        ["Our cluster", "Our second"]
    );
    assert_eq!(names(&first_page(&app, &theirs).await), ["Their cluster"]);
}

#[tokio::test]
async fn pages_and_sizes_are_kept_apart() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Paged").await;
    for name in ["One", "Two", "Three"] {
        app.create_cluster(&token, name).await;
    }
    for _ in 0..2 {
        let page = |query: &'static str| {
            let app = &app;
            let token = &token;
            async move {
                names(
                    &expect_json(
                        app.get_with_auth(&format!("/clusters?{query}"), token)
                            .await,
                        StatusCode::OK,
                    )
                    .await,
                )
            }
        };
        assert_eq!(page("size=2").await, ["One", "Two"]);
        assert_eq!(page("size=2&page=2").await, ["Three"]);
        assert_eq!(page("size=1&page=2").await, ["Two"]);
    }
}
