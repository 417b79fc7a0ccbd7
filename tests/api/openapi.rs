//! `/openapi.json`: the document is valid OpenAPI 3.1, describes exactly the routes the
//! server serves, and what the server answers matches what the document says it answers.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, Token, expect_json, spawn_app};

/// The official OpenAPI 3.1 schema (see tests/fixtures/README.md for its source).
const OPENAPI_31_SCHEMA: &str = include_str!("../fixtures/openapi-3.1-schema.json");

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK, "no credentials needed");
    response.json().await.expect("the document is JSON")
}

/// The schema the document gives for `method path` answering `status`, made standalone
/// (with the document's components, so its `$ref`s resolve), or `None` if that status
/// isn't documented for that operation.
fn documented_schema(doc: &Value, path: &str, method: &str, status: u16) -> Option<Value> {
    let mut response = doc["paths"][path][method]["responses"]
        .get(status.to_string())?
        .clone();
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/responses/")
            .expect("a shared response");
        response = doc["components"]["responses"][name].clone();
    }
    Some(standalone(
        doc,
        &response["content"]["application/json"]["schema"],
    ))
}

/// `schema` on its own, with the document's components so its `$ref`s resolve.
fn standalone(doc: &Value, schema: &Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    })
}

/// Checks a live answer against the document: its status is documented for the operation,
/// and its body matches that status's schema. Returns the problems, empty when it matches.
fn mismatches(doc: &Value, path: &str, method: &str, status: u16, body: &Value) -> Vec<String> {
    let Some(schema) = documented_schema(doc, path, method, status) else {
        return vec![format!("{method} {path}: {status} is not documented")];
    };
    let validator = jsonschema::validator_for(&schema).expect("a usable schema");
    validator
        .iter_errors(body)
        .map(|e| format!("{method} {path} {status}: {e} at {}", e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_document_is_valid_openapi_with_basic_auth_and_the_error_envelope() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    let meta: Value = serde_json::from_str(OPENAPI_31_SCHEMA).expect("the vendored schema");
    let validator = jsonschema::validator_for(&meta).expect("the OpenAPI schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid OpenAPI 3.1: {errors:#?}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    // The validator is no rubber stamp: a document without `info` is refused.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator.is_valid(&broken));

    assert_eq!(
        doc["components"]["securitySchemes"]["basic"],
        json!({"type": "http", "scheme": "basic", "description": "The token's key as the user name, its secret as the password."})
    );
    let envelope = &doc["components"]["schemas"]["ErrorEnvelope"];
    assert_eq!(
        envelope["required"],
        json!(["errors", "status"]),
        "{envelope}"
    );
    // Every guarded operation names the scheme and documents the 401.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_some() {
                assert_eq!(operation["security"], json!([{"basic": []}]));
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path} is guarded but documents no 401"
                );
            }
        }
    }
}

/// A value for each path parameter that names something real, so a served route is
/// reached and not refused as a missing thing.
struct RealIds {
    cluster: String,
    plan: String,
    space: String,
    release: String,
}

impl RealIds {
    fn fill(&self, path: &str, key: &str) -> String {
        path.replace("/clusters/{slug}", &format!("/clusters/{}", self.cluster))
            .replace("/plans/{slug}", &format!("/plans/{}", self.plan))
            .replace("/spaces/{path}", &format!("/spaces/{}", self.space))
            .replace("/releases/{slug}", &format!("/releases/{}", self.release))
            .replace("{key}", key)
    }
}

async fn real_ids(app: &TestApp, token: &Token) -> RealIds {
    let cluster = app.create_cluster(token, "probe").await;
    let plans = expect_json(app.get_with_auth("/plans", token).await, StatusCode::OK).await;
    let spaces = expect_json(app.get_with_auth("/spaces", token).await, StatusCode::OK).await;
    let releases = expect_json(app.get_with_auth("/releases", token).await, StatusCode::OK).await;
    RealIds {
        cluster,
        plan: plans["plans"][0]["slug"].as_str().unwrap().into(),
        space: spaces["spaces"][0]["path"].as_str().unwrap().into(),
        release: releases["releases"][0]["slug"].as_str().unwrap().into(),
    }
}

