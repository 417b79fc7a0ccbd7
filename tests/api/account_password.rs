//! `/account/password`: a person changes their password with the current one. Every other
//! browser signed in as them is signed out; a wrong current password, or a new one that
//! breaks the rules, changes nothing.

use reqwest::StatusCode;

use crate::account_sessions::{CHROME_ON_WINDOWS, sessions_of, signed_in_as};
use crate::support::admin::{audit_log, submit};
use crate::support::api::spawn_app;
use crate::support::browser::{
    Browser, CaseFailures, PASSWORD, Page, email_for, refused_form_problems,
};

const NEW_PASSWORD: &str = "a brand new passphrase, twice";

/// Fills in the password form and presses "Change password".
async fn change_password(browser: &Browser, current: &str, new: &str, confirmation: &str) -> Page {
    submit(
        browser,
        "/account/password",
        "/account/password",
        &[
            ("current_password", current),
            ("password", new),
            ("password_confirmation", confirmation),
        ],
    )
    .await
}

/// Whether a fresh browser signs in as `email` with `password`.
async fn can_sign_in(address: &str, email: &str, password: &str) -> bool {
    let page = Browser::new(address).log_in(email, password).await;
    match page.status {
        StatusCode::SEE_OTHER => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("sign-in answered {other}: {}", page.body),
    }
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_browser_and_only_the_new_one_works() {
    let app = spawn_app().await;
    let email = email_for("Rotating Owner");
    let laptop = Browser::new(&app.address);
    laptop.sign_up("Rotating Owner", &email).await;
    let phone = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;

    change_password(&laptop, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .assert_redirect("/account/sessions");

    laptop
        .get("/account/sessions")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Your password was changed, and your 1 other session was signed out.");
    phone.get("/tokens").await.assert_redirect("/login");
    let left = sessions_of(&laptop).await;
    assert!(
        left.len() == 1 && left[0].current,
        "only the session that changed the password is left: {left:?}"
    );
    assert!(can_sign_in(&app.address, &email, NEW_PASSWORD).await);
    assert!(!can_sign_in(&app.address, &email, PASSWORD).await);
}

#[tokio::test]
async fn a_wrong_current_password_is_a_clear_error_and_changes_nothing() {
    let app = spawn_app().await;
    let email = email_for("Forgetful Owner");
    let laptop = Browser::new(&app.address);
    laptop.sign_up("Forgetful Owner", &email).await;
    let phone = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;

    let page = change_password(
        &laptop,
        "not my password at all",
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;

    let problems = refused_form_problems(&page, "That is not your current password.", &[]);
    assert!(problems.is_empty(), "{problems:?}; body:\n{}", page.body);
    phone.get("/tokens").await.assert_html_page(StatusCode::OK);
    assert_eq!(sessions_of(&laptop).await.len(), 2);
    assert!(can_sign_in(&app.address, &email, PASSWORD).await);
    assert!(!can_sign_in(&app.address, &email, NEW_PASSWORD).await);
}

#[tokio::test]
async fn a_new_password_that_breaks_the_rules_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let email = email_for("Careless Owner");
    let laptop = Browser::new(&app.address);
    laptop.sign_up("Careless Owner", &email).await;
    let phone = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;

    let cases = [
        ("too short", "short", "short", "at least 12 characters"),
        (
            "confirmation differs",
            NEW_PASSWORD,
            "a different passphrase",
            "The two new passwords don't match.",
        ),
    ];
    let mut failures = CaseFailures::default();
    for (label, new, confirmation, message) in cases {
        let page = change_password(&laptop, PASSWORD, new, confirmation).await;
        let problems = refused_form_problems(&page, message, &[]);
        failures.record(label, problems, &page);
    }
    failures.assert_none("expected the form again, saying what to fix");

    phone.get("/tokens").await.assert_html_page(StatusCode::OK);
    assert!(can_sign_in(&app.address, &email, PASSWORD).await);
}

#[tokio::test]
async fn changing_the_password_renews_this_sessions_id_so_a_stolen_copy_is_signed_out() {
    let app = spawn_app().await;
    let email = email_for("Stolen Cookie");
    let laptop = Browser::new(&app.address);
    laptop.sign_up("Stolen Cookie", &email).await;

    // Ending other sessions is in the account's log.
    let _phone = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;
    let ended = submit(
        &laptop,
        "/account/sessions",
        "/account/sessions/end-others",
        &[],
    )
    .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    let ended = audit_log(&laptop, "?action=user.session_ended").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0].detail.contains("1 other session"), "{ended:?}");

    let stolen = laptop.session_cookie().expect("a session cookie");
    let thief = Browser::with_session_cookie(&app.address, &stolen);
    thief.get("/tokens").await.assert_html_page(StatusCode::OK);

    change_password(&laptop, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .assert_redirect("/account/sessions");
    let renewed = laptop.session_cookie().expect("a session cookie");
    assert_ne!(renewed, stolen, "the session has a new id");
    laptop.get("/tokens").await.assert_html_page(StatusCode::OK);
    thief.get("/tokens").await.assert_redirect("/login");
    assert_eq!(sessions_of(&laptop).await.len(), 1);

    let changed = audit_log(&laptop, "?action=user.password_changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].actor, email);
}
