//! Notices about a person's tokens, mailed through a real SMTP server: a revocation by an
//! operator or a leak report, a daily digest of tokens about to expire, and a token used
//! from a new address (off by default); each can be turned off at `/account/notices`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::admin::{count_rows, execute_sql, submit};
use crate::support::api::{TestApp, Token, eventually};
use crate::support::browser::{Browser, email_for};
use crate::support::mail::{spawn_mailing_app, verified_owner};
use crate::support::smtp::{Received, SmtpServer};

/// Ticks `boxes` on the notices page (the others off).
async fn choose_notices(browser: &Browser, boxes: &[&str]) {
    let fields: Vec<(&str, &str)> = boxes.iter().map(|b| (*b, "1")).collect();
    submit(browser, "/account/notices", "/account/notices", &fields)
        .await
        .assert_redirect("/account/notices");
}

fn assert_is_notice(mail: &Received, base: &str) {
    assert_eq!(
        mail.header("List-Unsubscribe"),
        Some(format!("<{base}/account/notices>").as_str())
    );
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    assert!(mail.text.contains("/account/notices"));
}

#[tokio::test]
async fn a_token_revoked_by_an_operator_or_a_leak_report_is_noticed_with_the_reason() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Revoked Co");
    let owner = verified_owner(&app, &smtp, "Revoked Co").await;
    let by_operator = owner.create_token("deploy bot").await;
    let leaked = owner.create_token("pushed to github").await;

    app.cli(&[
        "token",
        "revoke",
        &by_operator.token.key,
        "--reason",
        "seen in a public gist",
    ])
    .await
    .expect("the operator revokes it");
    let mail = smtp.wait_for(&email, "deploy bot was revoked").await;
    assert!(mail.text.contains("seen in a public gist"), "{}", mail.text);
    assert!(mail.text.contains(&by_operator.token.key));
    assert!(
        !mail.text.contains(&by_operator.token.secret),
        "never a secret"
    );
    assert_is_notice(&mail, &app.address);

    let report = json!([{
        "token": leaked.token.secret,
        "type": "keyward_api_token",
        "url": "https://github.com/leaky/repo/blob/main/.env",
        "source": "content"
    }]);
    let answer = app
        .client
        .post(app.url("/secret-scanning/report"))
        .header("content-type", "application/json")
        .body(report.to_string())
        .send()
        .await
        .expect("the server answers");
    assert_eq!(answer.status(), StatusCode::OK);
    let mail = smtp.wait_for(&email, "pushed to github was revoked").await;
    assert!(
        mail.text.contains("a leaked-secret report"),
        "{}",
        mail.text
    );
    assert!(!mail.text.contains(&leaked.token.secret), "never a secret");
}

#[tokio::test]
async fn a_person_who_turned_revocation_notices_off_gets_none() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Quiet Co");
    let owner = verified_owner(&app, &smtp, "Quiet Co").await;
    let quiet = owner.create_token("quiet one").await;
    let loud = owner.create_token("loud one").await;

    choose_notices(&owner, &["expiry_digest"]).await;
    app.cli(&["token", "revoke", &quiet.token.key, "--reason", "r1"])
        .await
        .unwrap();
    choose_notices(&owner, &["expiry_digest", "revocations"]).await;
    app.cli(&["token", "revoke", &loud.token.key, "--reason", "r2"])
        .await
        .unwrap();

    // Mail goes out in the order it was queued: once the second is here, the first
    // would have been too.
    smtp.wait_for(&email, "loud one was revoked").await;
    let about_quiet = smtp
        .messages_to(&email)
        .into_iter()
        .filter(|m| m.subject.contains("quiet one"))
        .count();
    assert_eq!(about_quiet, 0);
    owner
        .get("/account/notices")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("a token of mine is revoked");
}

/// A time `days` from now, as both stores read a timestamp literal.
fn days_from_now(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[tokio::test]
async fn tokens_about_to_expire_come_in_one_digest_each_named_once() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Expiring Co");
    let owner = verified_owner(&app, &smtp, "Expiring Co").await;
    let a = owner.create_token("expires soon a").await;
    let b = owner.create_token("expires soon b").await;
    let later = owner.create_token("expires next month").await;
    execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET expires_at = '{}' WHERE id IN ({}, {});
             UPDATE tokens SET expires_at = '{}' WHERE id = {};",
            days_from_now(3),
            a.id,
            b.id,
            days_from_now(30),
            later.id
        ),
    )
    .await;

    let digest = smtp.wait_for(&email, "expire within a week").await;
    assert!(
        digest.subject.starts_with("2 of your"),
        "{}",
        digest.subject
    );
    assert!(digest.text.contains(&a.token.key) && digest.text.contains(&b.token.key));
    assert!(!digest.text.contains(&later.token.key));
    assert_is_notice(&digest, &app.address);

    // A day later, a third token nears its end: the next digest names it alone.
    let c = owner.create_token("expires soon c").await;
    execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET expires_at = '{}' WHERE id = {};
             UPDATE mail_preferences SET last_expiry_digest_at = '{}';",
            days_from_now(2),
            c.id,
            days_from_now(-2)
        ),
    )
    .await;
    let digests = smtp.wait_for_count(&email, 3).await;
    let second = digests
        .iter()
        .filter(|m| m.subject.contains("expire"))
        .nth(1)
        .expect("a second digest");
    assert!(
        second.subject.starts_with("1 of your"),
        "{}",
        second.subject
    );
    assert!(second.text.contains(&c.token.key));
    assert!(
        !second.text.contains(&a.token.key),
        "a token is named in one digest only"
    );
}

/// Calls the API with `token` from the loopback address `source`.
async fn call_from(app: &TestApp, token: &Token, source: [u8; 4]) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .expect("a client");
    let answer = client
        .get(app.url("/clusters/"))
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_used_from_a_new_address_is_noticed_only_when_asked_for() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    let email = email_for("Roaming Co");
    let owner = verified_owner(&app, &smtp, "Roaming Co").await;
    let quiet = owner.create_token("roams unwatched").await;
    call_from(&app, &quiet.token, [127, 0, 0, 1]).await;
    call_from(&app, &quiet.token, [127, 0, 0, 3]).await;
    // The sweep has looked at the unwatched token's new address before notices go on.
    let looked = eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            count_rows(
                &app,
                "SELECT COUNT(*) FROM address_notices WHERE ip = '127.0.0.3'",
            )
            .await
                == 1
        },
    )
    .await;
    assert!(looked, "the sweep should note the new address");

    choose_notices(&owner, &["expiry_digest", "revocations", "new_ip"]).await;
    let watched = owner.create_token("roams watched").await;
    call_from(&app, &watched.token, [127, 0, 0, 1]).await;
    call_from(&app, &watched.token, [127, 0, 0, 2]).await;

    let mail = smtp
        .wait_for(&email, "roams watched was used from a new address")
        .await;
    assert!(mail.text.contains("127.0.0.2"), "{}", mail.text);
    assert_is_notice(&mail, &app.address);
    let about_first_use = smtp
        .messages_to(&email)
        .iter()
        .filter(|m| m.subject.contains("new address"))
        .count();
    assert_eq!(
        about_first_use, 1,
        "a first use, and an unwatched token, mail nothing"
    );
}
