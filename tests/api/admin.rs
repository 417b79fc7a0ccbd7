//! `/admin`, the operator console: finding a token across accounts by its key or by a leaked
//! secret, revoking it with a reason, and suspending and restoring an account's API access.

use reqwest::StatusCode;

use crate::support::admin::{
    SuspendedBy, account_id, assert_api_refuses, assert_api_works, assert_forbidden_page,
    assert_invalid, assert_not_found_page, assert_suspended, audit_log, call_api, find_event,
    operator, submit,
};
use crate::support::api::{spawn_app, unknown_key};
use crate::support::browser::{Browser, Page, email_for, signed_up};

/// The operator's "Revoke token" button under a search result.
async fn operator_revoke(operator: &Browser, key: &str, reason: &str) -> Page {
    let fields = [("key", key), ("reason", reason)];
    submit(operator, "/admin", "/admin/revoke", &fields).await
}

/// The operator's Suspend/Restore button on an account's row.
async fn set_api_access(operator: &Browser, account: i32, state: &str, reason: &str) -> Page {
    let path = format!("/admin/accounts/{account}/api-access");
    let fields = [("state", state), ("reason", reason)];
    submit(operator, "/admin", &path, &fields).await
}

#[tokio::test]
async fn an_operator_revokes_a_leaked_token_found_by_its_secret_and_the_account_sees_why() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Leaky Co").await;
    let leaked = owner.create_token("ci runner").await;
    let op_email = email_for("security operator");
    let op = operator(&app, &op_email).await;
    let reason = "Leaked in a public GitHub repository, reported by secret scanning";

    // A key nobody holds finds nothing.
    op.get(&format!("/admin?q={}", unknown_key()))
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("No token matches.");

    // The pasted secret finds the token, in its account, with a revoke form for its key.
    // A secret is searched with a POST, so it never sits in a URL, and never comes back.
    let found = submit(
        &op,
        "/admin",
        "/admin",
        &[("q", leaked.token.secret.as_str())],
    )
    .await;
    assert!(
        !found.text().contains(&leaked.token.secret),
        "the console wrote the pasted secret back into the page"
    );
    found
        .assert_html_page(StatusCode::OK)
        .assert_contains("Leaky Co")
        .assert_contains("ci runner")
        .assert_contains(&leaked.token.key);
    assert_eq!(
        found.field_value("key").as_deref(),
        Some(leaked.token.key.as_str()),
        "the revoke form should carry the found token's key; body:\n{}",
        found.body
    );

    // A revocation needs a reason; without one nothing changes.
    assert_invalid(
        &operator_revoke(&op, &leaked.token.key, "  ").await,
        "Give a reason",
    );
    // A key no token has is a typo to fix, said as one.
    let typo = operator_revoke(&op, &unknown_key(), "leaked").await;
    assert_invalid(&typo, "Check the key");
    typo.assert_contains("Please check what you entered");
    assert_api_works(&app, &leaked.token).await;

    operator_revoke(&op, &leaked.token.key, reason)
        .await
        .assert_redirect(&format!("/admin?q={}", leaked.token.key));
    assert_api_refuses(&app, &leaked.token).await;
    let after = op.get(&format!("/admin?q={}", leaked.token.key)).await;
    after
        .assert_html_page(StatusCode::OK)
        .assert_contains("badge-revoked")
        .assert_contains(reason);
    assert_eq!(
        after.field_value("key"),
        None,
        "a revoked token offers no revoke form"
    );

    // The account's owner reads who did it and why, on the token and in the log.
    owner
        .get(&format!("/tokens/{}", leaked.id))
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains(&format!("by {op_email} (operator): “{reason}”"));
    let label = format!("{op_email} (operator)");
    let revocations = audit_log(&owner, "?action=token.revoked").await;
    let event = find_event(&revocations, "token.revoked", &leaked.token.key);
    assert_eq!(
        (event.actor.as_str(), event.detail.as_str()),
        (label.as_str(), reason),
        "the log names the operator and the reason: {revocations:#?}"
    );
    let query = serde_urlencoded::to_string([("actor", label.as_str())]).expect("a query string");
    let by_operator = audit_log(&owner, &format!("?{query}")).await;
    assert!(
        !by_operator.is_empty() && by_operator.iter().all(|r| r.actor == label),
        "filtering by the operator's label shows only their events: {by_operator:#?}"
    );
}

