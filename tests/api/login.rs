//! `/login`: the right password lands on the tokens; a wrong one and an unknown email get the
//! same page; too many failures for one email are refused for a while.

use futures_util::future::join_all;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::admin_helpers::{invitation_link, join, member_id, submit};
use crate::dashboard_helpers::{Browser, PASSWORD, email_for, signed_up};
use crate::helpers::spawn_app;

/// Failed sign-ins one email may have in an hour; the next is refused.
const FAILURES_ALLOWED: usize = 100;

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
async fn the_101st_failed_sign_in_for_an_email_is_refused_with_429() {
    let app = spawn_app().await;
    let target = email_for("Under Attack");
    signed_up(&app.address, "Under Attack").await;
    let attacker = Browser::new(&app.address);
    let csrf = attacker.csrf_from("/login").await;

    // In small concurrent batches: each attempt runs argon2, which is slow on purpose.
    let mut statuses = Vec::new();
    for batch in (0..FAILURES_ALLOWED).collect::<Vec<_>>().chunks(4) {
        let attempts = batch.iter().map(|i| {
            let password = format!("guess number {i}");
            let (attacker, csrf, target) = (&attacker, &csrf, &target);
            async move {
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
                    .status
            }
        });
        statuses.extend(join_all(attempts).await);
    }
    let refused_early: Vec<_> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != StatusCode::UNAUTHORIZED)
        .collect();
    assert!(
        refused_early.is_empty(),
        "the first {FAILURES_ALLOWED} failures should each be a plain 401, got (attempt, status) {refused_early:?}"
    );

    let refused = attacker
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", &target),
                ("password", "guess number 101"),
            ],
        )
        .await;
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
        (1..=3600).contains(&retry_after),
        "Retry-After should be within the hour-long window, was {retry_after}"
    );
    let text = refused.text().to_lowercase();
    assert!(
        text.contains("try again in") && text.contains("minute"),
        "the 429 page should say when to try again; body:\n{}",
        refused.body
    );

    // The limit is on that email, not on everyone.
    let other = attacker
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", &email_for("Bystander")),
                ("password", "whatever it is"),
            ],
        )
        .await;
    other.assert_html_page(StatusCode::UNAUTHORIZED);

    // An invitation asks an existing user for the same password: it is no way around the limit.
    let inviter = signed_up(&app.address, "Inviting Co").await;
    let link = invitation_link(&inviter, &target, "member").await;
    let via_invitation = submit(&attacker, &link, &link, &[("password", PASSWORD)]).await;
    via_invitation.assert_html_page(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        via_invitation.text().contains("Try again in"),
        "{}",
        via_invitation.body
    );
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
