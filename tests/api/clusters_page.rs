//! `/account/clusters`: the dashboard shows the account's clusters, read-only, to any
//! member, and never another account's.

use reqwest::StatusCode;

use crate::admin_helpers::join;
use crate::dashboard_helpers::{email_for, signed_up};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_member_sees_the_accounts_clusters_and_no_other_accounts() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Visible Co").await;
    let token = owner.create_token("deploys").await.token;
    let logs = app.create_cluster(&token, "Product logs").await;
    let search = app.create_cluster(&token, "Site search").await;

    let stranger = signed_up(&app.address, "Hidden Co").await;
    let strangers_token = stranger.create_token("theirs").await.token;
    let hidden = app
        .create_cluster(&strangers_token, "Acquisition plans")
        .await;

    // A plain member, not only the owner, may look.
    let member = join(&owner, &email_for("cluster viewer"), "member").await;
    let tokens_page = member.get("/tokens").await;
    tokens_page
        .assert_html_page(StatusCode::OK)
        .assert_contains("href=\"/account/clusters\"");

    let page = member.get("/account/clusters").await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains("Product logs")
        .assert_contains(&logs)
        .assert_contains("Site search")
        .assert_contains(&search)
        .assert_contains("PROVISIONED");
    assert!(
        !page.body.contains("Acquisition plans") && !page.body.contains(&hidden),
        "another account's cluster leaked: {}",
        page.body
    );

    // The other account sees only its own.
    let theirs = stranger.get("/account/clusters").await;
    theirs
        .assert_html_page(StatusCode::OK)
        .assert_contains(&hidden);
    assert!(!theirs.body.contains(&logs), "{}", theirs.body);
}

#[tokio::test]
async fn the_page_shows_what_the_api_shows_of_each_cluster() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Detail Co").await;
    let token = owner.create_token("deploys").await.token;
    let slug = app.create_cluster(&token, "Detailed").await;
    let shown = crate::helpers::expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    let cluster = &shown["cluster"];

    let page = owner.get("/account/clusters").await;
    page.assert_html_page(StatusCode::OK);
    for field in [
        &cluster["plan"]["slug"],
        &cluster["space"]["path"],
        &cluster["release"]["slug"],
        &cluster["state"],
    ] {
        let value = field.as_str().expect("a string");
        page.assert_contains(value);
    }
}

#[tokio::test]
async fn an_account_without_clusters_says_so() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Empty Co").await;
    owner
        .get("/account/clusters")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("No clusters yet");
}

#[tokio::test]
async fn someone_not_signed_in_is_sent_to_sign_in() {
    let app = spawn_app().await;
    let browser = crate::dashboard_helpers::Browser::new(&app.address);
    browser
        .get("/account/clusters")
        .await
        .assert_redirect("/login");
}
