//! A real OpenID Provider for the single sign-on stories: panva's oidc-provider
//! (`tests/oidc/provider.js`) on Node, npm-installed once under `target/oidc-provider`,
//! started once per test binary on a free loopback port. Each test registers a client of
//! its own with its server's redirect URI, and a browser goes through the provider's
//! development sign-in pages (any login name; see the script for how the name sets the
//! `email` and `email_verified` claims).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use keyward::config::{Config, OidcSettings, SecretSetting};
use reqwest::{StatusCode, Url};

use crate::support::api::{TestApp, spawn_app_with};
use crate::support::browser::{Browser, Page};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
/// The provider's name on Keyward's button in these stories.
pub const NAME: &str = "Corp SSO";

/// Where the provider is installed: beside the build, so `cargo clean` clears it too.
fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oidc-provider")
}

/// `npm install` (from the lockfile) into the cache folder, as `.ci/run` does, unless the
/// pinned version is there already. A folder
/// made with `mkdir` is the lock between test binaries installing at once.
fn install() -> PathBuf {
    let dir = install_dir();
    std::fs::create_dir_all(&dir).expect("the provider's cache folder");
    for file in ["package.json", "package-lock.json", "provider.js"] {
        std::fs::copy(Path::new(SOURCE).join(file), dir.join(file))
            .unwrap_or_else(|e| panic!("copying tests/oidc/{file}: {e}"));
    }
    let pinned = std::fs::read_to_string(Path::new(SOURCE).join("package.json"))
        .expect("tests/oidc/package.json");
    let installed = || {
        std::fs::read_to_string(dir.join("node_modules/oidc-provider/package.json"))
            .ok()
            .and_then(|p| p.split("\"version\": \"").nth(1).map(|v| v.to_string()))
            .and_then(|v| v.split('"').next().map(|v| v.to_string()))
            .is_some_and(|version| pinned.contains(&format!("\"oidc-provider\": \"{version}\"")))
    };
    if installed() {
        return dir;
    }
    let lock = dir.join(".installing");
    let waited = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "another npm install has held {} for 5 minutes; remove it if it is stale",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(500));
        if installed() {
            return dir;
        }
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status();
    let _ = std::fs::remove_dir(&lock);
    let status = status.expect("npm (install Debian's nodejs and npm) should run");
    assert!(
        status.success(),
        "npm install of tests/oidc failed: {status}"
    );
    dir
}

/// The running provider's issuer URL, started at the first call of the test binary.
/// It exits when the test binary does (its standard input closes).
pub fn issuer() -> String {
    static PROVIDER: OnceLock<(String, Mutex<Child>)> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let _ = std::fs::remove_file(install_dir().join("provider.log"));
            let (issuer, child) = run_provider(&[]);
            (issuer, Mutex::new(child))
        })
        .0
        .clone()
}

/// Starts `node provider.js` with `env`, and waits until it serves its discovery document:
/// its issuer URL and the process.
fn run_provider(env: &[(&str, &str)]) -> (String, Child) {
    let dir = install();
    // Its warnings and errors go to a file beside it, to read when a story fails.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("provider.log"))
        .expect("provider.log");
    let log_for_stdout = log.try_clone().expect("provider.log");
    let mut child = Command::new("node")
        .arg("provider.js")
        .current_dir(&dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("node (install Debian's nodejs) should start");
    let stdout = child.stdout.take().expect("the provider's output");
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("the provider's first line");
    // The rest of its output is read to the end too: node dies of EPIPE when it writes
    // (oidc-provider's notices) to a pipe nobody reads.
    let mut rest = log_for_stdout;
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut rest));
    let issuer = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("the provider said {line:?}"))
        .to_string();
    wait_for_discovery(&issuer);
    (issuer, child)
}

/// A provider of a story's own, on a port chosen before, with one client it knows from the
/// start; stopped when dropped.
pub struct OwnProvider(Child);

impl OwnProvider {
    pub fn start(port: u16, client_id: &str, secret: &str, redirect_uri: &str) -> Self {
        let client = serde_json::json!({
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        })
        .to_string();
        let port = port.to_string();
        let (_, child) = run_provider(&[("PORT", &port), ("CLIENT", &client)]);
        Self(child)
    }
}

