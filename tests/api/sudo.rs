//! Sudo mode on the changes it guards besides the second factor's own (`two_factor.rs`): a
//! token that can make tokens, a member's role and removal, and the token lifetime. Past
//! the window, each stops at "Confirm it's you", which carries the form, and finishes once
//! the password is given; a wrong password changes nothing.

use reqwest::StatusCode;

use crate::support::admin::{join, member_id, member_role, set_role};
use crate::support::api::spawn_app_with;
use crate::support::browser::{Browser, PASSWORD, Page, email_for, read_created_page, signed_up};

/// A server where no check is ever fresh, so every guarded change asks.
async fn always_asking() -> crate::support::api::TestApp {
    spawn_app_with(|config| config.sudo_window = chrono::Duration::seconds(-1)).await
}

/// Answers the "Confirm it's you" page with `password`, sending back what it carries.
async fn confirm_with(browser: &Browser, asked: &Page, action: &str, password: &str) -> Page {
    asked.assert_contains("Confirm it's you");
    let mut fields: Vec<(String, String)> = Vec::new();
    // The fields of the confirmation form alone, as the browser sends them.
    let form = format!("<form method=\"post\" action=\"{action}\"");
    let start = asked.body.find(&form).expect("the confirmation form");
    let body = &asked.body[start..];
    let mut rest = &body[..body.find("</form>").unwrap_or(body.len())];
    while let Some(at) = rest.find("<input type=\"hidden\" name=\"") {
        let tag = &rest[at..];
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let name = tag
            .split("name=\"")
            .nth(1)
            .and_then(|t| t.split('"').next());
        let value = tag
            .split("value=\"")
            .nth(1)
            .and_then(|t| t.split('"').next());
        if let (Some(name), Some(value)) = (name, value) {
            fields.push((name.to_string(), crate::support::browser::unescape(value)));
        }
        rest = &rest[at + 1..];
    }
    fields.push(("sudo_password".into(), password.into()));
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post(action, &borrowed).await
}

#[tokio::test]
async fn a_token_with_the_tokens_scope_asks_first_and_is_then_made_from_the_same_form() {
    let app = always_asking().await;
    let owner = signed_up(&app.address, "Sudo Tokens").await;

    // Read and write alone don't ask.
    owner.create_token("plain").await;

    let form = owner.token_form().await;
    let asked = owner
        .submit_token(&form, "token maker", &["read", "tokens"], "")
        .await;
    asked.assert_html_page(StatusCode::OK);
    assert!(
        asked.body.contains(&form.nonce),
        "the form's nonce is carried"
    );

    let wrong = confirm_with(&owner, &asked, "/tokens", "not the password at all").await;
    wrong.assert_html_page(StatusCode::UNAUTHORIZED);
    let made = confirm_with(&owner, &asked, "/tokens", PASSWORD).await;
    made.assert_html_page(StatusCode::OK);
    let created = read_created_page(&made);
    assert!(created.token.secret.starts_with("kws_"));
    let list = owner.get("/tokens").await;
    list.assert_contains("token maker");
}

#[tokio::test]
async fn a_role_change_and_a_removal_ask_first_then_finish() {
    let app = always_asking().await;
    let owner = signed_up(&app.address, "Sudo Roles").await;
    let email = email_for("sudo roles member");
    join(&owner, &email, "member").await;
    let id = member_id(&owner, &email).await;

    let asked = set_role(&owner, id, "admin").await;
    assert_eq!(member_role(&owner, &email).await.as_deref(), Some("member"));
    confirm_with(&owner, &asked, &format!("/members/{id}/role"), PASSWORD)
        .await
        .assert_redirect("/members");
    assert_eq!(member_role(&owner, &email).await.as_deref(), Some("admin"));

    let csrf = owner.csrf_from("/members").await;
    let asked = owner
        .post(&format!("/members/{id}/remove"), &[("csrf_token", &csrf)])
        .await;
    confirm_with(&owner, &asked, &format!("/members/{id}/remove"), PASSWORD)
        .await
        .assert_redirect("/members");
    assert_eq!(member_role(&owner, &email).await, None);
}

#[tokio::test]
async fn the_token_lifetime_asks_first_then_finishes() {
    let app = always_asking().await;
    let owner = signed_up(&app.address, "Sudo Lifetime").await;

    let csrf = owner.csrf_from("/account/token-lifetime").await;
    let asked = owner
        .post(
            "/account/token-lifetime",
            &[("csrf_token", &csrf), ("max_days", "30")],
        )
        .await;
    confirm_with(&owner, &asked, "/account/token-lifetime", PASSWORD)
        .await
        .assert_redirect("/account/token-lifetime");
    owner
        .get("/account/token-lifetime")
        .await
        .assert_contains("30 days");
}