#[tokio::test]
async fn an_operator_suspends_one_accounts_api_and_restores_it() {
    let app = spawn_app().await;
    let suspect = signed_up(&app.address, "Suspect Co").await;
    let suspects = suspect.create_token("scraper").await;
    let bystander = signed_up(&app.address, "Bystander Co").await;
    let bystanders = bystander.create_token("shop").await;
    let op_email = email_for("trust operator");
    let op = operator(&app, &op_email).await;
    let account = account_id(&op, "Suspect Co").await;
    let reason = "Terms of Service violation: abuse report 42";

    set_api_access(&op, account, "suspended", reason)
        .await
        .assert_redirect("/admin");
    assert_suspended(call_api(&app, &suspects.token).await, SuspendedBy::Operator).await;
    assert_api_works(&app, &bystanders.token).await;
    // The suspension is the account's: a token made after it is refused too.
    let newer = suspect.create_token("made while suspended").await;
    assert_suspended(call_api(&app, &newer.token).await, SuspendedBy::Operator).await;

    set_api_access(&op, account, "active", "")
        .await
        .assert_redirect("/admin");
    assert_api_works(&app, &suspects.token).await;
    assert_api_works(&app, &newer.token).await;

    // An account that doesn't exist is a 404, not a silent success.
    assert_not_found_page(&set_api_access(&op, 999_999, "suspended", reason).await);

    let label = format!("{op_email} (operator)");
    let log = audit_log(&suspect, "").await;
    let switches: Vec<(&str, &str, &str)> = log
        .iter()
        .filter(|r| r.action.starts_with("api."))
        .map(|r| (r.action.as_str(), r.actor.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(
        switches,
        [
            ("api.restored", label.as_str(), ""),
            ("api.suspended", label.as_str(), reason)
        ],
        "the suspended account's log shows both switches, by the operator: {log:#?}"
    );
    assert!(
        audit_log(&bystander, "?action=api.suspended")
            .await
            .is_empty(),
        "the other account's log has no suspension"
    );
}

#[tokio::test]
async fn an_operator_finds_accounts_by_name_slug_or_member_email_and_opens_one() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Findable Search Co").await;
    owner.create_token("ci").await;
    let revoked = owner.create_token("old").await;
    owner.revoke(revoked.id, "rotated").await;
    signed_up(&app.address, "Other Co").await;
    let op = operator(&app, &email_for("finding operator")).await;

    for q in ["findable", "FINDABLE-search", "findable.search.co@"] {
        let page = op.get(&format!("/admin/accounts?q={q}")).await;
        page.assert_html_page(StatusCode::OK)
            .assert_contains("Findable Search Co");
        assert!(!page.text().contains("Other Co"), "{q}: {}", page.body);
    }
    op.get("/admin/accounts?q=nobody+here")
        .await
        .assert_contains("No account matches");

    let id = account_id(&op, "Findable Search Co").await;
    let page = op.get(&format!("/admin/accounts/{id}")).await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains("1 active, 1 revoked, 0 expired")
        .assert_contains(&email_for("Findable Search Co"))
        .assert_contains("token.revoked");
    // The log names the revoked token without linking to its page, which is the
    // account's own and closed to an operator.
    assert!(
        !page
            .body
            .contains(&format!("href=\"/tokens/{}\"", revoked.id)),
        "{}",
        page.body
    );
    assert_eq!(
        op.get(&format!("/tokens/{}", revoked.id)).await.status,
        StatusCode::FORBIDDEN
    );
    let operators = op.get("/admin/operators").await;
    operators.assert_contains(&email_for("finding operator"));
    assert!(!operators.text().contains(&email_for("Findable Search Co")));

    // None of it is for tenants.
    for path in [
        "/admin/accounts?q=a",
        &format!("/admin/accounts/{id}"),
        "/admin/operators",
    ] {
        assert_forbidden_page(&owner.get(path).await);
    }
}
