//! `/account/passkeys`, a passkey at `/login/two-factor`, and `/login/passkey`: a person adds
//! a passkey (made here by webauthn-rs's software authenticator, answering what the page's
//! script would), names it, signs in with it as the second step, confirms sudo mode with
//! it, and removes it in sudo mode. A removed passkey, a replayed answer and a ceremony
//! carried to another browser are refused. The discoverable sign-in's full ceremony runs in the browser story, whose
//! Chromium authenticator keeps the user handle this one doesn't.

use reqwest::StatusCode;
use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    CreationChallengeResponse, RegisterPublicKeyCredential, RequestChallengeResponse, Url,
};

use crate::support::admin::{audit_log, count_rows, execute_sql, find_event};
use crate::support::api::{TestApp, spawn_app, spawn_app_with};
use crate::support::browser::{Browser, PASSWORD, Page, email_for, signed_up};
use crate::support::store::on_postgres;
use crate::support::two_factor::{at_second_step, code_for, enrol, second_step};

/// The site's origin as the browser shows it. WebAuthn wants a domain name, so the test
/// server is told its public URL is `localhost`'s; the requests still go to 127.0.0.1.
const ORIGIN: &str = "http://localhost";

async fn passkey_app() -> TestApp {
    spawn_app_with(|config| config.public_url = Some(ORIGIN.into())).await
}

/// The same, where sudo mode has always lapsed: every sensitive change asks for a proof.
async fn passkey_app_with_sudo_lapsed() -> TestApp {
    spawn_app_with(|config| {
        config.public_url = Some(ORIGIN.into());
        config.sudo_window = chrono::Duration::seconds(-1);
    })
    .await
}

fn origin() -> Url {
    Url::parse(ORIGIN).expect("a URL")
}

/// An authenticator that says it verified its user (by PIN or fingerprint), as passkeys need.
fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// The owner of a new account `account`, signed in, with a passkey named `name` added:
/// their browser, email and authenticator.
async fn owner_with_passkey(
    app: &TestApp,
    account: &str,
    name: &str,
) -> (Browser, String, SoftPasskey) {
    let owner = signed_up(&app.address, account).await;
    let mut key = authenticator();
    add_passkey(&owner, &mut key, name)
        .await
        .assert_redirect("/account/passkeys");
    (owner, email_for(account), key)
}

/// Asks `begin` for a ceremony's options, as the page's script does.
async fn begin(browser: &Browser, page: &str, begin: &str) -> Page {
    let csrf = browser.csrf_from(page).await;
    browser.post(begin, &[("csrf_token", &csrf)]).await
}

fn options<T: serde::de::DeserializeOwned>(page: &Page) -> T {
    assert_eq!(
        page.status,
        StatusCode::OK,
        "{}: {}",
        page.request,
        page.body
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("options as JSON: {e}"))
}

/// A ceremony's start refused with a 422 whose JSON error (for the page's script to show)
/// says `sentence`.
fn assert_begin_refused(page: &Page, sentence: &str) {
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    let json: Value = serde_json::from_str(&page.body).expect("a JSON error");
    assert!(
        json["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains(sentence)),
        "{json}"
    );
}

/// The options of a passkey registration begun in `browser`, as the page's script gets them.
async fn registration_options(browser: &Browser) -> CreationChallengeResponse {
    let started = begin(
        browser,
        "/account/passkeys",
        "/account/passkeys/register/begin",
    )
    .await;
    options(&started)
}

/// The answer `key` gives, for `origin`, to a passkey registration begun in `browser`.
async fn registration_answer(browser: &Browser, key: &mut SoftPasskey, origin: Url) -> String {
    let challenge = registration_options(browser).await;
    let credential = key
        .do_registration(origin, challenge)
        .expect("the authenticator makes a credential");
    serde_json::to_string(&credential).expect("JSON")
}

/// Sends a registration answer as the "Add a passkey" form does, naming the passkey.
async fn register(browser: &Browser, name: &str, credential: &str) -> Page {
    register_with(browser, name, credential, &[]).await
}

/// The same, with `extra` fields (the sudo page's password).
async fn register_with(
    browser: &Browser,
    name: &str,
    credential: &str,
    extra: &[(&str, &str)],
) -> Page {
    let csrf = browser.csrf_from("/account/passkeys").await;
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("name", name),
        ("credential", credential),
    ];
    fields.extend_from_slice(extra);
    browser.post("/account/passkeys/register", &fields).await
}

