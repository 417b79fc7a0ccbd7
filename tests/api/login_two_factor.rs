//! `/login/two-factor`: after a right password, a person with a second factor gets no
//! session, but a step of 5 minutes bound to a cookie of its own, which takes a code from
//! their app (computed here from the secret they were shown) or a recovery code. A used
//! code is refused, 5 wrong ones end the step, and another browser can't finish it.

use reqwest::StatusCode;

use crate::support::admin::{audit_log, count_rows, execute_sql, find_event};
use crate::support::api::spawn_app;
use crate::support::browser::{
    Browser, CaseFailures, PASSWORD, email_for, html_page_problem, signed_up,
};
use crate::support::two_factor::{
    Enrolled, at_second_step, code_for, enrol, second_step, wrong_code_for,
};

/// The pending step's cookie over plain HTTP.
const STEP_COOKIE: &str = "keyward_sign_in";

/// A server with one person who has set up an authenticator app.
async fn enrolled(label: &str) -> (crate::support::api::TestApp, String, Enrolled) {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, label).await;
    let enrolled = enrol(&owner).await;
    (app, email_for(label), enrolled)
}

async fn assert_signed_out(browser: &Browser) {
    browser.get("/tokens").await.assert_redirect("/login");
}

#[tokio::test]
async fn a_right_password_alone_starts_no_session_and_a_code_finishes_the_sign_in() {
    let (app, email, enrolled) = enrolled("Two Steps").await;
    let browser = Browser::new(&app.address);

    let after_password = browser.log_in(&email, PASSWORD).await;

    after_password.assert_redirect("/login/two-factor");
    assert!(
        after_password.session_set_cookie().is_none(),
        "no session yet"
    );
    let step = after_password
        .set_cookie(STEP_COOKIE)
        .expect("the step's own cookie");
    assert!(step.attribute("httponly").is_some());
    assert_eq!(step.attribute("samesite"), Some(Some("Strict")));
    assert_signed_out(&browser).await;
    let page = browser.get("/login/two-factor").await;
    page.assert_html_page(StatusCode::OK);
    assert!(page.body.contains("name=\"code\""));

    // The code used to enrol is spent; the app's next one is not.
    let done = second_step(&browser, &code_for(&enrolled.secret, 1)).await;

    done.assert_redirect("/tokens");
    assert!(done.session_set_cookie().is_some(), "a session starts now");
    let removed = done
        .set_cookie(STEP_COOKIE)
        .expect("the step's cookie is dropped");
    assert!(removed.value.is_empty());
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);
    // The session is an ordinary one: its forms carry its CSRF token and work.
    browser
        .log_out()
        .await
        .assert_redirect("/login?signed_out=1");
}

#[tokio::test]
async fn the_sign_in_is_recorded_after_the_second_step_not_the_password() {
    let (app, email, enrolled) = enrolled("Recorded").await;
    let succeeded = "SELECT COUNT(*) FROM audit_events WHERE action = 'login.succeeded'";
    let failed = "SELECT COUNT(*) FROM audit_events WHERE action = 'login.failed'";
    let before = count_rows(&app, succeeded).await;

    let browser = at_second_step(&app.address, &email).await;
    assert_eq!(
        count_rows(&app, succeeded).await,
        before,
        "not at the password"
    );
    second_step(&browser, &wrong_code_for(&enrolled.secret)).await;
    assert_eq!(
        count_rows(&app, failed).await,
        1,
        "a wrong code is a failed sign-in"
    );
    second_step(&browser, &code_for(&enrolled.secret, 1))
        .await
        .assert_redirect("/tokens");

    assert_eq!(count_rows(&app, succeeded).await, before + 1);
    let rows = audit_log(&browser, "?action=login.succeeded").await;
    find_event(&rows, "login.succeeded", &email);
}

#[tokio::test]
async fn a_used_code_is_refused_even_within_its_step() {
    let (app, email, enrolled) = enrolled("Replay").await;
    let code = code_for(&enrolled.secret, 1);
    let first = at_second_step(&app.address, &email).await;
    second_step(&first, &code).await.assert_redirect("/tokens");

    let second = at_second_step(&app.address, &email).await;
    let replayed = second_step(&second, &code).await;

    replayed.assert_html_page(StatusCode::UNAUTHORIZED);
    replayed.assert_contains("That code is not right");
    assert_signed_out(&second).await;
    // The code used to enrol, within its own step, is refused the same way.
    let enrol_code = code_for(&enrolled.secret, 0);
    second_step(&second, &enrol_code)
        .await
        .assert_html_page(StatusCode::UNAUTHORIZED);
    assert_signed_out(&second).await;
}

