//! `/password-reset`: a forgotten password, through a link mailed by a real SMTP server
//! (or printed by `keyward user reset-password` when the server sends no mail).

use reqwest::StatusCode;

use crate::support::admin::{count_rows, execute_sql, submit};
use crate::support::api::spawn_app;
use crate::support::browser::{Browser, PASSWORD, email_for, signed_up};
use crate::support::mail::{spawn_mailing_app, verified_owner};
use crate::support::smtp::SmtpServer;

const NEW_PASSWORD: &str = "a brand new passphrase for keyward";

/// Asks for a reset link for `email` from `browser`; returns the answer.
async fn ask_for_reset(browser: &Browser, email: &str) -> crate::support::browser::Page {
    submit(
        browser,
        "/password-reset",
        "/password-reset",
        &[("email", email)],
    )
    .await
}

/// Sets `password` through the reset link at `path`.
async fn choose_password(
    browser: &Browser,
    path: &str,
    password: &str,
) -> crate::support::browser::Page {
    let fields = [("password", password), ("password_confirmation", password)];
    submit(browser, path, path, &fields).await
}

#[tokio::test]
async fn a_mailed_link_sets_a_new_password_once_and_ends_every_session() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Forgetful Co");
    // The owner, and a second browser signed in as them.
    let owner = verified_owner(&app, &smtp, "Forgetful Co").await;
    let laptop = Browser::new(&app.address);
    laptop
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");

    let login = Browser::new(&app.address).get("/login").await;
    login.assert_contains("Forgot your password?");
    let visitor = Browser::new(&app.address);
    ask_for_reset(&visitor, &email)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Check your inbox");

    let mail = smtp.wait_for(&email, "Reset your Keyward password").await;
    assert!(
        !mail.text.contains(PASSWORD),
        "a mail never holds a password"
    );
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    assert!(
        mail.header("List-Unsubscribe").is_none(),
        "a security mail can't be unsubscribed from"
    );
    let link = mail.link_path("/password-reset/");
    let token = link.trim_start_matches("/password-reset/");
    assert!(
        token.len() >= 22,
        "at least 128 random bits in base62: {token}"
    );
    let digest = hex_sha256(token);
    let literal = if crate::support::store::on_postgres() {
        format!("'\\x{digest}'::bytea")
    } else {
        format!("x'{digest}'")
    };
    let stored = format!("SELECT COUNT(*) FROM email_links WHERE token_digest = {literal}");
    assert_eq!(
        count_rows(&app, &stored).await,
        1,
        "the link's SHA-256 is stored"
    );
    let plain = format!("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%{token}%'");

    choose_password(&visitor, &link, NEW_PASSWORD)
        .await
        .assert_redirect("/login?password_reset=1");
    assert_eq!(
        count_rows(&app, &plain).await,
        0,
        "a sent mail's link leaves the outbox"
    );

    // Every session of the user ended; the old password is gone, the new one works.
    owner.get("/tokens").await.assert_redirect("/login");
    laptop.get("/tokens").await.assert_redirect("/login");
    Browser::new(&app.address)
        .log_in(&email, PASSWORD)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    Browser::new(&app.address)
        .log_in(&email, NEW_PASSWORD)
        .await
        .assert_redirect("/tokens");

    // The link is spent: opening or sending it again says so, with a way to ask anew.
    let again = visitor.get(&link).await;
    again
        .assert_html_page(StatusCode::NOT_FOUND)
        .assert_contains("This link doesn't work")
        .assert_contains("Ask for a new link");
    let csrf = visitor.csrf_from("/password-reset").await;
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("password", "yet another passphrase"),
        ("password_confirmation", "yet another passphrase"),
    ];
    visitor
        .post(&link, &fields)
        .await
        .assert_html_page(StatusCode::NOT_FOUND);

    let notice = smtp
        .wait_for(&email, "Your Keyward password was changed")
        .await;
    assert!(
        notice.text.contains("every session of it was ended"),
        "{}",
        notice.text
    );
}

