//! `/invitations/{token}`: the one-time link an admin passes on. It works once, for a while,
//! joins exactly the account that made it, and an existing user must prove who they are.

use reqwest::StatusCode;

use crate::support::admin::{
    accept_as_new_user, account_id, assert_invalid, assert_not_found_page, audit_log,
    expire_invitations, invitation_link, invite, member_role, members_page, operator, submit,
};
use crate::support::api::spawn_app;
use crate::support::browser::{Browser, PASSWORD, Page, email_for, signed_up};

const OTHER_PASSWORD: &str = "a different password entirely";

/// What `/members` says about an invitation that is still open.
fn open_invitation(email: &str, role: &str) -> String {
    format!("{email} as {role}")
}

/// Whether the page offers the account switcher, which only a member of several accounts has.
fn has_switcher(page: &Page) -> bool {
    page.body.contains("action=\"/account/switch\"")
}

/// The id the account switcher gives `account_name`.
fn switcher_id(page: &Page, account_name: &str) -> Option<String> {
    let before = &page.body[..page.body.find(&format!(">{account_name}</option>"))?];
    let value = &before[before.rfind("value=\"")? + "value=\"".len()..];
    Some(value[..value.find('"')?].to_string())
}

/// The link's page is a 404, submitting a password to it is a 404 (the CSRF token comes from
/// the sign-in page, as the link's own page no longer opens), and that password signs no one in.
async fn assert_link_is_dead(browser: &Browser, link: &str, email: &str, password: &str) {
    assert_not_found_page(&browser.get(link).await);
    let fields = [("password", password), ("password_confirmation", password)];
    assert_not_found_page(&submit(browser, "/login", link, &fields).await);
    browser
        .log_in(email, password)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_invitation_link_works_once() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Once Co").await;
    let email = email_for("once invitee");
    let link = invitation_link(&owner, &email, "member").await;
    members_page(&owner)
        .await
        .assert_contains(&open_invitation(&email, "member"));

    let invitee = Browser::new(&app.address);
    invitee
        .get(&link)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Join Once Co")
        .assert_contains(&email);
    accept_as_new_user(&invitee, &link, PASSWORD)
        .await
        .assert_redirect("/tokens");
    invitee
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Welcome to Once Co.");

    // Whoever holds the link next finds nothing, and can't set a password with it.
    let second = Browser::new(&app.address);
    assert_link_is_dead(&second, &link, &email, OTHER_PASSWORD).await;

    let members = members_page(&owner).await;
    assert!(
        !members.text().contains(&open_invitation(&email, "member")),
        "a used invitation is no longer open; body:\n{}",
        members.body
    );
    assert_eq!(member_role(&owner, &email).await.as_deref(), Some("member"));
}

#[tokio::test]
async fn an_expired_invitation_link_is_not_found_and_creates_no_one() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Late Co").await;
    let email = email_for("late invitee");
    let link = invitation_link(&owner, &email, "admin").await;
    expire_invitations(&app).await;

    let invitee = Browser::new(&app.address);
    assert_link_is_dead(&invitee, &link, &email, PASSWORD).await;
    assert_eq!(member_role(&owner, &email).await, None);
    let members = members_page(&owner).await;
    assert!(
        !members.text().contains(&open_invitation(&email, "admin")),
        "an expired invitation is not listed as open; body:\n{}",
        members.body
    );
}

