//! A person in a real browser: sign up, create a token, call the API with it, revoke it, and see
//! the API turn it away. Headless Chromium is driven over WebDriver by Debian's chromedriver.
//!
//! `cargo test` runs it with the rest; it needs Debian's `chromium` and `chromium-driver`
//! (`.ci/run` installs them), and says so when they are missing. With
//! `KEYWARD_SCREENSHOTS=<dir>` set, it also saves a PNG of every page it visits, at desktop
//! and phone sizes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tempfile::TempDir;

// The test SMTP server; the story uses part of it.
#[allow(dead_code)]
#[path = "api/support/smtp.rs"]
mod smtp;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const SUPPORT_EMAIL: &str = "support@keyward.test";

/// A debug build migrating a fresh SQLite file, or Chromium's first start, on a busy machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// One page to load, one element to appear, one URL to be reached.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// The whole story, screenshots included.
const STORY_TIMEOUT: Duration = Duration::from_secs(300);

const DESKTOP: (u32, u32) = (1280, 900);
const LAPTOP: (u32, u32) = (1024, 768);
const PHONE: (u32, u32) = (390, 844);
/// How much taller than its content (up to the footer) a page may scroll.
const BLANK_SPACE_ALLOWED_PX: u32 = 100;

const EMAIL: &str = "ada@example.test";
const PASSWORD: &str = "correct horse battery staple";
const OPERATOR_EMAIL: &str = "ops@example.test";
const OPERATOR_PASSWORD: &str = "operators keep the lights on";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_creates_uses_and_revokes_a_token_in_a_browser() {
    let server = Server::start();
    server.make_operator(OPERATOR_EMAIL, OPERATOR_PASSWORD);
    in_browser(server, story).await;
}

/// Runs `story` in a fresh headless Chromium against `server`. The story runs in its own
/// task so that, pass or panic, the browser session is closed before the processes behind
/// it are killed.
async fn in_browser<F, Fut>(server: Server, story: F) -> String
where
    F: FnOnce(Client, String, Screenshots) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = ChromeDriver::start();
    let browser = driver.session().await;
    let shots = Screenshots::from_env(driver.url());
    let story = tokio::spawn(story(browser.clone(), server.url.clone(), shots));
    let outcome = tokio::time::timeout(STORY_TIMEOUT, story).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.close()).await;
    drop(driver);
    if !matches!(outcome, Ok(Ok(()))) {
        eprintln!("keyward's log, last lines:\n{}", server.log_tail());
    }
    let log = std::fs::read_to_string(&server.log_path).unwrap_or_default();
    drop(server);
    match outcome {
        Err(_) => panic!("the browser story took longer than {STORY_TIMEOUT:?}"),
        Ok(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Ok(Err(join)) => panic!("the browser story was cancelled: {join}"),
        Ok(Ok(())) => {}
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_resets_a_forgotten_password_from_the_mail_in_a_browser() {
    let mail = smtp::SmtpServer::start();
    let url = mail.url();
    let server = Server::start_with(&[
        ("KEYWARD_SMTP_URL", url.as_str()),
        ("KEYWARD_MAIL_FROM", "Keyward <keys@keyward.test>"),
    ]);
    in_browser(server, |b, base, shots| reset_story(b, base, mail, shots)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_adds_a_passkey_and_signs_in_with_it_in_a_browser() {
    let server = Server::start();
    let database = server.database.clone();
    in_browser(server, move |b, base, shots| {
        passkey_story(b, base, shots, database)
    })
    .await;
}

/// Adds a passkey held by Chromium's virtual authenticator (chromedriver's WebDriver
/// extension), signs in with it alone from the sign-in page, then with the password and
/// the passkey as the second step; confirms its removal with it on the sudo page, and sees
/// it refused.
async fn passkey_story(b: Client, base: String, shots: Screenshots, database: PathBuf) {
    // WebAuthn wants a domain name, not an IP address: the same server, as localhost.
    let base = base.replace("://127.0.0.1:", "://localhost:");
    let page = Page {
        b: &b,
        base: &base,
        shots,
    };
    sign_up_with_a_passkey(&page, "Passkey Labs").await;
    page.assert_text_contains("never used").await;
    page.shoot("passkeys-one").await;

    // Signing in with the passkey alone: no email, no password.
    sign_out(&page).await;
    page.open("/login").await;
    page.shoot("login-with-passkey").await;
    page.click_button("Sign in with a passkey").await;
    page.wait_for_path("/tokens").await;
    page.open("/account/passkeys").await;
    page.assert_text_contains("last used").await;

    // The password, then the passkey as the second step.
    sign_out(&page).await;
    page.open("/login").await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.click_button("Sign in").await;
    page.wait_for_path("/login/two-factor").await;
    page.shoot("second-step-passkey").await;
    page.click_button("Use a passkey").await;
    page.wait_for_path("/tokens").await;

    // An hour later, removing it asks for a fresh check, and the passkey itself gives it.
    forget_the_last_check(&database, EMAIL);
    page.open("/account/passkeys").await;
    page.click_button("Remove Laptop authenticator").await;
    page.wait_for_text("Confirm it's you").await;
    page.shoot("sudo-passkey").await;
    page.click_button("Use a passkey").await;
    // Removed, the passkey the authenticator still holds signs no one in.
    page.wait_for_text("The passkey was removed").await;
    sign_out(&page).await;
    page.open("/login").await;
    page.click_button("Sign in with a passkey").await;
    page.wait_for_text("That passkey is not registered with Keyward")
        .await;
    page.open("/tokens").await;
    page.wait_for_path("/login").await;
}

/// A passkey is no way around an account that requires single sign-on: the provider
/// decides who is still a member, so a member's passkey, right as it is, signs no one in.
/// Single sign-on is configured; its provider need not answer for this story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_passkey_does_not_get_past_an_account_that_requires_sso() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let public_url = format!("http://localhost:{port}");
    let issuer = format!("http://127.0.0.1:{}", free_port());
    let server = Server::start_with(&[
        ("KEYWARD_BIND", bind.as_str()),
        ("KEYWARD_PUBLIC_URL", public_url.as_str()),
        ("KEYWARD_OIDC_ISSUER", issuer.as_str()),
        ("KEYWARD_OIDC_CLIENT_ID", "keyward"),
        ("KEYWARD_OIDC_CLIENT_SECRET", "not-used-in-this-story"),
        ("KEYWARD_OIDC_NAME", "Corp SSO"),
    ]);
    let database = server.database.clone();
    in_browser(server, move |b, base, shots| {
        passkey_under_sso_story(b, base, shots, database)
    })
    .await;
}

async fn passkey_under_sso_story(b: Client, base: String, shots: Screenshots, database: PathBuf) {
    let base = base.replace("://127.0.0.1:", "://localhost:");
    let page = Page {
        b: &b,
        base: &base,
        shots,
    };
    sign_up_with_a_passkey(&page, "Member Labs").await;
    sign_out(&page).await;

    // The account now requires single sign-on, and the person is one of its members. The
    // policy is written where the settings form writes it (tests/api/sso.rs drives the form).
    require_sso_of_member(&database, EMAIL);
    page.open("/login").await;
    page.click_button("Sign in with a passkey").await;
    page.wait_for_text("Member Labs requires its members to sign in with Corp SSO")
        .await;
    page.open("/tokens").await;
    page.wait_for_path("/login").await;
}

/// Makes `email`'s sessions look an hour past their last password or second-factor check,
/// as the sudo window sees it, so the next sensitive change asks again.
fn forget_the_last_check(database: &Path, email: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::Text;
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    let url = database.to_str().expect("a UTF-8 database path");
    let mut conn = SqliteConnection::establish(url).expect("the server's database opens");
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .expect("a busy timeout");
    let changed = diesel::sql_query(
        "UPDATE sessions SET state = json_set(state, '$.checked_at', '0') WHERE user_id = (SELECT id FROM users WHERE email = ?)",
    )
    .bind::<Text, _>(email)
    .execute(&mut conn)
    .expect("the sessions' last check is forgotten");
    assert!(changed > 0, "the person has a session");
}

fn require_sso_of_member(database: &Path, email: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::Text;
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    let url = database.to_str().expect("a UTF-8 database path");
    let mut conn = SqliteConnection::establish(url).expect("the server's database opens");
    // The server may be writing a usage batch at that moment.
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .expect("a busy timeout");
    diesel::sql_query("UPDATE accounts SET require_sso = 1")
        .execute(&mut conn)
        .expect("the account requires SSO");
    let changed = diesel::sql_query(
        "UPDATE memberships SET role = 'member' WHERE user_id = (SELECT id FROM users WHERE email = ?)",
    )
    .bind::<Text, _>(email)
    .execute(&mut conn)
    .expect("the person becomes a member");
    assert_eq!(changed, 1, "one membership changed");
}

/// Signs up for `account` and adds a passkey, "Laptop authenticator", held by a virtual
/// authenticator added to this browser.
async fn sign_up_with_a_passkey(page: &Page<'_>, account: &str) {
    add_virtual_authenticator(page.b, &page.shots.driver).await;
    page.open("/signup").await;
    page.fill("account_name", account).await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.fill("password_confirmation", PASSWORD).await;
    page.click_button("Create account").await;
    page.wait_for_path("/tokens").await;

    page.open("/account/passkeys").await;
    page.assert_text_contains("You have no passkeys yet").await;
    page.fill("passkey-name", "Laptop authenticator").await;
    page.shoot("passkeys-empty").await;
    page.click_button("Add a passkey").await;
    page.wait_for_text("was added").await;
}

/// Presses "Sign out" in the header.
async fn sign_out(page: &Page<'_>) {
    page.open("/tokens").await;
    page.click_button("Sign out").await;
    page.wait_for_path("/login").await;
}

/// A virtual platform authenticator that keeps discoverable credentials and verifies its
/// user at once, as a fingerprint reader would.
async fn add_virtual_authenticator(b: &Client, driver: &str) {
    let session = b
        .session_id()
        .await
        .ok()
        .flatten()
        .expect("a WebDriver session id");
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(STEP_TIMEOUT)
        .build()
        .expect("an HTTP client")
        .post(format!("{driver}/session/{session}/webauthn/authenticator"))
        .json(&json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        }))
        .send()
        .await
        .expect("chromedriver's WebAuthn extension");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "adding a virtual authenticator: {status} {body}"
    );
}

