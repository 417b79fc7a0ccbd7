//! `/auth/oidc`: single sign-on through a real OpenID Provider (panva's oidc-provider, see
//! `support::oidc`). A person new to Keyward gets a user with no password; a verified email
//! links an existing user, an unverified one never does; a forged state, a replayed code
//! and a wrong nonce sign nobody in, nor do ID tokens forged for another audience, issuer or
//! key, or expired (`support::forged_provider`); owners may require SSO of members and claim a domain;
//! and a provider that is down leaves password sign-in working.

use reqwest::StatusCode;

use crate::support::admin::{audit_log, find_event, invite, join, submit};
use crate::support::api::TestApp;
use crate::support::browser::{Browser, PASSWORD, Page, email_for, signed_up};
use crate::support::forged_provider::{self, ForgedProvider, Forgery};
use crate::support::mail::verified_owner;
use crate::support::oidc::{
    NAME, OwnProvider, connect, free_port, refused_at_provider, sign_in, spawn_sso_app,
    spawn_sso_app_with, spawn_sso_app_with_short_id_tokens, spawn_with_provider,
    spawn_with_provider_down, start, through_provider,
};
use crate::support::smtp::SmtpServer;
use crate::support::two_factor::enrol;

/// Keyward's answer to a callback that must sign nobody in: a page with `sentence`, the
/// given 4xx, and no session afterwards.
async fn assert_refused(browser: &Browser, page: &Page, status: StatusCode, sentence: &str) {
    page.assert_html_page(status).assert_contains(sentence);
    assert!(page.session_set_cookie().is_none(), "no session may start");
    browser.get("/tokens").await.assert_redirect("/login");
}

/// Connects the provider as `login` from `browser`'s sign-in, and the email page that the
/// connection lands on, which says how it went.
async fn connect_from_email_page(browser: &Browser, login: &str) -> Page {
    connect(browser, login)
        .await
        .assert_redirect("/account/email");
    browser.get("/account/email").await
}

