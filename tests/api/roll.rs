//! Rolling a token: a successor with a new key and secret, shown once as at creation, while
//! the old secret keeps working for the grace period chosen, then gets the ordinary 401.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::admin::{
    assert_api_refuses, assert_api_works, assert_invalid, assert_not_found_page, audit_log,
    count_rows, find_event,
};
use crate::support::api::{
    TestApp, Token, assert_401, eventually, expect_json, parse_token_output, spawn_app,
};
use crate::support::browser::{Browser, Page, read_created_page, signed_up};

/// Each race runs this many times: one lucky interleaving is not a proof.
const TRIALS: usize = 20;

/// Presses "Roll secret…" on token `id`'s page and confirms with `grace`.
pub async fn roll(browser: &Browser, id: i32, grace: &str) -> Page {
    let csrf = browser.csrf_from("/tokens").await;
    browser
        .post(
            &format!("/tokens/{id}/roll"),
            &[("csrf_token", &csrf), ("grace", grace)],
        )
        .await
}

/// `GET /token` as `token`: what it says about itself.
async fn described(app: &crate::helpers::TestApp, token: &Token) -> Value {
    expect_json(app.get_with_auth("/token", token).await, StatusCode::OK).await["token"].clone()
}

fn parse_time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a time should be a string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

#[tokio::test]
async fn a_rolled_token_has_a_new_secret_shown_once_and_the_old_one_works_through_its_grace() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Roll Co").await;
    let old = owner.create_token("deploys").await;

    let confirm = owner.get(&format!("/tokens/{}/confirm-roll", old.id)).await;
    confirm
        .assert_html_page(StatusCode::OK)
        .assert_contains("now")
        .assert_contains("24 hours")
        .assert_contains("7 days");
    let before = chrono::Utc::now();
    let page = roll(&owner, old.id, "24h").await;
    let new = read_created_page(&page);

    assert_ne!(new.token.key, old.token.key, "a roll makes a new key");
    assert_ne!(new.token.secret, old.token.secret, "and a new secret");
    assert_ne!(new.id, old.id);
    // The curl line is the creation page's, for the new credentials.
    let expected_curl = format!(
        "curl -u {}:{} {}/clusters/",
        new.token.key, new.token.secret, app.address
    );
    assert_eq!(new.curl, expected_curl);
    page.assert_contains("keeps working until");

    // Both secrets work now; the new one has the old one's name and scopes.
    assert_api_works(&app, &new.token).await;
    assert_api_works(&app, &old.token).await;
    let (old_says, new_says) = (
        described(&app, &old.token).await,
        described(&app, &new.token).await,
    );
    assert_eq!(new_says["name"], "deploys");
    assert_eq!(new_says["scopes"], old_says["scopes"]);
    assert!(
        new_says["expires_at"].is_null(),
        "a never-expiring token rolls to one"
    );
    let old_ends = parse_time(&old_says["expires_at"]);
    assert!(
        old_ends > before + chrono::Duration::hours(23)
            && old_ends <= chrono::Utc::now() + chrono::Duration::hours(24),
        "the old secret ends 24 hours after the roll, not {old_ends}"
    );

    // The pages link to each other, and the old one can't be rolled again.
    let old_page = owner.get(&format!("/tokens/{}", old.id)).await;
    old_page
        .assert_html_page(StatusCode::OK)
        .assert_contains(&format!("href=\"/tokens/{}\"", new.id))
        .assert_contains("Rolled to");
    assert!(
        !old_page.body.contains("confirm-roll"),
        "a rolled token offers no second roll"
    );
    owner
        .get(&format!("/tokens/{}", new.id))
        .await
        .assert_contains(&format!("href=\"/tokens/{}\"", old.id))
        .assert_contains("Rolled from");

    // Both tokens' trails say so, and the secret is in neither.
    let rolled = audit_log(&owner, "?action=token.rolled").await;
    let on_old = find_event(&rolled, "token.rolled", &old.token.key);
    assert!(on_old.detail.contains(&new.token.key), "{on_old:?}");
    let on_new = find_event(&rolled, "token.rolled", &new.token.key);
    assert!(on_new.detail.contains(&old.token.key), "{on_new:?}");
    assert!(
        rolled
            .iter()
            .all(|row| !format!("{row:?}").contains(&new.token.secret)),
        "no secret in the log"
    );
}

