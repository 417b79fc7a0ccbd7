//! The account's longest token lifetime: owners set it next to the API access switch; from
//! then on no token is made (on the dashboard, by rolling, or on the command line) that
//! lives longer, and the tokens made before that outlive it are listed for admins.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::admin::{
    assert_api_works, assert_forbidden_page, assert_invalid, audit_log, count_rows, find_event,
    join,
};
use crate::support::api::{TestApp, Token, expect_json, spawn_app};
use crate::support::browser::{Browser, Page, email_for, read_created_page, signed_up};

/// Chooses `max_days` on the token-lifetime settings and saves.
async fn set_limit(browser: &Browser, max_days: &str) -> Page {
    let csrf = browser.csrf_from("/account/token-lifetime").await;
    browser
        .post(
            "/account/token-lifetime",
            &[("csrf_token", &csrf), ("max_days", max_days)],
        )
        .await
}

/// The `value`s of the new-token form's expiry choices.
async fn offered_expiries(browser: &Browser) -> Vec<String> {
    let page = browser.get("/tokens/new").await;
    page.assert_html_page(StatusCode::OK);
    let select = page
        .body
        .split("name=\"expires_in_days\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_else(|| panic!("the form should have an expiry list: {}", page.body));
    select
        .match_indices("value=\"")
        .map(|(at, m)| {
            let rest = &select[at + m.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .collect()
}

async fn expires_at(app: &TestApp, token: &Token) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let body: Value = expect_json(app.get_with_auth("/token", token).await, StatusCode::OK).await;
    body["token"]["expires_at"]
        .as_str()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339"))
}

#[tokio::test]
async fn an_owner_sets_a_limit_and_longer_tokens_are_refused_with_the_limit_named() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Strict Co").await;
    assert_eq!(offered_expiries(&owner).await, ["", "7", "30", "90", "365"]);

    set_limit(&owner, "30")
        .await
        .assert_redirect("/account/token-lifetime");
    owner
        .get("/account/token-lifetime")
        .await
        .assert_contains("30 days");
    owner.get("/members").await.assert_contains("30 days");
    let set = audit_log(&owner, "?action=account.token_lifetime_set").await;
    let event = find_event(&set, "account.token_lifetime_set", "Strict Co");
    assert!(
        event.detail.contains("30 days") && event.detail.contains("no limit"),
        "{event:?}"
    );

    // The form offers only what the policy allows, and refuses the rest by naming it.
    assert_eq!(offered_expiries(&owner).await, ["7", "30"]);
    for refused in ["", "90", "365", "31", "99999999999999999999"] {
        let form = owner.token_form().await;
        let page = owner
            .submit_token(&form, "too long", &["read"], refused)
            .await;
        assert_invalid(&page, "at most 30 days");
        page.assert_contains("7 or 30 days");
    }
    let form = owner.token_form().await;
    let made = read_created_page(&owner.submit_token(&form, "monthly", &["read"], "30").await);
    assert!(expires_at(&app, &made.token).await.is_some());

    // The command line keeps the same rule.
    let slug = count_slug(&app).await;
    for (extra, what) in [
        (vec![], "never"),
        (vec!["--expires-in-days", "31"], "31 days"),
    ] {
        let mut args = vec!["token", "create", "--account", &slug, "--name", "cli"];
        args.extend(extra);
        let err = app
            .cli(&args)
            .await
            .expect_err(&format!("a token living {what} is refused"));
        assert!(err.contains("at most 30 days"), "{what}: {err}");
    }
    app.cli(&[
        "token",
        "create",
        "--account",
        &slug,
        "--name",
        "cli",
        "--expires-in-days",
        "30",
    ])
    .await
    .expect("30 days is within the limit");
    assert_eq!(
        count_rows(&app, "SELECT COUNT(*) FROM tokens").await,
        2,
        "only the two allowed tokens were made"
    );
}

/// The one account's slug, as the operator's list prints it.
async fn count_slug(app: &TestApp) -> String {
    let listed = app.cli(&["account", "list"]).await.expect("account list");
    listed
        .lines()
        .next()
        .and_then(|line| line.split('\t').next())
        .expect("one account")
        .to_string()
}

#[tokio::test]
async fn tokens_that_outlive_a_new_limit_are_listed_and_keep_working() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Legacy Co").await;
    let forever = owner.create_token("forever").await;
    let form = owner.token_form().await;
    let weekly = read_created_page(&owner.submit_token(&form, "weekly", &["read"], "7").await);

    set_limit(&owner, "7").await;
    let page = owner.get("/account/token-lifetime").await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains("keep working until their own expiry")
        .assert_contains(&forever.token.key)
        .assert_contains(&format!("/tokens/{}/confirm-roll", forever.id));
    assert!(
        !page.body.contains(&weekly.token.key),
        "a token within the limit is not listed"
    );
    assert_api_works(&app, &forever.token).await;

    // Rolling it brings it within the limit.
    let csrf = owner.csrf_from("/tokens").await;
    let rolled = read_created_page(
        &owner
            .post(
                &format!("/tokens/{}/roll", forever.id),
                &[("csrf_token", &csrf), ("grace", "now")],
            )
            .await,
    );
    let ends = expires_at(&app, &rolled.token)
        .await
        .expect("the successor gets the limit as its expiry");
    assert!(ends <= chrono::Utc::now() + chrono::Duration::days(7));
    owner
        .get("/account/token-lifetime")
        .await
        .assert_contains("every active token is within the limit");
}

#[tokio::test]
async fn a_lifetime_outside_the_choices_is_a_422_that_names_them_and_changes_nothing() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Odd Limits").await;
    let huge = "9".repeat(10_000);
    for bad in ["31", "0", "-7", "forever", "7 days", huge.as_str()] {
        assert_invalid(&set_limit(&owner, bad).await, "none, 7, 30, 90 or 365 days");
    }
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM accounts WHERE max_token_lifetime_days IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'account.token_lifetime_set'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn only_an_owner_sets_the_limit_and_admins_see_what_outlives_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Roles Co").await;
    let old = owner.create_token("old").await;
    set_limit(&owner, "90").await;
    let admin = join(&owner, &email_for("roles admin"), "admin").await;
    let member = join(&owner, &email_for("roles member"), "member").await;

    assert_forbidden_page(&set_limit(&admin, "none").await);
    admin
        .get("/account/token-lifetime")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&old.token.key)
        .assert_contains("Only an owner can change it");
    assert_forbidden_page(&member.get("/account/token-lifetime").await);
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM accounts WHERE max_token_lifetime_days = 90"
        )
        .await,
        1,
        "the refused changes changed nothing"
    );

    // Lifting the limit is audited too.
    set_limit(&owner, "none").await;
    let set = audit_log(&owner, "?action=account.token_lifetime_set").await;
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(set[0].detail.contains("no limit (was 90 days)"), "{set:?}");
}