#[tokio::test]
async fn wrong_malformed_and_wrong_length_codes_get_the_same_refusal() {
    let (app, email, enrolled) = enrolled("Bad Codes").await;
    let mut failures = CaseFailures::default();
    let cases: [(&str, String); 9] = [
        ("wrong digits", wrong_code_for(&enrolled.secret)),
        ("five digits", "12345".into()),
        ("seven digits", "1234567".into()),
        ("letters", "abcdef".into()),
        ("empty", String::new()),
        ("a long string", "9".repeat(5000)),
        ("a recovery code's shape, unknown", "abcde-fghjk".into()),
        ("control characters", "12\u{0}456".into()),
        ("full-width digits", "１２３４５６".into()),
    ];
    for (n, (label, code)) in (10u8..).zip(cases) {
        // A step of its own for each (5 wrong codes end a step), from an address of its
        // own (5 failures from one address and email slow the next try).
        let browser = Browser::from_source(&app.address, [127, 0, 0, n]);
        browser
            .log_in(&email, PASSWORD)
            .await
            .assert_redirect("/login/two-factor");
        let page = second_step(&browser, &code).await;
        let mut problems: Vec<String> = html_page_problem(&page, StatusCode::UNAUTHORIZED)
            .into_iter()
            .collect();
        if !page
            .text()
            .contains("That code is not right. Type the 6 digits")
        {
            problems.push("not the same refusal".into());
        }
        if browser.get("/tokens").await.status != StatusCode::SEE_OTHER {
            problems.push("signed in".into());
        }
        failures.record(label, problems, &page);
    }
    failures.assert_none("a bad code at the second step");
}

#[tokio::test]
async fn five_wrong_codes_end_the_step_and_then_even_the_right_code_fails() {
    let (app, email, enrolled) = enrolled("Five Wrong").await;
    let browser = at_second_step(&app.address, &email).await;
    let wrong = wrong_code_for(&enrolled.secret);
    for _ in 0..4 {
        second_step(&browser, &wrong)
            .await
            .assert_html_page(StatusCode::UNAUTHORIZED);
    }
    second_step(&browser, &wrong)
        .await
        .assert_redirect("/login?second_step=ended");

    let csrf = browser.csrf_from("/login").await;
    let right = browser
        .post(
            "/login/two-factor",
            &[
                ("csrf_token", &csrf),
                ("code", &code_for(&enrolled.secret, 1)),
            ],
        )
        .await;
    right.assert_redirect("/login?second_step=ended");
    assert_signed_out(&browser).await;
    browser
        .get("/login?second_step=ended")
        .await
        .assert_contains("Sign in again with your password");
}

#[tokio::test]
async fn the_step_cannot_be_carried_to_another_browser() {
    let (app, email, enrolled) = enrolled("Other Browser").await;
    let _started = at_second_step(&app.address, &email).await;

    let other = Browser::new(&app.address);
    other
        .get("/login/two-factor")
        .await
        .assert_redirect("/login?second_step=ended");
    let csrf = other.csrf_from("/login").await;
    let page = other
        .post(
            "/login/two-factor",
            &[
                ("csrf_token", &csrf),
                ("code", &code_for(&enrolled.secret, 1)),
            ],
        )
        .await;
    page.assert_redirect("/login?second_step=ended");
    assert_signed_out(&other).await;
    assert!(other.session_cookie().is_none());
}

#[tokio::test]
async fn the_step_lives_five_minutes() {
    let (app, email, enrolled) = enrolled("Too Slow").await;
    let browser = at_second_step(&app.address, &email).await;
    // Five minutes pass.
    execute_sql(&app, "UPDATE pending_sign_ins SET expires_at = created_at").await;

    let late = second_step_without_form(&browser, &code_for(&enrolled.secret, 1)).await;

    late.assert_redirect("/login?second_step=ended");
    assert_signed_out(&browser).await;
}

/// Posts a code without opening the page first (which would already send the browser away).
async fn second_step_without_form(browser: &Browser, code: &str) -> crate::support::browser::Page {
    let csrf = browser.csrf_from("/login").await;
    browser
        .post(
            "/login/two-factor",
            &[("csrf_token", &csrf), ("code", code)],
        )
        .await
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let (app, email, enrolled) = enrolled("Recovery Once").await;
    let code = enrolled.recovery_codes[3].clone();

    let first = at_second_step(&app.address, &email).await;
    // Typed in capitals, without its dash: still the code.
    second_step(&first, &code.to_uppercase().replace('-', ""))
        .await
        .assert_redirect("/tokens");

    let again = at_second_step(&app.address, &email).await;
    second_step(&again, &code)
        .await
        .assert_html_page(StatusCode::UNAUTHORIZED);
    assert_signed_out(&again).await;
    let rows = audit_log(&first, "?action=user.recovery_code_used").await;
    let used = find_event(&rows, "user.recovery_code_used", &email);
    assert!(used.detail.contains("9 left"), "{used:?}");
    let overview = first.get("/account/two-factor").await;
    overview.assert_contains("9 of 10 recovery codes left");
}
