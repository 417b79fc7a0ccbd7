//! `/audit`: the account's log, newest first, filtered by action and actor, a page at a time;
//! and the whole admins story, told by the log at the end.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::admin::{
    AuditRow, assert_api_refuses, assert_api_works, audit_log, audit_rows, find_event, join,
    member_id, operator, submit,
};
use crate::support::api::{TestApp, Token, assert_401, eventually, spawn_app};
use crate::support::browser::{Browser, CaseFailures, email_for, html_page_problem, signed_up};

/// How many events one page of the log shows.
const PAGE_SIZE: usize = 50;

#[tokio::test]
async fn an_invited_members_token_is_revoked_by_an_admin_and_a_leaked_one_by_an_operator() {
    let app = spawn_app().await;
    let owner_email = email_for("Story Co");
    let owner = signed_up(&app.address, "Story Co").await;
    let owners_token = owner.create_token("owner's script").await;

    // The owner invites an admin and a member; both join.
    let admin_email = email_for("story admin");
    let admin = join(&owner, &admin_email, "admin").await;
    let member_email = email_for("story member");
    let member = join(&owner, &member_email, "member").await;

    // The member makes a token, and it works.
    let deploy = member.create_token("deploy bot").await;
    assert_api_works(&app, &deploy.token).await;

    // The admin finds it among the member's active tokens and revokes it, saying why.
    let member_id = member_id(&admin, &member_email).await;
    let active = admin
        .get(&format!("/tokens?member={member_id}&status=active"))
        .await;
    active
        .assert_html_page(StatusCode::OK)
        .assert_contains(&deploy.token.key);
    assert!(
        !active.body.contains(&owners_token.token.key),
        "filtering by member hides others' tokens; body:\n{}",
        active.body
    );
    let reason = "Rotating keys after the offboarding checklist";
    admin
        .revoke(deploy.id, reason)
        .await
        .assert_redirect(&format!("/tokens/{}", deploy.id));
    assert_api_refuses(&app, &deploy.token).await;
    let revoked = admin
        .get(&format!("/tokens?member={member_id}&status=revoked"))
        .await;
    revoked.assert_contains(&deploy.token.key);
    let still_active = admin
        .get(&format!("/tokens?member={member_id}&status=active"))
        .await;
    assert!(
        !still_active.body.contains(&deploy.token.key),
        "a revoked token is no longer listed as active; body:\n{}",
        still_active.body
    );

    // The member sees who revoked it and why.
    member
        .get(&format!("/tokens/{}", deploy.id))
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("badge-revoked")
        .assert_contains(&format!("by {admin_email}: “{reason}”"));

    // Another of the member's tokens leaks; an operator revokes it by the pasted secret.
    let leaked = member.create_token("laptop script").await;
    let op_email = email_for("story operator");
    let op = operator(&app, &op_email).await;
    submit(
        &op,
        "/admin",
        "/admin",
        &[("q", leaked.token.secret.as_str())],
    )
    .await
    .assert_html_page(StatusCode::OK)
    .assert_contains(&leaked.token.key);
    let leak_reason = "Found in a public paste by a secret scanner";
    let fields = [("key", leaked.token.key.as_str()), ("reason", leak_reason)];
    submit(&op, "/admin", "/admin/revoke", &fields)
        .await
        .assert_redirect(&format!("/admin?q={}", leaked.token.key));
    assert_api_refuses(&app, &leaked.token).await;
    assert_api_works(&app, &owners_token.token).await;
    member
        .get(&format!("/tokens/{}", leaked.id))
        .await
        .assert_contains(&format!("by {op_email} (operator): “{leak_reason}”"));

    // The owner's log tells all of it, newest first.
    let log = audit_log(&owner, "").await;
    let op_label = format!("{op_email} (operator)");
    let newest = &log[0];
    assert_eq!(
        (
            newest.action.as_str(),
            newest.actor.as_str(),
            newest.detail.as_str()
        ),
        ("token.revoked", op_label.as_str(), leak_reason),
        "the operator's revocation is the newest event: {log:#?}"
    );
    assert!(newest.target.contains(&leaked.token.key), "{log:#?}");
    let by_admin = find_event(&log, "token.revoked", &deploy.token.key);
    assert_eq!(
        (by_admin.actor.as_str(), by_admin.detail.as_str()),
        (admin_email.as_str(), reason)
    );
    for token in [&deploy, &leaked] {
        assert_eq!(
            find_event(&log, "token.created", &token.token.key).actor,
            member_email
        );
    }
    for (email, role) in [(&admin_email, "admin"), (&member_email, "member")] {
        let invited = find_event(&log, "member.invited", email);
        assert_eq!(
            (invited.actor.as_str(), invited.detail.as_str()),
            (owner_email.as_str(), format!("as {role}").as_str())
        );
        assert_eq!(&find_event(&log, "member.joined", email).actor, email);
    }
    let position = |action: &str, target: &str| {
        log.iter()
            .position(|r| r.action == action && r.target.contains(target))
    };
    assert!(
        position("member.joined", &member_email) < position("member.invited", &member_email)
            && position("token.created", &deploy.token.key)
                < position("member.joined", &member_email),
        "newer events come first: {log:#?}"
    );
}