/// Adds a passkey named `name` with `key`, as a person presses "Add a passkey".
async fn add_passkey(browser: &Browser, key: &mut SoftPasskey, name: &str) -> Page {
    let credential = registration_answer(browser, key, origin()).await;
    register(browser, name, &credential).await
}

/// The passkey answer to a second step's ceremony, begun in `browser`.
async fn second_step_answer(browser: &Browser, key: &mut SoftPasskey) -> String {
    let started = begin(
        browser,
        "/login/two-factor",
        "/login/two-factor/passkey/begin",
    )
    .await;
    let challenge: RequestChallengeResponse = options(&started);
    let answer = key
        .do_authentication(origin(), challenge)
        .expect("the authenticator signs the challenge");
    serde_json::to_string(&answer).expect("JSON")
}

async fn post_second_step_answer(browser: &Browser, answer: &str) -> Page {
    let csrf = browser.csrf_from("/login/two-factor").await;
    browser
        .post(
            "/login/two-factor",
            &[("csrf_token", &csrf), ("credential", answer)],
        )
        .await
}

/// The passkeys page's id for the passkey named `name`, read from its remove form.
fn passkey_id(page: &Page, name: &str) -> i32 {
    let at = page
        .body
        .find(&format!("<strong class=\"passkey-name\">{name}</strong>"))
        .unwrap_or_else(|| panic!("the page lists {name}:\n{}", page.body));
    let rest = &page.body[at..];
    let start = rest.find("/account/passkeys/").expect("a form") + "/account/passkeys/".len();
    rest[start..]
        .split('/')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("a passkey id in the form's action")
}

async fn remove(browser: &Browser, id: i32, extra: &[(&str, &str)]) -> Page {
    let csrf = browser.csrf_from("/account/passkeys").await;
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend_from_slice(extra);
    browser
        .post(&format!("/account/passkeys/{id}/remove"), &fields)
        .await
}

#[tokio::test]
async fn a_person_adds_a_passkey_and_it_serves_as_the_second_step() {
    let app = passkey_app().await;
    let owner = signed_up(&app.address, "Passkey Co").await;
    let email = email_for("Passkey Co");
    let mut key = authenticator();

    let added = add_passkey(&owner, &mut key, "Work laptop").await;

    added.assert_redirect("/account/passkeys");
    let page = owner.get("/account/passkeys").await;
    page.assert_html_page(StatusCode::OK);
    page.assert_contains("The passkey \"Work laptop\" was added");
    page.assert_contains("never used");
    let rows = audit_log(&owner, "").await;
    let event = find_event(&rows, "user.passkey_added", &email);
    assert!(event.detail.contains("Work laptop"), "{event:?}");

    // A passkey alone is a second factor: the password leads to the second step.
    let browser = at_second_step(&app.address, &email).await;
    let step = browser.get("/login/two-factor").await;
    step.assert_html_page(StatusCode::OK);
    step.assert_contains("Use a passkey");
    assert!(
        !step.body.contains("name=\"code\""),
        "no code form without an authenticator app"
    );
    let answer = second_step_answer(&browser, &mut key).await;
    let done = post_second_step_answer(&browser, &answer).await;

    done.assert_redirect("/tokens");
    assert!(done.session_set_cookie().is_some(), "a session starts");
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);
    let listed = browser.get("/account/passkeys").await;
    assert!(!listed.body.contains("never used"), "{}", listed.body);
    listed.assert_contains("last used");
}

