//! `/clusters`: an account's clusters, listed, created, read, updated and deleted with a token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_error_envelope, cluster_slugs, expect_json, spawn_app};

fn keys(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn an_account_without_clusters_lists_none_with_or_without_the_slash() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Empty").await;

    for path in ["/clusters/", "/clusters"] {
        let body = expect_json(app.get_with_auth(path, &token).await, StatusCode::OK).await;

        assert_eq!(
            keys(&body),
            ["clusters", "pagination", "status"],
            "GET {path}: {body}"
        );
        assert_eq!(body["clusters"], json!([]), "GET {path}: {body}");
        assert_eq!(body["pagination"]["total_records"], 0, "GET {path}: {body}");
    }
}

#[tokio::test]
async fn a_cluster_is_created_read_renamed_and_deleted() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Lifecycle").await;
    let (plan, region) = app.a_plan_and_region(&token).await;

    // Create.
    let response = app
        .post_json(
            "/clusters",
            &token,
            &json!({"name": "Search One", "plan": plan, "region": region}),
        )
        .await;
    let created = expect_json(response, StatusCode::CREATED).await;
    assert_eq!(keys(&created), ["cluster", "status"], "{created}");
    let cluster = &created["cluster"];
    assert_eq!(cluster["slug"], "search-one", "{created}");
    assert_eq!(cluster["name"], "Search One", "{created}");
    assert_eq!(cluster["plan"], json!(plan), "{created}");
    assert_eq!(cluster["region"], json!(region), "{created}");
    assert!(
        cluster["state"].as_str().is_some_and(|s| !s.is_empty()),
        "a state: {created}"
    );
    assert!(
        cluster["created_at"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "a creation time: {created}"
    );

    // Read it back, alone and in the list.
    let shown = expect_json(
        app.get_with_auth("/clusters/search-one", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys(&shown), ["cluster", "status"], "{shown}");
    assert_eq!(
        shown["cluster"], created["cluster"],
        "GET shows what POST created"
    );
    assert_eq!(app.cluster_slugs(&token).await, ["search-one"]);

    // Rename.
    let renamed = expect_json(
        app.put_json(
            "/clusters/search-one",
            &token,
            &json!({"name": "Search Uno"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["cluster"]["name"], "Search Uno", "{renamed}");
    assert_eq!(
        renamed["cluster"]["plan"],
        json!(plan),
        "a rename keeps the plan: {renamed}"
    );
    let slug = renamed["cluster"]["slug"]
        .as_str()
        .expect("the updated cluster has a slug")
        .to_string();
    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        shown["cluster"]["name"], "Search Uno",
        "the rename was kept: {shown}"
    );

    // Delete, and it is gone.
    let deleted = app.delete(&format!("/clusters/{slug}"), &token).await;
    expect_json(deleted, StatusCode::OK).await;
    assert_error_envelope(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(app.cluster_slugs(&token).await.is_empty());
}

#[tokio::test]
async fn a_cluster_can_move_to_another_plan() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Upgrader").await;
    let plans = expect_json(app.get_with_auth("/plans", &token).await, StatusCode::OK).await;
    let (first_plan, region) = app.a_plan_and_region(&token).await;
    app.create_cluster(&token, "Growing").await;
    // Another plan offered in the same region, if the catalogue has one.
    let Some(other_plan) = plans["plans"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|p| {
            let slug = p["slug"].as_str()?;
            let offered = p["available_regions"]
                .as_array()?
                .iter()
                .any(|r| *r == json!(region));
            (slug != first_plan && offered).then(|| slug.to_string())
        })
    else {
        eprintln!("only one plan offered in {region}; nothing to move to");
        return;
    };

    let updated = expect_json(
        app.put_json("/clusters/growing", &token, &json!({"plan": other_plan}))
            .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(updated["cluster"]["plan"], json!(other_plan), "{updated}");
    assert_eq!(
        updated["cluster"]["name"], "Growing",
        "a plan change keeps the name: {updated}"
    );
    let shown = expect_json(
        app.get_with_auth("/clusters/growing", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["cluster"]["plan"], json!(other_plan), "{shown}");
}

#[tokio::test]
async fn clusters_are_listed_page_by_page() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Pager").await;
    for name in ["Alpha", "Bravo", "Charlie"] {
        app.create_cluster(&token, name).await;
    }

    let second = expect_json(
        app.get_with_auth("/clusters?page=2&size=1", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        second["clusters"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    assert_eq!(second["pagination"]["page_number"], 2, "{second}");
    assert_eq!(second["pagination"]["page_size"], 1, "{second}");
    assert_eq!(second["pagination"]["total_records"], 3, "{second}");

    // Walking the pages one at a time visits every cluster once.
    let mut seen = Vec::new();
    for page in 1..=3 {
        let body = expect_json(
            app.get_with_auth(&format!("/clusters/?page={page}&size=1"), &token)
                .await,
            StatusCode::OK,
        )
        .await;
        seen.extend(cluster_slugs(&body));
    }
    seen.sort_unstable();
    assert_eq!(seen, ["alpha", "bravo", "charlie"]);

    let past_the_end = expect_json(
        app.get_with_auth("/clusters?page=4&size=1", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(past_the_end["clusters"], json!([]), "{past_the_end}");

    let largest = expect_json(
        app.get_with_auth("/clusters?size=100", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        largest["clusters"].as_array().map(Vec::len),
        Some(3),
        "{largest}"
    );
}

#[tokio::test]
async fn a_page_far_past_the_end_is_empty_not_the_first() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Far Pager").await;
    app.create_cluster(&token, "Only").await;

    // The last page whose offset still fits in an i64 at 100 a page.
    let far = expect_json(
        app.get_with_auth("/clusters?page=92233720368547759&size=100", &token)
            .await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(far["clusters"], json!([]), "{far}");
    assert_eq!(
        far["pagination"]["page_number"],
        json!(92233720368547759_i64),
        "{far}"
    );
    assert_eq!(far["pagination"]["total_pages"], 1, "{far}");
}

#[tokio::test]
async fn bad_pagination_is_a_422() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Bad Pager").await;

    let cases = [
        ("size over 100", "/clusters?size=101"),
        ("size zero", "/clusters?size=0"),
        ("page zero", "/clusters?page=0"),
        ("page not a number", "/clusters?page=abc"),
        ("size not a number", "/clusters/?size=ten"),
        ("negative page", "/clusters?page=-1"),
        // Its offset overflows an i64: once wrapped round to the first page.
        ("the largest i64 page", "/clusters?page=9223372036854775807"),
        ("a page past any i64", "/clusters?page=99999999999999999999"),
        (
            "a page just past what size 100 can count",
            "/clusters?page=92233720368547760&size=100",
        ),
    ];
    let mut failures = Vec::new();
    for (name, path) in cases {
        let response = app.get_with_auth(path, &token).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or_default();
        let is_envelope = keys(&body) == ["errors", "status"] && body["status"] == 422;
        if status != StatusCode::UNPROCESSABLE_ENTITY || !is_envelope {
            failures.push(format!("  {name} ({path}): {status} {text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "expected a 422 envelope:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn bad_cluster_bodies_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Careless").await;
    let (plan, region) = app.a_plan_and_region(&token).await;
    app.create_cluster(&token, "Keeper").await;

    let valid = |name: &str| json!({"name": name, "plan": plan, "region": region}).to_string();
    // (row, method, path, raw body, a word the errors must mention)
    let cases: Vec<(&str, Method, &str, String, Option<&str>)> = vec![
        (
            "POST body not JSON",
            Method::POST,
            "/clusters",
            "{name: Search".into(),
            Some("json"),
        ),
        (
            "POST empty body",
            Method::POST,
            "/clusters",
            String::new(),
            None,
        ),
        (
            "POST a JSON array",
            Method::POST,
            "/clusters",
            "[]".into(),
            None,
        ),
        (
            "POST without a name",
            Method::POST,
            "/clusters",
            json!({"plan": plan, "region": region}).to_string(),
            Some("name"),
        ),
        (
            "POST a blank name",
            Method::POST,
            "/clusters",
            valid("   "),
            Some("name"),
        ),
        (
            "POST a name that is a number",
            Method::POST,
            "/clusters",
            json!({"name": 5, "plan": plan, "region": region}).to_string(),
            None,
        ),
        (
            "POST an unknown plan",
            Method::POST,
            "/clusters",
            json!({"name": "Fancy", "plan": "no-such-plan", "region": region}).to_string(),
            Some("plan"),
        ),
        (
            "PUT body not JSON",
            Method::PUT,
            "/clusters/keeper",
            "not json at all".into(),
            Some("json"),
        ),
        (
            "PUT a blank name",
            Method::PUT,
            "/clusters/keeper",
            json!({"name": ""}).to_string(),
            Some("name"),
        ),
        (
            "PUT an unknown plan",
            Method::PUT,
            "/clusters/keeper",
            json!({"plan": "no-such-plan"}).to_string(),
            Some("plan"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, method, path, raw, mention) in cases {
        let response = app.send_raw_json(method, path, &token, &raw).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or_default();
        let errors: Vec<String> = body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|s| s.as_str().map(str::to_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        let is_envelope =
            keys(&body) == ["errors", "status"] && body["status"] == 422 && !errors.is_empty();
        let mentions = mention.is_none_or(|word| errors.iter().any(|e| e.contains(word)));
        if status != StatusCode::UNPROCESSABLE_ENTITY || !is_envelope || !mentions {
            failures.push(format!(
                "  {name} (errors should mention {mention:?}): {status} {text}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "expected a 422 envelope naming the problem:\n{}",
        failures.join("\n")
    );

    // Bad input loses nothing and adds nothing.
    assert_eq!(app.cluster_slugs(&token).await, ["keeper"]);
    let keeper = expect_json(
        app.get_with_auth("/clusters/keeper", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keeper["cluster"]["name"], "Keeper", "{keeper}");
    assert_eq!(keeper["cluster"]["plan"], json!(plan), "{keeper}");
}

#[tokio::test]
async fn an_unknown_cluster_is_a_404() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Seeker").await;

    let get = app.get_with_auth("/clusters/no-such-cluster", &token).await;
    assert_error_envelope(get, StatusCode::NOT_FOUND).await;

    let put = app
        .put_json(
            "/clusters/no-such-cluster",
            &token,
            &json!({"name": "Found"}),
        )
        .await;
    assert_error_envelope(put, StatusCode::NOT_FOUND).await;

    let delete = app.delete("/clusters/no-such-cluster", &token).await;
    assert_error_envelope(delete, StatusCode::NOT_FOUND).await;

    assert!(
        app.cluster_slugs(&token).await.is_empty(),
        "a PUT to nowhere creates nothing"
    );
}

#[tokio::test]
async fn a_read_only_token_can_look_but_not_change() {
    let app = spawn_app().await;
    let (account, writer) = app.account_with_token("Mixed").await;
    let reader = app.create_token(&account, "dashboards", "read").await;
    let (plan, region) = app.a_plan_and_region(&writer).await;
    app.create_cluster(&writer, "Shared").await;

    expect_json(
        app.get_with_auth("/clusters", &reader).await,
        StatusCode::OK,
    )
    .await;
    expect_json(
        app.get_with_auth("/clusters/shared", &reader).await,
        StatusCode::OK,
    )
    .await;

    let post = app
        .post_json(
            "/clusters",
            &reader,
            &json!({"name": "Sneaky", "plan": plan, "region": region}),
        )
        .await;
    let errors = assert_error_envelope(post, StatusCode::FORBIDDEN).await;
    assert!(
        errors.iter().any(|e| e.contains("write")),
        "the 403 should name the missing scope: {errors:?}"
    );
    let put = app
        .put_json("/clusters/shared", &reader, &json!({"name": "Renamed"}))
        .await;
    assert_error_envelope(put, StatusCode::FORBIDDEN).await;
    let delete = app.delete("/clusters/shared", &reader).await;
    assert_error_envelope(delete, StatusCode::FORBIDDEN).await;

    assert_eq!(app.cluster_slugs(&writer).await, ["shared"]);
    let shared = expect_json(
        app.get_with_auth("/clusters/shared", &writer).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shared["cluster"]["name"], "Shared", "{shared}");
}

#[tokio::test]
async fn a_write_only_token_cannot_read() {
    let app = spawn_app().await;
    let account = app.create_account("Writer Only").await;
    let writer = app.create_token(&account, "ingest", "write").await;

    let list = app.get_with_auth("/clusters", &writer).await;

    assert_error_envelope(list, StatusCode::FORBIDDEN).await;
}