#[tokio::test]
async fn an_invitation_joins_the_account_that_made_it_and_no_other() {
    let app = spawn_app().await;
    let home = signed_up(&app.address, "Home Co").await;
    let other_owner_email = email_for("Other Co");
    let other = signed_up(&app.address, "Other Co").await;
    let op = operator(&app, &email_for("binding operator")).await;
    let other_id = account_id(&op, "Other Co").await.to_string();

    let email = email_for("bound invitee");
    let link = invitation_link(&home, &email, "member").await;

    // The link is opened in a browser signed in to Other Co, and the form is given an
    // account id of its own: the invitation decides who joins what, nothing else.
    let joined = submit(
        &other,
        &link,
        &link,
        &[
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
            ("account_id", other_id.as_str()),
        ],
    )
    .await;
    joined.assert_redirect("/tokens");
    let tokens = other.get("/tokens").await;
    tokens
        .assert_html_page(StatusCode::OK)
        .assert_contains(&email)
        .assert_contains("Home Co");
    assert!(
        !has_switcher(&tokens),
        "the invitee belongs to one account only; body:\n{}",
        tokens.body
    );
    assert_not_found_page(
        &submit(
            &other,
            "/tokens",
            "/account/switch",
            &[("account_id", other_id.as_str())],
        )
        .await,
    );

    assert_eq!(member_role(&home, &email).await.as_deref(), Some("member"));
    assert_eq!(
        member_role(&home, &other_owner_email).await,
        None,
        "whoever's browser opened the link did not join"
    );
    let other_again = Browser::new(&app.address);
    other_again
        .log_in(&other_owner_email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    assert_eq!(
        member_role(&other_again, &email).await,
        None,
        "the invitee did not join Other Co"
    );
    assert!(!has_switcher(&other_again.get("/tokens").await));
}

#[tokio::test]
async fn an_existing_user_joins_with_their_own_password_and_a_wrong_one_joins_nothing() {
    let app = spawn_app().await;
    let host = signed_up(&app.address, "Host Co").await;
    let guest_email = email_for("Guest Co");
    signed_up(&app.address, "Guest Co").await;
    let link = invitation_link(&host, &guest_email, "admin").await;

    // They already have a sign-in, so the form asks for their password, once.
    let guest = Browser::new(&app.address);
    let form = guest.get(&link).await;
    form.assert_html_page(StatusCode::OK)
        .assert_contains("Your Keyward password");
    assert_eq!(form.field_value("password_confirmation"), None);

    let wrong = submit(&guest, &link, &link, &[("password", OTHER_PASSWORD)]).await;
    assert_invalid(
        &wrong,
        "That is not the password of this email's Keyward sign-in.",
    );
    assert_eq!(member_role(&host, &guest_email).await, None);
    assert!(
        audit_log(&host, "?action=member.joined").await.is_empty(),
        "nobody joined"
    );
    guest.get(&link).await.assert_html_page(StatusCode::OK);

    submit(&guest, &link, &link, &[("password", PASSWORD)])
        .await
        .assert_redirect("/tokens");
    assert_eq!(
        member_role(&host, &guest_email).await.as_deref(),
        Some("admin")
    );

    // Now in two accounts, working in the one just joined, and able to switch back.
    let tokens = guest.get("/tokens").await;
    tokens.assert_html_page(StatusCode::OK);
    assert!(has_switcher(&tokens), "body:\n{}", tokens.body);
    let guest_co = switcher_id(&tokens, "Guest Co")
        .unwrap_or_else(|| panic!("the switcher should offer Guest Co; body:\n{}", tokens.body));
    submit(
        &guest,
        "/tokens",
        "/account/switch",
        &[("account_id", guest_co.as_str())],
    )
    .await
    .assert_redirect("/tokens");
    guest
        .get("/tokens")
        .await
        .assert_contains("You are now working in Guest Co.");
}

#[tokio::test]
async fn a_bad_password_for_a_new_user_joins_nothing_and_leaves_the_link_open() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Careful Co").await;
    let email = email_for("careful invitee");
    let link = invitation_link(&owner, &email, "member").await;
    let invitee = Browser::new(&app.address);

    let cases = [
        (PASSWORD, OTHER_PASSWORD, "The two passwords don't match."),
        (
            "short",
            "short",
            "The password must have at least 12 characters.",
        ),
        ("", "", "The password must have at least 12 characters."),
    ];
    for (password, confirmation, message) in cases {
        let fields = [
            ("password", password),
            ("password_confirmation", confirmation),
        ];
        let page = submit(&invitee, &link, &link, &fields).await;
        assert_invalid(&page, message);
    }
    assert_eq!(member_role(&owner, &email).await, None);
    accept_as_new_user(&invitee, &link, PASSWORD)
        .await
        .assert_redirect("/tokens");
}