/// Moves a token's end to `at` in the store, as the passing of time would: for a grace
/// period that ends in a test's lifetime. The server hasn't read the token since its roll.
async fn set_expiry(app: &TestApp, key: &str, at: chrono::NaiveDateTime) {
    use diesel::prelude::*;
    use keyward::db::schema::tokens;
    let (database, key) = (app.db.path.clone(), key.to_string());
    tokio::task::spawn_blocking(move || {
        let mut conn = keyward::db::open(&database).expect("open the test database");
        diesel::update(tokens::table.filter(tokens::key.eq(key)))
            .set(tokens::expires_at.eq(Some(at)))
            .execute(&mut conn)
            .expect("move the grace's end")
    })
    .await
    .expect("the update should not panic");
}

#[tokio::test]
async fn when_the_grace_ends_the_old_secret_gets_the_ordinary_401_and_the_sweep_logs_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Short Grace").await;
    let old = owner.create_token("nightly").await;
    let new = read_created_page(&roll(&owner, old.id, "1h").await);

    // An hour passes for the old secret: its grace ends a second from now.
    let ends = keyward::db::now() + chrono::Duration::seconds(1);
    set_expiry(&app, &old.token.key, ends).await;

    let refused = eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        let app = &app;
        let old = &old.token;
        async move {
            crate::admin_helpers::call_api(app, old).await.status() == StatusCode::UNAUTHORIZED
        }
    })
    .await;
    assert!(refused, "the old secret should stop once the grace ends");
    assert_api_refuses(&app, &old.token).await;
    assert_api_works(&app, &new.token).await;

    let logged = eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        let owner = &owner;
        let key = old.token.key.clone();
        async move {
            audit_log(owner, "?action=token.expired")
                .await
                .iter()
                .any(|row| row.target.contains(&key))
        }
    })
    .await;
    assert!(logged, "the expiry sweep should log the old token's end");
    let expired_events = count_rows(
        &app,
        &format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'token.expired' AND target LIKE '%{}%'",
            old.token.key
        ),
    )
    .await;
    assert_eq!(expired_events, 1, "the sweep logs an expiry once");
}

#[tokio::test]
async fn rolling_with_no_grace_stops_the_old_secret_at_once() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "No Grace").await;
    let old = owner.create_token("leaked").await;

    let page = roll(&owner, old.id, "now").await;
    let new = read_created_page(&page);
    page.assert_contains("has stopped working");

    assert_401(
        crate::admin_helpers::call_api(&app, &old.token).await,
        false,
    )
    .await;
    assert_api_works(&app, &new.token).await;
}

#[tokio::test]
async fn a_grace_outside_the_choices_is_a_422_that_names_them_and_rolls_nothing() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Bad Grace").await;
    let token = owner.create_token("ci").await;
    let huge = "7d".repeat(50_000);

    for grace in ["", "2h", "1H", "forever", "-1h", "24", huge.as_str()] {
        let page = roll(&owner, token.id, grace).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "grace {:?}: {}",
            &grace[..grace.len().min(20)],
            page.body
        );
        page.assert_contains("now, 1h, 24h or 7d");
    }
    assert_eq!(
        count_rows(&app, "SELECT COUNT(*) FROM tokens").await,
        1,
        "no refused roll made a token"
    );
    assert_api_works(&app, &token.token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_twice_at_once_makes_one_successor_and_the_second_is_told_so() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Double Roll").await;
    // A second tab of the same person.
    let other_tab = Browser::new(&app.address);
    other_tab
        .log_in(
            &crate::dashboard_helpers::email_for("Double Roll"),
            crate::dashboard_helpers::PASSWORD,
        )
        .await
        .assert_redirect("/tokens");

    for trial in 0..TRIALS {
        let token = owner.create_token(&format!("raced {trial}")).await;
        let (first, second) = tokio::join!(
            roll(&owner, token.id, "24h"),
            roll(&other_tab, token.id, "24h"),
        );
        let (won, lost): (Vec<&Page>, Vec<&Page>) = [&first, &second]
            .into_iter()
            .partition(|p| p.status == StatusCode::OK);
        assert_eq!(won.len(), 1, "trial {trial}: one roll wins");
        assert_invalid(lost[0], "already rolled to");
        let winner = read_created_page(won[0]);
        lost[0].assert_contains(&winner.token.key);
        assert_eq!(
            count_rows(
                &app,
                &format!(
                    "SELECT COUNT(*) FROM tokens WHERE rolled_from = {}",
                    token.id
                )
            )
            .await,
            1,
            "trial {trial}: exactly one successor"
        );
    }
}