const PROBED_METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_describes_exactly_the_routes_the_server_serves() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    // The document's operations, path by path: the document is the only list of routes.
    let documented: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            (
                path.clone(),
                item.as_object().unwrap().keys().cloned().collect(),
            )
        })
        .collect();
    assert!(documented.len() >= 18, "{documented:?}");

    // And it is what the server serves: asked every method of every documented path, with
    // real ids and a token that may do anything, a documented method is reached (never a
    // 404 or a 405) and any other is refused.
    let slug = app.create_account("Probe Inc").await;
    let manager = app.create_token(&slug, "probe", "read,write,tokens").await;
    let ids = real_ids(&app, &manager).await;
    for (path, methods) in &documented {
        for method in PROBED_METHODS {
            // Each probe of a token route acts on a token of its own: a revoke or a roll
            // must not spoil the next probe, and DELETE /token revokes the caller.
            let target = app.create_token(&slug, "target", "read").await;
            let caller = if *path == "/token" { &target } else { &manager };
            let url = ids.fill(path, &target.key);
            let body = if *path == "/secret-scanning/report" {
                "[]"
            } else {
                "{}"
            };
            let status = app
                .send_raw_json(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &url,
                    caller,
                    body,
                )
                .await
                .status();
            if methods.iter().any(|m| m == method) {
                assert!(
                    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {url} is listed but answered {status}"
                );
            } else {
                assert!(
                    status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {url} is not listed but answered {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn live_answers_match_the_documented_statuses_and_bodies() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let slug = app.create_account("Drift Inc").await;
    let manager = app
        .create_token(&slug, "terraform", "read,write,tokens,verify")
        .await;
    let target = app
        .create_token_with(&slug, "deploys", "read", &["--expires-in-days", "30"])
        .await;
    let ids = real_ids(&app, &manager).await;

    let mut answers: Vec<(&str, &str, StatusCode, Value)> = Vec::new();
    let ask = async |path: &'static str, method: &'static str, url: String, body: Option<Value>| {
        let request = app
            .client
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                app.url(&url),
            )
            .basic_auth(&manager.key, Some(&manager.secret));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        (path, method, status, body)
    };
    for path in [
        "/healthz",
        "/plans",
        "/plans/{slug}",
        "/spaces",
        "/spaces/{path}",
        "/releases",
        "/releases/{slug}",
        "/clusters",
        "/clusters/{slug}",
        "/token",
        "/access-tokens",
        "/access-tokens/{key}",
    ] {
        answers.push(ask(path, "get", ids.fill(path, &target.key), None).await);
    }
    // Writes, then errors (a foreign or unknown thing, a bad body, a bad page), in order:
    // the cluster is deleted last.
    let cluster = ids.fill("/clusters/{slug}", "");
    let roll = ids.fill("/access-tokens/{key}/roll", &target.key);
    let writes_and_errors = [
        (
            "/clusters/{slug}",
            "put",
            cluster.clone(),
            Some(json!({"plan": ids.plan})),
        ),
        (
            "/access-tokens",
            "post",
            "/access-tokens".into(),
            Some(
                json!({"name": "made", "scopes": ["read"], "expires_in_days": 7, "rate_limit_per_minute": 60}),
            ),
        ),
        (
            "/access-tokens/{key}/roll",
            "post",
            roll.clone(),
            Some(json!({"grace": "1h"})),
        ),
        (
            "/access-tokens/{key}",
            "patch",
            ids.fill("/access-tokens/{key}", &target.key),
            Some(json!({
                "external_id": "cus_drift", "meta": {"tier": 1}, "allowed_ips": ["127.0.0.1"],
                "credits": {"remaining": 9, "refill": {"interval": "daily", "amount": 9}},
            })),
        ),
        (
            "/keys/verify",
            "post",
            "/keys/verify".into(),
            Some(json!({"key": target.key, "secret": target.secret, "permissions": "a OR b"})),
        ),
        (
            "/keys/verify",
            "post",
            "/keys/verify".into(),
            Some(json!({"key": target.key, "secret": target.secret})),
        ),
        (
            "/keys/verify",
            "post",
            "/keys/verify".into(),
            Some(json!({"key": "kw_nope", "secret": "nope"})),
        ),
        (
            "/keys/verify",
            "post",
            "/keys/verify".into(),
            Some(json!({"key": "kw_nope", "secret": "nope", "permissions": "(("})),
        ),
        (
            "/secret-scanning/report",
            "post",
            "/secret-scanning/report".into(),
            Some(
                json!([{"token": "not a secret", "type": "keyward", "url": "https://example.test"}]),
            ),
        ),
        (
            "/clusters/{slug}",
            "get",
            "/clusters/no-such-cluster".into(),
            None,
        ),
        (
            "/access-tokens/{key}/roll",
            "post",
            roll,
            Some(json!({"grace": "forever"})),
        ),
        (
            "/access-tokens",
            "get",
            "/access-tokens?page=0".into(),
            None,
        ),
        ("/clusters/{slug}", "delete", cluster, None),
    ];
    for (path, method, url, body) in writes_and_errors {
        answers.push(ask(path, method, url, body).await);
    }

    let expected_statuses: Vec<u16> = answers.iter().map(|(_, _, s, _)| s.as_u16()).collect();
    assert_eq!(
        expected_statuses,
        [
            200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 202, 201, 201, 200, 200,
            200, 200, 422, 200, 404, 422, 422, 202
        ],
        "the story's answers"
    );
    for (path, method, status, body) in &answers {
        let problems = mismatches(&doc, path, method, status.as_u16(), body);
        assert!(problems.is_empty(), "{problems:#?}\n{body}");
    }

    // A 401, without credentials.
    let response = app.client.get(app.url("/token")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        mismatches(&doc, "/token", "get", 401, &body),
        Vec::<String>::new()
    );

    // The check is strict: a field the document doesn't name, or a missing one, is drift.
    let (path, method, status, body) = &answers[9];
    let mut grown = body.clone();
    grown["token"]["colour"] = json!("red");
    assert!(!mismatches(&doc, path, method, status.as_u16(), &grown).is_empty());
    let mut shrunk = body.clone();
    shrunk["token"].as_object_mut().unwrap().remove("key");
    assert!(!mismatches(&doc, path, method, status.as_u16(), &shrunk).is_empty());
    assert!(!mismatches(&doc, path, method, 418, body).is_empty());
}

/// The schema of a request body, by its component's name.
fn body_schema(doc: &Value, name: &str) -> Value {
    standalone(doc, &doc["components"]["schemas"][name])
}

fn listed(body: &Value, collection: &str, id: &str) -> BTreeSet<String> {
    body[collection]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[id].as_str().unwrap().to_string())
        .collect()
}

fn enumerated(schema: &Value) -> BTreeSet<String> {
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_request_bodies_document_what_the_server_accepts() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let slug = app.create_account("Bodies Inc").await;
    let manager = app.create_token(&slug, "bodies", "read,write,tokens").await;

    // A cluster names a plan, a space and a release from the catalogue, and the document
    // lists exactly the catalogue's.
    let cluster = &doc["components"]["schemas"]["NewClusterInput"];
    assert_eq!(cluster["required"], json!(["name"]), "{cluster}");
    for (field, collection, id) in [
        ("plan", "plans", "slug"),
        ("space", "spaces", "path"),
        ("release", "releases", "slug"),
    ] {
        let served = expect_json(
            app.get_with_auth(&format!("/{collection}"), &manager).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            enumerated(&cluster["properties"][field]),
            listed(&served, collection, id),
            "{field}"
        );
    }
    let change = &doc["components"]["schemas"]["ClusterChangeInput"];
    assert_eq!(change["properties"]["plan"], cluster["properties"]["plan"]);

    // A token's scopes are the scopes' names, at least one.
    let token = &doc["components"]["schemas"]["NewTokenInput"];
    let scopes = &token["properties"]["scopes"];
    assert_eq!(scopes["minItems"], json!(1), "{scopes}");
    assert_eq!(
        enumerated(&scopes["items"]),
        ["read", "tokens", "verify", "write"]
            .map(String::from)
            .into()
    );

    // A name's documented length is the server's: the longest the document allows is
    // created, one character more is refused by both.
    let validator = jsonschema::validator_for(&body_schema(&doc, "NewTokenInput")).unwrap();
    let longest = json!({"name": "n".repeat(100), "scopes": ["read"]});
    let too_long = json!({"name": "n".repeat(101), "scopes": ["read"]});
    assert!(validator.is_valid(&longest));
    assert!(!validator.is_valid(&too_long));
    let created = app.post_json("/access-tokens", &manager, &longest).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let refused = app.post_json("/access-tokens", &manager, &too_long).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // What a token carries for its verifiers: the document allows what the server takes,
    // and refuses a bad permission name and an unknown credits field, as the server does.
    let carrying = json!({
        "name": "carrying", "scopes": ["read"], "permissions": [],
        "meta": {"plan": "pro"}, "external_id": "cus_1", "allowed_ips": ["10.0.0.0/8"],
        "credits": {"remaining": 5, "refill": {"interval": "daily", "amount": 5}},
    });
    assert!(validator.is_valid(&carrying));
    let created = app.post_json("/access-tokens", &manager, &carrying).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    for bad in [
        json!({"name": "bad", "scopes": ["read"], "permissions": ["Documents"]}),
        json!({"name": "bad", "scopes": ["read"], "credits": {"remaining": 1, "extra": 1}}),
        json!({"name": "bad", "scopes": ["read"], "credits": {"remaining": -1}}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
        let refused = app.post_json("/access-tokens", &manager, &bad).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // So does a plan's: a body the document allows is created, one it doesn't is refused.
    let validator = jsonschema::validator_for(&body_schema(&doc, "NewClusterInput")).unwrap();
    let plan = enumerated(&cluster["properties"]["plan"])
        .pop_first()
        .unwrap();
    let allowed = json!({"name": "documented", "plan": plan});
    let unknown = json!({"name": "documented", "plan": "no-such-plan"});
    assert!(validator.is_valid(&allowed));
    assert!(!validator.is_valid(&unknown));
    let created = app.post_json("/clusters", &manager, &allowed).await;
    assert!(created.status().is_success(), "{}", created.status());
    let refused = app.post_json("/clusters", &manager, &unknown).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
