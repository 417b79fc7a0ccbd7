//! `/login`: the right password lands on the tokens; a wrong one and an unknown email get the
//! same page; an address that keeps failing for one email must wait, without locking the
//! email's owner out elsewhere; a sign-in is logged once; a flood is turned away with a 503.

use futures_util::future::join_all;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::support::admin::{AuditRow, audit_log, invitation_link, join, member_id, submit};
use crate::support::api::{spawn_app, spawn_app_with};
use crate::support::browser::{Browser, PASSWORD, email_for, signed_up};

/// Failed sign-ins one address may have for one email before each further try must wait.
const FREE_FAILURES: usize = 5;

/// Other machines' addresses: any 127.x.y.z reaches the test server on 127.0.0.1.
const ATTACKER: [u8; 4] = [127, 0, 0, 66];
const HOME: [u8; 4] = [127, 0, 0, 10];

#[tokio::test]
async fn signing_in_with_the_right_password_lands_on_the_tokens() {
    let app = spawn_app().await;
    let email = email_for("Returning Customer");
    signed_up(&app.address, "Returning Customer").await;

    let browser = Browser::new(&app.address);
    browser.get("/tokens").await.assert_redirect("/login");
    browser
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");

    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&email);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_page() {
    let app = spawn_app().await;
    let known = email_for("Known Person");
    signed_up(&app.address, "Known Person").await;
    let unknown = email_for("Nobody At All");

    let browser = Browser::new(&app.address);
    let wrong_password = browser.log_in(&known, "not the password at all").await;
    let unknown_email = browser.log_in(&unknown, "not the password at all").await;

    wrong_password.assert_html_page(StatusCode::UNAUTHORIZED);
    unknown_email.assert_html_page(StatusCode::UNAUTHORIZED);
    let error = |page: &crate::dashboard_helpers::Page| page.text_of("role=\"alert\"");
    assert!(
        error(&wrong_password).is_some_and(|e| !e.is_empty()),
        "a failed sign-in should say why; body:\n{}",
        wrong_password.body
    );
    assert_eq!(
        error(&wrong_password),
        error(&unknown_email),
        "the error must not tell a wrong password from an unknown email"
    );
    // Apart from the email typed back into its field, nothing may differ.
    assert_eq!(
        wrong_password.body.replace(&known, "EMAIL"),
        unknown_email.body.replace(&unknown, "EMAIL"),
        "the two failure pages should be identical but for the typed email"
    );
    for page in [&wrong_password, &unknown_email] {
        assert!(
            !page.body.contains("not the password at all"),
            "a failed sign-in page must not echo the password; body:\n{}",
            page.body
        );
    }
    browser.get("/tokens").await.assert_redirect("/login");
}

#[tokio::test]
async fn after_five_failures_that_address_waits_before_trying_that_email_again() {
    let app = spawn_app().await;
    let target = email_for("Under Attack");
    signed_up(&app.address, "Under Attack").await;
    let inviter = signed_up(&app.address, "Inviting Co").await;
    let link = invitation_link(&inviter, &target, "member").await;
    let attacker = Browser::new(&app.address);
    let csrf = attacker.csrf_from("/login").await;
    let guess = |n: usize| {
        let (attacker, csrf, target) = (&attacker, &csrf, &target);
        async move {
            let password = format!("guess number {n}");
            attacker
                .post(
                    "/login",
                    &[
                        ("csrf_token", csrf),
                        ("email", target),
                        ("password", &password),
                    ],
                )
                .await
        }
    };

    for n in 0..FREE_FAILURES {
        guess(n).await.assert_html_page(StatusCode::UNAUTHORIZED);
    }
    // Each failure beyond the free ones makes the next wait twice as long, so within a
    // few tries, however slowly this machine runs them, one is told to wait.
    let mut refused = None;
    for n in FREE_FAILURES..FREE_FAILURES + 4 {
        let page = guess(n).await;
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(page);
            break;
        }
        page.assert_html_page(StatusCode::UNAUTHORIZED);
    }
    let refused = refused.expect("a failure beyond the free ones should be told to wait");
    refused.assert_html_page(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused
        .header(RETRY_AFTER.as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "a 429 should carry Retry-After in seconds; headers {:?}",
                refused.headers
            )
        });
    assert!(
        (1..=15 * 60).contains(&retry_after),
        "Retry-After should be a wait of seconds to minutes, was {retry_after}"
    );
    assert!(
        refused.text().contains("Try again in"),
        "the 429 page should say when to try again; body:\n{}",
        refused.body
    );

    // The wait is on that email from that address, not on everyone.
    attacker
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", &email_for("Bystander")),
                ("password", "whatever it is"),
            ],
        )
        .await
        .assert_html_page(StatusCode::UNAUTHORIZED);

    // An invitation asks an existing user for the same password: it is no way around the wait.
    let via_invitation = submit(&attacker, &link, &link, &[("password", PASSWORD)]).await;
    via_invitation.assert_html_page(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        via_invitation.text().contains("Try again in"),
        "{}",
        via_invitation.body
    );
}

