//! Bonsai's wire contract (`reference/bonsai-wire-contract.md`): each call of the official Go
//! client (omc/bonsai-api-go), sent as that client sends it, and the answer checked for its
//! status, its Content-Type, and its full key set with every value's JSON type, because Go's
//! decoder fails a whole call on one type conflict. Then the client's paging loop, and the
//! catalogue paths a client must not be able to turn into anything but a 404.

use std::io::{Read, Write};
use std::net::TcpStream;

use reqwest::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::api::{JSON_CONTENT_TYPE, TestApp, Token, spawn_app, spawn_app_with};

/// The client as it talks: Basic auth, its User-Agent, and `Content-Type: application/json`
/// and `Accept: application/json` on every request, even a GET or DELETE with no body.
struct BonsaiClient<'a> {
    app: &'a TestApp,
    token: Token,
}

impl BonsaiClient<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .basic_auth(&self.token.key, Some(&self.token.secret))
            .header(USER_AGENT, "bonsai-api-go/v2.4.0")
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        request.send().await.expect("the server should answer")
    }

    /// Sends, then checks the status and the Content-Type, and returns the body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let call = format!("{method} {path}");
        let response = self.send(method, path, body).await;
        let actual = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(actual, status, "{call}: {text}");
        assert_eq!(content_type, JSON_CONTENT_TYPE, "{call}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{call}: not JSON ({e}): {text}"))
    }

    /// A `GET` with no body, as [`call`](Self::call) checks it.
    async fn get(&self, path: &str, status: StatusCode) -> Value {
        self.call(Method::GET, path, None, status).await
    }

    /// A `DELETE` with no body, as [`call`](Self::call) checks it.
    async fn delete(&self, path: &str, status: StatusCode) -> Value {
        self.call(Method::DELETE, path, None, status).await
    }
}

async fn client(name: &str) -> (TestApp, Token) {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token(name).await;
    (app, token)
}

/// Checks that `value` has exactly the keys of `shape`, recursively, with each value of the
/// JSON type `shape` names ("string", "int", "bool"). An array shape of one element says
/// what every element is. Returns every difference, each with its path.
fn shape_problems(value: &Value, shape: &Value, at: &str, problems: &mut Vec<String>) {
    match shape {
        Value::String(kind) => {
            let ok = match kind.as_str() {
                "string" => value.is_string(),
                "int" => value.is_i64() || value.is_u64(),
                "bool" => value.is_boolean(),
                other => panic!("unknown type {other} in the shape"),
            };
            if !ok {
                problems.push(format!("{at}: expected {kind}, got {value}"));
            }
        }
        Value::Array(element) => match value.as_array() {
            None => problems.push(format!("{at}: expected an array, got {value}")),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    shape_problems(item, &element[0], &format!("{at}[{i}]"), problems);
                }
            }
        },
        Value::Object(fields) => match value.as_object() {
            None => problems.push(format!("{at}: expected an object, got {value}")),
            Some(object) => {
                for key in object.keys().filter(|k| !fields.contains_key(*k)) {
                    problems.push(format!("{at}.{key}: not in the contract"));
                }
                for (key, inner) in fields {
                    match object.get(key) {
                        None => problems.push(format!("{at}.{key}: missing")),
                        Some(v) => shape_problems(v, inner, &format!("{at}.{key}"), problems),
                    }
                }
            }
        },
        other => panic!("bad shape {other}"),
    }
}

#[track_caller]
fn assert_shape(value: &Value, shape: &Value) {
    let mut problems = Vec::new();
    shape_problems(value, shape, "$", &mut problems);
    assert!(problems.is_empty(), "{}\nin {value:#}", problems.join("\n"));
}

/// A cluster, with every key recorded from api.bonsai.io.
fn cluster_shape() -> Value {
    json!({
        "slug": "string",
        "name": "string",
        "uri": "string",
        "plan": {"slug": "string", "uri": "string"},
        "release": {
            "service_type": "string",
            "package_name": "string",
            "version": "string",
            "slug": "string",
            "uri": "string",
        },
        "space": {"path": "string", "region": "string", "uri": "string"},
        "stats": {"docs": "int", "shards_used": "int", "data_bytes_used": "int"},
        "access": {"host": "string", "port": "int", "scheme": "string"},
        "state": "string",
    })
}