#[tokio::test]
async fn a_bad_invitation_is_refused_and_makes_no_link() {
    let app = spawn_app().await;
    let owner_email = email_for("Picky Co");
    let owner = signed_up(&app.address, "Picky Co").await;
    let newcomer = email_for("picky newcomer");

    let cases = [
        (
            "not-an-email",
            "member",
            "\"not-an-email\" is not an email address.",
        ),
        (newcomer.as_str(), "owner", "Invite as admin or member"),
        (
            newcomer.as_str(),
            "superuser",
            "\"superuser\" is not a role",
        ),
        (
            owner_email.as_str(),
            "member",
            "is already a member of this account.",
        ),
    ];
    for (email, role, message) in cases {
        let page = invite(&owner, email, role).await;
        assert_invalid(&page, message);
        assert_eq!(
            page.element_text("invite-link"),
            None,
            "a refused invitation shows no link"
        );
        assert_eq!(
            page.field_value("email").as_deref(),
            Some(email),
            "the form keeps what was typed, to be fixed rather than retyped"
        );
    }
    assert!(
        audit_log(&owner, "?action=member.invited").await.is_empty(),
        "no invitation was recorded"
    );
}

#[tokio::test]
async fn a_second_invitation_to_someone_already_in_is_refused_with_a_reason() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Twice Co").await;
    let email = email_for("invited twice");
    let first = invitation_link(&owner, &email, "member").await;
    let second = invitation_link(&owner, &email, "admin").await;
    let browser = Browser::new(&app.address);
    accept_as_new_user(&browser, &first, PASSWORD)
        .await
        .assert_redirect("/tokens");

    let again = submit(&browser, &second, &second, &[("password", PASSWORD)]).await;
    assert_invalid(&again, "is already a member of Twice Co");
    assert_eq!(
        member_role(&owner, &email).await.as_deref(),
        Some("member"),
        "the second invitation changed nothing"
    );
}

/// The id in the "Cancel invitation" form for `email` on `/members`.
fn cancel_path(page: &Page, email: &str) -> Option<String> {
    let row = &page.body[page.body.find(&open_invitation(email, ""))?..];
    let end = row.find("/cancel\"")? + "/cancel".len();
    let start = row[..end].rfind("action=\"")? + "action=\"".len();
    Some(row[start..end].to_string())
}

#[tokio::test]
async fn an_admin_cancels_an_open_invitation_and_its_link_dies_at_once() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Cancel Co").await;
    let admin = crate::admin_helpers::join(&owner, &email_for("cancel admin"), "admin").await;
    let invitee = email_for("cancelled invitee");
    let link = invitation_link(&owner, &invitee, "member").await;

    let page = members_page(&admin).await;
    let path = cancel_path(&page, &invitee)
        .unwrap_or_else(|| panic!("/members offers to cancel {invitee}; body:\n{}", page.body));
    submit(&admin, "/members", &path, &[])
        .await
        .assert_redirect("/members");

    let after = members_page(&admin).await;
    after.assert_contains(&format!(
        "The invitation for {invitee} was cancelled; its link no longer works."
    ));
    assert!(
        !after.body.contains(&open_invitation(&invitee, "member")),
        "a cancelled invitation is no longer listed"
    );
    assert_link_is_dead(&Browser::new(&app.address), &link, &invitee, PASSWORD).await;
    let log = audit_log(&owner, "").await;
    let cancelled = crate::admin_helpers::find_event(
        &log,
        "member.invitation_cancelled",
        &format!("user {invitee}"),
    );
    assert_eq!(cancelled.actor, email_for("cancel admin"));

    // Cancelling it again, or from another account, finds nothing.
    assert_not_found_page(&submit(&admin, "/members", &path, &[]).await);
    let stranger = signed_up(&app.address, "Stranger Co").await;
    assert_not_found_page(&submit(&stranger, "/members", &path, &[]).await);
}

