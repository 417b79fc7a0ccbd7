//! `GET /plans`: the catalogue a client picks a cluster's plan, space and release from.

use reqwest::StatusCode;

use crate::support::api::{assert_401, expect_json, spawn_app};

#[tokio::test]
async fn plans_list_the_catalogue_with_spaces_and_releases() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Shopper").await;

    let body = expect_json(app.get_with_auth("/plans", &token).await, StatusCode::OK).await;

    let plans = body["plans"].as_array().expect("`plans` is an array");
    assert!(
        !plans.is_empty(),
        "the catalogue should not be empty: {body}"
    );
    for plan in plans {
        assert!(
            plan["slug"].as_str().is_some_and(|s| !s.is_empty()),
            "each plan has a slug: {plan}"
        );
        for list in ["available_spaces", "available_releases"] {
            let offered = plan[list].as_array();
            assert!(
                offered.is_some_and(|r| !r.is_empty() && r.iter().all(|x| x.is_string())),
                "each plan lists its {list}: {plan}"
            );
        }
    }
    let mut slugs: Vec<&str> = plans.iter().filter_map(|p| p["slug"].as_str()).collect();
    slugs.sort_unstable();
    slugs.dedup();
    assert_eq!(slugs.len(), plans.len(), "plan slugs are unique: {body}");
}

#[tokio::test]
async fn a_read_only_token_may_read_the_plans() {
    let app = spawn_app().await;
    let account = app.create_account("Reader").await;
    let token = app.create_token(&account, "reader", "read").await;

    let response = app.get_with_auth("/plans", &token).await;

    expect_json(response, StatusCode::OK).await;
}

#[tokio::test]
async fn plans_need_a_token() {
    let app = spawn_app().await;

    assert_401(app.get_without_auth("/plans").await, false).await;
}