/// Keyward keeps `total_pages` and the 200 bodies' `"status"`, which the client ignores.
fn pagination_shape() -> Value {
    json!({
        "page_number": "int",
        "page_size": "int",
        "total_records": "int",
        "total_pages": "int",
    })
}

fn plan_shape() -> Value {
    json!({
        "slug": "string",
        "name": "string",
        "price_in_cents": "int",
        "billing_interval_in_months": "int",
        "single_tenant": "bool",
        "private_network": "bool",
        "available_releases": ["string"],
        "available_spaces": ["string"],
        "uri": "string",
    })
}

fn space_shape() -> Value {
    json!({
        "path": "string",
        "private_network": "bool",
        "cloud": {"provider": "string", "region": "string"},
        "region": "string",
        "uri": "string",
    })
}

fn release_shape() -> Value {
    json!({
        "name": "string",
        "slug": "string",
        "service_type": "string",
        "version": "string",
        "package_name": "string",
        "multitenant": "bool",
        "uri": "string",
    })
}

/// `Cluster.Create` with the recorded body (the catalogue names of the client's cassette);
/// returns the new slug.
async fn create(bonsai: &BonsaiClient<'_>, name: &str) -> String {
    let created = bonsai
        .call(
            Method::POST,
            "/clusters",
            Some(json!({
                "name": name,
                "plan": "standard-nano-comped",
                "space": "omc/bonsai/us-east-1/common",
                "release": "opensearch-2.6.0-mt",
            })),
            StatusCode::ACCEPTED,
        )
        .await;
    created["access"]["host"]
        .as_str()
        .expect("access.host")
        .to_string()
}

#[tokio::test]
async fn cluster_all_lists_clusters_the_client_can_decode() {
    let (app, token) = client("Contract All").await;
    let bonsai = BonsaiClient { app: &app, token };
    let slug = create(&bonsai, "DCEK Group, LLC search").await;

    let body = bonsai.get("/clusters", StatusCode::OK).await;

    assert_shape(
        &body,
        &json!({
            "clusters": [cluster_shape()],
            "pagination": pagination_shape(),
            "status": "int",
        }),
    );
    let cluster = &body["clusters"][0];
    assert_eq!(cluster["slug"], json!(slug));
    assert_eq!(cluster["uri"], json!(app.url(&format!("/clusters/{slug}"))));
    assert_eq!(
        cluster["plan"]["uri"],
        json!(app.url("/plans/standard-nano-comped"))
    );
    assert_eq!(
        cluster["space"],
        json!({
            "path": "omc/bonsai/us-east-1/common",
            "region": "aws-us-east-1",
            "uri": app.url("/spaces/omc/bonsai/us-east-1/common"),
        })
    );
    assert_eq!(
        cluster["release"],
        json!({
            "service_type": "opensearch",
            "package_name": "2.6.0-mt",
            "version": "2.6.0",
            "slug": "opensearch-2.6.0-mt",
            "uri": app.url("/releases/opensearch-2.6.0-mt"),
        })
    );
    assert_eq!(cluster["access"]["port"], 443);
    assert_eq!(cluster["access"]["scheme"], "https");
    assert!(
        cluster["access"]["host"]
            .as_str()
            .is_some_and(|h| h.starts_with(&format!("{slug}.us-east-1."))),
        "{cluster}"
    );
}

#[tokio::test]
async fn cluster_get_by_slug_answers_one_cluster() {
    let (app, token) = client("Contract Get").await;
    let bonsai = BonsaiClient { app: &app, token };
    let slug = create(&bonsai, "Lookup").await;

    let body = bonsai
        .get(&format!("/clusters/{slug}"), StatusCode::OK)
        .await;

    assert_shape(&body, &json!({"cluster": cluster_shape(), "status": "int"}));
    assert_eq!(body["cluster"]["name"], "Lookup");
    assert_eq!(body["cluster"]["state"], "PROVISIONED");
}