#[tokio::test]
async fn the_log_pages_newest_first_and_filters_by_action_and_actor() {
    let app = spawn_app().await;
    let owner_email = email_for("Busy Co");
    let owner = signed_up(&app.address, "Busy Co").await;
    let mut keys = Vec::new();
    for n in 1..=PAGE_SIZE + 5 {
        keys.push(owner.create_token(&format!("token {n:02}")).await.token.key);
    }
    let first_key = &keys[0];
    let last_key = &keys[keys.len() - 1];

    let page_one = owner.get("/audit").await;
    page_one.assert_html_page(StatusCode::OK);
    let one = audit_rows(&page_one);
    assert_eq!(one.len(), PAGE_SIZE, "a full first page: {one:#?}");
    assert!(
        one[0].action == "token.created" && one[0].target.contains(last_key.as_str()),
        "the newest token comes first: {:#?}",
        one[0]
    );
    assert!(
        page_one.body.contains("href=\"/audit?page=2\""),
        "the first page links to older events; body:\n{}",
        page_one.body
    );
    let two = audit_log(&owner, "?page=2").await;
    assert!(!two.is_empty(), "older events are on page 2");
    assert!(
        two.iter().any(|r| r.target.contains(first_key.as_str())),
        "the oldest token's creation is on page 2: {two:#?}"
    );
    assert!(
        !one.iter().any(|r| r.target.contains(first_key.as_str())),
        "and not on page 1"
    );

    // By action: only that action, paged the same way.
    let created = audit_log(&owner, "?action=token.created").await;
    let created_two = audit_log(&owner, "?action=token.created&page=2").await;
    assert_eq!(
        (created.len(), created_two.len()),
        (PAGE_SIZE, 5),
        "55 creations: 50 on page 1, 5 on page 2"
    );
    assert!(
        created
            .iter()
            .chain(&created_two)
            .all(|r| r.action == "token.created"),
        "{created:#?}{created_two:#?}"
    );

    // A failed sign-in for the owner's email is logged in the account, under that actor.
    let stranger = Browser::new(&app.address);
    stranger
        .log_in(&owner_email, "not the owner's password")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let failed = audit_log(&owner, "?action=login.failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0].actor, owner_email);
    let query = serde_urlencoded::to_string([("actor", owner_email.as_str())]).expect("a query");
    let by_owner = audit_log(&owner, &format!("?{query}")).await;
    assert!(
        !by_owner.is_empty() && by_owner.iter().all(|r| r.actor == owner_email),
        "filtering by actor shows only theirs: {by_owner:#?}"
    );
    assert!(
        audit_log(&owner, "?action=member.removed").await.is_empty(),
        "an action that never happened shows no events"
    );
}

/// The `token.expired` rows for `key` in the owner's audit log.
async fn expiry_events(owner: &Browser, key: &str) -> Vec<AuditRow> {
    audit_log(owner, "?action=token.expired")
        .await
        .into_iter()
        .filter(|row| row.target.contains(key))
        .collect()
}

/// Waits, bounded, for the expiry to be logged, then checks it stays logged once, by "system".
async fn assert_expiry_logged_once(app: &TestApp, owner: &Browser, token: &Token) {
    let logged = eventually(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async { !expiry_events(owner, &token.key).await.is_empty() },
    )
    .await;
    assert!(logged, "token.expired was not logged for {}", token.key);

    // Later refusals, and later sweeps, don't log it again.
    for _ in 0..3 {
        assert_401(app.get_with_auth("/clusters/", token).await, false).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rows = expiry_events(owner, &token.key).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].actor, "system");
}

