//! The outbox and its sender, against a real SMTP server: a mail queued with the change
//! that causes it, delivered after an outage, never blocking on a message that can't go,
//! over STARTTLS or smtps with a CA file, and sent once by several instances.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::admin::{count_rows, execute_sql, operator};
use crate::support::api::{eventually, spawn_app_at, spawn_app_with};
use crate::support::browser::{Browser, PASSWORD, email_for};
use crate::support::mail::{spawn_mailing_app, verified_owner};
use crate::support::smtp::{Protection, SmtpServer};
use crate::support::store::TestDb;

/// Waits until a try has failed and its reason is kept, the message still unsent.
async fn wait_for_a_failed_try(app: &crate::support::api::TestApp) {
    let tried = eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            count_rows(
                app,
                "SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL AND sent_at IS NULL",
            )
            .await
                > 0
        },
    )
    .await;
    assert!(tried, "the sender should have tried, and failed, by now");
}

#[tokio::test]
async fn a_sign_up_during_an_smtp_outage_is_mailed_when_the_server_is_back() {
    let mut smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    smtp.stop();

    let email = email_for("Outage Co");
    Browser::new(&app.address)
        .submit_signup("Outage Co", &email, PASSWORD, PASSWORD)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Check your inbox");
    wait_for_a_failed_try(&app).await;
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL AND failed_at IS NULL"
        )
        .await,
        1,
        "the failed try is kept for a retry, with its reason"
    );

    smtp.restart();
    let mail = smtp.wait_for(&email, "Verify your email address").await;
    assert!(mail.text.contains("/verify-email/"));
    assert_eq!(smtp.messages_to(&email).len(), 1);
}

#[tokio::test]
async fn a_message_that_cannot_go_is_failed_with_its_reason_and_the_rest_still_go() {
    let smtp = SmtpServer::start();
    let app = spawn_mailing_app(&smtp).await;
    // Rows the sender can't use: a payload no template renders, an address the server
    // refuses for good. Queued first, so they are in front of the good mail.
    execute_sql(
        &app,
        "INSERT INTO outbox (kind, recipient, payload, message_id, created_at, next_attempt_at, attempts) VALUES
         ('mystery', 'someone@example.test', '{\"kind\":\"mystery\"}', '<m1@t>', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0),
         ('password_changed', 'refused@example.test', '{\"kind\":\"password_changed\"}', '<m2@t>', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0);",
    )
    .await;
    let owner = verified_owner(&app, &smtp, "Unblocked Co").await;
    drop(owner);

    let failed = eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            count_rows(
                &app,
                "SELECT COUNT(*) FROM outbox WHERE failed_at IS NOT NULL",
            )
            .await
                == 2
        },
    )
    .await;
    assert!(
        failed,
        "both unusable messages are failed, not retried for ever"
    );
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM outbox WHERE failed_at IS NOT NULL AND attempts = 1"
        )
        .await,
        2,
        "a refusal for good is not retried"
    );

    let console = operator(&app, "ops@example.test").await.get("/admin").await;
    console
        .assert_html_page(StatusCode::OK)
        .assert_contains("Failed mail")
        .assert_contains("refused@example.test")
        .assert_contains("550")
        .assert_contains("the message can't be read");
}

#[tokio::test]
async fn starttls_with_a_sign_in_and_a_ca_file_for_a_self_signed_certificate() {
    let smtp = SmtpServer::start_with(Protection::StartTls, Some(("keyward", "relay-pass-1")));
    let app = spawn_mailing_app(&smtp).await;
    let owner = verified_owner(&app, &smtp, "Tls Co").await;
    drop(owner);
    let mail = smtp.messages_to(&email_for("Tls Co"));
    assert_eq!(mail[0].login, "keyward", "the relay's sign-in was used");
}

#[tokio::test]
async fn smtps_with_a_ca_file_for_a_self_signed_certificate() {
    let smtp = SmtpServer::start_with(Protection::Smtps, Some(("keyward", "relay-pass-2")));
    let app = spawn_mailing_app(&smtp).await;
    verified_owner(&app, &smtp, "Smtps Co").await;
}