/// Signs up with mail on and verifies the address from the mail; forgets the password,
/// asks for a link from the sign-in page, follows it from the mail, sets a new password
/// and signs in with it.
async fn reset_story(b: Client, base: String, mail: smtp::SmtpServer, shots: Screenshots) {
    let page = Page {
        b: &b,
        base: &base,
        shots,
    };
    const NEW_PASSWORD: &str = "a new and better passphrase";

    page.open("/signup").await;
    page.fill("account_name", "Forgetful Search").await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.fill("password_confirmation", PASSWORD).await;
    page.click_button("Create account").await;
    page.wait_for_text("Check your inbox").await;
    page.shoot("signup-check-inbox").await;
    let verify = mail.wait_for(EMAIL, "Verify your email address").await;
    page.open(&verify.link_path("/verify-email/")).await;
    page.click_button("Verify my address").await;
    page.wait_for_text("is verified").await;

    page.open("/login").await;
    page.click_link("Forgot your password?").await;
    page.wait_for_path("/password-reset").await;
    page.shoot("password-reset-request").await;
    page.fill("email", EMAIL).await;
    page.click_button("Mail me a link").await;
    page.wait_for_text("Check your inbox").await;

    let reset = mail.wait_for(EMAIL, "Reset your Keyward password").await;
    assert!(!reset.text.contains(PASSWORD), "the mail holds no password");
    page.open(&reset.link_path("/password-reset/")).await;
    page.wait_for_text("Choose a new password").await;
    page.shoot("password-reset-choose").await;
    page.fill("password", NEW_PASSWORD).await;
    page.fill("password_confirmation", NEW_PASSWORD).await;
    page.click_button("Set new password").await;
    page.wait_for_path("/login").await;
    page.assert_text_contains("Your password was changed").await;
    page.fill("email", EMAIL).await;
    page.fill("password", NEW_PASSWORD).await;
    page.click_button("Sign in").await;
    page.wait_for_path("/tokens").await;
    mail.wait_for(EMAIL, "Your Keyward password was changed")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_the_identity_provider_in_a_browser() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let public_url = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(&format!("{public_url}/auth/oidc/callback"));
    let bind = format!("127.0.0.1:{port}");
    let server = Server::start_with(&[
        ("KEYWARD_BIND", bind.as_str()),
        ("KEYWARD_PUBLIC_URL", public_url.as_str()),
        ("KEYWARD_OIDC_ISSUER", provider.issuer.as_str()),
        ("KEYWARD_OIDC_CLIENT_ID", Provider::CLIENT_ID),
        ("KEYWARD_OIDC_CLIENT_SECRET", Provider::CLIENT_SECRET),
        ("KEYWARD_OIDC_NAME", "Corp SSO"),
        // Everything Keyward logs, to look for secrets in.
        ("KEYWARD_LOG", "debug"),
    ]);
    let log = in_browser(server, sso_story).await;
    drop(provider);
    assert!(
        log.contains("/auth/oidc/callback"),
        "the log holds the story"
    );
    for secret in [
        Provider::CLIENT_SECRET,
        "code=",
        "state=",
        "eyJ",
        "access_token",
    ] {
        assert!(!log.contains(secret), "keyward logged {secret:?}:\n{log}");
    }
}

