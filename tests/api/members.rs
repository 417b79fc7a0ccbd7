//! `/members`: removing a member (which revokes their tokens in the same step), roles and the
//! rule that an account keeps at least one owner, and the owner's switch for API access.

use reqwest::StatusCode;

use crate::support::admin::{
    SuspendedBy, assert_api_refuses, assert_api_works, assert_forbidden_page, assert_invalid,
    assert_suspended, audit_log, call_api, find_event, join, member_id, member_role, members_page,
    remove, set_role, submit,
};
use crate::support::api::spawn_app;
use crate::support::browser::{Browser, Page, email_for, signed_up};

const LAST_OWNER: &str = "An account needs at least one owner. Make someone else an owner first.";

/// The owner's "Suspend API access" or "Restore API access" button on `/members`.
async fn set_api_access(owner: &Browser, state: &str) -> Page {
    submit(
        owner,
        "/members",
        "/account/api-access",
        &[("state", state)],
    )
    .await
}

#[tokio::test]
async fn removing_a_member_revokes_their_tokens_at_once_and_the_log_says_so() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Removal Co").await;
    let leaver_email = email_for("removal leaver");
    let leaver = join(&owner, &leaver_email, "member").await;
    let deploy = leaver.create_token("deploy").await;
    let backup = leaver.create_token("backup").await;
    let owners_own = owner.create_token("owner's own").await;
    assert_api_works(&app, &deploy.token).await;
    assert_api_works(&app, &backup.token).await;

    let leaver_id = member_id(&owner, &leaver_email).await;
    remove(&owner, leaver_id).await.assert_redirect("/members");
    members_page(&owner).await.assert_contains(&format!(
        "{leaver_email} was removed, 2 of their tokens revoked and 0 of their invitations cancelled."
    ));
    assert_eq!(
        member_role(&owner, &leaver_email).await,
        None,
        "the removed member is no longer listed"
    );

    // The very next request with either token is refused; the owner's token is untouched.
    assert_api_refuses(&app, &deploy.token).await;
    assert_api_refuses(&app, &backup.token).await;
    assert_api_works(&app, &owners_own.token).await;

    // The removed person's session no longer shows the account's tokens.
    let after = leaver.get("/tokens").await;
    assert_ne!(
        after.status,
        StatusCode::OK,
        "a removed member should not reach the account's token list; body:\n{}",
        after.body
    );
    assert!(
        !after.body.contains(&deploy.token.key),
        "a removed member must not see the account's tokens"
    );

    let log = audit_log(&owner, "").await;
    let owner_email = email_for("Removal Co");
    let removed = &log[0];
    assert_eq!(
        (removed.action.as_str(), removed.actor.as_str()),
        ("member.removed", owner_email.as_str()),
        "the removal is the newest event, by the owner: {log:#?}"
    );
    assert_eq!(removed.target, format!("user {leaver_email}"));
    assert_eq!(
        removed.detail,
        "2 token(s) revoked, 0 invitation(s) cancelled"
    );
    for token in [&deploy, &backup] {
        let revoked = find_event(&log, "token.revoked", &token.token.key);
        assert_eq!(
            (revoked.actor.as_str(), revoked.detail.as_str()),
            (owner_email.as_str(), "member removed from the account"),
            "each token's revocation names who removed the member, and why: {log:#?}"
        );
    }
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted_until_there_is_another() {
    let app = spawn_app().await;
    let founder_email = email_for("Owners Co");
    let founder = signed_up(&app.address, "Owners Co").await;
    let founder_id = member_id(&founder, &founder_email).await;

    // Alone, the founder can't leave the account ownerless in any way.
    let refusals = [
        ("remove themselves", remove(&founder, founder_id).await),
        (
            "demote to admin",
            set_role(&founder, founder_id, "admin").await,
        ),
        (
            "demote to member",
            set_role(&founder, founder_id, "member").await,
        ),
    ];
    for (what, page) in &refusals {
        println!("the last owner tries to {what}");
        assert_invalid(page, LAST_OWNER);
    }
    assert_eq!(
        member_role(&founder, &founder_email).await.as_deref(),
        Some("owner")
    );

    // An admin may manage members, but not owners.
    let partner_email = email_for("owners partner");
    let partner = join(&founder, &partner_email, "admin").await;
    submit(
        &partner,
        "/members",
        &format!("/members/{founder_id}/remove"),
        &[],
    )
    .await
    .assert_html_page(StatusCode::FORBIDDEN)
    .assert_contains("Only an owner can remove an owner.");
    let partner_id = member_id(&founder, &partner_email).await;
    assert_forbidden_page(&set_role(&partner, partner_id, "owner").await);

    // With a second owner, the founder may step down.
    set_role(&founder, partner_id, "owner")
        .await
        .assert_redirect("/members");
    set_role(&founder, founder_id, "member")
        .await
        .assert_redirect("/members");
    assert_eq!(
        member_role(&partner, &founder_email).await.as_deref(),
        Some("member")
    );

    // Now the partner is the last owner, with the same limits.
    assert_invalid(&set_role(&partner, partner_id, "admin").await, LAST_OWNER);
    assert_invalid(&remove(&partner, partner_id).await, LAST_OWNER);
    assert_eq!(
        member_role(&partner, &partner_email).await.as_deref(),
        Some("owner")
    );
    remove(&partner, founder_id)
        .await
        .assert_redirect("/members");
    assert_eq!(member_role(&partner, &founder_email).await, None);

    let changes = audit_log(&partner, "?action=member.role_changed").await;
    let details: Vec<&str> = changes.iter().map(|r| r.detail.as_str()).collect();
    assert_eq!(
        details,
        ["owner → member", "admin → owner"],
        "only the two changes that happened are logged, newest first: {changes:#?}"
    );
}

#[tokio::test]
async fn an_owner_suspends_and_restores_their_accounts_api_access_from_members() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Pause Co").await;
    let token = owner.create_token("service").await;
    let neighbour = signed_up(&app.address, "Neighbour Co").await;
    let neighbours = neighbour.create_token("theirs").await;
    assert_api_works(&app, &token.token).await;

    members_page(&owner)
        .await
        .assert_contains("Suspend API access");
    set_api_access(&owner, "suspended")
        .await
        .assert_redirect("/members");
    members_page(&owner)
        .await
        .assert_contains("badge-suspended")
        .assert_contains("Restore API access");
    assert_suspended(call_api(&app, &token.token).await, SuspendedBy::Owners).await;
    assert_api_works(&app, &neighbours.token).await;
    // The dashboard still works while the API is suspended.
    owner.get("/tokens").await.assert_html_page(StatusCode::OK);

    set_api_access(&owner, "active")
        .await
        .assert_redirect("/members");
    assert_api_works(&app, &token.token).await;

    let log = audit_log(&owner, "").await;
    let actions: Vec<&str> = log.iter().take(2).map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["api.restored", "api.suspended"],
        "both switches are logged, newest first: {log:#?}"
    );
    assert!(
        log.iter().take(2).all(|r| r.actor == email_for("Pause Co")),
        "the owner is the actor of both: {log:#?}"
    );
}