#[tokio::test]
async fn an_expired_token_is_logged_once_when_it_is_refused() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Expiry Co").await;
    let token = app
        .create_token_with(
            "expiry-co",
            "short-lived",
            "read",
            &["--expires-in-days", "0"],
        )
        .await;
    assert_401(app.get_with_auth("/clusters/", &token).await, false).await;
    assert_expiry_logged_once(&app, &owner, &token).await;
}

#[tokio::test]
async fn a_token_that_expires_unused_is_logged_too() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Idle Co").await;
    let token = app
        .create_token_with("idle-co", "never used", "read", &["--expires-in-days", "0"])
        .await;
    let live = app
        .create_token_with("idle-co", "still valid", "read", &[])
        .await;
    assert_expiry_logged_once(&app, &owner, &token).await;
    assert!(
        expiry_events(&owner, &live.key).await.is_empty(),
        "a token that has not expired was logged as expired"
    );
}

#[tokio::test]
async fn a_page_number_that_is_not_a_page_is_a_clear_error_page() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Odd Pages Co").await;

    let mut failures = CaseFailures::default();
    for raw in [
        "0",
        "-1",
        "abc",
        "1.5",
        // Its offset overflows an i64: once a wrong page, or a crash in a debug build.
        "9223372036854775807",
        "99999999999999999999",
    ] {
        let page = owner.get(&format!("/audit?page={raw}")).await;
        let mut problems: Vec<String> = html_page_problem(&page, StatusCode::UNPROCESSABLE_ENTITY)
            .into_iter()
            .collect();
        let sentence = format!("\"{raw}\" is not a page of the audit log.");
        if !page.text().contains(&sentence) {
            problems.push(format!("no {sentence:?}"));
        }
        failures.record(raw, problems, &page);
    }
    failures.assert_none("bad page numbers on /audit");
}

#[tokio::test]
async fn the_audit_pager_never_links_below_page_one() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Pager Links Co").await;

    for (query, newer, older) in [
        ("", None, None),
        ("?page=1", None, None),
        ("?page=2", Some(1), None),
        ("?page=1000000", Some(999_999), None),
    ] {
        let page = owner.get(&format!("/audit{query}")).await;
        page.assert_html_page(StatusCode::OK);
        assert_eq!(
            pager_links(&page.body),
            (newer, older),
            "/audit{query}: the Newer and Older links"
        );
    }
}

/// The page numbers of the pager's "Newer" and "Older" links, if shown.
fn pager_links(body: &str) -> (Option<i64>, Option<i64>) {
    let nav = &body[body.find("class=\"pager\"").expect("a pager")..];
    let nav = &nav[..nav.find("</nav>").expect("the pager ends")];
    let link = |label: &str| {
        let before = &nav[..nav.find(label)?];
        let href = &before[before.rfind("page=")? + "page=".len()..];
        let digits: String = href
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        Some(digits.parse().expect("a page number in the link"))
    };
    (link("Newer"), link("Older"))
}