/// The provider's development sign-in form: any login name, any password.
async fn at_provider(page: &Page<'_>, login_name: &str) {
    let login = page.wait_for(Locator::Css("input[name='login']")).await;
    login.send_keys(login_name).await.expect("typing the login");
    let password = page.wait_for(Locator::Css("input[name='password']")).await;
    password
        .send_keys("any")
        .await
        .expect("typing the password");
    page.click_button("Sign-in").await;
}

/// From the sign-in page, through the provider's own sign-in form, to a new account named
/// on the welcome form; the session is listed as one through the provider.
async fn sso_story(b: Client, base: String, shots: Screenshots) {
    let page = Page {
        b: &b,
        base: &base,
        shots,
    };
    page.open("/login").await;
    page.shoot("login-with-sso").await;
    page.click(Locator::Id("sso-sign-in")).await;
    at_provider(&page, "grace@corp.example").await;
    page.wait_for_path("/auth/oidc/welcome").await;
    page.assert_text_contains("grace@corp.example").await;
    page.shoot("sso-welcome").await;
    page.fill("account_name", "Grace Labs").await;
    page.click_button("Create account").await;
    page.wait_for_path("/tokens").await;
    page.assert_text_contains("Grace Labs").await;
    page.open("/account/sessions").await;
    page.assert_text_contains("via Corp SSO").await;

    // Someone who signed up with a password on this mail-less server connects the provider
    // from their email page: the provider's verified word proves the address.
    sign_out(&page).await;
    page.open("/signup").await;
    page.fill("account_name", "Hopper Labs").await;
    page.fill("email", "hopper@corp.example").await;
    page.fill("password", PASSWORD).await;
    page.fill("password_confirmation", PASSWORD).await;
    page.click_button("Create account").await;
    page.wait_for_path("/tokens").await;
    page.open("/account/email").await;
    page.assert_text_contains("taken on trust").await;
    page.shoot("email-connect").await;
    page.click(Locator::Id("sso-connect")).await;
    at_provider(&page, "hopper@corp.example").await;
    page.wait_for_path("/account/email").await;
    page.assert_text_contains("Corp SSO is connected").await;
    page.assert_text_contains("a verified address").await;
    page.shoot("email-connected").await;
}