#[tokio::test]
async fn a_new_person_signs_in_through_the_provider_names_their_account_and_has_no_password() {
    let app = spawn_sso_app().await;
    let browser = Browser::new(&app.address);
    let login = browser.get("/login").await;
    login
        .assert_html_page(StatusCode::OK)
        .assert_contains(&format!("Sign in with {NAME}"));

    let landed = sign_in(&browser, "newcomer@corp.example").await;

    landed.assert_redirect("/auth/oidc/welcome");
    assert!(landed.session_set_cookie().is_some(), "a session starts");
    let welcome = browser.get("/auth/oidc/welcome").await;
    welcome
        .assert_html_page(StatusCode::OK)
        .assert_contains("newcomer@corp.example");
    let csrf = welcome.csrf();
    browser
        .post(
            "/auth/oidc/welcome",
            &[("csrf_token", &csrf), ("account_name", "Newcomer Inc")],
        )
        .await
        .assert_redirect("/tokens");
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Newcomer Inc");
    browser
        .get("/account/sessions")
        .await
        .assert_contains(&format!("via {NAME}"));
    // The provider owns the second factor of these sign-ins, and the account page says so.
    browser
        .get("/account/two-factor")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&format!("Signing in with {NAME} asks for no Keyward code"));
    // No password matches a person the provider made.
    let other = Browser::new(&app.address);
    other
        .log_in("newcomer@corp.example", "")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    other
        .log_in("newcomer@corp.example", PASSWORD)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_verified_email_links_the_existing_user_who_keeps_their_password() {
    // The owner's address was proven by the link mailed at sign-up.
    let smtp = SmtpServer::start();
    let settings = smtp.settings();
    let app = spawn_sso_app_with(move |config| config.mail = Some(settings)).await;
    let owner = verified_owner(&app, &smtp, "Linked Co").await;
    let email = email_for("Linked Co");
    let browser = Browser::new(&app.address);

    sign_in(&browser, &email).await.assert_redirect("/tokens");

    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Linked Co");
    let log = audit_log(&owner, "").await;
    find_event(&log, "user.sso_linked", &email);
    // Next time the link (issuer, sub) finds them; their password still works too.
    let again = Browser::new(&app.address);
    sign_in(&again, &email).await.assert_redirect("/tokens");
    Browser::new(&app.address)
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn a_second_identity_at_the_provider_with_her_address_doesnt_sign_in_as_her() {
    let smtp = SmtpServer::start();
    let settings = smtp.settings();
    let app = spawn_sso_app_with(move |config| config.mail = Some(settings)).await;
    let owner = verified_owner(&app, &smtp, "Pinned Co").await;
    let email = email_for("Pinned Co");
    let (local, domain) = email.split_once('@').unwrap();
    // Her first sign-in through the provider links her identity there.
    sign_in(&Browser::new(&app.address), &email)
        .await
        .assert_redirect("/tokens");

    // Another of the provider's accounts claims her address, verified.
    let intruder = Browser::new(&app.address);
    let page = sign_in(&intruder, &format!("{local}+second@{domain}")).await;

    assert_refused(
        &intruder,
        &page,
        StatusCode::FORBIDDEN,
        "linked to another identity at your provider, so this one can't be linked",
    )
    .await;
    // Her own identity still signs her in, and it is the only link she has.
    sign_in(&Browser::new(&app.address), &email)
        .await
        .assert_redirect("/tokens");
    let links = audit_log(&owner, "")
        .await
        .into_iter()
        .filter(|row| row.action == "user.sso_linked")
        .count();
    assert_eq!(links, 1, "one identity linked, not two");
}

#[tokio::test]
async fn an_unverified_email_never_links_to_an_existing_user() {
    let app = spawn_sso_app().await;
    signed_up(&app.address, "Careful Co").await;
    let email = email_for("Careful Co");
    let (local, domain) = email.split_once('@').unwrap();
    let browser = Browser::new(&app.address);

    let page = sign_in(&browser, &format!("{local}+unverified@{domain}")).await;

    assert_refused(&browser, &page, StatusCode::FORBIDDEN, "has not verified").await;
}

#[tokio::test]
async fn a_callback_with_a_forged_or_missing_state_or_code_signs_nobody_in() {
    let app = spawn_sso_app().await;
    let browser = Browser::new(&app.address);
    // A real flow, so that the browser has a flow cookie and a live state.
    let auth_url = start(&browser, "/auth/oidc").await;
    let live_state = reqwest::Url::parse(&auth_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string())
        .expect("a state");

    for (query, sentence) in [
        ("?code=abc&state=forged-state", "unknown, was used already"),
        ("?code=abc", "carries no state"),
        ("", "carries no state"),
        (&format!("?state={live_state}") as &str, "carries no code"),
        (
            &format!("?state={live_state}&code=abc"),
            "unknown, was used already",
        ),
    ] {
        let page = browser.get(&format!("/auth/oidc/callback{query}")).await;
        assert_refused(&browser, &page, StatusCode::BAD_REQUEST, sentence).await;
    }
}

#[tokio::test]
async fn a_replayed_callback_or_code_signs_nobody_in() {
    let app = spawn_sso_app().await;
    let first = Browser::new(&app.address);
    let auth_url = start(&first, "/auth/oidc").await;
    let callback = through_provider(&first, &auth_url, "replay@corp.example").await;
    first
        .get_url(&callback)
        .await
        .assert_redirect("/auth/oidc/welcome");

    // The same callback again, in the same browser or another: its state is spent.
    for browser in [&first, &Browser::new(&app.address)] {
        let page = browser.get_url(&callback).await;
        page.assert_html_page(StatusCode::BAD_REQUEST)
            .assert_contains("was used already");
        assert!(page.session_set_cookie().is_none());
    }
    // The spent code with a fresh state of an attacker's own: the provider refuses it.
    let attacker = Browser::new(&app.address);
    let fresh = start(&attacker, "/auth/oidc").await;
    let fresh_state = reqwest::Url::parse(&fresh)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let page = attacker
        .get(&format!(
            "/auth/oidc/callback?code={code}&state={fresh_state}"
        ))
        .await;
    assert_refused(
        &attacker,
        &page,
        StatusCode::BAD_REQUEST,
        "refused this sign-in",
    )
    .await;
}

#[tokio::test]
async fn a_callback_carried_to_another_browser_signs_nobody_in_and_spoils_nothing() {
    let app = spawn_sso_app().await;
    let person = Browser::new(&app.address);
    let auth_url = start(&person, "/auth/oidc").await;
    let callback = through_provider(&person, &auth_url, "carried@corp.example").await;

    // Someone who learnt the whole callback URL (state and code) has no flow cookie.
    let other = Browser::new(&app.address);
    let page = other.get_url(&callback).await;
    assert_refused(
        &other,
        &page,
        StatusCode::BAD_REQUEST,
        "unknown, was used already",
    )
    .await;

    // The person's own sign-in still goes through.
    person
        .get_url(&callback)
        .await
        .assert_redirect("/auth/oidc/welcome");
}

#[tokio::test]
async fn an_id_token_with_another_nonce_signs_nobody_in() {
    let app = spawn_sso_app().await;
    let browser = Browser::new(&app.address);
    let auth_url = start(&browser, "/auth/oidc").await;
    // The provider is asked for a nonce of the attacker's choosing, which it puts in the
    // ID token: not the one Keyward keeps for this flow.
    let mut tampered = reqwest::Url::parse(&auth_url).unwrap();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "attackers-nonce".into()
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);

    let callback = through_provider(&browser, tampered.as_str(), "nonce@corp.example").await;
    let page = browser.get_url(&callback).await;

    assert_refused(
        &browser,
        &page,
        StatusCode::BAD_REQUEST,
        "could not be trusted",
    )
    .await;
}