#[tokio::test]
async fn cluster_get_of_an_unknown_slug_is_the_404_terraform_polls_for() {
    let (app, token) = client("Contract Missing").await;
    let bonsai = BonsaiClient { app: &app, token };

    let body = bonsai
        .get("/clusters/doesnotexist-1234", StatusCode::NOT_FOUND)
        .await;

    assert_shape(&body, &json!({"errors": ["string"], "status": "int"}));
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn cluster_create_is_accepted_with_access_shown_once() {
    let (app, token) = client("Contract Create").await;
    let bonsai = BonsaiClient { app: &app, token };

    let body = bonsai
        .call(
            Method::POST,
            "/clusters",
            Some(json!({
                "name": "bonsai-api-go",
                "plan": "standard-nano-comped",
                "space": "omc/bonsai/us-east-1/common",
                "release": "opensearch-2.6.0-mt",
            })),
            StatusCode::ACCEPTED,
        )
        .await;

    assert_shape(
        &body,
        &json!({
            "message": "string",
            "monitor": "string",
            "access": {
                "user": "string",
                "pass": "string",
                "host": "string",
                "port": "int",
                "scheme": "string",
                "url": "string",
            },
            "status": "int",
        }),
    );
    assert_eq!(body["message"], "Your cluster is being provisioned.");
    assert_eq!(body["status"], 202);
    let slug = body["access"]["host"].as_str().expect("a slug");
    let (prefix, digits) = slug.rsplit_once('-').expect("name-digits");
    assert_eq!(prefix, "bonsai-api-go");
    assert!(
        digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()),
        "{slug}"
    );
    assert_eq!(
        body["monitor"],
        json!(app.url(&format!("/clusters/{slug}")))
    );
    let (user, pass) = (
        body["access"]["user"].as_str().unwrap_or_default(),
        body["access"]["pass"].as_str().unwrap_or_default(),
    );
    assert!(!user.is_empty() && pass.len() >= 20, "{body}");
    assert!(
        body["access"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("https://{user}:{pass}@{slug}."))),
        "{body}"
    );

    // The credentials are shown once: reading the cluster shows no password.
    let shown = bonsai
        .get(&format!("/clusters/{slug}"), StatusCode::OK)
        .await;
    assert!(!shown.to_string().contains(pass), "{shown}");
}

#[tokio::test]
async fn cluster_create_with_only_a_name_takes_the_defaults() {
    let (app, token) = client("Contract Defaults").await;
    let bonsai = BonsaiClient { app: &app, token };

    let created = bonsai
        .call(
            Method::POST,
            "/clusters",
            Some(json!({"name": "Bare"})),
            StatusCode::ACCEPTED,
        )
        .await;
    let slug = created["access"]["host"].as_str().expect("a slug");

    let shown = bonsai
        .get(&format!("/clusters/{slug}"), StatusCode::OK)
        .await;
    let plan = bonsai
        .call(
            Method::GET,
            &format!(
                "/plans/{}",
                shown["cluster"]["plan"]["slug"].as_str().unwrap_or("?")
            ),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        plan["available_spaces"][0], shown["cluster"]["space"]["path"],
        "the plan's first space: {shown}"
    );
    assert_eq!(
        plan["available_releases"][0], shown["cluster"]["release"]["slug"],
        "the plan's first release: {shown}"
    );
}