#[tokio::test]
async fn another_accounts_token_is_a_404_to_roll() {
    let app = spawn_app().await;
    let victim = signed_up(&app.address, "Victim Co").await;
    let target = victim.create_token("payments").await;
    let attacker = signed_up(&app.address, "Attacker Co").await;

    assert_not_found_page(
        &attacker
            .get(&format!("/tokens/{}/confirm-roll", target.id))
            .await,
    );
    assert_not_found_page(&roll(&attacker, target.id, "now").await);

    assert_api_works(&app, &target.token).await;
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM tokens WHERE rolled_to IS NOT NULL"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_revoked_token_cannot_be_rolled() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Dead Token").await;
    let token = owner.create_token("old").await;
    owner.revoke(token.id, "left the company").await;

    assert_invalid(&roll(&owner, token.id, "24h").await, "revoked");
    assert_eq!(count_rows(&app, "SELECT COUNT(*) FROM tokens").await, 1);
}

#[tokio::test]
async fn a_member_rolls_their_own_token_but_not_a_colleagues() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Team Roll").await;
    let owners_token = owner.create_token("owner's").await;
    let member = crate::admin_helpers::join(
        &owner,
        &crate::dashboard_helpers::email_for("team roll member"),
        "member",
    )
    .await;
    let members_token = member.create_token("member's").await;

    crate::admin_helpers::assert_forbidden_page(&roll(&member, owners_token.id, "now").await);
    assert_api_works(&app, &owners_token.token).await;

    let rolled = read_created_page(&roll(&member, members_token.id, "now").await);
    assert_api_works(&app, &rolled.token).await;
    // The successor keeps its creator: the member still sees and manages it.
    member
        .get(&format!("/tokens/{}", rolled.id))
        .await
        .assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn the_command_line_rolls_a_token_and_prints_the_new_key_and_secret() {
    let app = spawn_app().await;
    let (account, old) = app.account_with_token("Cli Roll").await;

    let out = app
        .cli(&["token", "roll", &old.key, "--grace", "24h"])
        .await
        .expect("token roll");
    let new = parse_token_output(&out);

    assert_ne!(new.key, old.key);
    assert_api_works(&app, &new).await;
    assert_api_works(&app, &old).await;
    assert!(
        described(&app, &old).await["expires_at"].is_string(),
        "the old token now has an expiry"
    );
    let listed = app
        .cli(&["token", "list", "--account", &account])
        .await
        .expect("token list");
    assert!(listed.contains(&new.key), "{listed}");

    let again = app
        .cli(&["token", "roll", &old.key, "--grace", "24h"])
        .await
        .expect_err("a rolled token can't be rolled again");
    assert!(again.contains(&new.key), "{again}");
    let bad = app
        .cli(&["token", "roll", &new.key, "--grace", "2d"])
        .await
        .expect_err("2d is not a choice");
    assert!(bad.contains("now, 1h, 24h or 7d"), "{bad}");
}

#[tokio::test]
async fn a_roll_on_a_full_disk_is_a_503_and_changes_nothing() {
    crate::sqlite_only!("the full disk is simulated through SQLite's max_page_count");
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Full Disk Roll").await;
    let token = owner.create_token("ci").await;
    let csrf = owner.csrf_from("/tokens").await;
    let own_token = app.create_account("Self Revoker").await;
    let api_token = app.create_token(&own_token, "ci", "read").await;

    keyward::db::simulated_full_disk::fill(&app.db.path).expect("the test database exists");
    let page = owner
        .post(
            &format!("/tokens/{}/roll", token.id),
            &[("csrf_token", &csrf), ("grace", "now")],
        )
        .await;
    let deleted = app.delete("/token", &api_token).await.status();
    keyward::db::simulated_full_disk::free(&app.db.path).expect("the test database exists");

    page.assert_html_page(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !page.body.contains("token-secret"),
        "no secret is shown for a roll that didn't happen"
    );
    assert_eq!(deleted, StatusCode::SERVICE_UNAVAILABLE);
    assert_api_works(&app, &token.token).await;
    assert_api_works(&app, &api_token).await;
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM tokens WHERE rolled_to IS NOT NULL OR revoked_at IS NOT NULL"
        )
        .await,
        0
    );
}