#[tokio::test]
async fn a_person_the_provider_refuses_is_not_signed_in() {
    let app = spawn_sso_app().await;
    let browser = Browser::new(&app.address);
    let auth_url = start(&browser, "/auth/oidc").await;

    let callback = refused_at_provider(&browser, &auth_url).await;
    let page = browser.get_url(&callback).await;

    assert_refused(&browser, &page, StatusCode::FORBIDDEN, "access_denied").await;
}

/// An owner's browser, fresh from sign-in (sudo mode open), sets the SSO policy.
async fn set_policy(owner: &Browser, require: bool, domain: &str) {
    let csrf = owner.csrf_from("/members").await;
    let mut fields = vec![("csrf_token", csrf.as_str()), ("claimed_domain", domain)];
    if require {
        fields.push(("require_sso", "on"));
    }
    owner
        .post("/account/sso-policy", &fields)
        .await
        .assert_redirect("/members");
}

#[tokio::test]
async fn require_sso_refuses_a_members_password_while_the_owner_keeps_theirs() {
    let app = spawn_sso_app().await;
    let owner = signed_up(&app.address, "Strict Co").await;
    let member_email = "member.of.strict@example.test";
    join(&owner, member_email, "member").await;

    set_policy(&owner, true, "").await;

    owner
        .get("/members")
        .await
        .assert_contains("Owners keep their password");
    // The member joined with a password, on a server without mail: their right password
    // takes them to the provider to connect it. Another identity there connects nothing,
    // and the page says who can help, since the password is no way in for them.
    let wrong = Browser::new(&app.address);
    let sent = wrong.log_in(member_email, PASSWORD).await;
    let auth_url = sent
        .header("location")
        .expect("the provider's URL")
        .to_string();
    let callback = through_provider(&wrong, &auth_url, "someone.else@example.test").await;
    let page = wrong.get_url(&callback).await;
    assert_refused(
        &wrong,
        &page,
        StatusCode::FORBIDDEN,
        "ask an owner of your account",
    )
    .await;
    // With their own identity there, the provider's word signs them in.
    let first = Browser::new(&app.address);
    let sent = first.log_in(member_email, PASSWORD).await;
    sent.assert_status(StatusCode::SEE_OTHER);
    assert!(
        sent.session_set_cookie().is_none(),
        "no session before the provider"
    );
    let auth_url = sent
        .header("location")
        .expect("the provider's URL")
        .to_string();
    let callback = through_provider(&first, &auth_url, member_email).await;
    first.get_url(&callback).await.assert_redirect("/tokens");
    first.get("/tokens").await.assert_contains("Strict Co");
    let log = audit_log(&owner, "").await;
    let linked = find_event(&log, "user.sso_linked", member_email);
    assert!(linked.detail.contains("proved both"), "{linked:?}");

    // Connected now, their password is refused with the sentence that says why.
    let refused = Browser::new(&app.address)
        .log_in(member_email, PASSWORD)
        .await;
    refused
        .assert_html_page(StatusCode::FORBIDDEN)
        .assert_contains(&format!(
            "Strict Co requires its members to sign in with {NAME}"
        ));
    assert!(refused.session_set_cookie().is_none());
    // A wrong password learns nothing of the policy.
    Browser::new(&app.address)
        .log_in(member_email, "not the password at all")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    Browser::new(&app.address)
        .log_in(&email_for("Strict Co"), PASSWORD)
        .await
        .assert_redirect("/tokens");
    // Through the provider, the member gets in.
    sign_in(&Browser::new(&app.address), member_email)
        .await
        .assert_redirect("/tokens");
    find_event(
        &audit_log(&owner, "").await,
        "account.sso_policy_set",
        "Strict Co",
    );
}