#[tokio::test]
async fn cluster_create_with_unknown_catalogue_names_gets_bonsais_sentences() {
    let (app, token) = client("Contract Unknown").await;
    let bonsai = BonsaiClient { app: &app, token };

    let body = bonsai
        .call(
            Method::POST,
            "/clusters",
            Some(json!({"name": "x", "plan": "x", "space": "x", "release": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;

    assert_eq!(
        body,
        json!({
            "errors": [
                "Plan 'x' not found. Please use the /plans endpoint for a list of available plans",
                "Space 'x' not found. Please use the /spaces endpoint for a list of available spaces",
                "Release 'x' not found. Please use the /releases endpoint for a list of available releases",
            ],
            "status": 422,
        })
    );
    let list = bonsai.get("/clusters", StatusCode::OK).await;
    assert_eq!(list["clusters"], json!([]), "nothing was created");
}

#[tokio::test]
async fn cluster_update_is_accepted_with_the_message_terraform_matches() {
    let (app, token) = client("Contract Update").await;
    let bonsai = BonsaiClient { app: &app, token };
    let slug = create(&bonsai, "Before").await;

    let body = bonsai
        .call(
            Method::PUT,
            &format!("/clusters/{slug}"),
            Some(json!({"name": "After", "plan": "standard-micro-aws-us-east-1"})),
            StatusCode::ACCEPTED,
        )
        .await;

    assert_shape(
        &body,
        &json!({"message": "string", "monitor": "string", "status": "int"}),
    );
    assert_eq!(body["message"], "Your cluster is being updated.");
    assert_eq!(
        body["monitor"],
        json!(app.url(&format!("/clusters/{slug}")))
    );
    // Terraform then polls until the state is not UPDATING PLAN and the name is new.
    let shown = bonsai
        .get(&format!("/clusters/{slug}"), StatusCode::OK)
        .await;
    assert_eq!(shown["cluster"]["name"], "After");
    assert_eq!(
        shown["cluster"]["plan"]["slug"],
        "standard-micro-aws-us-east-1"
    );
    assert_ne!(shown["cluster"]["state"], "UPDATING PLAN");
}

#[tokio::test]
async fn cluster_destroy_is_accepted_and_then_the_cluster_is_a_404() {
    let (app, token) = client("Contract Destroy").await;
    let bonsai = BonsaiClient { app: &app, token };
    let slug = create(&bonsai, "Doomed").await;

    let body = bonsai
        .delete(&format!("/clusters/{slug}"), StatusCode::ACCEPTED)
        .await;

    assert_shape(
        &body,
        &json!({"message": "string", "monitor": "string", "status": "int"}),
    );
    assert_eq!(body["message"], "Your cluster is being deprovisioned.");
    bonsai
        .get(&format!("/clusters/{slug}"), StatusCode::NOT_FOUND)
        .await;
}

/// A catalogue the client reads two ways (`Plan.All`/`Plan.GetBySlug`, and the same for
/// spaces and releases): the list under `collection`, then each entry by its `id_field` at
/// `{list_path}/{id}`, which is the bare object, equal to the list's, whose `uri` is its own.
async fn catalogue_reads_as_the_client_does(
    name: &str,
    list_path: &str,
    collection: &str,
    id_field: &str,
    shape: Value,
) -> Vec<Value> {
    let (app, token) = client(name).await;
    let bonsai = BonsaiClient { app: &app, token };

    let all = bonsai.get(list_path, StatusCode::OK).await;
    assert_shape(&all, &json!({collection: [shape.clone()], "status": "int"}));

    let entries = all[collection].as_array().expect(collection);
    assert!(!entries.is_empty(), "{list_path} lists something");
    for entry in entries {
        let id = entry[id_field].as_str().expect("an id");
        let path = format!("{list_path}/{id}");
        let one = bonsai.get(&path, StatusCode::OK).await;
        assert_shape(&one, &shape);
        assert_eq!(&one, entry, "a bare entry, the same as in the list");
        assert_eq!(one["uri"], json!(app.url(&path)));
    }
    entries.clone()
}

#[tokio::test]
async fn plan_all_and_plan_get_by_slug() {
    catalogue_reads_as_the_client_does("Contract Plans", "/plans", "plans", "slug", plan_shape())
        .await;
}

#[tokio::test]
async fn space_all_and_space_get_by_path_with_slashes() {
    let spaces = catalogue_reads_as_the_client_does(
        "Contract Spaces",
        "/spaces",
        "spaces",
        "path",
        space_shape(),
    )
    .await;
    // A space's path has slashes (`omc/bonsai/us-east-1/common`), and so its URL has more.
    for space in spaces {
        assert!(
            space["path"].as_str().is_some_and(|p| p.contains('/')),
            "{space}"
        );
    }
}

#[tokio::test]
async fn release_all_and_release_get_by_slug() {
    catalogue_reads_as_the_client_does(
        "Contract Releases",
        "/releases",
        "releases",
        "slug",
        release_shape(),
    )
    .await;
}

/// `Cluster.All()`: no page on the first request, then `page=page_number+1&size=page_size`
/// until the items collected reach `total_records`.
#[tokio::test]
async fn the_clients_paging_loop_collects_every_cluster_once() {
    let (app, token) = client("Contract Pager").await;
    let bonsai = BonsaiClient { app: &app, token };
    let mut made = Vec::new();
    for i in 0..23 {
        made.push(create(&bonsai, &format!("Paged {i}")).await);
    }

    let mut collected = Vec::new();
    let mut path = "/clusters".to_string();
    for _ in 0..100 {
        let body = bonsai.get(&path, StatusCode::OK).await;
        for cluster in body["clusters"].as_array().expect("clusters") {
            collected.push(cluster["slug"].as_str().expect("a slug").to_string());
        }
        let pagination = &body["pagination"];
        let total = pagination["total_records"].as_u64().expect("total_records");
        let number = pagination["page_number"].as_i64().unwrap_or(0);
        if collected.len() as u64 >= total || number <= 0 {
            break;
        }
        path = format!(
            "/clusters?page={}&size={}",
            number + 1,
            pagination["page_size"]
        );
    }

    assert_eq!(collected, made, "every cluster once, oldest first");
}

/// Links follow `KEYWARD_PUBLIC_URL` when it is set, not the address the server listens on.
#[tokio::test]
async fn links_are_built_from_the_public_url() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("https://keys.example.com".to_string());
    })
    .await;
    let (_, token) = app.account_with_token("Public").await;
    let bonsai = BonsaiClient { app: &app, token };

    let slug = create(&bonsai, "Linked").await;
    let shown = bonsai
        .get(&format!("/clusters/{slug}"), StatusCode::OK)
        .await;

    assert_eq!(
        shown["cluster"]["uri"],
        json!(format!("https://keys.example.com/clusters/{slug}"))
    );
    assert_eq!(
        shown["cluster"]["plan"]["uri"],
        "https://keys.example.com/plans/standard-nano-comped"
    );
}

/// Sends `GET {target}` over a bare socket, so no client library tidies the path first.
fn raw_get(app: &TestApp, token: &Token, target: &str) -> (u16, String) {
    let host = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("a timeout");
    let auth = crate::helpers::base64(format!("{}:{}", token.key, token.secret).as_bytes());
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test]
async fn space_paths_that_climb_or_hide_a_slash_are_404s_never_500s() {
    let (app, token) = client("Contract Paths").await;
    let targets = [
        "/spaces/omc/bonsai/../bonsai/us-east-1/common",
        "/spaces/../clusters",
        "/spaces/omc/bonsai/us-east-1/common/..",
        "/spaces/omc//bonsai/us-east-1/common",
        "/spaces/omc/bonsai/us-east-1/common/",
        "/spaces//",
        "/spaces/omc%2Fbonsai%2Fus-east-1%2Fcommon",
        "/spaces/omc/bonsai%2Fus-east-1/common",
        "/spaces/omc/bonsai/us-east-1/common%00",
        "/spaces/%2E%2E/%2E%2E/clusters",
        "/spaces/omc/bonsai/us-east-1/%",
    ];
    let mut failures = Vec::new();
    for target in targets {
        let (status, body) = raw_get(&app, &token, target);
        let envelope: Value = serde_json::from_str(&body).unwrap_or_default();
        if status != 404 || envelope["status"] != 404 {
            failures.push(format!("  {target}: {status} {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "expected 404s:\n{}",
        failures.join("\n")
    );

    // The same socket client does reach a real space, so the 404s above are the paths'.
    let (status, _) = raw_get(&app, &token, "/spaces/omc/bonsai/us-east-1/common");
    assert_eq!(status, 200);
}
