//! The one write path under attack. A permission is checked inside the transaction that
//! uses it, so however two requests race, nothing is committed by someone who has lost
//! the right to do it, and nothing a removed member made outlives the removal.

use reqwest::StatusCode;

use crate::support::admin::{
    assert_api_refuses, assert_forbidden_page, assert_not_found_page, audit_log, count_rows,
    invitation_link, join, member_id, member_role, remove, set_role, submit,
};
use crate::support::api::{TestApp, spawn_app};
use crate::support::browser::{Browser, PASSWORD, Page, email_for, read_created_page, signed_up};

/// Each race runs this many times: one lucky interleaving is not a proof.
const TRIALS: usize = 50;

/// Active tokens in the database made by the user with `email`, in any account.
async fn active_tokens_of(app: &TestApp, email: &str) -> i64 {
    count_rows(
        app,
        &format!(
            "SELECT COUNT(*) FROM tokens JOIN users ON users.id = tokens.user_id \
             WHERE users.email = '{email}' AND tokens.revoked_at IS NULL"
        ),
    )
    .await
}

/// What a create-token POST that raced a removal may answer: the token (which must
/// then be dead), or a refusal. Never a live token.
async fn assert_created_token_is_dead_or_refused(app: &TestApp, page: &Page) {
    if page.status == StatusCode::OK {
        assert_api_refuses(app, &read_created_page(page).token).await;
    } else {
        assert_forbidden_page(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_token_outlives_its_creators_removal_however_the_requests_race() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Race Co").await;
    for trial in 0..TRIALS {
        let email = email_for(&format!("racer {trial}"));
        let member = join(&owner, &email, "member").await;
        // A second signed-in tab: each holds its own one-use form.
        let other_tab = Browser::new(&app.address);
        other_tab
            .log_in(&email, PASSWORD)
            .await
            .assert_redirect("/tokens");
        let (form, other_form) = (member.token_form().await, other_tab.token_form().await);
        let id = member_id(&owner, &email).await;

        let (created, other_created, removal) = tokio::join!(
            member.submit_token(&form, "racing", &["read"], ""),
            other_tab.submit_token(&other_form, "racing too", &["read"], ""),
            remove(&owner, id),
        );

        removal.assert_redirect("/members");
        assert_created_token_is_dead_or_refused(&app, &created).await;
        assert_created_token_is_dead_or_refused(&app, &other_created).await;
        assert_eq!(
            active_tokens_of(&app, &email).await,
            0,
            "trial {trial}: a removed member still has an active token"
        );
    }
}

/// The newest `member.role_changed` events, as (target, detail), newest first.
async fn role_changes(owner: &Browser) -> Vec<(String, String)> {
    audit_log(owner, "?action=member.role_changed")
        .await
        .into_iter()
        .map(|row| (row.target, row.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_demoted_while_promoting_someone_never_promotes_after_the_demotion() {
    let app = spawn_app().await;
    let first = signed_up(&app.address, "Coup Co").await;
    let second_email = email_for("coup second owner");
    let second = join(&first, &second_email, "member").await;
    let second_id = member_id(&first, &second_email).await;
    set_role(&first, second_id, "owner")
        .await
        .assert_redirect("/members");
    let member_email = email_for("coup member");
    join(&first, &member_email, "member").await;
    let member = member_id(&first, &member_email).await;
    let (demotion_target, promotion_target) = (
        format!("user {second_email}"),
        format!("user {member_email}"),
    );

    let mut refused = 0;
    for trial in 0..TRIALS {
        let (demotion, promotion) = tokio::join!(
            set_role(&first, second_id, "admin"),
            set_role(&second, member, "owner"),
        );
        demotion.assert_redirect("/members");
        let log = role_changes(&first).await;
        let position =
            |target: &str, detail: &str| log.iter().position(|(t, d)| t == target && d == detail);
        let demoted_at = position(&demotion_target, "owner → admin")
            .unwrap_or_else(|| panic!("trial {trial}: the demotion is logged: {log:?}"));
        if promotion.status == StatusCode::SEE_OTHER {
            // Newest first: a promotion that counts was committed before the demotion.
            let promoted_at = position(&promotion_target, "member → owner")
                .unwrap_or_else(|| panic!("trial {trial}: the promotion is logged: {log:?}"));
            assert!(
                promoted_at > demoted_at,
                "trial {trial}: the promotion was committed after its author lost the owner role: {log:?}"
            );
            set_role(&first, member, "member")
                .await
                .assert_redirect("/members");
        } else {
            assert_forbidden_page(&promotion);
            assert_eq!(
                member_role(&first, &member_email).await.as_deref(),
                Some("member"),
                "trial {trial}: a refused promotion changed nothing"
            );
            refused += 1;
        }
        set_role(&first, second_id, "owner")
            .await
            .assert_redirect("/members");
    }
    // Not an assertion on timing: the story only needs both orders to be possible, and
    // says how often the late promotion was refused.
    println!("{refused} of {TRIALS} promotions came after the demotion and were refused");
}

#[tokio::test]
async fn a_removed_members_open_forms_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Leftover Co").await;
    let email = email_for("leftover admin");
    let admin = join(&owner, &email, "admin").await;
    let token = admin.create_token("before removal").await;
    // Forms opened while still an admin...
    let create_form = admin.token_form().await;
    let csrf = admin.csrf_from("/members").await;

    let id = member_id(&owner, &email).await;
    remove(&owner, id).await.assert_redirect("/members");

    // ...and submitted after the removal.
    let refusals = [
        admin
            .submit_token(&create_form, "after removal", &["read"], "")
            .await,
        admin
            .post(
                "/members/invite",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("email", &email_for("friend of leftover")),
                    ("role", "member"),
                ],
            )
            .await,
        admin
            .post(
                &format!("/tokens/{}/revoke", token.id),
                &[("csrf_token", csrf.as_str()), ("reason", "")],
            )
            .await,
    ];
    for page in &refusals {
        assert_forbidden_page(page);
    }
    assert_eq!(active_tokens_of(&app, &email).await, 0);
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM invitations WHERE email LIKE 'friend.of.leftover%'"
        )
        .await,
        0,
        "no invitation was made by the removed admin"
    );
    assert_api_refuses(&app, &token.token).await;
}

#[tokio::test]
async fn an_invitation_dies_with_its_senders_right_to_send_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Sender Co").await;
    let admin_email = email_for("sender admin");
    let admin = join(&owner, &admin_email, "admin").await;
    let admin_id = member_id(&owner, &admin_email).await;

    // Removed: every invitation they sent is cancelled in the same step.
    let removed_link = invitation_link(&admin, &email_for("invitee of removed"), "member").await;
    // Demoted: their invitation stays listed, but it can no longer make a member.
    let second_admin_email = email_for("sender second admin");
    let second_admin = join(&owner, &second_admin_email, "admin").await;
    let demoted_link =
        invitation_link(&second_admin, &email_for("invitee of demoted"), "member").await;
    let second_admin_id = member_id(&owner, &second_admin_email).await;

    remove(&owner, admin_id).await.assert_redirect("/members");
    set_role(&owner, second_admin_id, "member")
        .await
        .assert_redirect("/members");

    for link in [removed_link, demoted_link] {
        let visitor = Browser::new(&app.address);
        assert_not_found_page(&visitor.get(&link).await);
        // The form's CSRF token comes from the sign-in page: the link's page is gone.
        let fields = [("password", PASSWORD), ("password_confirmation", PASSWORD)];
        assert_not_found_page(&submit(&visitor, "/login", &link, &fields).await);
    }
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM users WHERE email LIKE 'invitee.of.%'"
        )
        .await,
        0,
        "no one joined through a dead link"
    );
    drop(admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_new_token_form_sent_many_times_at_once_makes_one_token() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Double Click Co").await;
    let form = owner.token_form().await;

    let answers = futures_util::future::join_all(
        (0..20).map(|_| owner.submit_token(&form, "clicked twenty times", &["read"], "")),
    )
    .await;

    let shown: Vec<&Page> = answers
        .iter()
        .filter(|page| page.status == StatusCode::OK)
        .collect();
    assert_eq!(shown.len(), 1, "the secret is shown exactly once");
    let created = read_created_page(shown[0]);
    for page in answers.iter().filter(|page| page.status != StatusCode::OK) {
        page.assert_redirect(&format!("/tokens/{}", created.id));
    }
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM tokens WHERE name = 'clicked twenty times'"
        )
        .await,
        1
    );
}