#[tokio::test]
async fn a_claimed_domain_makes_its_verified_people_members_at_their_first_sign_in() {
    let app = spawn_sso_app().await;
    let owner = Browser::new(&app.address);
    owner.sign_up("Domain Co", "owner@domain-co.example").await;
    // A domain not the owner's own is refused; so is their own, while this mail-less
    // server has only taken the address on trust.
    for (domain, sentence) in [
        (
            "gmail.com",
            "your own address must be at gmail.com and proven",
        ),
        (
            "domain-co.example",
            "your own address must be at domain-co.example and proven",
        ),
    ] {
        let csrf = owner.csrf_from("/members").await;
        owner
            .post(
                "/account/sso-policy",
                &[("csrf_token", &csrf), ("claimed_domain", domain)],
            )
            .await
            .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
            .assert_contains(sentence);
    }
    // Connecting the provider proves it.
    connect(&owner, "owner@domain-co.example")
        .await
        .assert_redirect("/account/email");
    set_policy(&owner, false, "@Domain-Co.example").await;

    let dana = Browser::new(&app.address);
    sign_in(&dana, "dana@domain-co.example")
        .await
        .assert_redirect("/tokens");

    dana.get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Domain Co");
    let members = owner.get("/members").await;
    members.assert_contains("dana@domain-co.example");
    let log = audit_log(&owner, "").await;
    let joined = find_event(&log, "member.joined", "dana@domain-co.example");
    assert!(
        joined.detail.contains("claimed domain domain-co.example"),
        "{joined:?}"
    );
    // An unverified address of the domain joins nothing.
    let eve = Browser::new(&app.address);
    sign_in(&eve, "eve+unverified@domain-co.example")
        .await
        .assert_redirect("/auth/oidc/welcome");
    // And no second account may claim the same domain, even one owned from there.
    let rival = Browser::new(&app.address);
    rival.sign_up("Rival Co", "rival@domain-co.example").await;
    connect(&rival, "rival@domain-co.example")
        .await
        .assert_redirect("/account/email");
    let csrf = rival.csrf_from("/members").await;
    rival
        .post(
            "/account/sso-policy",
            &[
                ("csrf_token", &csrf),
                ("claimed_domain", "domain-co.example"),
            ],
        )
        .await
        .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("claimed by another account");
}

