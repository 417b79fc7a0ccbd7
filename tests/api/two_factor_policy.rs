//! `/account/two-factor-policy`: an owner requires a second factor of every member. A member
//! without one is sent to set it up and reaches no page of the account until they do; their
//! tokens keep working; the members page shows who has one. The operator console needs a
//! second factor too.

use reqwest::StatusCode;

use crate::support::admin::{
    assert_api_works, audit_log, find_event, join, members_page, operator, submit,
};
use crate::support::api::{spawn_app, spawn_app_with};
use crate::support::browser::{Browser, PASSWORD, email_for, signed_up};
use crate::support::two_factor::enrol;

/// Presses "Require two-factor sign-in" (or "Stop requiring it") on the members page.
async fn set_policy(owner: &Browser, value: &str) -> crate::support::browser::Page {
    submit(
        owner,
        "/members",
        "/account/two-factor-policy",
        &[("two_factor", value)],
    )
    .await
}

#[tokio::test]
async fn a_member_without_a_second_factor_is_sent_to_set_one_up_and_sees_nothing_else() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Policy Co").await;
    enrol(&owner).await;
    let member = join(&owner, &email_for("policy member"), "member").await;
    let token = member.create_token("member's token").await;

    set_policy(&owner, "required")
        .await
        .assert_redirect("/members");

    for path in [
        "/tokens",
        "/tokens/new",
        "/account/clusters",
        "/members",
        "/audit",
    ] {
        member
            .get(path)
            .await
            .assert_redirect("/account/two-factor/setup");
    }
    // A form post is stopped too, before it changes anything.
    let csrf = member.csrf_from("/account/two-factor").await;
    member
        .post(
            "/tokens",
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "made while blocked"),
                ("read", "on"),
                ("nonce", "0123456789abcdef0123456789abcdef"),
            ],
        )
        .await
        .assert_redirect("/account/two-factor/setup");
    // Their own pages still open: where they set it up, and their sessions.
    member
        .get("/account/sessions")
        .await
        .assert_html_page(StatusCode::OK);
    // Their tokens keep working.
    assert_api_works(&app, &token.token).await;

    enrol(&member).await;
    member.get("/tokens").await.assert_html_page(StatusCode::OK);

    let rows = audit_log(&owner, "").await;
    find_event(&rows, "account.two_factor_policy_set", "Policy Co");
}

#[tokio::test]
async fn the_members_page_shows_who_has_a_second_factor() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Who Has It").await;
    enrol(&owner).await;
    join(&owner, &email_for("who has it member"), "member").await;

    let page = members_page(&owner).await;

    let row_of = |email: &str| {
        let at = page
            .body
            .find(&format!("data-label=\"Email\">{email}"))
            .unwrap_or_else(|| panic!("{email} listed"));
        let row = &page.body[at..];
        row[..row.find("</tr>").unwrap_or(row.len())].to_string()
    };
    let owner_row = row_of(&email_for("Who Has It"));
    let member_row = row_of(&email_for("who has it member"));
    assert!(
        owner_row.contains("data-label=\"Two-factor\"><span class=\"badge badge-active\">on"),
        "{owner_row}"
    );
    assert!(
        member_row.contains("data-label=\"Two-factor\"><span class=\"badge badge-suspended\">off"),
        "{member_row}"
    );
}

#[tokio::test]
async fn only_an_owner_sets_the_policy_and_after_a_fresh_check() {
    let app = spawn_app_with(|config| config.sudo_window = chrono::Duration::seconds(-1)).await;
    let owner = signed_up(&app.address, "Policy Sudo").await;
    let admin = join(&owner, &email_for("policy sudo admin"), "admin").await;

    let refused = set_policy(&admin, "required").await;
    refused.assert_html_page(StatusCode::FORBIDDEN);

    for bad in ["", "always", "REQUIRED"] {
        let page = submit(
            &owner,
            "/account/two-factor",
            "/account/two-factor-policy",
            &[("two_factor", bad)],
        )
        .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
    }
    let asked = set_policy(&owner, "required").await;
    asked.assert_contains("Confirm it's you");
    assert!(
        asked
            .body
            .contains("name=\"two_factor\" value=\"required\""),
        "the form is carried"
    );
    let done = owner
        .post(
            "/account/two-factor-policy",
            &[
                ("csrf_token", &asked.csrf()),
                ("two_factor", "required"),
                ("sudo_password", PASSWORD),
            ],
        )
        .await;
    done.assert_redirect("/members");
    // The owner has no second factor either: they are sent to set one up.
    owner
        .get("/members")
        .await
        .assert_redirect("/account/two-factor/setup");
}

#[tokio::test]
async fn the_operator_console_needs_a_second_factor() {
    let app = spawn_app().await;
    // The helper sets one up; a bare operator is sent to do so.
    let _with = operator(&app, &email_for("console operator")).await;
    let database = app.db.path.clone();
    let email = email_for("bare operator");
    let args_email = email.clone();
    tokio::task::spawn_blocking(move || {
        crate::support::api::keyward_cli(
            &database,
            &["operator", "create", "--email", &args_email],
            &format!("{PASSWORD}\n"),
        )
    })
    .await
    .expect("the CLI task")
    .expect("an operator is made");
    let bare = Browser::new(&app.address);
    bare.log_in(&email, PASSWORD)
        .await
        .assert_redirect("/admin");

    bare.get("/admin")
        .await
        .assert_redirect("/account/two-factor/setup");
    let enrolled = enrol(&bare).await;
    assert_eq!(enrolled.recovery_codes.len(), 10);
    bare.get("/admin").await.assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn a_member_of_an_account_that_requires_it_cannot_turn_it_off() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Keeps It On").await;
    enrol(&owner).await;
    set_policy(&owner, "required")
        .await
        .assert_redirect("/members");

    let refused = submit(
        &owner,
        "/account/two-factor",
        "/account/two-factor/disable",
        &[],
    )
    .await;

    refused.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("Keeps It On requires two-factor sign-in of its members");
    owner
        .get("/account/two-factor")
        .await
        .assert_contains("recovery codes left");
}