#[tokio::test]
async fn without_the_ca_file_a_self_signed_relay_is_not_trusted() {
    let smtp = SmtpServer::start_with(Protection::StartTls, None);
    let mut settings = smtp.settings();
    settings.ca_pem = None;
    let app = spawn_app_with(move |config| config.mail = Some(settings)).await;
    let email = email_for("Untrusting Co");
    Browser::new(&app.address)
        .submit_signup("Untrusting Co", &email, PASSWORD, PASSWORD)
        .await
        .assert_status(StatusCode::OK);
    wait_for_a_failed_try(&app).await;
    assert!(
        smtp.messages().is_empty(),
        "nothing goes to a relay whose certificate isn't trusted"
    );
}

#[tokio::test]
async fn a_change_that_rolls_back_queues_no_mail() {
    use keyward::db::{outbox, tx};
    use keyward::domain::{Email, Mail};
    use keyward::error::AppError;
    let db = TestDb::new();
    keyward::db::migrate(&keyward::domain::DatabaseUrl::parse(&db.path).unwrap()).unwrap();
    let mut conn = db.connect();
    let to = Email::parse("someone@example.test").unwrap();
    let rolled_back = tx::transact(&mut conn, &tx::Principal::System, None, |tx| {
        outbox::enqueue(tx.conn, &to, &Mail::PasswordChanged {})?;
        Err::<(), _>(AppError::invalid("the change fails after queuing its mail"))
    });
    assert!(rolled_back.is_err());
    tx::transact(&mut conn, &tx::Principal::System, None, |tx| {
        outbox::enqueue(tx.conn, &to, &Mail::PasswordChanged {})
    })
    .unwrap();
    assert_eq!(
        outbox::due(&mut conn, keyward::db::now(), 10)
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn two_instances_on_one_postgres_send_each_message_once() {
    crate::postgres_only!("several instances share one PostgreSQL database");
    let smtp = SmtpServer::start();
    let first_settings = smtp.settings();
    let second_settings = smtp.settings();
    let a = spawn_app_with(move |config| config.mail = Some(first_settings)).await;
    let _second = spawn_app_at(TestDb::new(), &a.db.path, move |config| {
        config.mail = Some(second_settings)
    })
    .await;
    let recipients: Vec<String> = (0..30).map(|i| format!("reader{i}@example.test")).collect();
    let values: Vec<String> = recipients
        .iter()
        .enumerate()
        .map(|(i, to)| {
            format!("('password_changed', '{to}', '{{\"kind\":\"password_changed\"}}', '<pg{i}@t>', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)")
        })
        .collect();
    execute_sql(
        &a,
        &format!(
            "INSERT INTO outbox (kind, recipient, payload, message_id, created_at, next_attempt_at, attempts) VALUES {};",
            values.join(",")
        ),
    )
    .await;
    for to in &recipients {
        smtp.wait_for_count(to, 1).await;
    }
    // Both senders have had many rounds since; still one each.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for to in &recipients {
        assert_eq!(smtp.messages_to(to).len(), 1, "{to} got its message once");
    }
    assert_eq!(
        count_rows(&a, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").await,
        0
    );
}

#[tokio::test]
async fn a_claimed_message_is_sent_by_one_sender_and_a_dead_senders_claim_runs_out() {
    use keyward::db::outbox;
    use keyward::domain::{Email, Mail};
    let db = TestDb::new();
    keyward::db::migrate(&keyward::domain::DatabaseUrl::parse(&db.path).unwrap()).unwrap();
    let mut conn = db.connect();
    let to = Email::parse("once@example.test").unwrap();
    outbox::enqueue(&mut conn, &to, &Mail::PasswordChanged {}).unwrap();
    let id = outbox::due(&mut conn, keyward::db::now(), 10).unwrap()[0];

    let now = keyward::db::now();
    let minute = chrono::Duration::minutes(1);
    assert!(
        outbox::claim(&mut conn, id, now, now + minute)
            .unwrap()
            .is_some()
    );
    assert!(
        outbox::claim(&mut conn, id, now, now + minute)
            .unwrap()
            .is_none(),
        "a second sender can't take a live claim"
    );
    assert!(outbox::due(&mut conn, now, 10).unwrap().is_empty());
    // The first sender was killed mid-send: once its claim runs out, the message goes
    // again (twice, never zero times).
    let later = now + minute * 2;
    assert_eq!(outbox::due(&mut conn, later, 10).unwrap(), vec![id]);
    let again = outbox::claim(&mut conn, id, later, later + minute).unwrap();
    assert_eq!(again.map(|row| row.attempts), Some(2));
    outbox::mark_sent(&mut conn, id, later).unwrap();
    assert!(
        outbox::due(&mut conn, later + minute * 10, 10)
            .unwrap()
            .is_empty()
    );
}
