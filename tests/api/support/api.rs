//! The API client: a server in this process on its own store ([`super::store`]), the
//! command line in process to set up accounts and tokens, the calls a client makes, and
//! the checks for Keyward's JSON envelopes.

use std::time::{Duration, Instant};

use clap::Parser;
use keyward::cli::Cli;
use keyward::commands;
use keyward::config::Config;
use keyward::startup::Application;
use keyward::state::AppState;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use super::store::TestDb;

/// The support address the test servers are configured with.
pub const SUPPORT_EMAIL: &str = "support@keyward.test";

/// Every 401 carries this challenge.
pub const CHALLENGE: &str = r#"Basic realm="keyward", charset="UTF-8""#;

// ---------------------------------------------------------------------------------------------
// The command line, in process
// ---------------------------------------------------------------------------------------------

/// A token's credentials, as `token create` prints them.
#[derive(Debug, Clone)]
pub struct Token {
    pub key: String,
    pub secret: String,
}

/// Runs `keyward --database-url DB ARGS...` in this process, with `stdin` as its input.
/// Returns what it printed, or the error (with its causes) as text.
pub fn keyward_cli(database: &str, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut argv = vec!["keyward", "--database-url", database];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| format!("clap refused the arguments: {e}"))?;
    let mut input: &[u8] = stdin.as_bytes();
    let mut output: Vec<u8> = Vec::new();
    let result = commands::execute(cli, &mut input, &mut output);
    let printed = String::from_utf8(output).map_err(|_| "the CLI printed non-UTF-8".to_string())?;
    match result {
        Ok(()) => Ok(printed),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Runs `keyward --database-url DB ARGS...` in this process and returns both its outcome and
/// everything it printed, failure or not.
pub fn keyward_cli_printing(database: &str, args: &[&str]) -> (Result<(), String>, String) {
    let mut argv = vec!["keyward", "--database-url", database];
    argv.extend_from_slice(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            return (
                Err(format!("clap refused the arguments: {e}")),
                String::new(),
            );
        }
    };
    let mut output: Vec<u8> = Vec::new();
    let result = commands::execute(cli, &mut &b""[..], &mut output);
    let printed = String::from_utf8_lossy(&output).into_owned();
    (result.map_err(|e| format!("{e:#}")), printed)
}

/// Like `keyward_cli`, but panics with the command and its error when it fails.
pub fn keyward_cli_ok(database: &str, args: &[&str]) -> String {
    keyward_cli(database, args, "")
        .unwrap_or_else(|e| panic!("`keyward {}` failed: {e}", args.join(" ")))
}

/// `account create --name NAME`; returns the printed slug.
pub fn create_account(database: &str, name: &str) -> String {
    let out = keyward_cli_ok(database, &["account", "create", "--name", name]);
    let slug = out.trim();
    assert!(
        !slug.is_empty() && !slug.contains('\n'),
        "`account create` should print the slug on its own line, printed {out:?}"
    );
    slug.to_string()
}

/// `token create --account SLUG --name NAME --scopes SCOPES [EXTRA...]`.
pub fn create_token(
    database: &str,
    account: &str,
    name: &str,
    scopes: &str,
    extra: &[&str],
) -> Token {
    let mut args = vec![
        "token",
        "create",
        "--account",
        account,
        "--name",
        name,
        "--scopes",
        scopes,
    ];
    args.extend_from_slice(extra);
    parse_token_output(&keyward_cli_ok(database, &args))
}

/// `token revoke KEY --reason REASON`.
pub fn revoke(database: &str, key: &str) {
    keyward_cli_ok(
        database,
        &["token", "revoke", key, "--reason", "revoked by a test"],
    );
}

/// Reads the two lines `key: kw_...` and `secret: kws_...` that `token create` prints.
pub fn parse_token_output(out: &str) -> Token {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "`token create` should print exactly two lines, printed {out:?}"
    );
    let key = lines[0]
        .strip_prefix("key: ")
        .unwrap_or_else(|| panic!("the first line should be `key: ...`, was {:?}", lines[0]));
    let secret = lines[1].strip_prefix("secret: ").unwrap_or_else(|| {
        panic!(
            "the second line should be `secret: ...`, was {:?}",
            lines[1]
        )
    });
    assert!(key.starts_with("kw_"), "keys start with kw_, got {key:?}");
    assert!(
        secret.starts_with("kws_"),
        "secrets start with kws_, got {secret:?}"
    );
    Token {
        key: key.to_string(),
        secret: secret.to_string(),
    }
}

