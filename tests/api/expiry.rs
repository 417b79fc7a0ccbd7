//! Expiry that people see coming: every successful API answer names the token's expiry in
//! `Keyward-Token-Expires`, and `/tokens` warns of tokens that end within a week, each
//! with a link to roll it.

use reqwest::StatusCode;

use crate::support::admin::join;
use crate::support::api::{expect_json, spawn_app};
use crate::support::browser::{Browser, CreatedToken, email_for, read_created_page, signed_up};

const HEADER: &str = "keyward-token-expires";

#[tokio::test]
async fn every_successful_answer_names_the_tokens_expiry() {
    let app = spawn_app().await;
    let account = app.create_account("Expiring Co").await;
    let token = app
        .create_token_with(
            &account,
            "quarterly",
            "read,write",
            &["--expires-in-days", "90"],
        )
        .await;

    let described = expect_json(app.get_with_auth("/token", &token).await, StatusCode::OK).await;
    let expires_at = described["token"]["expires_at"]
        .as_str()
        .expect("GET /token shows the expiry")
        .to_string();
    let parsed = chrono::DateTime::parse_from_rfc3339(&expires_at).expect("RFC 3339");
    assert!(parsed > chrono::Utc::now() + chrono::Duration::days(89));

    for path in ["/token", "/plans", "/clusters/"] {
        let response = app.get_with_auth(path, &token).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers().get(HEADER).and_then(|v| v.to_str().ok()),
            Some(expires_at.as_str()),
            "{path} should name the expiry"
        );
    }
    // A refusal is not a successful answer, and carries no expiry.
    let refused = app.get_with_auth("/clusters/no-such-cluster", &token).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert!(refused.headers().get(HEADER).is_none());
}

#[tokio::test]
async fn a_token_without_an_expiry_gets_no_expiry_header() {
    let app = spawn_app().await;
    let (_, token) = app.account_with_token("Forever Co").await;

    let response = app.get_with_auth("/plans", &token).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(HEADER).is_none());
}

#[tokio::test]
async fn the_header_follows_a_roll_that_shortens_the_old_tokens_life() {
    let app = spawn_app().await;
    let (_, old) = app.account_with_token("Rolling Header").await;
    app.cli(&["token", "roll", &old.key, "--grace", "7d"])
        .await
        .expect("token roll");

    let response = app.get_with_auth("/plans", &old).await;

    let header = response
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(chrono::DateTime::parse_from_rfc3339)
        .expect("the old token now expires")
        .expect("RFC 3339");
    assert!(header <= chrono::Utc::now() + chrono::Duration::days(7));
}

async fn token_expiring_in(browser: &Browser, name: &str, days: &str) -> CreatedToken {
    let form = browser.token_form().await;
    read_created_page(&browser.submit_token(&form, name, &["read"], days).await)
}

/// The part of `/tokens` that warns of expiring tokens, or "" when there is none.
async fn expiring_notice(browser: &Browser) -> String {
    let page = browser.get("/tokens").await;
    page.assert_html_page(StatusCode::OK);
    page.body
        .split("id=\"expiring-soon\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn tokens_that_expire_within_a_week_are_noticed_with_a_link_to_roll_them() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Notice Co").await;
    let soon = token_expiring_in(&owner, "soon", "7").await;
    let later = token_expiring_in(&owner, "later", "30").await;
    let member = join(&owner, &email_for("notice member"), "member").await;
    let members_soon = token_expiring_in(&member, "member soon", "7").await;

    // The admin (here, the owner) sees the account's tokens; the member sees their own.
    let owners = expiring_notice(&owner).await;
    assert!(owners.contains(&soon.token.key), "{owners}");
    assert!(owners.contains(&members_soon.token.key), "{owners}");
    assert!(!owners.contains(&later.token.key), "{owners}");
    assert!(
        owners.contains(&format!("/tokens/{}/confirm-roll", soon.id)),
        "{owners}"
    );
    let members = expiring_notice(&member).await;
    assert!(members.contains(&members_soon.token.key), "{members}");
    assert!(!members.contains(&soon.token.key), "{members}");

    // The roll keeps the token's lifetime, and says so.
    owner
        .get(&format!("/tokens/{}/confirm-roll", soon.id))
        .await
        .assert_contains("it expires 7 days after it is made");

    // Once rolled, a token needs no more warning.
    let csrf = owner.csrf_from("/tokens").await;
    owner
        .post(
            &format!("/tokens/{}/roll", soon.id),
            &[("csrf_token", &csrf), ("grace", "24h")],
        )
        .await
        .assert_html_page(StatusCode::OK);
    let after = expiring_notice(&owner).await;
    assert!(!after.contains(&soon.token.key), "{after}");
    assert!(after.contains(&members_soon.token.key), "{after}");
}
