//! Tenant isolation: a token sees and touches only its own account's clusters, and another
//! account's cluster is a 404 (a 403 would tell that it exists).

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::{assert_error_envelope, expect_json, spawn_app};

#[tokio::test]
async fn one_account_cannot_see_or_touch_anothers_clusters() {
    let app = spawn_app().await;
    let (_, alice) = app.account_with_token("Account A").await;
    let (_, bob) = app.account_with_token("Account B").await;
    let a_cluster = app.create_cluster(&alice, "a-cluster").await;
    let b_cluster = app.create_cluster(&bob, "b-cluster").await;
    let b_path = format!("/clusters/{b_cluster}");

    let get = app.get_with_auth(&b_path, &alice).await;
    assert_error_envelope(get, StatusCode::NOT_FOUND).await;
    let put = app
        .put_json(&b_path, &alice, &json!({"name": "Taken Over"}))
        .await;
    assert_error_envelope(put, StatusCode::NOT_FOUND).await;
    let delete = app.delete(&b_path, &alice).await;
    assert_error_envelope(delete, StatusCode::NOT_FOUND).await;

    assert_eq!(
        app.cluster_slugs(&alice).await,
        [a_cluster],
        "A lists only A's clusters"
    );
    assert_eq!(
        app.cluster_slugs(&bob).await,
        [b_cluster],
        "B lists only B's clusters"
    );
    let survivor = expect_json(app.get_with_auth(&b_path, &bob).await, StatusCode::OK).await;
    assert_eq!(
        survivor["cluster"]["name"], "b-cluster",
        "B's cluster is untouched: {survivor}"
    );
}

#[tokio::test]
async fn two_accounts_may_use_the_same_cluster_name() {
    let app = spawn_app().await;
    let (_, alice) = app.account_with_token("Twin A").await;
    let (_, bob) = app.account_with_token("Twin B").await;

    let a = app.create_cluster(&alice, "Search").await;
    let b = app.create_cluster(&bob, "Search").await;

    // Deleting one account's cluster leaves the other's.
    expect_json(
        app.delete(&format!("/clusters/{a}"), &alice).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert!(app.cluster_slugs(&alice).await.is_empty());
    assert_eq!(app.cluster_slugs(&bob).await, [b]);
}

#[tokio::test]
async fn a_token_describes_only_its_own_account() {
    let app = spawn_app().await;
    let (a_slug, alice) = app.account_with_token("Owner A").await;
    let (b_slug, bob) = app.account_with_token("Owner B").await;

    let a = expect_json(app.get_with_auth("/token", &alice).await, StatusCode::OK).await;
    let b = expect_json(app.get_with_auth("/token", &bob).await, StatusCode::OK).await;

    assert_eq!(a["token"]["account"]["slug"], json!(a_slug), "{a}");
    assert_eq!(b["token"]["account"]["slug"], json!(b_slug), "{b}");
}