async fn story(b: Client, base: String, shots: Screenshots) {
    let page = Page {
        b: &b,
        base: &base,
        shots,
    };
    let api = reqwest::Client::builder()
        .no_proxy()
        .timeout(STEP_TIMEOUT)
        .build()
        .expect("an HTTP client");

    // Signing up: a wrong confirmation is caught, then the account is created.
    page.open("/signup").await;
    page.shoot("signup").await;
    page.fill("account_name", "Acme Search").await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.fill("password_confirmation", "not the same password")
        .await;
    page.click_button("Create account").await;
    page.wait_for(Locator::Css(".flash-error[role=alert]"))
        .await;
    page.shoot("signup-errors").await;
    page.fill("account_name", "Acme Search").await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.fill("password_confirmation", PASSWORD).await;
    page.click_button("Create account").await;
    page.wait_for_path("/tokens").await;
    page.assert_text_contains("No tokens yet").await;
    page.shoot("tokens-empty").await;

    // Creating a token.
    page.click_link("New token").await;
    page.wait_for_path("/tokens/new").await;
    page.fill("name", "CI deploys").await;
    let read = page
        .find(Locator::Css("input[type=checkbox][name=read]"))
        .await;
    if !read.is_selected().await.expect("the read checkbox's state") {
        read.click().await.expect("ticking read");
    }
    let write = page
        .find(Locator::Css("input[type=checkbox][name=write]"))
        .await;
    if !write
        .is_selected()
        .await
        .expect("the write checkbox's state")
    {
        write.click().await.expect("ticking write");
    }
    page.find(Locator::Id("expires_in_days"))
        .await
        .select_by_value("30")
        .await
        .expect("choosing an expiry");
    page.shoot("token-new").await;
    page.click_button("Create token").await;

    let key = page.text_of(Locator::Id("token-key")).await;
    let secret = page.text_of(Locator::Id("token-secret")).await;
    let curl = page.text_of(Locator::Id("curl-line")).await;
    assert!(key.starts_with("kw_"), "a key looks like kw_…, got {key:?}");
    assert!(secret.len() >= 32, "the secret is long, got {secret:?}");
    assert_eq!(curl, format!("curl -u {key}:{secret} {base}/clusters/"));
    page.shoot("token-created").await;

    // The program's side: the new token opens the API.
    let response = api
        .get(format!("{base}/clusters/"))
        .basic_auth(&key, Some(&secret))
        .send()
        .await
        .expect("GET /clusters/ with the new token");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["status"], json!(200), "body: {body}");
    assert!(body["clusters"].is_array(), "body: {body}");

    // The token's page never shows the secret, only its last four characters.
    page.click_link("I have stored the secret").await;
    let token_path = page.wait_for_path_prefix("/tokens/").await;
    page.wait_for(Locator::Css("h1 .badge-active")).await;
    page.assert_secret_absent(&secret, "the token's page").await;
    let hint = &secret[secret.len() - 4..];
    page.assert_text_contains(&format!("…{hint}")).await;

    // Going back to the page that showed the secret, then reloading it, shows it no more.
    b.back().await.expect("going back");
    page.settle().await;
    page.assert_secret_absent(&secret, "the created page, reached with Back")
        .await;
    b.refresh().await.expect("reloading");
    page.settle().await;
    page.assert_secret_absent(&secret, "the created page, reloaded")
        .await;

    // The call shows up as the token's last use once the server has recorded it (in batches).
    page.open_until(&token_path, "from 127.0.0.1").await;
    page.shoot("token-show").await;
    page.open("/tokens").await;
    page.wait_for(Locator::Css("td .badge-active")).await;
    page.assert_text_contains("from 127.0.0.1").await;
    page.shoot("tokens-list").await;

    // What the token acts on: clusters made through the API, listed read-only.
    for name in ["Product logs", "Site search", "Support tickets"] {
        let response = api
            .post(format!("{base}/clusters"))
            .basic_auth(&key, Some(&secret))
            .json(&json!({"name": name}))
            .send()
            .await
            .expect("POST /clusters");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    page.click_link("Clusters").await;
    page.wait_for_path("/account/clusters").await;
    page.assert_text_contains("Support tickets").await;
    page.assert_text_contains("PROVISIONED").await;
    page.shoot("clusters").await;

    usage_and_rate_limit(&page, &api, &token_path, &key, &secret).await;

    // Revoking, through the confirmation step.
    page.open(&token_path).await;
    page.click(Locator::XPath(
        "//a[starts-with(normalize-space(.), 'Revoke')]",
    ))
    .await;
    page.wait_for_path(&format!("{token_path}/confirm-revoke"))
        .await;
    page.assert_text_contains(&key).await;
    page.shoot("token-confirm-revoke").await;
    page.fill("reason", "Pasted into a public CI log").await;
    page.click_button("Revoke token").await;
    page.wait_for_path(&token_path).await;
    page.wait_for(Locator::Css("h1 .badge-revoked")).await;
    let flash = page.text_of(Locator::Css(".flash[role=status]")).await;
    assert!(!flash.is_empty(), "a flash message confirms the revocation");
    page.assert_text_contains("Pasted into a public CI log")
        .await;
    assert!(
        page.find_all(Locator::Css("a[href$='/confirm-revoke']"))
            .await
            .is_empty(),
        "a revoked token offers no Revoke link"
    );
    page.assert_secret_absent(&secret, "the revoked token's page")
        .await;
    page.shoot("token-revoked").await;

    // The same call is now turned away, in Bonsai's envelope.
    let response = api
        .get(format!("{base}/clusters/"))
        .basic_auth(&key, Some(&secret))
        .send()
        .await
        .expect("GET /clusters/ with the revoked token");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Basic realm="keyward", charset="UTF-8""#
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({
            "errors": [
                "The API token is missing, inactive or does not exist.",
                "Authentication failed.",
                "Could not authenticate your request.",
                format!(
                    "This request has failed authentication. Please read the docs or email us at {SUPPORT_EMAIL}."
                ),
            ],
            "status": 401
        })
    );

    // The list hides it, says so, and shows it marked revoked when asked.
    page.open("/tokens").await;
    page.wait_for_text("1 revoked or expired token is hidden.")
        .await;
    page.click_link("Show revoked and expired").await;
    page.wait_for(Locator::Css("td .badge-revoked")).await;
    page.shoot("tokens-list-revoked").await;

    roll_a_token(&page, &api).await;
    key_fields_on_a_token(&page).await;
    a_team_day(&page, &api).await;

    // The owner's other pages: the audit log tells the story, the members page lists them.
    page.open("/audit").await;
    page.assert_text_contains("token.revoked").await;
    page.shoot("audit").await;
    page.open("/members").await;
    page.assert_text_contains(EMAIL).await;
    page.shoot("members").await;
    // An invitation, listed with who sent it, then cancelled from the same page.
    page.fill("invite-email", "grace@example.test").await;
    page.click_button("Create invitation").await;
    page.wait_for(Locator::Id("invite-link")).await;
    page.assert_text_contains("grace@example.test as member, sent by")
        .await;
    page.shoot("members-invited").await;
    page.click(Locator::Css(
        "ul.invitations form[action$='/cancel'] button",
    ))
    .await;
    page.wait_for_path("/members").await;
    page.wait_for_text("The invitation for grace@example.test was cancelled")
        .await;

    // A page that does not exist, as a browser asks for it.
    let response = api
        .get(format!("{base}/nope"))
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("GET /nope");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap_or("");
    assert!(content_type.starts_with("text/html"), "got {content_type}");
    page.open("/nope").await;
    page.assert_text_contains("404").await;
    page.shoot("not-found").await;

    // Signing out lands on the sign-in page; signing in again shows the same tokens.
    page.open("/tokens").await;
    page.click_button("Sign out").await;
    page.wait_for_path("/login").await;
    page.assert_text_contains("You have signed out.").await;
    page.shoot("login").await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.click_button("Sign in").await;
    page.wait_for_path("/tokens").await;
    page.wait_for(Locator::Id("list-summary")).await;

    // An operator finds the token by its secret, as a secret scanner would report it, and
    // sees who revoked it and why; then suspends and restores the account's API access.
    page.click_button("Sign out").await;
    page.wait_for_path("/login").await;
    page.fill("email", OPERATOR_EMAIL).await;
    page.fill("password", OPERATOR_PASSWORD).await;
    page.click_button("Sign in").await;
    // The console needs a second factor: the operator is sent to set up an authenticator app,
    // scans the secret (here: reads it off the page) and types the code it shows.
    page.wait_for_path("/account/two-factor/setup").await;
    page.wait_for(Locator::Css(".qr-code svg")).await;
    let totp_secret = page.text_of(Locator::Id("totp-secret")).await;
    page.shoot("two-factor-setup").await;
    page.fill("code", &totp_code(&totp_secret, 0)).await;
    page.click_button("Turn on two-factor sign-in").await;
    page.wait_for(Locator::Id("recovery-codes")).await;
    page.assert_text_contains("Save these recovery codes now")
        .await;
    page.shoot("two-factor-recovery-codes").await;
    // Signing in again takes the password, then the app's next code.
    page.open("/admin").await;
    page.click_button("Sign out").await;
    page.wait_for_path("/login").await;
    page.fill("email", OPERATOR_EMAIL).await;
    page.fill("password", OPERATOR_PASSWORD).await;
    page.click_button("Sign in").await;
    page.wait_for_path("/login/two-factor").await;
    page.shoot("two-factor-sign-in").await;
    page.fill("code", &totp_code(&totp_secret, 1)).await;
    page.click_button("Sign in").await;
    page.wait_for_path("/admin").await;
    page.assert_text_contains("Acme Search").await;
    page.fill("q", &secret).await;
    page.click_button("Find").await;
    // The search is a form: wait for its answer to load, as other steps do.
    page.wait_for_text(&key).await;
    page.assert_text_contains("Pasted into a public CI log")
        .await;
    page.assert_secret_absent(&secret, "/admin after a search")
        .await;
    page.shoot("operator-console").await;
    page.click(Locator::XPath(
        "//a[starts-with(normalize-space(.), 'Suspend API access…') and contains(., 'Acme Search')]",
    ))
    .await;
    page.wait_for_text("active tokens will get 403").await;
    page.shoot("operator-confirm-suspend").await;
    page.fill("reason", "Abuse report under review").await;
    page.click_button("Suspend API access").await;
    page.wait_for(Locator::Css("td .badge-suspended")).await;
    page.shoot("operator-suspended").await;
    page.click(Locator::XPath(
        "//button[starts-with(normalize-space(.), 'Restore API access')]",
    ))
    .await;
    page.wait_for(Locator::Css("td .badge-active")).await;
    // The operator's account page and the list of operators.
    page.click_link("Acme Search").await;
    page.wait_for(Locator::Id("token-counts")).await;
    page.shoot("operator-account").await;
    page.open("/admin/accounts?q=acme").await;
    page.assert_text_contains("Acme Search").await;
    page.shoot("operator-account-search").await;
    page.open("/admin/operators").await;
    page.assert_text_contains(OPERATOR_EMAIL).await;
    page.shoot("operator-operators").await;
}