/// A key of the published shape that no database holds.
pub fn unknown_key() -> String {
    format!("kw_{}", "Zq8UnknownKey000")
}

// ---------------------------------------------------------------------------------------------
// The server, in process
// ---------------------------------------------------------------------------------------------

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    /// The server's shared state, for what a client can't see: the cache's counters.
    pub state: actix_web::web::Data<AppState>,
    /// `http://127.0.0.1:PORT` of `GET /metrics`, when the test turned metrics on.
    pub metrics_address: Option<String>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for the answer.
        drop(self.handle.stop(false));
    }
}

/// Starts Keyward on a fresh store and a free port (2 workers, fast background loops).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The same, with settings changed by `adjust` first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new();
    let url = db.path.clone();
    spawn_app_at(db, &url, adjust).await
}

/// Starts Keyward on `db`, reached through `database_url` (which may be another way to
/// the same store, such as a relay the test can cut). The test's own tools (`cli`...)
/// still use `db.path`.
pub async fn spawn_app_at(
    db: TestDb,
    database_url: &str,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::for_database(database_url);
    adjust(&mut config);
    let app = Application::build(config)
        .await
        .expect("the application should build on a fresh database");
    let port = app.port();
    let handle = app.handle();
    let state = app.state();
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        metrics_address,
        db,
        client: http_client(),
        state,
        handle,
    }
}

/// Sends a request; a server that doesn't answer fails the test.
async fn answer(request: RequestBuilder) -> Response {
    request.send().await.expect("the server should answer")
}

/// A client that never goes through a proxy and never hangs a test for long.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("a reqwest client")
}

/// A client that opens a new connection for every request, so that requests spread over
/// the server's workers.
pub fn unpooled_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("a reqwest client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs the command line on this server's database, off the async thread, then lets
    /// the server pick up what it changed.
    pub async fn cli(&self, args: &[&str]) -> Result<String, String> {
        let database = self.db.path.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let result = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            keyward_cli(&database, &args, "")
        })
        .await
        .expect("the CLI task should not panic");
        self.pick_up_changes().await;
        result
    }

    /// Applies the database's change log to the server's cache now. A server learns of a
    /// token created by another process at its next poll (tests/api/unknown_keys.rs shows
    /// that it does); stories that create tokens that way don't wait for the tick.
    pub async fn pick_up_changes(&self) {
        self.state
            .sync_cache()
            .await
            .expect("the server should read its change log");
    }

    pub async fn create_account(&self, name: &str) -> String {
        let database = self.db.path.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || create_account(&database, &name))
            .await
            .expect("account create")
    }

    /// A token with the given comma-separated scopes and no expiry.
    pub async fn create_token(&self, account: &str, name: &str, scopes: &str) -> Token {
        self.create_token_with(account, name, scopes, &[]).await
    }

    pub async fn create_token_with(
        &self,
        account: &str,
        name: &str,
        scopes: &str,
        extra: &[&str],
    ) -> Token {
        let database = self.db.path.clone();
        let (account, name, scopes) = (account.to_string(), name.to_string(), scopes.to_string());
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let token = tokio::task::spawn_blocking(move || {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            create_token(&database, &account, &name, &scopes, &extra)
        })
        .await
        .expect("token create");
        self.pick_up_changes().await;
        token
    }

    /// A new account with one read+write token.
    pub async fn account_with_token(&self, account_name: &str) -> (String, Token) {
        let slug = self.create_account(account_name).await;
        let token = self.create_token(&slug, "ci", "read,write").await;
        (slug, token)
    }

    /// Revokes through the command line: the database path, not this server's memory.
    pub async fn revoke(&self, key: &str) {
        let database = self.db.path.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || revoke(&database, &key))
            .await
            .expect("token revoke")
    }

    /// A request carrying the token's key and secret as Basic credentials.
    fn authed(&self, method: reqwest::Method, path: &str, token: &Token) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .basic_auth(&token.key, Some(&token.secret))
    }

    pub async fn get_with_auth(&self, path: &str, token: &Token) -> Response {
        answer(self.authed(reqwest::Method::GET, path, token)).await
    }

    pub async fn get_with_header(
        &self,
        path: &str,
        authorization: Option<HeaderValue>,
    ) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        answer(request).await
    }

    pub async fn get_without_auth(&self, path: &str) -> Response {
        self.get_with_header(path, None).await
    }

    pub async fn post_json(&self, path: &str, token: &Token, body: &Value) -> Response {
        answer(self.authed(reqwest::Method::POST, path, token).json(body)).await
    }

    pub async fn put_json(&self, path: &str, token: &Token, body: &Value) -> Response {
        answer(self.authed(reqwest::Method::PUT, path, token).json(body)).await
    }

    /// Sends `body` as it is, labelled `application/json`.
    pub async fn send_raw_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &Token,
        body: &str,
    ) -> Response {
        let request = self
            .authed(method, path, token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        answer(request).await
    }

    pub async fn delete(&self, path: &str, token: &Token) -> Response {
        answer(self.authed(reqwest::Method::DELETE, path, token)).await
    }

    /// A plan and a space the server accepts, preferring `sandbox` in us-east-1.
    pub async fn a_plan_and_space(&self, token: &Token) -> (String, String) {
        let body = expect_json(self.get_with_auth("/plans", token).await, StatusCode::OK).await;
        plan_and_space(&body)
    }

    /// Creates a cluster named `name` the way Bonsai's client does, and returns its slug
    /// (which the server makes from the name and random digits).
    pub async fn create_cluster(&self, token: &Token, name: &str) -> String {
        let (plan, space) = self.a_plan_and_space(token).await;
        let response = self
            .post_json(
                "/clusters",
                token,
                &json!({"name": name, "plan": plan, "space": space}),
            )
            .await;
        created_slug(&expect_json(response, StatusCode::ACCEPTED).await)
    }

    /// The slugs of the token's account's clusters (first page of 100).
    pub async fn cluster_slugs(&self, token: &Token) -> Vec<String> {
        let body = expect_json(
            self.get_with_auth("/clusters?size=100", token).await,
            StatusCode::OK,
        )
        .await;
        cluster_slugs(&body)
    }
}

