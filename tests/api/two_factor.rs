//! `/account/two-factor`: a person sets up an authenticator app from the secret shown as
//! text and as a QR code, confirms it with a code computed here from that secret, and gets
//! ten recovery codes once. The secret is sealed at rest under a key that is not in the
//! database. Turning it off and new recovery codes need a fresh check (sudo mode), which
//! interrupts the change and then finishes it.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;

use crate::support::admin::{audit_log, count_rows, find_event, submit};
use crate::support::api::{spawn_app, spawn_app_with};
use crate::support::browser::{Browser, PASSWORD, email_for, signed_up};
use crate::support::store::on_postgres;
use crate::support::two_factor::{
    at_second_step, code_for, confirm, enrol, open_setup, recovery_codes, second_step,
    wrong_code_for,
};

#[tokio::test]
async fn the_setup_page_shows_the_secret_as_a_uri_and_a_qr_code_with_a_code_field() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Setup Page").await;
    let email = email_for("Setup Page");

    let setup = open_setup(&owner).await;

    assert_eq!(
        setup.uri,
        format!(
            "otpauth://totp/Keyward:{email}?secret={}&issuer=Keyward",
            setup.secret
        )
    );
    // Base32 carries 5 bits a character: 160 bits or more is 32 characters or more.
    assert!(setup.secret.len() >= 32, "{}", setup.secret);
    assert!(
        setup.page.body.contains("<svg") && setup.page.body.contains("<path"),
        "the QR code is inline SVG"
    );
    assert!(
        !setup.page.body.contains("<?xml"),
        "no XML declaration inside the page"
    );
    assert!(setup.page.body.contains("name=\"code\""));
    // Opening the page again shows the same secret, not a new one each time.
    assert_eq!(open_setup(&owner).await.secret, setup.secret);
}

#[tokio::test]
async fn a_right_code_turns_it_on_and_shows_ten_recovery_codes_once() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Turn On").await;

    let setup = open_setup(&owner).await;
    let done = confirm(&owner, &setup, &code_for(&setup.secret, 0)).await;

    done.assert_html_page(StatusCode::OK);
    let codes = recovery_codes(&done);
    assert_eq!(codes.len(), 10, "{}", done.body);
    for code in &codes {
        let (a, b) = code.split_once('-').expect("xxxxx-xxxxx");
        assert!(
            a.len() == 5
                && b.len() == 5
                && code.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()),
            "{code}"
        );
    }
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "ten different codes: {codes:?}");
    let overview = owner.get("/account/two-factor").await;
    overview.assert_html_page(StatusCode::OK);
    overview.assert_contains("10 of 10 recovery codes left");
    for code in &codes {
        assert!(!overview.body.contains(code.as_str()), "shown once only");
    }
    // Stored hashed: no code appears in the database as text.
    for code in &codes {
        let found = count_rows(
            &app,
            &format!("SELECT COUNT(*) FROM recovery_codes WHERE CAST(code_digest AS TEXT) LIKE '%{code}%'"),
        )
        .await;
        assert_eq!(found, 0, "{code} is stored as text");
    }
    let rows = audit_log(&owner, "").await;
    find_event(&rows, "user.two_factor_enabled", "turn.on@example.test");
}

#[tokio::test]
async fn wrong_malformed_and_mistimed_codes_leave_it_off() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Stays Off").await;
    let setup = open_setup(&owner).await;

    for code in [
        wrong_code_for(&setup.secret),
        "12345".to_string(),
        "abcdef".to_string(),
        code_for(&setup.secret, 5),
        String::new(),
    ] {
        let page = confirm(&owner, &setup, &code).await;
        page.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
        page.assert_contains("That code is not right");
        assert_eq!(page.element_text("totp-secret"), Some(setup.secret.clone()));
    }
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM two_factor WHERE confirmed_at IS NOT NULL"
        )
        .await,
        0
    );
    // The password alone still signs in.
    Browser::new(&app.address)
        .log_in(&email_for("Stays Off"), PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn the_database_alone_holds_no_totp_secret_and_the_key_file_is_0600_beside_it() {
    if on_postgres() {
        // PostgreSQL has no file beside it: the key comes from a setting there.
        return;
    }
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Sealed").await;
    let enrolled = enrol(&owner).await;

    let raw = totp_rs::Secret::Encoded(enrolled.secret.clone())
        .to_bytes()
        .expect("base32");
    let sealed: Vec<u8> = {
        use diesel::prelude::*;
        let mut conn = app.db.connect();
        keyward::db::schema::two_factor::table
            .select(keyward::db::schema::two_factor::totp_sealed)
            .first(&mut conn)
            .expect("one row")
    };
    assert!(sealed.len() > raw.len(), "sealed with a nonce and a tag");
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()));
    assert!(
        !sealed
            .windows(8)
            .any(|w| w == &enrolled.secret.as_bytes()[..8])
    );
    let key_file = format!("{}.key", app.db.path);
    let mode = std::fs::metadata(&key_file)
        .unwrap_or_else(|e| panic!("{key_file}: {e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[tokio::test]
async fn new_recovery_codes_void_the_old_ones() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "New Codes").await;
    let enrolled = enrol(&owner).await;

    let page = submit(
        &owner,
        "/account/two-factor",
        "/account/two-factor/recovery-codes",
        &[],
    )
    .await;
    page.assert_html_page(StatusCode::OK);
    let fresh = recovery_codes(&page);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !enrolled.recovery_codes.contains(c)));

    let email = email_for("New Codes");
    let browser = at_second_step(&app.address, &email).await;
    let old = second_step(&browser, &enrolled.recovery_codes[0]).await;
    old.assert_html_page(StatusCode::UNAUTHORIZED);
    second_step(&browser, &fresh[0])
        .await
        .assert_redirect("/tokens");
    let rows = audit_log(&owner, "").await;
    find_event(
        &rows,
        "user.recovery_codes_regenerated",
        "new.codes@example.test",
    );
    find_event(&rows, "user.recovery_code_used", "new.codes@example.test");
}