/// The code an authenticator app shows for `secret` (base32), `offset` 30-second steps from
/// now.
fn totp_code(secret: &str, offset: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("the page shows a base32 secret");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .expect("a secret of 128 bits or more");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    totp.generate(now + offset * 30)
}

/// Makes a token through the form and returns its key, secret and page.
async fn make_token(page: &Page<'_>, name: &str) -> (String, String, String) {
    page.open("/tokens/new").await;
    page.fill("name", name).await;
    page.click_button("Create token").await;
    let key = page.text_of(Locator::Id("token-key")).await;
    let secret = page.text_of(Locator::Id("token-secret")).await;
    page.click_link("I have stored the secret").await;
    let path = page.wait_for_path_prefix("/tokens/").await;
    (key, secret, path)
}

/// What a key carries for the services that verify it: permissions and meta set on the
/// token's page, then shown there.
async fn key_fields_on_a_token(page: &Page<'_>) {
    let (_, _, path) = make_token(page, "Customer key").await;
    page.open(&path).await;
    page.click_link("Edit permissions, meta, credits and IPs")
        .await;
    page.fill("permissions", "documents.read, billing.write")
        .await;
    page.fill("meta", r#"{"plan": "pro"}"#).await;
    page.shoot("token-key-fields").await;
    page.click_button("Save").await;
    page.wait_for(Locator::Id("key-fields")).await;
    page.assert_text_contains("billing.write, documents.read")
        .await;
    page.assert_text_contains(r#"{"plan":"pro"}"#).await;
    page.shoot("token-key-fields-shown").await;
}

/// A team's day with the list: a note, search and filters, a bulk revoke through its
/// confirmation, a member removed through theirs, and the account's own suspension, with
/// its banner on every page and its 403.
async fn a_team_day(page: &Page<'_>, api: &reqwest::Client) {
    let base = page.base;
    let (backend, _, _) = make_token(page, "Search backend").await;
    let (frontend, _, _) = make_token(page, "Search frontend").await;
    let (billing, billing_secret, billing_path) = make_token(page, "Billing worker").await;

    // A note, kept on the token's page and found by the search.
    page.open(&billing_path).await;
    page.click_link("Edit name and note").await;
    page.fill("note", "Owner: payments team. Ticket PAY-12")
        .await;
    page.shoot("token-edit").await;
    page.click_button("Save").await;
    page.wait_for(Locator::Id("token-note")).await;
    page.assert_text_contains("Owner: payments team. Ticket PAY-12")
        .await;
    page.shoot("token-note").await;

    // Search and filter, kept in the URL.
    page.open("/tokens").await;
    page.fill("q", "pay-12").await;
    page.click_button("Apply").await;
    page.wait_for_text("Showing 1 token.").await;
    page.assert_text_contains(&billing).await;
    page.fill("q", "search").await;
    page.click_button("Apply").await;
    page.wait_for_text("Showing 2 tokens.").await;
    let url = page.b.current_url().await.expect("the URL");
    assert!(
        url.query()
            .is_some_and(|q| q.starts_with("q=search&status=active")),
        "the filters are kept in the URL: {url}"
    );
    page.shoot("tokens-search").await;
    page.find(Locator::Id("status"))
        .await
        .select_by_value("all")
        .await
        .expect("choosing a status");
    page.fill("q", "").await;
    page.click_button("Apply").await;
    page.wait_for(Locator::Css("td .badge-revoked")).await;
    page.shoot("tokens-filter-all").await;

    // Bulk revoke: tick two, confirm on the next page, both go at once.
    page.open("/tokens?q=search").await;
    for row in page
        .find_all(Locator::Css("td.select input[type=checkbox]"))
        .await
    {
        row.click().await.expect("ticking a token");
    }
    page.click_button("Revoke selected…").await;
    page.wait_for_path("/tokens/confirm-bulk-revoke").await;
    page.assert_text_contains("2 tokens will be revoked.").await;
    page.assert_text_contains(&backend).await;
    page.assert_text_contains(&frontend).await;
    page.fill("reason", "Search moved to the new cluster").await;
    page.shoot("tokens-bulk-confirm").await;
    page.click_button("Revoke tokens").await;
    page.wait_for_path("/tokens").await;
    page.wait_for_text("Revoked 2 tokens").await;
    page.shoot("tokens-bulk-revoked").await;

    // A member joins through an invitation, then is removed through the confirmation.
    page.open("/members").await;
    page.fill("invite-email", "lin@example.test").await;
    page.click_button("Create invitation").await;
    let link = page.text_of(Locator::Id("invite-link")).await;
    page.click_button("Sign out").await;
    page.wait_for_path("/login").await;
    page.b.goto(&link).await.expect("opening the invitation");
    page.fill("password", "lin's own long passphrase").await;
    page.fill("password_confirmation", "lin's own long passphrase")
        .await;
    page.click(Locator::XPath(
        "//button[starts-with(normalize-space(.), 'Join')]",
    ))
    .await;
    page.wait_for_path("/tokens").await;
    make_token(page, "Lin's laptop").await;
    page.click_button("Sign out").await;
    page.wait_for_path("/login").await;
    page.fill("email", EMAIL).await;
    page.fill("password", PASSWORD).await;
    page.click_button("Sign in").await;
    page.wait_for_path("/tokens").await;
    page.open("/members").await;
    page.click(Locator::XPath(
        "//a[starts-with(normalize-space(.), 'Remove…') and contains(., 'lin@example.test')]",
    ))
    .await;
    page.wait_for_text("1 active token of theirs will be revoked")
        .await;
    page.shoot("members-confirm-remove").await;
    page.click_button("Remove and revoke their tokens").await;
    page.wait_for_path("/members").await;
    page.wait_for_text("lin@example.test was removed, 1 of their tokens revoked")
        .await;

    // The owners turn API access off: a confirmation with counts, then a banner on every
    // page, and the API's 403 says who.
    page.click(Locator::XPath(
        "//a[starts-with(normalize-space(.), 'Suspend API access…')]",
    ))
    .await;
    page.wait_for_path("/account/confirm-suspend").await;
    page.assert_text_contains("active tokens will get 403")
        .await;
    page.fill("reason", "Card payment failed").await;
    page.shoot("members-confirm-suspend").await;
    page.click_button("Suspend API access").await;
    page.wait_for_path("/members").await;
    page.open("/tokens").await;
    page.wait_for(Locator::Id("suspended-banner")).await;
    page.assert_text_contains("Suspended by ada@example.test: “Card payment failed”")
        .await;
    page.shoot("tokens-suspended").await;
    let response = api
        .get(format!("{base}/clusters/"))
        .basic_auth(&billing, Some(&billing_secret))
        .send()
        .await
        .expect("GET /clusters/ while suspended");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({"errors": ["This account's API access has been turned off by its owners."], "status": 403})
    );
    page.open("/members").await;
    page.click(Locator::XPath(
        "//button[starts-with(normalize-space(.), 'Restore API access')]",
    ))
    .await;
    page.wait_for_text("API access is restored.").await;
}

/// Rolling a token: a new token that expires within a week shows in the notice on
/// `/tokens`; "Roll secret…" asks for a grace period and shows the new secret once, as at
/// creation; both secrets work during the grace; the two pages link to each other.
async fn roll_a_token(page: &Page<'_>, api: &reqwest::Client) {
    let base = page.base;
    page.open("/tokens/new").await;
    page.fill("name", "Nightly export").await;
    page.find(Locator::Id("expires_in_days"))
        .await
        .select_by_value("7")
        .await
        .expect("choosing an expiry");
    page.click_button("Create token").await;
    let old_key = page.text_of(Locator::Id("token-key")).await;
    let old_secret = page.text_of(Locator::Id("token-secret")).await;
    page.click_link("I have stored the secret").await;
    let old_path = page.wait_for_path_prefix("/tokens/").await;

    // Expiring within a week: the list warns, with a link to roll it.
    page.open("/tokens").await;
    page.wait_for(Locator::Id("expiring-soon")).await;
    page.assert_text_contains(&old_key).await;
    page.shoot("tokens-expiring-soon").await;
    page.click(Locator::Css("#expiring-soon a[href$='/confirm-roll']"))
        .await;
    page.wait_for_path(&format!("{old_path}/confirm-roll"))
        .await;
    page.shoot("token-confirm-roll").await;
    page.click(Locator::Css("input[name=grace][value='24h']"))
        .await;
    page.click_button("Roll secret").await;

    let key = page.text_of(Locator::Id("token-key")).await;
    let secret = page.text_of(Locator::Id("token-secret")).await;
    let curl = page.text_of(Locator::Id("curl-line")).await;
    assert_ne!(key, old_key, "a roll makes a new key");
    assert_eq!(curl, format!("curl -u {key}:{secret} {base}/clusters/"));
    page.assert_text_contains("keeps working until").await;
    page.shoot("token-rolled").await;

    // Both secrets open the API during the grace; the old one names its expiry.
    for (k, s) in [(&key, &secret), (&old_key, &old_secret)] {
        let response = api
            .get(format!("{base}/clusters/"))
            .basic_auth(k, Some(s))
            .send()
            .await
            .expect("GET /clusters/ during the grace");
        assert_eq!(response.status(), StatusCode::OK, "{k}");
        assert!(
            response.headers().contains_key("keyward-token-expires"),
            "{k} expires, and says so"
        );
    }

    // The new token's page links back to the old one, and the old one forward.
    page.click_link("I have stored the secret").await;
    page.wait_for_path_prefix("/tokens/").await;
    page.wait_for(Locator::Id("rolled-from")).await;
    page.assert_secret_absent(&secret, "the rolled token's page")
        .await;
    page.click(Locator::Css("#rolled-from a")).await;
    page.wait_for_path(&old_path).await;
    page.wait_for(Locator::Id("rolled-to")).await;
    page.assert_text_contains(&key).await;
    page.shoot("token-rolled-old").await;
}

/// The token's use, charted: a rate limit set on the token's page turns the third of three
/// quick calls away with a 429, and once the server has written its batch the chart stacks
/// the refusal on the day's successes, the address is listed, and the token list shows the
/// account's chart. The token made four calls before this step: one list, three creates.
async fn usage_and_rate_limit(
    page: &Page<'_>,
    api: &reqwest::Client,
    token_path: &str,
    key: &str,
    secret: &str,
) {
    page.open(token_path).await;
    page.fill("rate_limit", "2").await;
    page.click_button("Save rate limit").await;
    page.wait_for_text("may now make at most 2 requests per minute")
        .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = api
            .get(format!("{}/plans", page.base))
            .basic_auth(key, Some(secret))
            .send()
            .await
            .expect("GET /plans");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429], "the limit of 2 a minute holds");

    page.open_until(token_path, "rate-limited, 429 (1)").await;
    page.assert_text_contains("successful (6)").await;
    page.assert_text_contains("they need only the key, not the secret")
        .await;
    let chart = page.find(Locator::Css("figure.chart svg.bars")).await;
    let labelled = chart
        .attr("aria-labelledby")
        .await
        .expect("the chart's attributes");
    assert_eq!(
        labelled.as_deref(),
        Some("token-usage-title token-usage-desc")
    );
    assert_eq!(
        page.find_all(Locator::Css("svg.bars g.days > g"))
            .await
            .len(),
        30,
        "a bar for each of 30 days"
    );
    let desc = page.find(Locator::Css("svg.bars desc")).await;
    let desc = desc.html(true).await.expect("the chart's description");
    assert!(
        desc.contains("6 successful calls, 0 refused, 0 forbidden and 1 rate-limited"),
        "{desc}"
    );
    page.assert_text_contains("127.0.0.1").await;
    page.shoot("token-usage-chart").await;

    page.open("/tokens").await;
    page.wait_for(Locator::Css("figure.chart svg.bars")).await;
    page.assert_text_contains("limit 2/min").await;
    page.wait_for(Locator::Css("svg.sparkline")).await;
    page.shoot("tokens-list-chart").await;
}