impl Drop for OwnProvider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the discovery document answers 200.
fn wait_for_discovery(issuer: &str) {
    let address = issuer.trim_start_matches("http://").to_string();
    let started = Instant::now();
    loop {
        if let Ok(mut stream) = TcpStream::connect(&address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!(
                "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the provider at {issuer} never served its discovery document"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free loopback port, for a server whose redirect URI must be known before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Registers a client for `redirect_uri` at the provider, named `client_name` (the script
/// gives a client named `short-lived` 3-second ID tokens): its id and secret.
async fn register(issuer: &str, redirect_uri: &str, client_name: &str) -> (String, String) {
    let answer: serde_json::Value = crate::support::api::http_client()
        .post(format!("{issuer}/reg"))
        .json(&serde_json::json!({
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "client_name": client_name,
        }))
        .send()
        .await
        .expect("the provider should answer a registration")
        .json()
        .await
        .expect("a registration's JSON");
    (
        answer["client_id"]
            .as_str()
            .expect("a client id")
            .to_string(),
        answer["client_secret"]
            .as_str()
            .expect("a client secret")
            .to_string(),
    )
}

/// Keyward signing in through the test provider, with a client of its own.
pub async fn spawn_sso_app() -> TestApp {
    spawn_sso_app_with(|_| {}).await
}

/// The same, with settings changed by `adjust` last.
pub async fn spawn_sso_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_registered_as("keyward", adjust).await
}

/// Keyward whose client at the provider gets ID tokens that expire in 3 seconds.
pub async fn spawn_sso_app_with_short_id_tokens() -> TestApp {
    spawn_registered_as("short-lived", |_| {}).await
}

async fn spawn_registered_as(client_name: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let issuer = issuer();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let redirect_uri = format!("{public_url}/auth/oidc/callback");
    let (client_id, secret) = register(&issuer, &redirect_uri, client_name).await;
    spawn_with_provider(&issuer, port, &client_id, &secret, adjust).await
}

/// Keyward on `port` with SSO settings for `issuer`, which may be one that never answers.
pub async fn spawn_with_provider(
    issuer: &str,
    port: u16,
    client_id: &str,
    secret: &str,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let public_url = format!("http://127.0.0.1:{port}");
    let settings = OidcSettings::parse(
        Some(issuer),
        Some(client_id),
        Some(&SecretSetting::from(secret.to_string())),
        NAME,
        Some(&public_url),
    )
    .expect("good SSO settings")
    .expect("SSO is on");
    spawn_app_with(|config| {
        config.bind = ([127, 0, 0, 1], port).into();
        config.public_url = Some(public_url.clone());
        config.oidc = Some(settings);
        adjust(config);
    })
    .await
}

/// Keyward with SSO set up for a provider that answers nothing (a port nobody listens on).
pub async fn spawn_with_provider_down() -> TestApp {
    let dead = format!("http://127.0.0.1:{}", free_port());
    spawn_with_provider(&dead, free_port(), "keyward", "secret", |_| {}).await
}

/// Where Keyward's "Sign in with" button sends the browser: the provider's sign-in URL.
pub async fn start(browser: &Browser, path: &str) -> String {
    let page = browser.get(path).await;
    page.assert_status(StatusCode::SEE_OTHER);
    page.header("location")
        .expect("a redirect to the provider")
        .to_string()
}

/// Follows the provider's pages from `auth_url`, signing in as `login`, up to the redirect
/// back to Keyward: that callback URL, not yet followed.
pub async fn through_provider(browser: &Browser, auth_url: &str, login: &str) -> String {
    let mut url = Url::parse(auth_url).expect("the provider's URL");
    for _ in 0..10 {
        if url.as_str().starts_with(&browser.address) {
            return url.to_string();
        }
        let page = browser.get_url(url.as_str()).await;
        let next = if page.status == StatusCode::OK && page.body.contains("name=\"prompt\"") {
            let prompt = page
                .field_value("prompt")
                .expect("the interaction's prompt");
            let action = form_action(&page);
            let target = url.join(&action).expect("the form's action");
            let answer = browser
                .post_url(
                    target.as_str(),
                    &[("prompt", &prompt), ("login", login), ("password", "any")],
                )
                .await;
            location(&answer)
        } else if page.status == StatusCode::OK && page.body.contains("document.forms[0].submit()")
        {
            // A page that submits itself, as a browser with JavaScript would: the provider
            // ends its session of the person signed in there before, when another signs in.
            let target = url.join(&form_action(&page)).expect("the form's action");
            let fields = hidden_fields(&page);
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            location(&browser.post_url(target.as_str(), &fields).await)
        } else {
            location(&page)
        };
        url = url.join(&next).expect("a redirect's URL");
    }
    panic!("the provider never sent the browser back to Keyward");
}

/// The provider's interaction page, refused by the person ("abort"): the callback URL
/// that carries `error=access_denied`.
pub async fn refused_at_provider(browser: &Browser, auth_url: &str) -> String {
    let mut url = Url::parse(auth_url).expect("the provider's URL");
    let page = browser.get_url(url.as_str()).await;
    url = url.join(&location(&page)).expect("the interaction's URL");
    let abort = url
        .join(&format!("{}/abort", url.path()))
        .expect("abort URL");
    let mut answer = browser.get_url(abort.as_str()).await;
    loop {
        let next = url.join(&location(&answer)).expect("a redirect's URL");
        if next.as_str().starts_with(&browser.address) {
            return next.to_string();
        }
        answer = browser.get_url(next.as_str()).await;
        url = next;
    }
}

/// The signed-in person connects the provider, signing in there as `login`: Keyward's
/// answer to the callback.
pub async fn connect(browser: &Browser, login: &str) -> Page {
    let auth_url = start(browser, "/auth/oidc?connect=1").await;
    let callback = through_provider(browser, &auth_url, login).await;
    browser.get_url(&callback).await
}

/// Signs in at Keyward through the provider as `login`: Keyward's answer to the callback.
pub async fn sign_in(browser: &Browser, login: &str) -> Page {
    let auth_url = start(browser, "/auth/oidc").await;
    let callback = through_provider(browser, &auth_url, login).await;
    browser.get_url(&callback).await
}

fn location(page: &Page) -> String {
    assert!(
        page.status.is_redirection(),
        "{} should redirect; it answered {} with:\n{}",
        page.request,
        page.status,
        page.body
    );
    page.header("location").expect("a Location").to_string()
}

fn form_action(page: &Page) -> String {
    let at = page.body.find("action=\"").expect("a form") + "action=\"".len();
    page.body[at..at + page.body[at..].find('"').expect("the action's end")].to_string()
}

/// The hidden fields of a page's form: name and value.
fn hidden_fields(page: &Page) -> Vec<(String, String)> {
    page.body
        .split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|tag| {
            let attribute = |name: &str| {
                let after = tag.split(&format!("{name}=\"")).nth(1)?;
                Some(crate::support::browser::unescape(
                    &after[..after.find('"')?],
                ))
            };
            Some((attribute("name")?, attribute("value")?))
        })
        .collect()
}