#[tokio::test]
async fn only_an_owner_invites_an_admin_and_the_form_offers_only_what_is_allowed() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Ranks Co").await;
    let admin = crate::admin_helpers::join(&owner, &email_for("ranks admin"), "admin").await;

    let offers_admin = |page: &Page| page.body.contains("<option value=\"admin\"");
    assert!(offers_admin(&members_page(&owner).await));
    assert!(!offers_admin(&members_page(&admin).await));

    let refused = invite(&admin, &email_for("would be admin"), "admin").await;
    refused
        .assert_html_page(StatusCode::FORBIDDEN)
        .assert_contains("Only an owner can invite someone as an admin.");
    assert!(refused.element_text("invite-link").is_none());
    invitation_link(&admin, &email_for("plain member"), "member").await;
    invitation_link(&owner, &email_for("real admin"), "admin").await;
}

#[tokio::test]
async fn every_open_invitation_is_listed_and_a_new_link_replaces_the_old_one() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Relink Co").await;
    let first = email_for("relink first");
    let second = email_for("relink second");
    let old_link = invitation_link(&owner, &first, "member").await;
    invitation_link(&owner, &second, "admin").await;
    let page = members_page(&owner).await;
    page.assert_contains(&open_invitation(&first, "member"))
        .assert_contains(&open_invitation(&second, "admin"));

    // The first invitation's id, from its "New link" form.
    let before = &page.body[..page
        .body
        .find(&format!(
            ">New link to copy<span class=\"visually-hidden\"> for {first}"
        ))
        .expect("a New link button for the first invitation")];
    let action = &before[before
        .rfind("action=\"/members/invitations/")
        .expect("its form")..];
    let id: String = action["action=\"/members/invitations/".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let renewed = submit(
        &owner,
        "/members",
        &format!("/members/invitations/{id}/link"),
        &[],
    )
    .await;
    renewed
        .assert_html_page(StatusCode::OK)
        .assert_contains("the old link no longer works");
    let link = renewed.element_text("invite-link").expect("the new link");
    let path = link
        .strip_prefix(&owner.address)
        .expect("a link to this server");
    assert_ne!(path, old_link);

    assert_link_is_dead(&Browser::new(&app.address), &old_link, &first, PASSWORD).await;
    accept_as_new_user(&Browser::new(&app.address), path, PASSWORD)
        .await
        .assert_redirect("/tokens");
    assert_eq!(member_role(&owner, &first).await.as_deref(), Some("member"));
    let log = audit_log(&owner, "").await;
    assert!(
        log.iter()
            .any(|e| e.detail == "as member; a new link, the old one no longer works"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn with_mail_on_the_invitation_is_mailed_with_the_link_the_page_shows() {
    let smtp = crate::support::smtp::SmtpServer::start();
    let app = crate::support::mail::spawn_mailing_app(&smtp).await;
    let owner = crate::support::mail::verified_owner(&app, &smtp, "Mailing Inviters").await;
    let invited = "new.colleague@example.test";
    let link = crate::admin_helpers::invitation_link(&owner, invited, "member").await;

    let mail = smtp
        .wait_for(invited, "You are invited to join Mailing Inviters")
        .await;
    assert_eq!(mail.link_path("/invitations/"), link);
    assert!(mail.text.contains("as member"), "{}", mail.text);
    assert!(mail.header("List-Unsubscribe").is_none());
    let joined = crate::dashboard_helpers::Browser::new(&app.address);
    crate::admin_helpers::accept_as_new_user(&joined, &link, crate::dashboard_helpers::PASSWORD)
        .await
        .assert_redirect("/tokens");
    joined.create_token("made by a mailed invitee").await;
}
