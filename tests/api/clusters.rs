//! `/clusters`: an account's clusters, listed, created, read, updated and deleted with a token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::api::{
    assert_error_envelope, cluster_slugs, created_slug, expect_json, spawn_app,
};

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
    let (plan, space) = app.a_plan_and_space(&token).await;

    // Create: accepted, with where to watch it and its access, credentials shown once.
    let response = app
        .post_json(
            "/clusters",
            &token,
            &json!({"name": "Search One", "plan": plan, "space": space}),
        )
        .await;
    let created = expect_json(response, StatusCode::ACCEPTED).await;
    assert_eq!(
        keys(&created),
        ["access", "message", "monitor", "status"],
        "{created}"
    );
    assert_eq!(created["message"], "Your cluster is being provisioned.");
    let slug = created_slug(&created);
    assert!(
        slug.starts_with("search-one-") && slug.len() == "search-one-".len() + 10,
        "the slug is the name and ten digits: {slug}"
    );
    assert_eq!(
        created["monitor"],
        json!(app.url(&format!("/clusters/{slug}"))),
        "{created}"
    );

    // Read it back, alone and in the list.
    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys(&shown), ["cluster", "status"], "{shown}");
    let cluster = &shown["cluster"];
    assert_eq!(cluster["slug"], json!(slug), "{shown}");
    assert_eq!(cluster["name"], "Search One", "{shown}");
    assert_eq!(cluster["plan"]["slug"], json!(plan), "{shown}");
    assert_eq!(cluster["space"]["path"], json!(space), "{shown}");
    assert_eq!(cluster["state"], "PROVISIONED", "{shown}");
    assert_eq!(app.cluster_slugs(&token).await, std::slice::from_ref(&slug));

    // Rename: accepted with Bonsai's sentence, and the slug stays.
    let renamed = expect_json(
        app.put_json(
            &format!("/clusters/{slug}"),
            &token,
            &json!({"name": "Search Uno"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        renamed["message"], "Your cluster is being updated.",
        "{renamed}"
    );
    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["cluster"]["name"], "Search Uno", "{shown}");
    assert_eq!(
        shown["cluster"]["plan"]["slug"],
        json!(plan),
        "a rename keeps the plan: {shown}"
    );

    // Delete, and it is gone.
    let deleted = expect_json(
        app.delete(&format!("/clusters/{slug}"), &token).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(deleted["message"], "Your cluster is being deprovisioned.");
    assert_error_envelope(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(app.cluster_slugs(&token).await.is_empty());
}

#[tokio::test]
async fn two_clusters_may_share_a_name_and_get_their_own_slugs() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Twins").await;

    let first = app.create_cluster(&token, "Logs").await;
    let second = app.create_cluster(&token, "Logs").await;

    assert_ne!(first, second);
    let mut listed = app.cluster_slugs(&token).await;
    listed.sort_unstable();
    let mut made = vec![first, second];
    made.sort_unstable();
    assert_eq!(listed, made);
}

#[tokio::test]
async fn a_name_with_nothing_to_make_a_slug_from_still_makes_a_cluster() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Symbols").await;

    let slug = app.create_cluster(&token, "¡¿!?").await;

    assert!(slug.starts_with("cluster-"), "{slug}");
    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["cluster"]["name"], "¡¿!?", "{shown}");
}