/// The SHA-256 of `text`, in hex, as SQLite's blob literal takes it.
fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn an_expired_link_gives_a_page_that_says_so_never_a_500() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Slow Reader");
    verified_owner(&app, &smtp, "Slow Reader").await;
    let visitor = Browser::new(&app.address);
    ask_for_reset(&visitor, &email)
        .await
        .assert_status(StatusCode::OK);
    let link = smtp
        .wait_for(&email, "Reset")
        .await
        .link_path("/password-reset/");

    execute_sql(
        &app,
        "UPDATE email_links SET expires_at = '2000-01-01 00:00:00'",
    )
    .await;
    visitor
        .get(&link)
        .await
        .assert_html_page(StatusCode::NOT_FOUND)
        .assert_contains("has expired");
    // Sent anyway, from a form opened before it expired.
    let csrf = visitor.csrf_from("/password-reset").await;
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("password", NEW_PASSWORD),
        ("password_confirmation", NEW_PASSWORD),
    ];
    visitor
        .post(&link, &fields)
        .await
        .assert_html_page(StatusCode::NOT_FOUND);
    Browser::new(&app.address)
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");

    visitor
        .get("/password-reset/not-a-real-token")
        .await
        .assert_html_page(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_request_page_answers_the_same_for_an_address_with_no_sign_in() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let known = email_for("Known Co");
    verified_owner(&app, &smtp, "Known Co").await;
    let visitor = Browser::new(&app.address);

    let for_known = ask_for_reset(&visitor, &known).await;
    let stranger = "nobody.here@example.test";
    let for_stranger = ask_for_reset(&visitor, stranger).await;
    assert_eq!(for_known.status, for_stranger.status);
    assert_eq!(
        for_known.text().replace(&known, "EMAIL"),
        for_stranger.text().replace(stranger, "EMAIL"),
        "the two answers differ only by the address typed"
    );
    smtp.wait_for(&known, "Reset").await;
    assert!(
        smtp.messages_to(stranger).is_empty(),
        "no mail for an address without a sign-in"
    );
}

#[tokio::test]
async fn reset_requests_are_limited_per_address() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Flooded Inbox");
    verified_owner(&app, &smtp, "Flooded Inbox").await;
    let visitor = Browser::new(&app.address);
    // Five mails an hour per address: the sign-up's, and four resets.
    for _ in 0..4 {
        ask_for_reset(&visitor, &email)
            .await
            .assert_status(StatusCode::OK);
    }
    let refused = ask_for_reset(&visitor, &email).await;
    refused
        .assert_status(StatusCode::TOO_MANY_REQUESTS)
        .assert_contains("Too many emails");
    assert!(refused.header("Retry-After").is_some());
    let mails: Vec<_> = smtp
        .wait_for_count(&email, 5)
        .await
        .into_iter()
        .filter(|m| m.subject.contains("Reset"))
        .collect();
    assert_eq!(mails.len(), 4);
    // Each new link retires the last: only the newest works.
    let first = mails[0].link_path("/password-reset/");
    let last = mails[3].link_path("/password-reset/");
    visitor
        .get(&first)
        .await
        .assert_html_page(StatusCode::NOT_FOUND);
    visitor.get(&last).await.assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn without_mail_the_command_line_prints_a_one_time_link() {
    let app = spawn_app().await;
    let email = email_for("No Mail Co");
    let owner = signed_up(&app.address, "No Mail Co").await;
    owner
        .get("/account/email")
        .await
        .assert_contains("taken on trust");

    let page = Browser::new(&app.address).get("/password-reset").await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains("keyward user reset-password");
    Browser::new(&app.address)
        .get("/login")
        .await
        .assert_contains("This server sends no mail");

    let printed = app
        .cli(&["user", "reset-password", &email])
        .await
        .expect("the command prints a link");
    let link = printed.trim();
    assert!(
        link.starts_with("http://127.0.0.1:8080/password-reset/"),
        "{link}"
    );
    let path = link.trim_start_matches("http://127.0.0.1:8080");
    owner
        .get("/audit")
        .await
        .assert_contains("user.reset_link_issued")
        .assert_contains("command line");
    let visitor = Browser::new(&app.address);
    choose_password(&visitor, path, NEW_PASSWORD)
        .await
        .assert_redirect("/login?password_reset=1");
    owner.get("/tokens").await.assert_redirect("/login");
    let again = Browser::new(&app.address);
    again
        .log_in(&email, NEW_PASSWORD)
        .await
        .assert_redirect("/tokens");
    // The link the operator handed over proves the address, as a mailed one does.
    again
        .get("/account/email")
        .await
        .assert_contains("a verified address");

    let unknown = app
        .cli(&["user", "reset-password", "ghost@example.test"])
        .await;
    assert!(unknown.unwrap_err().contains("No user has the email"));
}
