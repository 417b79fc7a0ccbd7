//! Faults lose nothing. When the database refuses a write (here, a disk made full with
//! `keyward::db::simulated_full_disk`), the answer is an error: a 503 page in the dashboard,
//! a 503 envelope from the API, a failing command line. Nothing claims that a token was
//! created or revoked or a member removed, and nothing was. Once the disk has room again,
//! the same actions succeed.

use keyward::db::simulated_full_disk;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::json;

use crate::support::admin::{assert_api_works, join, member_id, submit};
use crate::support::api::{TestApp, assert_error_envelope, expect_json, keyward_cli_printing};
use crate::support::browser::{Browser, Page, email_for, read_created_page, signed_up};

const STORAGE: &str = "The server can't save changes right now: its storage is full or failing. Nothing was changed. Please try again later.";

/// The disk of the test's database is full until the value is dropped, even if the test
/// fails half way.
struct FullDisk<'a>(&'a TestApp);

impl<'a> FullDisk<'a> {
    fn fill(app: &'a TestApp) -> Self {
        simulated_full_disk::fill(&app.db.path).expect("the test database exists");
        Self(app)
    }
}

impl Drop for FullDisk<'_> {
    fn drop(&mut self) {
        let _ = simulated_full_disk::free(&self.0.db.path);
    }
}

/// The account's tokens as `token list` prints them: key, name and status of each.
async fn token_list(app: &TestApp, slug: &str) -> Vec<String> {
    let printed = app
        .cli(&["token", "list", "--account", slug])
        .await
        .unwrap_or_else(|e| panic!("`token list` failed: {e}"));
    let mut tokens: Vec<String> = printed
        .lines()
        .map(|line| line.split('\t').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    tokens.sort();
    tokens
}

/// The slug of the account called `name`, from `account list`.
async fn slug_of(app: &TestApp, name: &str) -> String {
    let printed = app
        .cli(&["account", "list"])
        .await
        .unwrap_or_else(|e| panic!("`account list` failed: {e}"));
    printed
        .lines()
        .find_map(|line| {
            let mut fields = line.split('\t');
            let slug = fields.next()?;
            (fields.next()? == name).then(|| slug.to_string())
        })
        .unwrap_or_else(|| panic!("`account list` should list {name}: {printed}"))
}

/// `keyward token revoke KEY` on the app's database: what it returned and what it printed.
async fn cli_revoke(app: &TestApp, key: &str) -> (Result<(), String>, String) {
    let (database, key) = (app.db.path.clone(), key.to_string());
    tokio::task::spawn_blocking(move || {
        keyward_cli_printing(
            &database,
            &["token", "revoke", &key, "--reason", "a test revokes it"],
        )
    })
    .await
    .expect("the CLI task should not panic")
}

/// The dashboard's answer to a refused write: a 503 page that says so and when to retry,
/// and not `claim`, the sentence that would say it happened.
fn assert_refused(page: &Page, claim: &str) {
    page.assert_html_page(StatusCode::SERVICE_UNAVAILABLE)
        .assert_contains(STORAGE);
    assert!(
        page.header(RETRY_AFTER.as_str()).is_some(),
        "{} should say when to retry",
        page.request
    );
    assert!(
        !page.text().contains(claim),
        "{} claims {claim:?} though the write was refused; body:\n{}",
        page.request,
        page.body
    );
}

async fn create_cluster(app: &TestApp, token: &crate::helpers::Token) -> reqwest::Response {
    let (plan, space) = app.a_plan_and_space(token).await;
    app.post_json(
        "/clusters",
        token,
        &json!({"name": "Written to disk", "plan": plan, "space": space}),
    )
    .await
}

#[tokio::test]
async fn with_the_disk_full_every_change_is_refused_and_nothing_is_lost_then_all_work_again() {
    crate::sqlite_only!("the full disk is simulated through SQLite's max_page_count");
    let app = crate::helpers::spawn_app().await;
    let owner = signed_up(&app.address, "Full Disk Co").await;
    let kept = owner.create_token("kept").await;
    let member_email = email_for("full disk member");
    let member: Browser = join(&owner, &member_email, "member").await;
    let members_token = member.create_token("the member's").await;
    let member_id = member_id(&owner, &member_email).await;
    let slug = slug_of(&app, "Full Disk Co").await;
    let cli_token = app.create_token(&slug, "cli", "read").await;
    let tokens_before = token_list(&app, &slug).await;
    assert_eq!(tokens_before.len(), 3, "{tokens_before:?}");
    // The forms as they were on screen when the disk filled up.
    let token_form = owner.token_form().await;
    let revoke_csrf = owner
        .csrf_from(&format!("/tokens/{}/confirm-revoke", kept.id))
        .await;
    let members_csrf = owner.csrf_from("/members").await;

    {
        let _full = FullDisk::fill(&app);

        let page = owner
            .submit_token(&token_form, "never written", &["read"], "")
            .await;
        assert_refused(&page, "kws_");
        let page = owner
            .post(
                &format!("/tokens/{}/revoke", kept.id),
                &[("csrf_token", &revoke_csrf), ("reason", "disk full")],
            )
            .await;
        assert_refused(&page, "revoked");
        let page = owner
            .post(
                &format!("/members/{member_id}/remove"),
                &[("csrf_token", &members_csrf)],
            )
            .await;
        assert_refused(&page, "removed");

        let response = create_cluster(&app, &kept.token).await;
        assert!(response.headers().get(RETRY_AFTER).is_some());
        let errors = assert_error_envelope(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(errors, [STORAGE]);

        let (outcome, printed) = cli_revoke(&app, &cli_token.key).await;
        let error = outcome.expect_err("`token revoke` should fail on a full disk");
        assert!(error.contains(STORAGE), "a clear reason: {error}");
        assert!(
            !printed.contains("revoked"),
            "`token revoke` printed {printed:?} though nothing was revoked"
        );

        // Nothing was lost or half-done: the same tokens, all still working, no cluster,
        // and the member still in.
        assert_eq!(token_list(&app, &slug).await, tokens_before);
        for token in [&kept.token, &members_token.token, &cli_token] {
            assert_api_works(&app, token).await;
        }
        assert_eq!(app.cluster_slugs(&kept.token).await, Vec::<String>::new());
        member.get("/tokens").await.assert_html_page(StatusCode::OK);
    }

    // The disk has room again: the same actions succeed.
    let form = owner.token_form().await;
    let written = read_created_page(
        &owner
            .submit_token(&form, "written", &["read", "write"], "")
            .await,
    );
    owner
        .revoke(kept.id, "disk has room")
        .await
        .assert_redirect(&format!("/tokens/{}", kept.id));
    submit(
        &owner,
        "/members",
        &format!("/members/{member_id}/remove"),
        &[],
    )
    .await
    .assert_redirect("/members");
    expect_json(
        create_cluster(&app, &written.token).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let (outcome, printed) = cli_revoke(&app, &cli_token.key).await;
    outcome.unwrap_or_else(|e| panic!("`token revoke` should work again: {e}"));
    assert_eq!(printed.trim(), format!("revoked {}", cli_token.key));

    let after = token_list(&app, &slug).await;
    let revoked = after.iter().filter(|t| t.ends_with(" revoked")).count();
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(revoked, 3, "kept, the member's and the CLI's: {after:?}");
}