#[tokio::test]
async fn a_passkey_is_the_second_step_even_on_a_server_without_a_secret_key() {
    // On PostgreSQL no key is made for the operator: without KEYWARD_SECRET_KEY there is
    // no authenticator app, but passkeys, which need no key, still sign people in. (On
    // SQLite a key file is made beside the database, so this runs with a key there.)
    let app = spawn_app_with(|config| {
        config.public_url = Some(ORIGIN.into());
        config.secret_key = None;
    })
    .await;
    let (_, email, mut key) = owner_with_passkey(&app, "Keyless Co", "Laptop").await;

    let browser = at_second_step(&app.address, &email).await;
    let answer = second_step_answer(&browser, &mut key).await;
    post_second_step_answer(&browser, &answer)
        .await
        .assert_redirect("/tokens");
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn a_replayed_answer_is_refused() {
    let app = passkey_app().await;
    let (_, email, mut key) = owner_with_passkey(&app, "Replay Co", "Phone").await;

    let first = at_second_step(&app.address, &email).await;
    let answer = second_step_answer(&first, &mut key).await;
    post_second_step_answer(&first, &answer)
        .await
        .assert_redirect("/tokens");

    // The same answer again, from a new sign-in that began its own ceremony: its
    // challenge was answered once, and that ceremony is gone.
    let second = at_second_step(&app.address, &email).await;
    let begun = begin(
        &second,
        "/login/two-factor",
        "/login/two-factor/passkey/begin",
    )
    .await;
    let _fresh: RequestChallengeResponse = options(&begun);
    let replayed = post_second_step_answer(&second, &answer).await;

    replayed.assert_html_page(StatusCode::UNAUTHORIZED);
    replayed.assert_contains("Your passkey's answer was not accepted");
    second.get("/tokens").await.assert_redirect("/login");
}

#[tokio::test]
async fn the_ceremony_cannot_be_carried_to_another_browser() {
    let app = passkey_app().await;
    let (_, email, mut key) = owner_with_passkey(&app, "Carried Co", "Key").await;

    let began = at_second_step(&app.address, &email).await;
    let answer = second_step_answer(&began, &mut key).await;

    // Another browser with a waiting sign-in of its own, but not the ceremony's cookie.
    let other = at_second_step(&app.address, &email).await;
    let refused = post_second_step_answer(&other, &answer).await;
    refused.assert_html_page(StatusCode::UNAUTHORIZED);
    other.get("/tokens").await.assert_redirect("/login");

    // A browser with no waiting sign-in at all starts again from the password.
    let stranger = Browser::new(&app.address);
    let csrf = stranger.csrf_from("/login").await;
    stranger
        .post(
            "/login/two-factor",
            &[("csrf_token", &csrf), ("credential", &answer)],
        )
        .await
        .assert_redirect("/login?second_step=ended");
    // Nor can it begin a ceremony for someone's passkeys.
    let begun = stranger
        .post("/login/two-factor/passkey/begin", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(
        begun.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        begun.body
    );
    assert!(
        begun.body.contains("This sign-in has ended"),
        "{}",
        begun.body
    );
}

#[tokio::test]
async fn a_removed_passkey_is_refused() {
    let app = passkey_app().await;
    let owner = signed_up(&app.address, "Removed Co").await;
    let email = email_for("Removed Co");
    enrol(&owner).await;
    let mut key = authenticator();
    add_passkey(&owner, &mut key, "Old key")
        .await
        .assert_redirect("/account/passkeys");
    let waiting = at_second_step(&app.address, &email).await;
    let answer = second_step_answer(&waiting, &mut key).await;

    let page = owner.get("/account/passkeys").await;
    let id = passkey_id(&page, "Old key");
    remove(&owner, id, &[])
        .await
        .assert_redirect("/account/passkeys");
    let rows = audit_log(&owner, "").await;
    find_event(&rows, "user.passkey_removed", &email);
    let page = owner.get("/account/passkeys").await;
    assert!(!page.body.contains("Old key"), "{}", page.body);

    let refused = post_second_step_answer(&waiting, &answer).await;
    refused.assert_html_page(StatusCode::UNAUTHORIZED);
    refused.assert_contains("Your passkey's answer was not accepted");
}

#[tokio::test]
async fn adding_or_removing_a_passkey_asks_for_the_password_when_sudo_mode_has_lapsed() {
    let app = passkey_app_with_sudo_lapsed().await;
    let owner = signed_up(&app.address, "Sudo Passkey").await;
    let mut key = authenticator();

    // A session alone (a borrowed one, say) can't plant a passkey: adding asks first, and
    // the answer waits on the sudo page.
    let credential = registration_answer(&owner, &mut key, origin()).await;
    let asked = register(&owner, "Guarded", &credential).await;
    asked.assert_html_page(StatusCode::OK);
    asked.assert_contains("Confirm it");
    assert!(
        !asked.body.contains("Use a passkey"),
        "no passkey is offered to someone who has none"
    );
    assert!(
        !owner
            .get("/account/passkeys")
            .await
            .body
            .contains("Guarded"),
        "nothing added before the password"
    );
    register_with(
        &owner,
        "Guarded",
        &credential,
        &[("sudo_password", PASSWORD)],
    )
    .await
    .assert_redirect("/account/passkeys");
    let id = passkey_id(&owner.get("/account/passkeys").await, "Guarded");

    let asked = remove(&owner, id, &[]).await;
    asked.assert_html_page(StatusCode::OK);
    asked.assert_contains("Confirm it");
    assert!(
        owner
            .get("/account/passkeys")
            .await
            .body
            .contains("Guarded"),
        "nothing removed before the password"
    );

    remove(&owner, id, &[("sudo_password", PASSWORD)])
        .await
        .assert_redirect("/account/passkeys");
    assert!(
        !owner
            .get("/account/passkeys")
            .await
            .body
            .contains("Guarded")
    );
}

#[tokio::test]
async fn the_last_second_factor_stays_while_the_account_requires_one() {
    let app = passkey_app().await;
    let (owner, _, _) = owner_with_passkey(&app, "Requires It", "Only one").await;
    execute_sql(&app, "UPDATE accounts SET require_two_factor = TRUE").await;
    let id = passkey_id(&owner.get("/account/passkeys").await, "Only one");

    let refused = remove(&owner, id, &[]).await;

    refused.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("Requires It requires two-factor sign-in of its members");
    assert!(
        owner
            .get("/account/passkeys")
            .await
            .body
            .contains("Only one")
    );

    // With an authenticator app beside it, the passkey may go.
    enrol(&owner).await;
    remove(&owner, id, &[])
        .await
        .assert_redirect("/account/passkeys");
}

#[tokio::test]
async fn a_passkey_is_renamed_and_bad_names_are_refused() {
    let app = passkey_app().await;
    let (owner, _, _) = owner_with_passkey(&app, "Rename Co", "First name").await;
    let id = passkey_id(&owner.get("/account/passkeys").await, "First name");
    let rename = |name: String| {
        let owner = &owner;
        async move {
            let csrf = owner.csrf_from("/account/passkeys").await;
            owner
                .post(
                    &format!("/account/passkeys/{id}/rename"),
                    &[("csrf_token", &csrf), ("name", &name)],
                )
                .await
        }
    };

    rename("Second name".into())
        .await
        .assert_redirect("/account/passkeys");
    passkey_id(&owner.get("/account/passkeys").await, "Second name");

    for bad in ["", "   ", &"x".repeat(101)] {
        let refused = rename(bad.to_string()).await;
        refused.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
        refused.assert_contains("passkey name");
    }
    // A name too long to add is refused before the ceremony's answer is looked at.
    register(&owner, &"y".repeat(101), "{}")
        .await
        .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);

    // Someone else's passkey is not found, and keeps its name.
    let stranger = signed_up(&app.address, "Stranger Co").await;
    let csrf = stranger.csrf_from("/account/passkeys").await;
    let page = stranger
        .post(
            &format!("/account/passkeys/{id}/rename"),
            &[("csrf_token", &csrf), ("name", "Stolen")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    let page = stranger
        .post(
            &format!("/account/passkeys/{id}/remove"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    passkey_id(&owner.get("/account/passkeys").await, "Second name");
}

#[tokio::test]
async fn answers_that_are_not_a_ceremonys_are_refused_with_a_sentence() {
    let app = passkey_app().await;
    let owner = signed_up(&app.address, "Bad Answers").await;

    // Unreadable, and readable but with no ceremony begun in this browser.
    let unreadable = register(&owner, "x", "not json").await;
    unreadable.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
    unreadable.assert_contains("could not be read");

    let credential = registration_answer(&owner, &mut authenticator(), origin()).await;
    let other = Browser::new(&app.address);
    let email = email_for("Bad Answers");
    other
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    let carried = register(&other, "Carried", &credential).await;
    carried.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
    carried.assert_contains("expired or was already used");

    // The one it was begun for, answered for another origin than the site's (another
    // port): refused by webauthn-rs.
    let elsewhere = Url::parse("http://localhost:8443").expect("a URL");
    let credential = registration_answer(&owner, &mut authenticator(), elsewhere).await;
    let foreign = register(&owner, "Foreign", &credential).await;
    foreign.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
    foreign.assert_contains("was not accepted");
    let listed = owner.get("/account/passkeys").await;
    listed.assert_contains("You have no passkeys yet");
}

#[tokio::test]
async fn a_passkey_sign_in_without_a_user_handle_or_ceremony_is_refused() {
    let app = passkey_app().await;
    let (_, _, mut key) = owner_with_passkey(&app, "Passwordless", "Not discoverable").await;

    let visitor = Browser::new(&app.address);
    let login = visitor.get("/login").await;
    login.assert_contains("Sign in with a passkey");
    // Without JavaScript the form stays hidden; its script comes from this site, not inline.
    assert!(
        login
            .body
            .contains("data-begin=\"/login/passkey/begin\" hidden>"),
        "{}",
        login.body
    );
    assert!(login.body.contains("<script src=\"/static/passkeys.js?v="));
    let script = visitor.get("/static/passkeys.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("navigator.credentials"));
    let started = begin(&visitor, "/login", "/login/passkey/begin").await;
    let json: Value = options(&started);
    assert!(
        json.pointer("/publicKey/allowCredentials")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        "a discoverable sign-in names no one's passkeys: {json}"
    );
    assert!(json.get("mediation").is_none_or(Value::is_null), "{json}");
    // This authenticator keeps no user handle, and can't find its credential unless named.
    let mut json = json;
    json["publicKey"]["allowCredentials"] = owner_credentials(&app).await;
    let request: RequestChallengeResponse = serde_json::from_value(json).expect("request options");
    let answer = key.do_authentication(origin(), request).expect("an answer");
    let answer = serde_json::to_string(&answer).expect("JSON");

    let csrf = visitor.csrf_from("/login").await;
    let refused = visitor
        .post(
            "/login/passkey",
            &[("csrf_token", &csrf), ("credential", &answer)],
        )
        .await;
    refused.assert_html_page(StatusCode::UNAUTHORIZED);
    refused.assert_contains("That passkey is not registered with Keyward");
    visitor.get("/tokens").await.assert_redirect("/login");

    // With no ceremony begun, and with an answer that can't be read.
    let csrf = visitor.csrf_from("/login").await;
    for (credential, said) in [
        (answer.as_str(), "expired or was already used"),
        ("{\"id\":", "could not be read"),
    ] {
        let refused = visitor
            .post(
                "/login/passkey",
                &[("csrf_token", &csrf), ("credential", credential)],
            )
            .await;
        refused.assert_html_page(StatusCode::UNAUTHORIZED);
        refused.assert_contains(said);
    }
}

/// The credential ids of every registered passkey, read from the store, as allow-list
/// entries (JSON) for an authenticator that can't find its own.
async fn owner_credentials(app: &TestApp) -> Value {
    use base64::Engine;
    use diesel::prelude::*;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        credential_id: Vec<u8>,
    }
    let path = app.db.path.clone();
    let rows: Vec<Row> = tokio::task::spawn_blocking(move || {
        let mut conn = keyward::db::open(&path).expect("the test database");
        diesel::sql_query("SELECT credential_id FROM passkeys")
            .load(&mut conn)
            .expect("the passkeys")
    })
    .await
    .expect("the query task");
    rows.into_iter()
        .map(|r| {
            let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.credential_id);
            serde_json::json!({ "type": "public-key", "id": id })
        })
        .collect()
}

#[tokio::test]
async fn a_site_reached_by_ip_address_says_passkeys_need_a_domain_name() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "By Address").await;

    let refused = begin(
        &owner,
        "/account/passkeys",
        "/account/passkeys/register/begin",
    )
    .await;

    assert_begin_refused(&refused, "domain name");
}

#[tokio::test]
async fn the_code_form_stays_beside_the_passkey_when_both_are_set_up() {
    let app = passkey_app().await;
    let owner = signed_up(&app.address, "Both Kinds").await;
    let email = email_for("Both Kinds");
    let enrolled = enrol(&owner).await;
    add_passkey(&owner, &mut authenticator(), "Laptop")
        .await
        .assert_redirect("/account/passkeys");

    let browser = at_second_step(&app.address, &email).await;
    let page = browser.get("/login/two-factor").await;
    page.assert_contains("Use a passkey");
    assert!(page.body.contains("name=\"code\""));
    second_step(&browser, &code_for(&enrolled.secret, 1))
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn adding_and_removing_a_passkey_is_mailed_to_the_person() {
    let smtp = crate::support::smtp::SmtpServer::start();
    let settings = smtp.settings();
    let app = spawn_app_with(move |config| {
        config.mail = Some(settings);
        config.public_url = Some(ORIGIN.into());
    })
    .await;
    let owner = crate::support::mail::verified_owner(&app, &smtp, "Mailed Passkeys").await;
    let email = email_for("Mailed Passkeys");

    add_passkey(&owner, &mut authenticator(), "Phone")
        .await
        .assert_redirect("/account/passkeys");
    let added = smtp
        .wait_for(&email, "Your Keyward two-factor sign-in changed")
        .await;
    assert!(
        added.text.contains("A passkey named \"Phone\" was added"),
        "{}",
        added.text
    );

    let id = passkey_id(&owner.get("/account/passkeys").await, "Phone");
    remove(&owner, id, &[])
        .await
        .assert_redirect("/account/passkeys");
    // The verification, the addition and the removal.
    let mails = smtp.wait_for_count(&email, 3).await;
    assert!(
        mails
            .iter()
            .any(|m| m.text.contains("The passkey named \"Phone\" was removed")),
        "{:#?}",
        mails.iter().map(|m| &m.text).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_person_holds_at_most_twenty_passkeys_and_is_told_to_remove_one() {
    let app = passkey_app().await;
    let owner = signed_up(&app.address, "Many Keys").await;
    for n in 0..keyward::db::passkeys::MOST_PASSKEYS {
        add_passkey(&owner, &mut authenticator(), &format!("Key {n}"))
            .await
            .assert_redirect("/account/passkeys");
    }
    let refused = begin(
        &owner,
        "/account/passkeys",
        "/account/passkeys/register/begin",
    )
    .await;
    assert_begin_refused(&refused, "Remove one you no longer use first");
    let listed = owner.get("/account/passkeys").await;
    listed.assert_contains("Key 19");
    assert_eq!(
        listed.body.matches("/rename\"").count(),
        20,
        "twenty passkeys listed"
    );
}

#[tokio::test]
async fn adding_another_passkey_tells_the_authenticator_which_ones_the_person_has() {
    let app = passkey_app().await;
    let owner = signed_up(&app.address, "Exclude Co").await;
    let mut key = authenticator();
    let credential = registration_answer(&owner, &mut key, origin()).await;
    register(&owner, "Phone", &credential)
        .await
        .assert_redirect("/account/passkeys");
    let made: RegisterPublicKeyCredential = serde_json::from_str(&credential).expect("JSON");

    let challenge = registration_options(&owner).await;

    // A browser leaves out an authenticator that holds one of these, so a person can't
    // register the same passkey twice.
    let excluded: Vec<_> = challenge
        .public_key
        .exclude_credentials
        .unwrap_or_default()
        .into_iter()
        .map(|descriptor| descriptor.id)
        .collect();
    assert_eq!(excluded, vec![made.raw_id]);
}

#[tokio::test]
async fn a_person_who_lost_every_second_factor_is_let_back_in_by_the_operator() {
    let app = passkey_app().await;
    let (owner, email, _lost) = owner_with_passkey(&app, "Lost Keys", "Phone").await;
    let enrolled = enrol(&owner).await;
    let earlier = at_second_step(&app.address, &email).await;
    second_step(&earlier, &enrolled.recovery_codes[0])
        .await
        .assert_redirect("/tokens");
    // With the phone and the passkey gone, the second step is as far as she gets; its page
    // says who can help.
    let stuck = at_second_step(&app.address, &email).await;
    stuck
        .get("/login/two-factor")
        .await
        .assert_contains("Ask your Keyward operator to remove your second factors");

    let printed = app
        .cli(&["user", "reset-two-factor", &email])
        .await
        .expect("the command resets her second factors");

    assert_eq!(
        printed.trim(),
        format!(
            "removed the authenticator app, 1 passkey and 9 recovery codes of {email}, and ended every session of theirs"
        )
    );
    // Every session of hers ended, and the sign-in that waited for a factor with them.
    owner.get("/tokens").await.assert_redirect("/login");
    earlier.get("/tokens").await.assert_redirect("/login");
    stuck
        .get("/login/two-factor")
        .await
        .assert_redirect("/login?second_step=ended");
    // Her password alone signs her in now, and her account's log says who reset what.
    let back = Browser::new(&app.address);
    back.log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    let log = audit_log(&back, "").await;
    let event = find_event(&log, "user.second_factors_reset", &email);
    assert_eq!(event.actor, "command line", "{event:?}");
    assert!(
        event
            .detail
            .contains("the authenticator app, 1 passkey and 9 recovery codes removed"),
        "{event:?}"
    );

    // Nothing left to remove, or nobody with that address: said plainly, nothing changed.
    let again = app
        .cli(&["user", "reset-two-factor", &email])
        .await
        .expect_err("nothing to reset");
    assert!(again.contains("has no second factor"), "{again}");
    let unknown = app
        .cli(&["user", "reset-two-factor", "ghost@example.test"])
        .await
        .expect_err("no such person");
    assert!(unknown.contains("No user has the email"), "{unknown}");
}

#[tokio::test]
async fn sudo_mode_takes_the_persons_passkey_once_per_ceremony() {
    let app = passkey_app_with_sudo_lapsed().await;
    let owner = signed_up(&app.address, "Sudo Key").await;
    let mut phone = authenticator();
    let first = registration_answer(&owner, &mut phone, origin()).await;
    register_with(&owner, "Phone", &first, &[("sudo_password", PASSWORD)])
        .await
        .assert_redirect("/account/passkeys");

    // Adding a second passkey stops at the sudo page, which offers the first.
    let mut laptop = authenticator();
    let second = registration_answer(&owner, &mut laptop, origin()).await;
    let asked = register(&owner, "Laptop", &second).await;
    asked.assert_html_page(StatusCode::OK);
    asked.assert_contains("or use your passkey");
    asked.assert_contains("data-begin=\"/account/sudo/passkey/begin\"");
    // Its script asks for a ceremony of its own, the phone answers, and the change goes on:
    // the registration's own ceremony waited meanwhile.
    let started = begin(&owner, "/account/passkeys", "/account/sudo/passkey/begin").await;
    let challenge: RequestChallengeResponse = options(&started);
    let confirmed = phone
        .do_authentication(origin(), challenge)
        .expect("the phone signs the challenge");
    let confirmed = serde_json::to_string(&confirmed).expect("JSON");
    register_with(&owner, "Laptop", &second, &[("sudo_passkey", &confirmed)])
        .await
        .assert_redirect("/account/passkeys");
    owner
        .get("/account/passkeys")
        .await
        .assert_contains("Laptop");

    // The same answer again proves nothing: its ceremony is spent.
    let mut tablet = authenticator();
    let third = registration_answer(&owner, &mut tablet, origin()).await;
    let refused = register_with(&owner, "Tablet", &third, &[("sudo_passkey", &confirmed)]).await;
    refused.assert_html_page(StatusCode::UNAUTHORIZED);
    refused.assert_contains("Your passkey's answer was not accepted. Nothing was changed yet.");
    assert!(
        !owner.get("/account/passkeys").await.body.contains("Tablet"),
        "nothing added without a fresh proof"
    );
}

#[tokio::test]
async fn the_sudo_ceremony_is_for_people_with_a_passkey_and_only_their_own() {
    let app = passkey_app().await;
    let (ada, _, _) = owner_with_passkey(&app, "Own Keys", "Phone").await;
    let bob = signed_up(&app.address, "No Keys").await;

    // Someone without a passkey is told to use their password.
    let refused = begin(&bob, "/account/passkeys", "/account/sudo/passkey/begin").await;
    assert_begin_refused(
        &refused,
        "You have no passkeys. Confirm with your password.",
    );
    // Ada's options name her passkey only.
    let started = begin(&ada, "/account/passkeys", "/account/sudo/passkey/begin").await;
    let challenge: RequestChallengeResponse = options(&started);
    assert_eq!(challenge.public_key.allow_credentials.len(), 1);
}

#[tokio::test]
async fn an_operators_reset_on_a_full_disk_says_so_and_removes_nothing() {
    crate::sqlite_only!("the full disk is simulated through SQLite's max_page_count");
    use keyward::db::simulated_full_disk;
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Full Reset").await;
    let email = email_for("Full Reset");
    enrol(&owner).await;

    simulated_full_disk::fill(&app.db.path).expect("the test database exists");
    let refused = app.cli(&["user", "reset-two-factor", &email]).await;
    simulated_full_disk::free(&app.db.path).expect("the test database exists");

    let error = refused.expect_err("nothing can be removed on a full disk");
    assert!(error.contains("storage is full"), "a clear reason: {error}");
    // Her authenticator app still guards her sign-in, and her session still works.
    at_second_step(&app.address, &email).await;
    owner.get("/tokens").await.assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn at_the_cap_the_oldest_unanswered_passkey_sign_in_gives_way() {
    use keyward::db::passkeys::MAX_ANONYMOUS_CEREMONIES;
    let app = passkey_app().await;
    // As many unanswered passwordless sign-ins as are kept, as a flood from many networks
    // would leave them.
    let rows = if on_postgres() {
        format!(
            "INSERT INTO passkey_ceremonies (key_digest, purpose, user_id, state, expires_at) \
             SELECT sha256(int4send(i)), 'sign_in', NULL, '{{}}', \
             (now() AT TIME ZONE 'utc') + interval '5 minutes' \
             FROM generate_series(1, {MAX_ANONYMOUS_CEREMONIES}) AS i"
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MAX_ANONYMOUS_CEREMONIES}) \
             INSERT INTO passkey_ceremonies (key_digest, purpose, user_id, state, expires_at) \
             SELECT randomblob(32), 'sign_in', NULL, '{{}}', datetime('now', '+5 minutes') FROM n"
        )
    };
    execute_sql(&app, &rows).await;
    let anonymous = "SELECT COUNT(*) FROM passkey_ceremonies WHERE user_id IS NULL";
    assert_eq!(count_rows(&app, anonymous).await, MAX_ANONYMOUS_CEREMONIES);

    // Someone who starts one now is not turned away; the oldest gives way.
    let browser = Browser::new(&app.address);
    let started = begin(&browser, "/login", "/login/passkey/begin").await;
    let _options: RequestChallengeResponse = options(&started);

    assert_eq!(count_rows(&app, anonymous).await, MAX_ANONYMOUS_CEREMONIES);
    let first_left = "SELECT COUNT(*) FROM passkey_ceremonies WHERE id = 1";
    assert_eq!(count_rows(&app, first_left).await, 0, "the oldest is gone");
}