/// Picks the sandbox in us-east-1 from a `GET /plans` body when offered, else the first of each.
pub fn plan_and_space(plans_body: &Value) -> (String, String) {
    let plans = plans_body["plans"]
        .as_array()
        .unwrap_or_else(|| panic!("`plans` should be an array in {plans_body}"));
    let plan = plans
        .iter()
        .find(|p| p["slug"] == "sandbox-aws-us-east-1")
        .or_else(|| plans.first())
        .unwrap_or_else(|| panic!("the plan catalogue should not be empty: {plans_body}"));
    let spaces = plan["available_spaces"]
        .as_array()
        .unwrap_or_else(|| panic!("a plan should list `available_spaces`: {plan}"));
    let space = spaces
        .iter()
        .find(|s| s.as_str().is_some_and(|s| s.contains("us-east-1")))
        .or_else(|| spaces.first())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("a plan should offer at least one space: {plan}"));
    let slug = plan["slug"]
        .as_str()
        .unwrap_or_else(|| panic!("a plan should have a string `slug`: {plan}"));
    (slug.to_string(), space.to_string())
}

/// The new cluster's slug from a create's 202: `access.host`, as the Terraform provider
/// reads it.
pub fn created_slug(created: &Value) -> String {
    created["access"]["host"]
        .as_str()
        .unwrap_or_else(|| panic!("a create's answer should carry `access.host`: {created}"))
        .to_string()
}