// ---------------------------------------------------------------------------------------------
// The browser, one page at a time
// ---------------------------------------------------------------------------------------------

struct Page<'a> {
    b: &'a Client,
    base: &'a str,
    shots: Screenshots,
}

impl Page<'_> {
    async fn open(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.b
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Opens `path` again and again, bounded, until it shows `needle`: for what the server
    /// records in the background.
    async fn open_until(&self, path: &str, needle: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            self.open(path).await;
            if self.visible_text().await.contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{path} did not show {needle:?} within {STEP_TIMEOUT:?}:\n{}",
                    self.visible_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn find(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        match self.b.find(locator).await {
            Ok(element) => element,
            Err(e) => panic!("finding {locator:?} on {}: {e}", self.path().await),
        }
    }

    async fn find_all(&self, locator: Locator<'_>) -> Vec<fantoccini::elements::Element> {
        self.b
            .find_all(locator)
            .await
            .unwrap_or_else(|e| panic!("looking for {locator:?}: {e}"))
    }

    /// Waits, bounded, for an element to appear: pages load after a click.
    async fn wait_for(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        match self
            .b
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(locator)
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "waiting for {locator:?} on {}: {e}\n{}",
                self.path().await,
                self.visible_text().await
            ),
        }
    }

    async fn text_of(&self, locator: Locator<'_>) -> String {
        let element = self.wait_for(locator).await;
        let text = element.text().await.expect("an element's text");
        text.trim().to_string()
    }

    async fn fill(&self, id: &str, value: &str) {
        let field = self.wait_for(Locator::Id(id)).await;
        field.clear().await.expect("clearing a field");
        field.send_keys(value).await.expect("typing into a field");
    }

    async fn click(&self, locator: Locator<'_>) {
        let element = self.wait_for(locator).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
    }

    async fn click_link(&self, text: &str) {
        self.click(Locator::LinkText(text)).await;
    }

    async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        self.click(Locator::XPath(&xpath)).await;
    }

    async fn path(&self) -> String {
        match self.b.current_url().await {
            Ok(url) => url.path().to_string(),
            Err(e) => format!("<no URL: {e}>"),
        }
    }

    async fn visible_text(&self) -> String {
        match self.b.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits, bounded, until the browser is on `path`.
    async fn wait_for_path(&self, path: &str) {
        self.wait_for_url(|p| p == path, path).await;
    }

    /// Waits, bounded, until the browser is on a path under `prefix`, and returns it.
    async fn wait_for_path_prefix(&self, prefix: &str) -> String {
        self.wait_for_url(|p| p.starts_with(prefix) && p.len() > prefix.len(), prefix)
            .await
    }

    async fn wait_for_url(&self, matches: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let path = self.path().await;
            if matches(&path) && self.loaded().await {
                return path;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {STEP_TIMEOUT:?} for {what}, still on {path}\n{}",
                    self.visible_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn loaded(&self) -> bool {
        matches!(
            self.b.execute("return document.readyState", vec![]).await,
            Ok(Value::String(state)) if state == "complete"
        )
    }

    /// Waits, bounded, for a navigation started by Back or Reload to finish.
    async fn settle(&self) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while !self.loaded().await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits, bounded, until the page shows `needle`: a form's answer may still be loading.
    async fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while !self.visible_text().await.contains(needle) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.assert_text_contains(needle).await;
    }

    async fn assert_text_contains(&self, needle: &str) {
        let text = self.visible_text().await;
        assert!(
            text.contains(needle),
            "{} should show {needle:?}; it shows:\n{text}",
            self.path().await
        );
    }

    /// The secret appears nowhere in the document: not in text, attributes or scripts.
    async fn assert_secret_absent(&self, secret: &str, page: &str) {
        let source = self.b.source().await.expect("the page's source");
        assert!(
            !source.contains(secret),
            "{page} ({}) must not show the secret",
            self.path().await
        );
    }

    /// Checks the page's layout at the desktop size, and saves screenshots when asked.
    async fn shoot(&self, name: &str) {
        let problems = layout_problems(self.b).await;
        assert!(
            problems.is_empty(),
            "{name} at {DESKTOP:?}: {}",
            problems.join("; ")
        );
        self.shots.take(self.b, name).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Screenshots, when KEYWARD_SCREENSHOTS names a folder
// ---------------------------------------------------------------------------------------------

struct Screenshots {
    dir: Option<PathBuf>,
    taken: std::sync::atomic::AtomicUsize,
    /// chromedriver's address, for switching the colour scheme through Chromium's DevTools.
    driver: String,
}

/// The sizes every screenshot is taken at: a desktop, a small laptop (the narrowest width
/// with the token table) and a phone.
const SIZES: [((u32, u32), &str); 3] = [(DESKTOP, "1280"), (LAPTOP, "1024"), (PHONE, "390")];

impl Screenshots {
    fn from_env(driver: String) -> Self {
        let dir = std::env::var_os("KEYWARD_SCREENSHOTS")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        Self {
            dir,
            taken: Default::default(),
            driver,
        }
    }

    /// Saves the whole page at each size, light and dark, as `NN-name-1280-light.png` and
    /// so on, then puts the window back to the desktop size and the light scheme. Fails if
    /// a table overflows its box or the page scrolls past its content at any of them.
    async fn take(&self, b: &Client, name: &str) {
        let Some(dir) = &self.dir else { return };
        let n = self
            .taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        // No caret or focus ring left over from the last field typed into.
        let _ = b
            .execute(
                "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)",
                vec![],
            )
            .await;
        let mut problems = Vec::new();
        for scheme in ["light", "dark"] {
            self.set_scheme(b, scheme).await;
            for (size, label) in SIZES {
                set_viewport(b, size).await;
                for problem in layout_problems(b).await {
                    problems.push(format!("{label} px, {scheme}: {problem}"));
                }
                // The full height of the page at this width, so nothing below the fold is missed.
                let height = match b
                    .execute("return document.documentElement.scrollHeight", vec![])
                    .await
                {
                    Ok(Value::Number(h)) => h.as_u64().unwrap_or(0) as u32,
                    _ => 0,
                };
                if height > size.1 {
                    set_viewport(b, (size.0, height.min(8000))).await;
                }
                let png = b.screenshot().await.expect("a screenshot");
                let path = dir.join(format!("{n:02}-{name}-{label}-{scheme}.png"));
                write_file(&path, &png);
            }
        }
        self.set_scheme(b, "light").await;
        set_viewport(b, DESKTOP).await;
        assert!(problems.is_empty(), "{name}: {}", problems.join("; "));
    }

    /// Emulates `prefers-color-scheme: <scheme>` through chromedriver's DevTools bridge.
    async fn set_scheme(&self, b: &Client, scheme: &str) {
        let session = b
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver
            ))
            .json(&json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
            }))
            .send()
            .await
            .expect("chromedriver's DevTools bridge");
        assert!(
            response.status().is_success(),
            "setting the colour scheme to {scheme}: {}",
            response.status()
        );
    }
}

