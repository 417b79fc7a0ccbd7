//! `GET /plans`, `/spaces`, `/releases`: the catalogue a client picks a cluster's plan,
//! space and release from. It is data: Bonsai's public catalogue by default, served exactly
//! as its data file holds it, or a file named by `KEYWARD_CATALOGUE`, checked at start.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::api::{
    Token, assert_401, expect_json, http_client, parse_token_output, spawn_app,
};
use crate::support::process::{ServerProcess, keyward_binary, keyward_binary_ok};
use crate::support::store::TestDb;

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

/// The compiled-in catalogue's data, as the repository holds it.
fn default_data() -> Value {
    serde_json::from_str(include_str!("../../src/catalogue.json")).expect("the data file is JSON")
}

/// A list's entries without what the server adds to the data: each entry's `uri`, and a
/// space's `region` beside its `cloud`, which Bonsai's client reads from there.
fn without_uris(list: &Value) -> Vec<Value> {
    let mut entries = list.as_array().expect("a list").clone();
    for entry in &mut entries {
        let entry = entry.as_object_mut().expect("an object");
        entry.remove("uri");
        if entry.contains_key("cloud") {
            entry.remove("region");
        }
    }
    entries
}

#[tokio::test]
async fn the_default_catalogue_is_bonsais_eighteen_plans_nine_spaces_and_twelve_releases() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Catalogue Default").await;
    let data = default_data();
    for (path, collection, count) in [
        ("/plans", "plans", 18),
        ("/spaces", "spaces", 9),
        ("/releases", "releases", 12),
    ] {
        let body = expect_json(app.get_with_auth(path, &token).await, StatusCode::OK).await;
        let served = without_uris(&body[collection]);
        assert_eq!(served.len(), count, "{path}");
        assert_eq!(
            served,
            data[collection].as_array().unwrap().clone(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_release_the_plan_does_not_offer_is_a_422_naming_what_it_offers() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Catalogue Offers").await;
    let response = app
        .post_json(
            "/clusters",
            &token,
            &json!({"name": "Old", "plan": "sandbox-aws-us-east-1", "release": "elasticsearch-5.6.16"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"],
        json!([
            "Release 'elasticsearch-5.6.16' is not available on the plan 'sandbox-aws-us-east-1'. Use one of: elasticsearch-7.10.2, opensearch-2.6.0-mt."
        ])
    );
    assert!(
        app.cluster_slugs(&token).await.is_empty(),
        "nothing was made"
    );
}

/// A catalogue of one plan, one space and one release.
fn small_catalogue() -> Value {
    json!({
        "plans": [{
            "slug": "house-small",
            "name": "House Small",
            "price_in_cents": 1200,
            "billing_interval_in_months": 1,
            "single_tenant": false,
            "private_network": false,
            "available_releases": ["opensearch-2.19.0"],
            "available_spaces": ["house/eu-north-1/common"]
        }],
        "spaces": [{
            "path": "house/eu-north-1/common",
            "private_network": false,
            "cloud": {"provider": "aws", "region": "aws-eu-north-1"}
        }],
        "releases": [{
            "name": "OpenSearch 2.19.0",
            "slug": "opensearch-2.19.0",
            "service_type": "opensearch",
            "version": "2.19.0",
            "package_name": "2.19.0",
            "multitenant": true
        }]
    })
}

#[tokio::test]
async fn a_catalogue_file_replaces_bonsais_for_the_api_and_its_document() {
    let db = TestDb::new();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), small_catalogue().to_string()).unwrap();
    let path = file.path().to_str().unwrap();
    let server = ServerProcess::start_with(&db.path, &[("KEYWARD_CATALOGUE", path)]).await;
    let slug = keyward_binary_ok(&db.path, &["account", "create", "--name", "House"]).await;
    let token: Token = parse_token_output(
        &keyward_binary_ok(
            &db.path,
            &[
                "token",
                "create",
                "--account",
                slug.trim(),
                "--name",
                "ci",
                "--scopes",
                "read,write",
            ],
        )
        .await,
    );
    let client = http_client();
    let get = |path: &str| {
        client
            .get(server.url(path))
            .basic_auth(&token.key, Some(&token.secret))
            .send()
    };

    let plans: Value = get("/plans").await.unwrap().json().await.unwrap();
    assert_eq!(
        without_uris(&plans["plans"]),
        small_catalogue()["plans"].as_array().unwrap().clone()
    );
    assert_eq!(
        get("/plans/standard-nano-comped").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let created = client
        .post(server.url("/clusters"))
        .basic_auth(&token.key, Some(&token.secret))
        .json(&json!({"name": "Search"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    let created: Value = created.json().await.unwrap();
    let cluster: Value = get(&format!(
        "/clusters/{}",
        created["access"]["host"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(cluster["cluster"]["plan"]["slug"], "house-small");
    assert_eq!(cluster["cluster"]["release"]["slug"], "opensearch-2.19.0");
    assert_eq!(cluster["cluster"]["space"]["region"], "aws-eu-north-1");

    // The document tells a client the names this server knows, not the default's.
    let document = client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        document.contains("house-small"),
        "the document lists the file's plan"
    );
    assert!(
        !document.contains("standard-nano-comped"),
        "the document still lists Bonsai's plans"
    );
}

#[test]
fn a_catalogue_file_that_is_missing_or_does_not_hang_together_stops_the_server_with_one_line() {
    let db = TestDb::new();
    let mut broken = small_catalogue();
    broken["plans"][0]["available_releases"] = json!(["opensearch-9.9.9"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), broken.to_string()).unwrap();
    let cases = [
        (
            file.path().to_str().unwrap().to_string(),
            "offers the release \"opensearch-9.9.9\", which the catalogue doesn't have",
        ),
        (
            "/nonexistent/catalogue.json".to_string(),
            "cannot read /nonexistent/catalogue.json",
        ),
    ];
    for (path, reason) in cases {
        let output = keyward_binary(
            &["serve"],
            &[
                ("KEYWARD_BIND", "127.0.0.1:0"),
                ("KEYWARD_DATABASE_URL", &db.path),
                ("KEYWARD_CATALOGUE", &path),
            ],
        );
        assert!(output.status.is_some_and(|s| !s.success()), "{output:?}");
        let lines: Vec<&str> = output
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{output:?}");
        assert!(lines[0].contains("KEYWARD_CATALOGUE"), "{}", lines[0]);
        assert!(lines[0].contains(reason), "{}", lines[0]);
    }
}