#[tokio::test]
async fn a_cluster_can_move_to_another_plan_that_offers_its_space() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Upgrader").await;
    let plans = expect_json(app.get_with_auth("/plans", &token).await, StatusCode::OK).await;
    let (first_plan, space) = app.a_plan_and_space(&token).await;
    let slug = app.create_cluster(&token, "Growing").await;
    let offers = |p: &Value, key: &str, value: &str| {
        p[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == value))
    };
    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    let release = shown["cluster"]["release"]["slug"]
        .as_str()
        .expect("a release slug")
        .to_string();
    let catalogue = plans["plans"].as_array().expect("plans");
    let other_plan = catalogue
        .iter()
        .find(|p| {
            p["slug"] != json!(first_plan)
                && offers(p, "available_spaces", &space)
                && offers(p, "available_releases", &release)
        })
        .and_then(|p| p["slug"].as_str())
        .expect("the catalogue has another plan for the default space and release");

    expect_json(
        app.put_json(
            &format!("/clusters/{slug}"),
            &token,
            &json!({"name": "Growing", "plan": other_plan}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;

    let shown = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        shown["cluster"]["plan"]["slug"],
        json!(other_plan),
        "{shown}"
    );
    assert_eq!(shown["cluster"]["name"], "Growing", "{shown}");

    // A plan not offered in the cluster's space is refused, and nothing changes.
    if let Some(elsewhere) = catalogue
        .iter()
        .find(|p| !offers(p, "available_spaces", &space))
        .and_then(|p| p["slug"].as_str())
    {
        let errors = assert_error_envelope(
            app.put_json(
                &format!("/clusters/{slug}"),
                &token,
                &json!({"plan": elsewhere}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(errors.iter().any(|e| e.contains(elsewhere)), "{errors:?}");
    }
    let after = expect_json(
        app.get_with_auth(&format!("/clusters/{slug}"), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        after["cluster"]["plan"]["slug"],
        json!(other_plan),
        "{after}"
    );
}

#[tokio::test]
async fn clusters_are_listed_page_by_page() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Pager").await;
    let mut made = Vec::new();
    for name in ["Alpha", "Bravo", "Charlie"] {
        made.push(app.create_cluster(&token, name).await);
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
    assert_eq!(seen, made, "oldest first, each once");

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
    let (plan, space) = app.a_plan_and_space(&token).await;
    let keeper = app.create_cluster(&token, "Keeper").await;
    let keeper_path = format!("/clusters/{keeper}");

    let valid = |name: &str| json!({"name": name, "plan": plan, "space": space}).to_string();
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
            json!({"plan": plan, "space": space}).to_string(),
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
            json!({"name": 5, "plan": plan, "space": space}).to_string(),
            None,
        ),
        (
            "POST an unknown plan",
            Method::POST,
            "/clusters",
            json!({"name": "Fancy", "plan": "no-such-plan", "space": space}).to_string(),
            Some("plan 'no-such-plan' not found. please use the /plans endpoint"),
        ),
        (
            "POST an unknown space",
            Method::POST,
            "/clusters",
            json!({"name": "Fancy", "space": "omc/nowhere"}).to_string(),
            Some("space 'omc/nowhere' not found. please use the /spaces endpoint"),
        ),
        (
            "POST an unknown release",
            Method::POST,
            "/clusters",
            json!({"name": "Fancy", "release": "lucene-1"}).to_string(),
            Some("release 'lucene-1' not found. please use the /releases endpoint"),
        ),
        (
            "POST the old region field",
            Method::POST,
            "/clusters",
            json!({"name": "Fancy", "region": "aws-us-east-1"}).to_string(),
            Some("region"),
        ),
        (
            "POST a field no client sends",
            Method::POST,
            "/clusters",
            json!({"name": "Fancy", "replicas": 3}).to_string(),
            Some("replicas"),
        ),
        (
            "PUT a space, which can't change",
            Method::PUT,
            &keeper_path,
            json!({"name": "Keeper", "space": space}).to_string(),
            Some("space"),
        ),
        (
            "PUT body not JSON",
            Method::PUT,
            &keeper_path,
            "not json at all".into(),
            Some("json"),
        ),
        (
            "PUT a blank name",
            Method::PUT,
            &keeper_path,
            json!({"name": ""}).to_string(),
            Some("name"),
        ),
        (
            "PUT an unknown plan",
            Method::PUT,
            &keeper_path,
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
    assert_eq!(app.cluster_slugs(&token).await, [keeper]);
    let kept = expect_json(
        app.get_with_auth(&keeper_path, &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(kept["cluster"]["name"], "Keeper", "{kept}");
    assert_eq!(kept["cluster"]["plan"]["slug"], json!(plan), "{kept}");
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
    let (plan, space) = app.a_plan_and_space(&writer).await;
    let shared = app.create_cluster(&writer, "Shared").await;
    let shared_path = format!("/clusters/{shared}");

    expect_json(
        app.get_with_auth("/clusters", &reader).await,
        StatusCode::OK,
    )
    .await;
    expect_json(
        app.get_with_auth(&shared_path, &reader).await,
        StatusCode::OK,
    )
    .await;

    let post = app
        .post_json(
            "/clusters",
            &reader,
            &json!({"name": "Sneaky", "plan": plan, "space": space}),
        )
        .await;
    let errors = assert_error_envelope(post, StatusCode::FORBIDDEN).await;
    assert!(
        errors.iter().any(|e| e.contains("write")),
        "the 403 should name the missing scope: {errors:?}"
    );
    let put = app
        .put_json(&shared_path, &reader, &json!({"name": "Renamed"}))
        .await;
    assert_error_envelope(put, StatusCode::FORBIDDEN).await;
    let delete = app.delete(&shared_path, &reader).await;
    assert_error_envelope(delete, StatusCode::FORBIDDEN).await;

    assert_eq!(app.cluster_slugs(&writer).await, [shared]);
    let shared = expect_json(
        app.get_with_auth(&shared_path, &writer).await,
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