/// What is wrong with the page's layout at the window's current size: a table wider than
/// its box (it would scroll sideways or be cut off), a page wider than the window, or a page
/// that scrolls more than `BLANK_SPACE_ALLOWED_PX` past its footer.
async fn layout_problems(b: &Client) -> Vec<String> {
    let script = format!(
        r#"
        const problems = [];
        const visible = el => !el.closest('.visually-hidden');
        for (const el of document.querySelectorAll('.table-wrap, table')) {{
            if (visible(el) && el.scrollWidth > el.clientWidth + 1) {{
                problems.push(`${{el.className || el.tagName}} is ${{el.scrollWidth}} px wide in ${{el.clientWidth}} px`);
            }}
        }}
        const root = document.documentElement;
        if (root.scrollWidth > root.clientWidth + 1) {{
            problems.push(`the page is ${{root.scrollWidth}} px wide in a ${{root.clientWidth}} px window`);
        }}
        const footer = document.querySelector('.site-footer');
        if (footer) {{
            const end = footer.getBoundingClientRect().bottom + window.scrollY;
            const blank = root.scrollHeight - Math.max(end, window.innerHeight);
            if (blank > {BLANK_SPACE_ALLOWED_PX}) {{
                problems.push(`the page scrolls ${{blank}} px past its footer`);
            }}
        }}
        return problems;
        "#
    );
    match b.execute(&script, vec![]).await {
        Ok(Value::Array(found)) => found
            .into_iter()
            .map(|p| p.as_str().unwrap_or_default().to_string())
            .collect(),
        other => vec![format!("the layout check failed: {other:?}")],
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Sizes the window so that the page itself (the viewport) is `width` × `height`.
async fn set_viewport(b: &Client, (width, height): (u32, u32)) {
    let mut outer = (width, height);
    for _ in 0..3 {
        b.set_window_size(outer.0, outer.1)
            .await
            .expect("resizing the window");
        let inner = b
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .expect("the viewport's size");
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) == (width, height) {
            return;
        }
        let grow = |outer: u32, want: u32, got: u32| (outer + want).saturating_sub(got).max(1);
        outer = (grow(outer.0, width, w), grow(outer.1, height, h));
    }
}

// ---------------------------------------------------------------------------------------------
// The processes: Keyward and chromedriver, each killed on drop
// ---------------------------------------------------------------------------------------------

/// `keyward serve` on 127.0.0.1 with its own SQLite file.
struct Server {
    child: Child,
    url: String,
    log_path: PathBuf,
    database: PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// The server with extra settings, such as mail's.
    fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = dir.path().join("k.db");
        // The request log goes to a file, shown only when the story fails.
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("a log file for the server");
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KEYWARD_") {
                command.env_remove(name);
            }
        }
        command
            .env("KEYWARD_BIND", "127.0.0.1:0")
            .env("KEYWARD_DATABASE_URL", &database)
            .env("KEYWARD_SUPPORT_EMAIL", SUPPORT_EMAIL)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the keyward binary should start");
        let stdout = child.stdout.take().expect("keyward's stdout");

        // Reads the line that says where it listens, then keeps draining so the server never
        // blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("is listening on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let mut server = Self {
            child,
            url: String::new(),
            log_path,
            database,
            _dir: dir,
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) if url.starts_with("http://127.0.0.1:") => server.url = url,
            Ok(url) => panic!("keyward should listen on 127.0.0.1, it said {url:?}"),
            Err(_) => panic!("keyward did not say where it listens within {STARTUP_TIMEOUT:?}"),
        }
        server
    }
}

