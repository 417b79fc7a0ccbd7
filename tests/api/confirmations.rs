//! Destructive actions ask first, with counts, and change nothing until confirmed; a
//! suspended account says so on every page, with who suspended it and why; the API's 403
//! names who turned access off.

use reqwest::StatusCode;

use crate::support::admin::{
    SuspendedBy, account_id, assert_api_works, assert_forbidden_page, assert_suspended, call_api,
    join, member_id, member_role, operator, submit,
};
use crate::support::api::spawn_app;
use crate::support::browser::{Browser, PASSWORD, Page, email_for, signed_up};

/// The confirmation page's list of what will happen.
fn consequences(page: &Page) -> String {
    page.assert_html_page(StatusCode::OK);
    let text = page.text();
    let start = text.find("id=\"consequences\"").unwrap_or(0);
    let end = text[start..]
        .find("</ul>")
        .map_or(text.len(), |e| start + e);
    text[start..end].to_string()
}

/// The suspended banner's text, if the page has one.
fn banner(page: &Page) -> Option<String> {
    let text = page.text();
    let start = text.find("id=\"suspended-banner\"")?;
    let end = text[start..].find("</div>")? + start;
    Some(text[start..end].to_string())
}

#[tokio::test]
async fn removing_a_member_first_says_how_many_tokens_will_be_revoked() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Confirm Removal Co").await;
    let email = email_for("confirm removal member");
    let member = join(&owner, &email, "member").await;
    let tokens = [
        member.create_token("one").await,
        member.create_token("two").await,
        member.create_token("three").await,
    ];
    member.revoke(tokens[2].id, "").await;
    let id = member_id(&owner, &email).await;

    let page = owner.get(&format!("/members/{id}/confirm-remove")).await;
    let said = consequences(&page);
    assert!(
        said.contains("2 active tokens of theirs will be revoked"),
        "{said}"
    );
    page.assert_contains(&format!("Remove {email}?"))
        .assert_contains(&format!("action=\"/members/{id}/remove\""));
    // Looking changed nothing.
    assert_api_works(&app, &tokens[0].token).await;
    assert_eq!(member_role(&owner, &email).await.as_deref(), Some("member"));
    // The members page links to the confirmation instead of removing on one click.
    owner
        .get("/members")
        .await
        .assert_contains(&format!("href=\"/members/{id}/confirm-remove\""));
    // A member may not even look.
    assert_forbidden_page(&member.get(&format!("/members/{id}/confirm-remove")).await);
}

#[tokio::test]
async fn lowering_a_role_says_what_they_will_lose() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Confirm Role Co").await;
    let email = email_for("confirm role admin");
    join(&owner, &email, "admin").await;
    let id = member_id(&owner, &email).await;

    let page = owner
        .get(&format!("/members/{id}/confirm-role?role=member"))
        .await;
    let said = consequences(&page);
    assert!(
        said.contains("will no longer be able to see and revoke everyone's tokens"),
        "{said}"
    );
    page.assert_contains("<input type=\"hidden\" name=\"role\" value=\"member\">");
    assert_eq!(member_role(&owner, &email).await.as_deref(), Some("admin"));
    let bad = owner
        .get(&format!("/members/{id}/confirm-role?role=king"))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn ending_other_sessions_says_how_many() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Confirm Sessions Co").await;
    let elsewhere = Browser::new(&app.address);
    elsewhere
        .log_in(&email_for("Confirm Sessions Co"), PASSWORD)
        .await;
    let page = owner.get("/account/sessions/confirm-end-others").await;
    assert!(
        consequences(&page).contains("1 other session will be signed out"),
        "{}",
        page.body
    );
    // Still signed in elsewhere until confirmed.
    elsewhere
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn an_owners_suspension_is_confirmed_shown_on_every_page_and_named_in_the_403() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Owner Off Co").await;
    let member = join(&owner, &email_for("owner off member"), "member").await;
    let token = owner.create_token("ci").await;
    owner.create_token("other").await;

    let page = owner.get("/account/confirm-suspend").await;
    assert!(
        consequences(&page).contains("2 active tokens will get 403"),
        "{}",
        page.body
    );
    assert_api_works(&app, &token.token).await;

    submit(
        &owner,
        "/account/confirm-suspend",
        "/account/api-access",
        &[
            ("state", "suspended"),
            ("reason", "Moving to a new billing plan"),
        ],
    )
    .await
    .assert_redirect("/members");
    assert_suspended(call_api(&app, &token.token).await, SuspendedBy::Owners).await;

    let owner_email = email_for("Owner Off Co");
    for (who, path) in [
        (&owner, "/tokens"),
        (&owner, "/audit"),
        (&member, "/tokens"),
    ] {
        let banner = banner(&who.get(path).await).unwrap_or_default();
        assert!(
            banner.contains("API access is suspended")
                && banner.contains(&format!(
                    "Suspended by {owner_email}: “Moving to a new billing plan”"
                )),
            "{path}: {banner:?}"
        );
    }
    submit(
        &owner,
        "/members",
        "/account/api-access",
        &[("state", "active")],
    )
    .await
    .assert_redirect("/members");
    assert_eq!(banner(&owner.get("/tokens").await), None);
    assert_api_works(&app, &token.token).await;
}

#[tokio::test]
async fn an_operators_suspension_names_the_operator_and_owners_cannot_lift_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Operator Off Co").await;
    let token = owner.create_token("ci").await;
    let op = operator(&app, &email_for("suspending operator")).await;
    let account = account_id(&op, "Operator Off Co").await;

    let page = op
        .get(&format!("/admin/accounts/{account}/confirm-suspend"))
        .await;
    assert!(
        consequences(&page).contains("1 active token will get 403"),
        "{}",
        page.body
    );
    submit(
        &op,
        &format!("/admin/accounts/{account}/confirm-suspend"),
        &format!("/admin/accounts/{account}/api-access"),
        &[("state", "suspended"), ("reason", "Abuse report 42")],
    )
    .await;
    assert_suspended(call_api(&app, &token.token).await, SuspendedBy::Operator).await;

    let banner = banner(&owner.get("/tokens").await).unwrap_or_default();
    assert!(
        banner.contains("Suspended by the operator: “Abuse report 42”"),
        "{banner:?}"
    );
    assert!(!banner.contains("suspending.operator"), "{banner:?}");

    let refused = submit(
        &owner,
        "/members",
        "/account/api-access",
        &[("state", "active")],
    )
    .await;
    assert_forbidden_page(&refused);
    refused.assert_contains("only the operator can restore it");
    assert_suspended(call_api(&app, &token.token).await, SuspendedBy::Operator).await;
    assert!(op.get("/admin").await.status.is_success());
}