#[tokio::test]
async fn with_the_provider_down_passwords_work_and_the_button_explains() {
    let app = spawn_with_provider_down().await;
    let owner = signed_up(&app.address, "Outage Co").await;
    owner.log_out().await;
    let browser = Browser::new(&app.address);
    browser
        .get("/login")
        .await
        .assert_contains(&format!("Sign in with {NAME}"));

    let page = browser.get("/auth/oidc").await;

    assert_refused(
        &browser,
        &page,
        StatusCode::FAILED_DEPENDENCY,
        "did not answer",
    )
    .await;
    browser
        .log_in(&email_for("Outage Co"), PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn a_provider_down_at_start_is_asked_again_at_the_first_sign_in() {
    let provider_port = free_port();
    let keyward_port = free_port();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let redirect_uri = format!("http://127.0.0.1:{keyward_port}/auth/oidc/callback");
    let secret = "a-late-providers-client-secret-of-some-length";
    let app = spawn_with_provider(&issuer, keyward_port, "late-client", secret, |_| {}).await;
    let browser = Browser::new(&app.address);
    let page = browser.get("/auth/oidc").await;
    assert_refused(
        &browser,
        &page,
        StatusCode::FAILED_DEPENDENCY,
        "did not answer",
    )
    .await;

    let _provider = OwnProvider::start(provider_port, "late-client", secret, &redirect_uri);

    sign_in(&browser, "late@corp.example")
        .await
        .assert_redirect("/auth/oidc/welcome");
}

#[tokio::test]
async fn a_session_through_the_provider_ends_when_its_id_token_expires() {
    // The provider gives this client ID tokens that live 3 seconds: the session is capped
    // at that, so a person removed at the provider is out when it ends.
    let app = spawn_sso_app_with_short_id_tokens().await;
    let browser = Browser::new(&app.address);
    sign_in(&browser, "brief@corp.example")
        .await
        .assert_redirect("/auth/oidc/welcome");
    let signed_in = std::time::Instant::now();
    browser
        .get("/account/sessions")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&format!("via {NAME}"));
    assert!(
        signed_in.elapsed() < std::time::Duration::from_secs(2),
        "the check above came too late to show the session was alive"
    );

    tokio::time::sleep(std::time::Duration::from_secs(4)).await;

    browser
        .get("/account/sessions")
        .await
        .assert_redirect("/login");
}

/// The link on a "Confirm it's you" page that confirms through the provider instead.
fn reauth_link(asked: &Page) -> String {
    asked.assert_contains("Confirm it's you");
    let tag = "id=\"sso-reauth\" href=\"";
    let at = asked.body.find(tag).expect("the SSO confirmation link") + tag.len();
    let href = &asked.body[at..at + asked.body[at..].find('"').expect("the link's end")];
    crate::support::browser::unescape(href)
}

#[tokio::test]
async fn sudo_mode_accepts_a_fresh_sign_in_at_the_provider_by_the_same_person() {
    // Sudo mode lasts 3 s here: after the wait, a guarded change asks again.
    let app = spawn_sso_app_with(|config| config.sudo_window = chrono::Duration::seconds(3)).await;
    let browser = Browser::new(&app.address);
    sign_in(&browser, "sudoer@corp.example")
        .await
        .assert_redirect("/auth/oidc/welcome");
    let csrf = browser.csrf_from("/auth/oidc/welcome").await;
    browser
        .post(
            "/auth/oidc/welcome",
            &[("csrf_token", &csrf), ("account_name", "Sudo SSO Co")],
        )
        .await
        .assert_redirect("/tokens");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let change = |csrf: String| {
        let browser = &browser;
        async move {
            browser
                .post(
                    "/account/sso-policy",
                    &[("csrf_token", &csrf), ("claimed_domain", "corp.example")],
                )
                .await
        }
    };

    // Someone else signing in at the provider proves nothing.
    let asked = change(browser.csrf_from("/members").await).await;
    let auth_url = start(&browser, &reauth_link(&asked)).await;
    assert!(auth_url.contains("prompt=login"), "{auth_url}");
    assert!(auth_url.contains("max_age=0"), "{auth_url}");
    let callback = through_provider(&browser, &auth_url, "someone.else@corp.example").await;
    browser
        .get_url(&callback)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    browser
        .get("/account/sessions")
        .await
        .assert_contains("was not yours, or not a fresh one");
    let asked = change(browser.csrf_from("/members").await).await;

    // The same person, fresh from the provider's sign-in page: the change goes through.
    let auth_url = start(&browser, &reauth_link(&asked)).await;
    let callback = through_provider(&browser, &auth_url, "sudoer@corp.example").await;
    browser
        .get_url(&callback)
        .await
        .assert_redirect("/account/sessions");
    change(browser.csrf_from("/members").await)
        .await
        .assert_redirect("/members");
    browser
        .get("/members")
        .await
        .assert_contains("<strong>@corp.example</strong>");
}

/// An account named `account` whose owner invited `invited` as `role`, and a browser that
/// signed in through the provider as `login` and stands on the welcome page: the owner,
/// that browser, and the page.
async fn invited_then_signed_in(
    app: &TestApp,
    account: &str,
    invited: &str,
    role: &str,
    login: &str,
) -> (Browser, Browser, Page) {
    let owner = signed_up(&app.address, account).await;
    invite(&owner, invited, role).await;
    let browser = Browser::new(&app.address);
    sign_in(&browser, login)
        .await
        .assert_redirect("/auth/oidc/welcome");
    let welcome = browser.get("/auth/oidc/welcome").await;
    welcome.assert_html_page(StatusCode::OK);
    (owner, browser, welcome)
}

#[tokio::test]
async fn an_invitation_to_a_verified_address_is_taken_up_after_the_first_sign_in() {
    let app = spawn_sso_app().await;
    let (owner, browser, welcome) = invited_then_signed_in(
        &app,
        "Invite Co",
        "invitee@corp.example",
        "member",
        "invitee@corp.example",
    )
    .await;
    welcome
        .assert_contains("invited you as member")
        .assert_contains("Join Invite Co");
    let invitation = welcome
        .field_value("invitation")
        .expect("the invitation's id");
    browser
        .post(
            "/auth/oidc/join",
            &[("csrf_token", &welcome.csrf()), ("invitation", &invitation)],
        )
        .await
        .assert_redirect("/tokens");
    browser.get("/tokens").await.assert_contains("Invite Co");
    let log = audit_log(&owner, "").await;
    let joined = find_event(&log, "member.joined", "invitee@corp.example");
    assert!(joined.detail.contains("single sign-on"), "{joined:?}");
}

#[tokio::test]
async fn an_unverified_address_gets_neither_the_invitations_to_it_nor_its_later_owner() {
    let app = spawn_sso_app().await;
    // Someone whose provider vouches for the address without verifying it.
    let (_owner, squatter, welcome) = invited_then_signed_in(
        &app,
        "Squat Co",
        "squatted@corp.example",
        "admin",
        "squatted+unverified@corp.example",
    )
    .await;
    assert!(!welcome.body.contains("Squat Co"), "no invitation is shown");
    let csrf = welcome.csrf();
    for id in ["1", "2", "3"] {
        squatter
            .post(
                "/auth/oidc/join",
                &[("csrf_token", &csrf), ("invitation", id)],
            )
            .await
            .assert_status(StatusCode::NOT_FOUND);
    }

    // The address's real owner, verified at the provider, is not linked to that user.
    let real = Browser::new(&app.address);
    let page = sign_in(&real, "squatted@corp.example").await;
    assert_refused(
        &real,
        &page,
        StatusCode::FORBIDDEN,
        "never verified that address",
    )
    .await;
}

#[tokio::test]
async fn a_provider_that_stalls_is_cut_off_within_ten_seconds() {
    let provider_port = free_port();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let app = spawn_with_provider(&issuer, free_port(), "keyward", "secret", |_| {}).await;
    // Now something listens there, and the kernel takes connections, but nothing answers.
    let _stalled = std::net::TcpListener::bind(("127.0.0.1", provider_port))
        .expect("the provider's port, still free");
    let browser = Browser::new(&app.address);
    let asked = std::time::Instant::now();

    let page = browser.get("/auth/oidc").await;

    let waited = asked.elapsed();
    assert_refused(
        &browser,
        &page,
        StatusCode::FAILED_DEPENDENCY,
        "did not answer",
    )
    .await;
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(15),
        "the stalled provider was given {waited:?}, not 10 s"
    );
}