impl Server {
    /// `keyward operator create` on the server's database, with the password on stdin.
    fn make_operator(&self, email: &str, password: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(["--database-url"])
            .arg(&self.database)
            .args(["operator", "create", "--email", email])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("keyward operator create should start");
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{password}").expect("the password is written to stdin");
        }
        let status = child.wait().expect("keyward operator create should finish");
        assert!(status.success(), "keyward operator create failed: {status}");
    }

    /// The last lines the server logged, for a failure's report.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenID Provider of the API suite (`tests/oidc/provider.js`, panva's oidc-provider on
/// Node), from the cache folder `.ci/run` installs it into, with one client for Keyward.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    const CLIENT_ID: &str = "keyward-browser";
    const CLIENT_SECRET: &str = "the-browser-storys-client-secret";

    fn start(redirect_uri: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oidc-provider");
        std::fs::create_dir_all(&dir).expect("the provider's cache folder");
        for file in ["package.json", "package-lock.json", "provider.js"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/oidc")
                    .join(file),
                dir.join(file),
            )
            .expect("the provider's files");
        }
        if !dir.join("node_modules/oidc-provider").exists() {
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("npm should run");
            assert!(
                status.success(),
                "npm install of tests/oidc failed: {status}"
            );
        }
        let client = json!({
            "client_id": Self::CLIENT_ID,
            "client_secret": Self::CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        })
        .to_string();
        let mut child = Command::new("node")
            .arg("provider.js")
            .current_dir(&dir)
            .env("CLIENT", client)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node should start");
        let mut stdout = BufReader::new(child.stdout.take().expect("the provider's output"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the provider's first line");
        // Drained to the end: node dies of EPIPE writing to a pipe nobody reads.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the provider said {line:?}"))
            .to_string();
        Self { child, issuer }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's chromedriver on a free loopback port/// Debian's chromedriver on a free loopback port, in a process group of its own so that the
/// Chromium it starts can be ended with it.
struct ChromeDriver {
    child: Child,
    port: u16,
    profile: TempDir,
}

impl ChromeDriver {
    fn start() -> Self {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: apt-get install chromium chromium-driver"
            );
        }
        let port = free_port();
        let profile = tempfile::tempdir().expect("a temporary directory for the profile");
        // Without --allowed-ips, chromedriver listens on the loopback interface only.
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .arg("--log-level=SEVERE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("chromedriver should start");
        let driver = Self {
            child,
            port,
            profile,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !driver.ready() {
            assert!(
                Instant::now() < deadline,
                "chromedriver was not ready on port {port} within {STARTUP_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /status` answers `"ready": true`.
    fn ready(&self) -> bool {
        http_get_loopback(self.port, "/status")
            .is_some_and(|body| body.contains("\"ready\":true") || body.contains("\"ready\": true"))
    }

    /// A new headless Chromium session with a fresh profile.
    async fn session(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        capabilities.insert(
            "timeouts".into(),
            json!({ "pageLoad": STEP_TIMEOUT.as_millis() as u64, "script": 10_000, "implicit": 0 }),
        );
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = self.url();
        let connect = builder.connect(&url);
        match tokio::time::timeout(STARTUP_TIMEOUT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("chromedriver could not start Chromium: {e}"),
            Err(_) => panic!("Chromium did not start within {STARTUP_TIMEOUT:?}"),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // Ask chromedriver to quit its browsers, then end the whole group in any case.
        let _ = http_get_loopback(self.port, "/shutdown");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a free loopback port");
    listener.local_addr().expect("a local address").port()
}

/// A bounded, dependency-free GET on 127.0.0.1, for chromedriver's status and shutdown.
fn http_get_loopback(port: u16, path: &str) -> Option<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // chromedriver keeps the connection open despite `Connection: close`: read up to the
    // length it announces.
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
        if complete(&response) {
            break;
        }
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    (!response.is_empty()).then_some(response)
}

/// Whether an HTTP/1.1 response holds its whole body, going by `Content-Length`.
fn complete(response: &[u8]) -> bool {
    let text = String::from_utf8_lossy(response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .is_some_and(|length| body.len() >= length)
}