#[tokio::test]
async fn a_flood_of_failures_for_a_victim_from_one_address_does_not_lock_them_out_elsewhere() {
    let app = spawn_app().await;
    let victim_email = email_for("Targeted Victim");
    signed_up(&app.address, "Targeted Victim").await;
    let attacker = Browser::from_source(&app.address, ATTACKER);
    let csrf = attacker.csrf_from("/login").await;

    // More wrong passwords than the old per-email limit of 100 allowed, in small concurrent
    // batches: most are refused at once, without argon2.
    let mut statuses = Vec::new();
    for batch in (0..120).collect::<Vec<_>>().chunks(4) {
        let attempts = batch.iter().map(|i| {
            let password = format!("guess number {i}");
            let (attacker, csrf, victim_email) = (&attacker, &csrf, &victim_email);
            async move {
                attacker
                    .post(
                        "/login",
                        &[
                            ("csrf_token", csrf),
                            ("email", victim_email),
                            ("password", &password),
                        ],
                    )
                    .await
                    .status
            }
        });
        statuses.extend(join_all(attempts).await);
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        checked + refused,
        statuses.len(),
        "every guess is a 401 or a 429: {statuses:?}"
    );
    assert!(
        (FREE_FAILURES..=FREE_FAILURES + 2).contains(&checked),
        "the attacker's address gets its few free failures and is then made to wait; \
         {checked} guesses were checked"
    );

    // The victim, at home, signs in as usual.
    let victim = Browser::from_source(&app.address, HOME);
    victim
        .log_in(&victim_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn a_sign_in_is_logged_once_in_the_first_account_however_many_the_person_belongs_to() {
    let app = spawn_app().await;
    let person_email = email_for("Two Hats");
    let person = signed_up(&app.address, "Two Hats").await;
    let other_owner = signed_up(&app.address, "Second Firm").await;
    // The person joins a second account, as an existing user, with their password.
    let link = invitation_link(&other_owner, &person_email, "member").await;
    submit(&person, &link, &link, &[("password", PASSWORD)])
        .await
        .assert_redirect("/tokens");
    let logged = |action: &'static str| {
        let (person, other_owner, person_email) = (&person, &other_owner, &person_email);
        async move {
            let query = format!("?action={action}");
            let first: Vec<_> = audit_log(person, &query).await;
            let second: Vec<_> = audit_log(other_owner, &query).await;
            let mine = |rows: Vec<AuditRow>| {
                rows.into_iter()
                    .filter(|r| r.actor == *person_email)
                    .count()
            };
            (mine(first), mine(second))
        }
    };
    // The person's own session is in the first account; switch it back there to read its log.
    person.log_out().await;
    person
        .log_in(&person_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    let (succeeded_before, _) = logged("login.succeeded").await;

    let stranger = Browser::new(&app.address);
    stranger
        .log_in(&person_email, "not their password at all")
        .await
        .assert_html_page(StatusCode::UNAUTHORIZED);
    assert_eq!(
        logged("login.failed").await,
        (1, 0),
        "one failed sign-in is one row, in the first account (the one a session opens in)"
    );

    let again = Browser::new(&app.address);
    again
        .log_in(&person_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    assert_eq!(
        logged("login.succeeded").await,
        (succeeded_before + 1, 0),
        "one successful sign-in is one row, in the first account too"
    );
}

#[tokio::test]
async fn a_flood_of_sign_ins_beyond_the_hashing_queue_is_told_to_retry_and_nothing_breaks() {
    // One argon2 thread, so its short queue (four) fills with a modest burst.
    let app = spawn_app_with(|config| config.password_threads = Some(1)).await;
    let email = email_for("Busy Day");
    signed_up(&app.address, "Busy Day").await;
    let flood = Browser::new(&app.address);
    let csrf = flood.csrf_from("/login").await;

    // Distinct unknown emails, so no sign-in limit answers before the hashing queue does.
    let mut busy = Vec::new();
    let mut statuses = Vec::new();
    for burst in 0..3 {
        let attempts = (0..16).map(|i| {
            let (flood, csrf) = (&flood, &csrf);
            async move {
                let email = format!("nobody.{burst}.{i}@example.test");
                flood
                    .post(
                        "/login",
                        &[
                            ("csrf_token", csrf),
                            ("email", &email),
                            ("password", "any password at all"),
                        ],
                    )
                    .await
            }
        });
        for page in join_all(attempts).await {
            statuses.push(page.status);
            if page.status == StatusCode::SERVICE_UNAVAILABLE {
                busy.push(page);
            }
        }
        if !busy.is_empty() {
            break;
        }
    }
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
        "each sign-in is checked (401) or turned away (503), never an error: {statuses:?}"
    );
    assert!(
        !busy.is_empty(),
        "16 sign-ins at once should overflow one thread and a queue of four: {statuses:?}"
    );
    for page in &busy {
        page.assert_html_page(StatusCode::SERVICE_UNAVAILABLE)
            .assert_contains("try again in a few seconds");
        assert!(
            page.header(RETRY_AFTER.as_str())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|secs| secs >= 1),
            "a 503 should say when to retry; headers {:?}",
            page.headers
        );
    }
    assert_eq!(
        app.state.passwords.stats().refused,
        busy.len() as u64,
        "every 503 is a request the hashing queue refused"
    );

    // Once the flood has passed, sign-in works.
    Browser::new(&app.address)
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn someone_who_belongs_to_no_account_signs_in_to_a_page_that_says_so() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Parting Co").await;
    let leaver_email = email_for("leaver");
    join(&owner, &leaver_email, "member").await;
    let id = member_id(&owner, &leaver_email).await;
    submit(&owner, "/members", &format!("/members/{id}/remove"), &[])
        .await
        .assert_redirect("/members");

    let leaver = Browser::new(&app.address);
    leaver
        .log_in(&leaver_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    leaver
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::FORBIDDEN)
        .assert_contains("You don't belong to an account yet.");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_known_by_its_own_address() {
    let app = spawn_app_with(|config| config.trust_forwarded_headers = true).await;
    let owner_email = email_for("Proxied Owner");
    let owner = signed_up(&app.address, "Proxied Owner").await;
    // The attacker writes an address of its own choosing first; the proxy appends the
    // address it really came from.
    let attacker = Browser::behind_proxy(&app.address, "198.51.100.99, 203.0.113.66");
    let csrf = attacker.csrf_from("/login").await;
    let mut last = StatusCode::OK;
    for guess in 0..FREE_FAILURES + 2 {
        last = attacker
            .post(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", &owner_email),
                    ("password", &format!("guess {guess}")),
                ],
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "the attacker waits");

    // The owner, elsewhere behind the same proxy, signs in as usual.
    let at_home = Browser::behind_proxy(&app.address, "198.51.100.20");
    at_home
        .log_in(&owner_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    let sessions = at_home.get("/account/sessions").await;
    sessions.assert_contains("198.51.100.20");

    // The audit log names the address the proxy saw, never the one the client wrote.
    let audit = owner.get("/audit?action=login.failed").await;
    audit.assert_contains("203.0.113.66");
    assert!(!audit.body.contains("198.51.100.99"), "{}", audit.body);
}
