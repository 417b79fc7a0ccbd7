//! Addresses proven by mail: sign-up with mail on (`/signup`, `/verify-email/{token}`),
//! and changing the address one signs in with (`/account/email`, `/confirm-email/{token}`).

use reqwest::StatusCode;

use crate::support::admin::{assert_forbidden_page, count_rows, invite, submit};
use crate::support::browser::{Browser, PASSWORD, email_for};
use crate::support::mail::{spawn_mailing_app, verified_owner};
use crate::support::smtp::SmtpServer;

/// Follows a mailed link the way a person does: opens it, then presses its button.
async fn follow(browser: &Browser, path: &str) -> crate::support::browser::Page {
    submit(browser, path, path, &[]).await
}

#[tokio::test]
async fn a_new_address_must_be_verified_before_tokens_or_invitations() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Fresh Signup");
    let browser = Browser::new(&app.address);
    browser
        .submit_signup("Fresh Signup", &email, PASSWORD, PASSWORD)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Check your inbox");
    let mail = smtp.wait_for(&email, "Verify your email address").await;
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    assert!(mail.header("Message-ID").is_some_and(|id| id.contains('@')));
    assert!(mail.header("Date").is_some());
    assert!(
        mail.html.contains("<a href="),
        "an HTML alternative: {}",
        mail.html
    );
    assert!(!mail.text.contains(PASSWORD));

    // Signed in but unverified: the account can be looked at, not used.
    browser
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    let refused = browser.get("/tokens/new").await;
    assert_forbidden_page(&refused);
    refused.assert_contains("Confirm your email address first");
    assert_forbidden_page(&invite(&browser, "friend@example.test", "member").await);
    browser
        .get("/account/email")
        .await
        .assert_contains("not verified yet");

    // A mail scanner that opens the link changes nothing; the button does.
    let link = mail.link_path("/verify-email/");
    browser.get(&link).await.assert_html_page(StatusCode::OK);
    follow(&browser, &link)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("is verified");
    browser.create_token("now allowed").await;
    browser
        .get(&link)
        .await
        .assert_html_page(StatusCode::NOT_FOUND)
        .assert_contains("This link doesn't work");
}

#[tokio::test]
async fn signing_up_with_a_taken_address_looks_the_same_and_mails_its_owner() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let taken = email_for("Taken Address");
    let first = Browser::new(&app.address);
    first
        .submit_signup("Taken Address", &taken, PASSWORD, PASSWORD)
        .await
        .assert_status(StatusCode::OK);
    smtp.wait_for(&taken, "Verify").await;

    let fresh = "someone.new@example.test";
    let attacker = Browser::new(&app.address);
    let for_taken = attacker
        .submit_signup(
            "Probe",
            &taken,
            "another long password",
            "another long password",
        )
        .await;
    let for_fresh = attacker
        .submit_signup(
            "Probe",
            fresh,
            "another long password",
            "another long password",
        )
        .await;
    assert_eq!(for_taken.status, StatusCode::OK);
    assert_eq!(for_taken.status, for_fresh.status);
    assert_eq!(
        for_taken.text().replace(&taken, "EMAIL"),
        for_fresh.text().replace(fresh, "EMAIL"),
        "the page tells nothing about which address has a sign-in"
    );
    assert!(for_taken.session_set_cookie().is_none() && for_fresh.session_set_cookie().is_none());

    let warning = smtp.wait_for(&taken, "Someone tried to sign up").await;
    assert!(warning.text.contains("/password-reset"), "{}", warning.text);
    assert!(warning.text.contains("/login"));
    smtp.wait_for(fresh, "Verify").await;
    assert_eq!(count_rows(&app, "SELECT COUNT(*) FROM users").await, 2);
    assert_eq!(count_rows(&app, "SELECT COUNT(*) FROM accounts").await, 2);
    // The owner's password is untouched.
    Browser::new(&app.address)
        .log_in(&taken, PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn a_new_address_is_confirmed_by_mail_and_the_old_one_is_told() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let old = email_for("Moving House");
    let owner = verified_owner(&app, &smtp, "Moving House").await;
    let new = "moved@example.test";

    let wrong = submit(
        &owner,
        "/account/email",
        "/account/email",
        &[("new_email", new), ("current_password", "not my password")],
    )
    .await;
    wrong
        .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("That is not your current password.");

    submit(
        &owner,
        "/account/email",
        "/account/email",
        &[("new_email", new), ("current_password", PASSWORD)],
    )
    .await
    .assert_redirect("/account/email");
    let mail = smtp.wait_for(new, "Confirm your new email address").await;
    // Nothing changes until the link is followed.
    owner.get("/account/email").await.assert_contains(&old);

    let link = mail.link_path("/confirm-email/");
    follow(&Browser::new(&app.address), &link)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(new);
    let notice = smtp.wait_for(&old, "now uses another email address").await;
    assert!(notice.text.contains(new), "{}", notice.text);
    Browser::new(&app.address)
        .log_in(new, PASSWORD)
        .await
        .assert_redirect("/tokens");
    Browser::new(&app.address)
        .log_in(&old, PASSWORD)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_address_that_someone_else_took_meanwhile_is_refused_when_followed() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let owner = verified_owner(&app, &smtp, "Slow Mover").await;
    let contested = email_for("Quick Taker");
    submit(
        &owner,
        "/account/email",
        "/account/email",
        &[("new_email", &contested), ("current_password", PASSWORD)],
    )
    .await
    .assert_redirect("/account/email");
    let link = smtp
        .wait_for(&contested, "Confirm")
        .await
        .link_path("/confirm-email/");
    Browser::new(&app.address)
        .submit_signup("Quick Taker", &contested, PASSWORD, PASSWORD)
        .await
        .assert_status(StatusCode::OK);
    follow(&Browser::new(&app.address), &link)
        .await
        .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("already has a Keyward sign-in");
}
