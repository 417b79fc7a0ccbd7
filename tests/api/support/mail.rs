//! What the mail stories share: Keyward in this process mailing through the test SMTP
//! server (`smtp`), and an owner who signed up and followed the mailed verification link.

use crate::support::smtp::SmtpServer;

/// Keyward in this process, on a fresh store, mailing through `smtp`.
pub async fn spawn_mailing_app(smtp: &SmtpServer) -> crate::support::api::TestApp {
    let settings = smtp.settings();
    crate::support::api::spawn_app_with(move |config| config.mail = Some(settings)).await
}

/// With mail on: signs up as the owner of `account_name` (with `email_for`'s address and
/// `PASSWORD`), follows the mailed verification link and signs in. Returns the browser.
pub async fn verified_owner(
    app: &crate::support::api::TestApp,
    smtp: &SmtpServer,
    account_name: &str,
) -> crate::support::browser::Browser {
    use crate::support::browser::{Browser, PASSWORD, email_for};
    let email = email_for(account_name);
    let browser = Browser::new(&app.address);
    browser
        .submit_signup(account_name, &email, PASSWORD, PASSWORD)
        .await
        .assert_status(reqwest::StatusCode::OK);
    let link = smtp
        .wait_for(&email, "Verify your email address")
        .await
        .link_path("/verify-email/");
    crate::support::admin::submit(&browser, &link, &link, &[])
        .await
        .assert_status(reqwest::StatusCode::OK);
    browser
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    browser
}