#[tokio::test]
async fn turning_it_off_after_the_window_asks_for_the_password_then_finishes() {
    // No check is ever fresh: every sensitive change asks.
    let app = spawn_app_with(|config| config.sudo_window = chrono::Duration::seconds(-1)).await;
    let owner = signed_up(&app.address, "Sudo Off").await;
    let enrolled = enrol(&owner).await;

    let asked = submit(
        &owner,
        "/account/two-factor",
        "/account/two-factor/disable",
        &[],
    )
    .await;
    asked.assert_html_page(StatusCode::OK);
    asked.assert_contains("Confirm it's you");
    assert!(
        asked
            .body
            .contains("action=\"/account/two-factor/disable\"")
    );
    assert!(
        asked.body.contains("name=\"sudo_code\""),
        "a code is offered too"
    );

    let csrf = asked.csrf();
    let wrong = owner
        .post(
            "/account/two-factor/disable",
            &[
                ("csrf_token", &csrf),
                ("sudo_password", "not my password at all"),
            ],
        )
        .await;
    wrong.assert_html_page(StatusCode::UNAUTHORIZED);
    owner
        .get("/account/two-factor")
        .await
        .assert_contains("recovery codes left");

    let done = owner
        .post(
            "/account/two-factor/disable",
            &[("csrf_token", &csrf), ("sudo_password", PASSWORD)],
        )
        .await;
    done.assert_redirect("/account/two-factor");
    owner
        .get("/account/two-factor")
        .await
        .assert_contains("Your password alone signs you in");
    let rows = audit_log(&owner, "").await;
    find_event(&rows, "user.two_factor_disabled", "sudo.off@example.test");
    // Gone with it: the codes no longer exist.
    assert_eq!(
        count_rows(&app, "SELECT COUNT(*) FROM recovery_codes").await,
        0
    );
    drop(enrolled);
}

#[tokio::test]
async fn a_code_from_the_app_also_opens_sudo_mode_and_the_form_comes_through() {
    let app = spawn_app_with(|config| config.sudo_window = chrono::Duration::seconds(-1)).await;
    let owner = signed_up(&app.address, "Sudo Code").await;
    let enrolled = enrol(&owner).await;

    let asked = submit(
        &owner,
        "/account/two-factor",
        "/account/two-factor/recovery-codes",
        &[],
    )
    .await;
    asked.assert_contains("Confirm it's you");
    // The code used to enrol is spent; the next step's is not.
    let page = owner
        .post(
            "/account/two-factor/recovery-codes",
            &[
                ("csrf_token", &asked.csrf()),
                ("sudo_code", &code_for(&enrolled.secret, 1)),
            ],
        )
        .await;
    page.assert_html_page(StatusCode::OK);
    assert_eq!(recovery_codes(&page).len(), 10, "{}", page.body);
}

#[tokio::test]
async fn each_change_is_mailed_to_the_person_and_a_policy_change_to_the_owners() {
    let smtp = crate::support::smtp::SmtpServer::start();
    let app = crate::support::mail::spawn_mailing_app(&smtp).await;
    let owner = crate::support::mail::verified_owner(&app, &smtp, "Mailed Changes").await;
    let email = email_for("Mailed Changes");

    let enrolled = enrol(&owner).await;
    let on = smtp
        .wait_for(&email, "Your Keyward two-factor sign-in changed")
        .await;
    assert!(on.text.contains("turned on"), "{}", on.text);

    let browser = at_second_step(&app.address, &email).await;
    second_step(&browser, &enrolled.recovery_codes[0])
        .await
        .assert_redirect("/tokens");
    let mails = smtp.wait_for_count(&email, 2 + 1).await;
    assert!(
        mails
            .iter()
            .any(|m| m.text.contains("A recovery code was used to sign in; 9")),
        "{:#?}",
        mails.iter().map(|m| &m.text).collect::<Vec<_>>()
    );

    submit(
        &owner,
        "/members",
        "/account/two-factor-policy",
        &[("two_factor", "required")],
    )
    .await
    .assert_redirect("/members");
    let policy = smtp
        .wait_for(
            &email,
            "Mailed Changes changed its two-factor sign-in policy",
        )
        .await;
    assert!(
        policy.text.contains("every member must now sign in"),
        "{}",
        policy.text
    );
}

#[tokio::test]
async fn an_operators_reset_is_mailed_to_the_person_by_a_command_with_the_mail_settings() {
    let smtp = crate::support::smtp::SmtpServer::start();
    let app = crate::support::mail::spawn_mailing_app(&smtp).await;
    let owner = crate::support::mail::verified_owner(&app, &smtp, "Mailed Reset").await;
    let email = email_for("Mailed Reset");
    enrol(&owner).await;
    smtp.wait_for(&email, "Your Keyward two-factor sign-in changed")
        .await;
    let before = smtp.messages_to(&email).len();

    // The operator runs the command with the server's own settings, mail's included.
    let url = smtp.url();
    app.cli(&[
        "--smtp-url",
        &url,
        "--mail-from",
        "Keyward <keys@keyward.test>",
        "user",
        "reset-two-factor",
        &email,
    ])
    .await
    .expect("the command resets her second factors");

    let mails = smtp.wait_for_count(&email, before + 1).await;
    let notice = mails.last().expect("the notice");
    assert!(
        notice.text.contains(
            "Your Keyward operator removed your second factors and signed you out everywhere"
        ),
        "{}",
        notice.text
    );
}