pub fn cluster_slugs(list_body: &Value) -> Vec<String> {
    list_body["clusters"]
        .as_array()
        .unwrap_or_else(|| panic!("`clusters` should be an array in {list_body}"))
        .iter()
        .map(|c| {
            c["slug"]
                .as_str()
                .unwrap_or_else(|| panic!("a cluster should have a string slug: {c}"))
                .to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Assertions on what the client sees
// ---------------------------------------------------------------------------------------------

/// The first sentence of a 401 to a request with an empty password.
pub const NO_PASSWORD: &str = "The 'Authorization' header has no value for the password field.";
/// The first sentence of a 401 to a token sent as `Bearer` or `Token`.
pub const WRONG_SCHEME: &str = "Keyward tokens are sent with HTTP Basic Auth: the key as the user name, the secret as the password.";

/// The exact 401 body, with the empty-password sentence first when asked for.
pub fn expected_401_body(empty_password: bool, support_email: &str) -> Value {
    expected_401_body_after(empty_password.then_some(NO_PASSWORD), support_email)
}

/// The exact 401 body: the seed's four sentences, after `first` when given.
pub fn expected_401_body_after(first: Option<&str>, support_email: &str) -> Value {
    let mut errors: Vec<String> = first.map(str::to_string).into_iter().collect();
    errors.extend([
        "The API token is missing, inactive or does not exist.".to_string(),
        "Authentication failed.".to_string(),
        "Could not authenticate your request.".to_string(),
        format!("This request has failed authentication. Please read the docs or email us at {support_email}."),
    ]);
    json!({"errors": errors, "status": 401})
}

/// What every API answer is labelled, as Bonsai labels its own.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Whether the `Content-Type` is exactly [`JSON_CONTENT_TYPE`], as the contract says.
fn is_json_content_type(response: &Response) -> Result<(), String> {
    let value = response
        .headers()
        .get(CONTENT_TYPE)
        .ok_or("no Content-Type header")?
        .to_str()
        .map_err(|_| "Content-Type is not text")?;
    if value == JSON_CONTENT_TYPE {
        Ok(())
    } else {
        Err(format!(
            "Content-Type is {value:?}, expected {JSON_CONTENT_TYPE:?}"
        ))
    }
}

/// Checks a 401 against the contract; the error says every way it differs.
pub async fn check_401(
    response: Response,
    empty_password: bool,
    support_email: &str,
) -> Result<(), String> {
    check_401_after(
        response,
        empty_password.then_some(NO_PASSWORD),
        support_email,
    )
    .await
}

/// [`check_401`] for a body whose first sentence, when given, is `first`.
pub async fn check_401_after(
    response: Response,
    first: Option<&str>,
    support_email: &str,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if response.status() != StatusCode::UNAUTHORIZED {
        problems.push(format!("status is {}, expected 401", response.status()));
    }
    match response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str()) {
        Some(Ok(value)) if value == CHALLENGE => {}
        other => problems.push(format!(
            "WWW-Authenticate is {other:?}, expected {CHALLENGE:?}"
        )),
    }
    if let Err(problem) = is_json_content_type(&response) {
        problems.push(problem);
    }
    let text = response.text().await.unwrap_or_default();
    let expected = expected_401_body_after(first, support_email);
    match serde_json::from_str::<Value>(&text) {
        Ok(body) if body == expected => {}
        Ok(body) => problems.push(format!("body is {body}, expected {expected}")),
        Err(_) => problems.push(format!("body is not JSON: {text:?}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Asserts a 401 with the challenge, JSON content type and the exact body.
pub async fn assert_401(response: Response, empty_password: bool) {
    if let Err(problems) = check_401(response, empty_password, SUPPORT_EMAIL).await {
        panic!("not the contracted 401: {problems}");
    }
}

/// Asserts the status and a JSON body; returns the body.
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type = is_json_content_type(&response);
    let url = response.url().clone();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(actual, status, "{url} answered {actual} with body {text}");
    if let Err(problem) = content_type {
        panic!("{url}: {problem}; body {text}");
    }
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: body is not JSON ({e}): {text:?}"));
    assert_eq!(
        body["status"],
        json!(status.as_u16()),
        "{url}: the body's \"status\" should repeat the HTTP status: {body}"
    );
    body
}

/// Asserts the error envelope `{"errors": [sentences...], "status": N}` and returns the sentences.
pub async fn assert_error_envelope(response: Response, status: StatusCode) -> Vec<String> {
    let body = expect_json(response, status).await;
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("the error body should be an object: {body}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["errors", "status"],
        "the error envelope has exactly these keys: {body}"
    );
    let errors: Vec<String> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("`errors` should be an array: {body}"))
        .iter()
        .map(|e| {
            e.as_str()
                .unwrap_or_else(|| panic!("each error should be a sentence: {body}"))
                .to_string()
        })
        .collect();
    assert!(
        !errors.is_empty() && errors.iter().all(|e| !e.trim().is_empty()),
        "the envelope should carry at least one sentence: {body}"
    );
    errors
}

/// Polls `check` every `every` until it holds or `within` has passed. Returns whether it held.
pub async fn eventually<F, Fut>(within: Duration, every: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// Standard base64 with padding, for building Authorization headers by hand.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Basic base64(user:password)` as a header value.
pub fn basic(credentials: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Basic {}", base64(credentials.as_bytes())))
        .expect("base64 is a valid header value")
}

#[test]
fn base64_matches_the_rfc_example() {
    assert_eq!(
        base64(b"Aladdin:open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
}

/// The status of one GET made with a token's credentials.
pub async fn status_with(client: &reqwest::Client, url: &str, token: &Token) -> StatusCode {
    client
        .get(url)
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .expect("the server should answer")
        .status()
}