#[tokio::test]
async fn a_sign_in_through_the_provider_meets_the_accounts_two_factor_policy() {
    let app = spawn_sso_app().await;
    let owner = signed_up(&app.address, "Factor Co").await;
    enrol(&owner).await;
    let member_email = "factor.member@corp.example";
    join(&owner, member_email, "member").await;
    submit(
        &owner,
        "/members",
        "/account/two-factor-policy",
        &[("two_factor", "required")],
    )
    .await
    .assert_redirect("/members");
    // With their password, the member has to set up a second factor first.
    let with_password = Browser::new(&app.address);
    with_password
        .log_in(member_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    with_password
        .get("/tokens")
        .await
        .assert_redirect("/account/two-factor/setup");

    // Someone invited who signs in through the provider, which owns the second factor,
    // joins and reaches the account.
    let sso_email = "factor.sso@corp.example";
    invite(&owner, sso_email, "member").await;
    let through_sso = Browser::new(&app.address);
    sign_in(&through_sso, sso_email)
        .await
        .assert_redirect("/auth/oidc/welcome");
    let welcome = through_sso.get("/auth/oidc/welcome").await;
    let invitation = welcome
        .field_value("invitation")
        .expect("the invitation's id");
    through_sso
        .post(
            "/auth/oidc/join",
            &[("csrf_token", &welcome.csrf()), ("invitation", &invitation)],
        )
        .await
        .assert_redirect("/tokens");
    through_sso
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Factor Co");
}

#[tokio::test]
async fn an_id_token_over_64_kib_signs_nobody_in() {
    let app = spawn_sso_app().await;
    let browser = Browser::new(&app.address);
    let auth_url = start(&browser, "/auth/oidc").await;
    // The provider is asked to put a 70 000-character claim in the ID token.
    let mut padded = reqwest::Url::parse(&auth_url).unwrap();
    padded
        .query_pairs_mut()
        .append_pair("claims", r#"{"id_token":{"padding":null}}"#);

    let callback = through_provider(&browser, padded.as_str(), "padded@corp.example").await;
    let page = browser.get_url(&callback).await;

    assert_refused(
        &browser,
        &page,
        StatusCode::BAD_REQUEST,
        "larger than Keyward accepts",
    )
    .await;
}

/// Keyward signing in through a provider whose ID tokens are forged as `forgery`: its
/// answer to the callback, with the provider and the app, which live as long as the answer
/// is looked at.
async fn sign_in_with_forgery(forgery: Forgery) -> (ForgedProvider, TestApp, Browser, Page) {
    let provider = ForgedProvider::start(forgery).await;
    let app = spawn_with_provider(
        &provider.issuer,
        free_port(),
        forged_provider::CLIENT_ID,
        "forged-provider-secret",
        |_| {},
    )
    .await;
    let browser = Browser::new(&app.address);
    let auth_url = start(&browser, "/auth/oidc").await;
    let back = browser.get_url(&auth_url).await;
    let callback = back
        .header("location")
        .expect("the provider sends the browser back")
        .to_string();
    let page = browser.get_url(&callback).await;
    (provider, app, browser, page)
}

#[tokio::test]
async fn id_tokens_for_another_audience_from_another_issuer_signed_by_another_key_or_expired_sign_nobody_in()
 {
    // The control: the same provider's good token signs the person in.
    let (_provider, _app, browser, page) = sign_in_with_forgery(Forgery::None).await;
    page.assert_redirect("/auth/oidc/welcome");
    browser
        .get("/auth/oidc/welcome")
        .await
        .assert_contains("forged@corp.example");

    for forgery in [
        Forgery::Audience,
        Forgery::Issuer,
        Forgery::Signature,
        Forgery::Expired,
    ] {
        let (_provider, _app, browser, page) = sign_in_with_forgery(forgery).await;
        assert_refused(
            &browser,
            &page,
            StatusCode::BAD_REQUEST,
            "could not be trusted",
        )
        .await;
    }
}

#[tokio::test]
async fn a_provider_answer_too_large_to_read_signs_nobody_in_and_says_to_tell_the_operator() {
    let (_provider, _app, browser, page) = sign_in_with_forgery(Forgery::HugeAnswer).await;
    assert_refused(
        &browser,
        &page,
        StatusCode::FAILED_DEPENDENCY,
        "Tell your Keyward operator",
    )
    .await;
}

#[tokio::test]
async fn the_welcome_form_sent_twenty_times_at_once_makes_one_account() {
    let app = spawn_sso_app().await;
    let browser = Browser::new(&app.address);
    sign_in(&browser, "eager@corp.example")
        .await
        .assert_redirect("/auth/oidc/welcome");
    let csrf = browser.csrf_from("/auth/oidc/welcome").await;
    let sends = (0..20).map(|n| {
        let (browser, csrf) = (&browser, csrf.clone());
        async move {
            let name = format!("Eager {n}");
            browser
                .post(
                    "/auth/oidc/welcome",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("account_name", name.as_str()),
                    ],
                )
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert_eq!(
        accounts_in_store(&app).await,
        1,
        "one account, not one per send"
    );
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Eager ");
}

/// How many accounts the app's store holds, read around the app.
async fn accounts_in_store(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let path = app.db.path.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = keyward::db::open(&path).expect("the test database");
        diesel::sql_query("SELECT COUNT(*) AS n FROM accounts")
            .get_result::<Count>(&mut conn)
            .expect("the count")
            .n
    })
    .await
    .expect("the query task")
}

#[tokio::test]
async fn on_a_server_without_mail_an_address_taken_on_trust_gets_no_provider_link_and_no_domain() {
    // Sign-up is open and mail is off: anyone may sign up as anyone's address.
    let app = spawn_sso_app().await;
    let squatter = Browser::new(&app.address);
    squatter.sign_up("Squat Inc", "victim@corp.example").await;

    // The address's real owner, verified at the provider, is not let into that sign-in.
    let victim = Browser::new(&app.address);
    let page = sign_in(&victim, "victim@corp.example").await;
    assert_refused(&victim, &page, StatusCode::FORBIDDEN, "taken on trust").await;
    // Nor does the squatter get the domain.
    let csrf = squatter.csrf_from("/members").await;
    squatter
        .post(
            "/account/sso-policy",
            &[("csrf_token", &csrf), ("claimed_domain", "corp.example")],
        )
        .await
        .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("and proven");
    // And connecting takes the provider's verified word for the same address only.
    connect_from_email_page(&squatter, "victim+unverified@corp.example")
        .await
        .assert_contains("must be the same verified address")
        .assert_contains("taken on trust");
    let page = sign_in(&victim, "victim@corp.example").await;
    assert_refused(&victim, &page, StatusCode::FORBIDDEN, "taken on trust").await;
}

#[tokio::test]
async fn an_invitation_link_proves_no_address_even_when_it_was_mailed() {
    // The inviter sees the link too: one who follows it themselves must not hold a user
    // that the address's real owner is let into.
    let smtp = SmtpServer::start();
    let settings = smtp.settings();
    let app = spawn_sso_app_with(move |config| config.mail = Some(settings)).await;
    let inviter = verified_owner(&app, &smtp, "Lure Co").await;
    join(&inviter, "ceo@corp.example", "member").await;

    let ceo = Browser::new(&app.address);
    let page = sign_in(&ceo, "ceo@corp.example").await;
    assert_refused(&ceo, &page, StatusCode::FORBIDDEN, "taken on trust").await;
}

#[tokio::test]
async fn a_person_with_a_password_connects_the_provider_and_then_signs_in_through_it() {
    let app = spawn_sso_app().await;
    let ada = Browser::new(&app.address);
    ada.sign_up("Connect Co", "ada@connect-co.example").await;
    let email_page = ada.get("/account/email").await;
    email_page
        .assert_html_page(StatusCode::OK)
        .assert_contains("taken on trust")
        .assert_contains(&format!("Connect {NAME}"));

    // A connection started in one browser is not finished by another person's session.
    let stranger = Browser::new(&app.address);
    stranger
        .get("/auth/oidc?connect=1")
        .await
        .assert_redirect("/login");

    let email_page = connect_from_email_page(&ada, "ada@connect-co.example").await;
    email_page
        .assert_contains("is connected")
        .assert_contains("a verified address");
    assert!(
        !email_page.body.contains("id=\"sso-connect\""),
        "a connected person is not offered to connect again"
    );
    // Connecting again changes nothing, and says so.
    connect_from_email_page(&ada, "ada@connect-co.example")
        .await
        .assert_contains("connected to your sign-in already");

    // From now on the provider signs Ada in to her own sign-in, with her account.
    let later = Browser::new(&app.address);
    sign_in(&later, "ada@connect-co.example")
        .await
        .assert_redirect("/tokens");
    later.get("/tokens").await.assert_contains("Connect Co");
    let log = audit_log(&ada, "").await;
    let linked = find_event(&log, "user.sso_linked", "ada@connect-co.example");
    assert!(linked.detail.contains("proved both"), "{linked:?}");

    // Another person's identity at the provider can't be connected to her sign-in.
    let bob = Browser::new(&app.address);
    bob.sign_up("Bob Co", "bob@connect-co.example").await;
    connect_from_email_page(&bob, "ada@connect-co.example")
        .await
        .assert_contains("linked to another Keyward sign-in");
}

#[tokio::test]
async fn a_link_to_a_provider_the_operator_replaced_doesnt_stop_connecting_the_new_one() {
    use diesel::prelude::*;
    use keyward::db::schema::{oidc_identities, users};

    let app = spawn_sso_app().await;
    let ada = Browser::new(&app.address);
    ada.sign_up("Moved Co", "ada@moved-co.example").await;
    // Ada was linked to the provider this server used before its operator changed it.
    {
        let mut conn = app.db.connect();
        let ada_id: i32 = users::table
            .filter(users::email.eq("ada@moved-co.example"))
            .select(users::id)
            .first(&mut conn)
            .expect("Ada's user");
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(oidc_identities::table)
            .values((
                oidc_identities::user_id.eq(ada_id),
                oidc_identities::issuer.eq("https://old-provider.example"),
                oidc_identities::subject.eq("ada-at-the-old-provider"),
                oidc_identities::email.eq("ada@moved-co.example"),
                oidc_identities::created_at.eq(now),
                oidc_identities::last_sign_in_at.eq(now),
            ))
            .execute(&mut conn)
            .expect("the old link");
    }

    // The old link signs nobody in, so it neither hides the offer to connect the new
    // provider nor refuses the connection.
    ada.get("/account/email")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&format!("Connect {NAME}"));
    connect_from_email_page(&ada, "ada@moved-co.example")
        .await
        .assert_contains("is connected");
    let later = Browser::new(&app.address);
    sign_in(&later, "ada@moved-co.example")
        .await
        .assert_redirect("/tokens");

    // Linked to the new provider, she can't connect a second identity there.
    connect_from_email_page(&ada, "someone-else@moved-co.example")
        .await
        .assert_contains("linked to another identity at your provider already");
}

#[tokio::test]
async fn a_connection_finished_in_a_browser_now_signed_in_as_someone_else_links_nobody() {
    let app = spawn_sso_app().await;
    let bob = Browser::new(&app.address);
    bob.sign_up("Bob Shared Co", "bob@shared-co.example").await;
    let shared = Browser::new(&app.address);
    shared
        .sign_up("Ada Shared Co", "ada@shared-co.example")
        .await;
    let auth_url = start(&shared, "/auth/oidc?connect=1").await;
    let callback = through_provider(&shared, &auth_url, "ada@shared-co.example").await;

    // Ada walks away; Bob signs in on the same browser before her callback arrives.
    shared.log_out().await;
    shared
        .log_in("bob@shared-co.example", PASSWORD)
        .await
        .assert_redirect("/tokens");
    shared
        .get_url(&callback)
        .await
        .assert_html_page(StatusCode::FORBIDDEN)
        .assert_contains("signed in as someone other than the person who started connecting")
        .assert_contains("connect again from your email page");

    // Neither of them was connected.
    let ada = Browser::new(&app.address);
    ada.log_in("ada@shared-co.example", PASSWORD)
        .await
        .assert_redirect("/tokens");
    for browser in [&shared, &ada] {
        browser
            .get("/account/email")
            .await
            .assert_contains(&format!("Connect {NAME}"));
    }
}
