//! `/tokens` as a team uses it: search, filters, sorting and pages kept in the URL; revoked
//! and expired tokens hidden but counted; a token's note and new name; bulk revoke through
//! its confirmation page; rolled tokens pointing at their successor.

use reqwest::StatusCode;

use crate::support::admin::{
    assert_api_refuses, assert_api_works, assert_forbidden_page, assert_invalid, audit_log,
    execute_sql, join, member_id, submit,
};
use crate::support::api::spawn_app;
use crate::support::browser::{Browser, CreatedToken, Page, email_for, signed_up};

/// How many tokens the page lists, counted by their name cells.
fn listed(page: &Page) -> usize {
    page.assert_html_page(StatusCode::OK);
    page.body.matches("<td data-label=\"Name\"").count()
}

/// The names the page lists, in order.
fn names(page: &Page) -> Vec<String> {
    page.body
        .split("<td data-label=\"Name\" class=\"name\"><a href=\"/tokens/")
        .skip(1)
        .filter_map(|cell| {
            let start = cell.find('>')? + 1;
            let end = cell.find("</a>")?;
            Some(cell[start..end].to_string())
        })
        .collect()
}

/// Saves a token's name and note through its edit page.
async fn edit(browser: &Browser, id: i32, name: &str, note: &str) -> Page {
    let path = format!("/tokens/{id}/edit");
    submit(browser, &path, &path, &[("name", name), ("note", note)]).await
}

/// Posts an edit to a token without opening its page, as a forged form would.
async fn forged_edit(browser: &Browser, id: i32) -> Page {
    let csrf = browser.csrf_from("/tokens").await;
    browser
        .post(
            &format!("/tokens/{id}/edit"),
            &[("csrf_token", &csrf), ("name", "mine now"), ("note", "")],
        )
        .await
}

/// Ticks `ids` in the list and opens the confirmation page, as the list's form does.
async fn confirm_bulk(browser: &Browser, ids: &[i32]) -> Page {
    let query: Vec<String> = ids.iter().map(|id| format!("id={id}")).collect();
    browser
        .get(&format!("/tokens/confirm-bulk-revoke?{}", query.join("&")))
        .await
}

/// Presses "Revoke tokens" on the confirmation page for `ids`.
async fn bulk_revoke(browser: &Browser, ids: &[i32], reason: &str) -> Page {
    let page = confirm_bulk(browser, ids).await;
    let joined = page.field_value("ids").unwrap_or_default();
    let csrf = page.csrf();
    browser
        .post(
            "/tokens/bulk-revoke",
            &[("csrf_token", &csrf), ("ids", &joined), ("reason", reason)],
        )
        .await
}

#[tokio::test]
async fn the_search_finds_tokens_by_name_key_creator_and_note() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Search Co").await;
    let member_email = email_for("search member");
    let member = join(&owner, &member_email, "member").await;
    let deploy = owner.create_token("CI deploys").await;
    let backup = owner.create_token("Nightly backup").await;
    let theirs = member.create_token("Laptop").await;
    edit(
        &owner,
        backup.id,
        "Nightly backup",
        "Ticket OPS-42: 100% of the S3 bucket",
    )
    .await
    .assert_redirect(&format!("/tokens/{}", backup.id));

    let cases = [
        ("ci DEPLOY", vec!["CI deploys"]),
        (deploy.token.key.as_str(), vec!["CI deploys"]),
        ("KW_", vec!["Laptop", "Nightly backup", "CI deploys"]),
        ("ops-42", vec!["Nightly backup"]),
        ("SEARCH.member@", vec!["Laptop"]),
        // LIKE's own characters are taken as typed.
        ("100%", vec!["Nightly backup"]),
        ("_backup", vec![]),
        ("nothing like it", vec![]),
    ];
    for (q, expected) in cases {
        let page = owner.get(&format!("/tokens?q={}", urlencode(q))).await;
        assert_eq!(names(&page), expected, "searching for {q:?}");
    }
    let none = owner.get("/tokens?q=nothing+like+it").await;
    none.assert_contains("No tokens match")
        .assert_contains("value=\"nothing like it\"");
    // A member's search covers their own tokens only.
    assert_eq!(names(&member.get("/tokens?q=a").await), ["Laptop"]);
    assert!(theirs.id > 0);
}

fn urlencode(raw: &str) -> String {
    serde_urlencoded::to_string([("q", raw)])
        .unwrap_or_default()
        .trim_start_matches("q=")
        .to_string()
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_hidden_by_default_and_counted() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Hidden Co").await;
    let kept = owner.create_token("kept").await;
    let revoked = owner.create_token("revoked one").await;
    let expired = owner.create_token("expired one").await;
    owner.revoke(revoked.id, "done").await;
    execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET expires_at = '2001-01-01 00:00:00' WHERE id = {}",
            expired.id
        ),
    )
    .await;

    let page = owner.get("/tokens").await;
    assert_eq!(names(&page), ["kept"]);
    page.assert_contains("2 revoked or expired tokens are hidden.")
        .assert_contains("<a href=\"/tokens?status=all\">Show revoked and expired</a>");
    assert_eq!(
        names(&owner.get("/tokens?status=all").await),
        ["expired one", "revoked one", "kept"]
    );
    assert_eq!(
        names(&owner.get("/tokens?status=revoked").await),
        ["revoked one"]
    );
    let only_expired = owner.get("/tokens?status=expired").await;
    assert_eq!(names(&only_expired), ["expired one"]);
    only_expired.assert_contains("badge-expired\">Expired</span>");
    // The count follows the other filters: a search for "kept" hides nothing.
    let searched = owner.get("/tokens?q=kept").await;
    assert!(!searched.body.contains("are hidden."), "{}", searched.body);
    assert!(kept.id > 0);
}

#[tokio::test]
async fn filters_by_member_scope_and_expiry_and_sorts_by_name_and_expiry() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Filter Co").await;
    let member_email = email_for("filter member");
    let member = join(&owner, &member_email, "member").await;
    let form = owner.token_form().await;
    owner
        .submit_token(&form, "b-read-only", &["read"], "7")
        .await;
    let form = owner.token_form().await;
    owner
        .submit_token(&form, "a-writer", &["read", "write"], "90")
        .await;
    member.create_token("c-members").await;
    let member_id = member_id(&owner, &member_email).await;

    assert_eq!(
        names(&owner.get(&format!("/tokens?member={member_id}")).await),
        ["c-members"]
    );
    assert_eq!(
        names(&owner.get("/tokens?scope=write").await),
        ["c-members", "a-writer"]
    );
    assert_eq!(
        names(&owner.get("/tokens?scope=read&expires=30").await),
        ["b-read-only"]
    );
    assert_eq!(
        names(&owner.get("/tokens?sort=name").await),
        ["a-writer", "b-read-only", "c-members"]
    );
    // Soonest first; a token that never expires comes last.
    assert_eq!(
        names(&owner.get("/tokens?sort=expires").await),
        ["b-read-only", "a-writer", "c-members"]
    );
    // The form shows what was asked, so the view can be changed from there.
    owner
        .get("/tokens?scope=write&sort=name")
        .await
        .assert_contains("<option value=\"write\" selected>")
        .assert_contains("<option value=\"name\" selected>");
    // A member can't look at a colleague's tokens through `member`.
    let owner_id = crate::support::admin::member_id(&owner, &email_for("Filter Co")).await;
    assert_eq!(
        names(&member.get(&format!("/tokens?member={owner_id}")).await),
        ["c-members"]
    );
}

#[tokio::test]
async fn a_filter_value_the_list_does_not_know_is_a_clear_error() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Bad Filter Co").await;
    let cases = [
        (
            "/tokens?status=gone",
            "“gone” is not a status the token list knows: use active, revoked, expired or all.",
        ),
        (
            "/tokens?sort=random",
            "“random” is not a sort order the token list knows",
        ),
        ("/tokens?scope=admin", "“admin” is not a scope"),
        ("/tokens?expires=3", "“3” is not an expiry window"),
        ("/tokens?page=0", "“0” is not a page"),
        ("/tokens?member=me", "“me” is not a member"),
    ];
    for (path, message) in cases {
        let page = owner.get(path).await;
        assert_invalid(&page, message);
    }
}

#[tokio::test]
async fn pages_of_fifty_keep_the_filters_in_their_links() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Paging Co").await;
    for n in 0..52 {
        owner.create_token(&format!("batch {n:02}")).await;
    }
    owner.create_token("other").await;

    let first = owner.get("/tokens?q=batch&sort=name").await;
    assert_eq!(listed(&first), 50);
    first
        .assert_contains("Showing 1–50 of 52 tokens.")
        .assert_contains("href=\"/tokens?q=batch&sort=name&page=2\" rel=\"next\"");
    let second = owner.get("/tokens?q=batch&sort=name&page=2").await;
    assert_eq!(names(&second), ["batch 50", "batch 51"]);
    second
        .assert_contains("Showing 51–52 of 52 tokens.")
        .assert_contains("href=\"/tokens?q=batch&sort=name\" rel=\"prev\"");
    // Past the last page: nothing, and no error.
    assert_eq!(listed(&owner.get("/tokens?q=batch&page=9").await), 0);
}

#[tokio::test]
async fn a_note_and_a_new_name_are_saved_shown_and_audited() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Notes Co").await;
    let made = owner.create_token("staging").await;

    edit(
        &owner,
        made.id,
        "Staging deploys",
        "Owner: platform team.\nTicket OPS-7",
    )
    .await
    .assert_redirect(&format!("/tokens/{}", made.id));
    let page = owner.get(&format!("/tokens/{}", made.id)).await;
    page.assert_contains("<h1>Staging deploys ")
        .assert_contains("Owner: platform team.\nTicket OPS-7");
    // The API sees the new name at once.
    let described = app.get_with_auth("/token", &made.token).await;
    let body: serde_json::Value = described.json().await.expect("JSON");
    assert_eq!(body["token"]["name"], "Staging deploys", "{body}");

    let log = audit_log(&owner, "").await;
    let actions: Vec<&str> = log.iter().take(2).map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.note_changed", "token.renamed"], "{log:#?}");
    assert_eq!(log[1].detail, "renamed from “staging” to “Staging deploys”");
    assert_eq!(log[0].detail, "note: Owner: platform team.\nTicket OPS-7");

    // Saving the same again changes and logs nothing.
    edit(
        &owner,
        made.id,
        "Staging deploys",
        "Owner: platform team.\nTicket OPS-7",
    )
    .await;
    assert_eq!(audit_log(&owner, "").await.len(), log.len());

    // Too long a note, or a blank name: a 422 that keeps what was typed; nothing saved.
    let long = "x".repeat(501);
    let refused = edit(&owner, made.id, "", &long).await;
    assert_invalid(&refused, "The note must have at most 500 characters.");
    refused
        .assert_contains("The token name can't be blank.")
        .assert_contains(&long);
    owner
        .get(&format!("/tokens/{}", made.id))
        .await
        .assert_contains("<h1>Staging deploys ");
}

#[tokio::test]
async fn a_member_can_edit_only_their_own_tokens() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Edit Rights Co").await;
    let member = join(&owner, &email_for("edit rights member"), "member").await;
    let owners = owner.create_token("owner's").await;
    assert_forbidden_page(&member.get(&format!("/tokens/{}/edit", owners.id)).await);
    assert_forbidden_page(&forged_edit(&member, owners.id).await);
    let other = signed_up(&app.address, "Elsewhere Co").await;
    assert_eq!(
        forged_edit(&other, owners.id).await.status,
        StatusCode::NOT_FOUND
    );
    owner
        .get(&format!("/tokens/{}", owners.id))
        .await
        .assert_contains("<h1>owner's ");
}

#[tokio::test]
async fn bulk_revoke_lists_the_tokens_then_revokes_them_in_one_step() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Bulk Co").await;
    let mut made: Vec<CreatedToken> = Vec::new();
    for name in ["alpha", "beta", "gamma", "kept"] {
        made.push(owner.create_token(name).await);
    }
    let (chosen, kept) = made.split_at(3);
    let ids: Vec<i32> = chosen.iter().map(|t| t.id).collect();

    let confirm = confirm_bulk(&owner, &ids).await;
    confirm
        .assert_html_page(StatusCode::OK)
        .assert_contains("3 tokens will be revoked.");
    for token in chosen {
        confirm.assert_contains(&token.token.key);
    }
    assert!(!confirm.body.contains(&kept[0].token.key));
    // Opening the confirmation revokes nothing.
    for token in chosen {
        assert_api_works(&app, &token.token).await;
    }

    bulk_revoke(&owner, &ids, "Laptop stolen")
        .await
        .assert_redirect("/tokens");
    owner
        .get("/tokens")
        .await
        .assert_contains("Revoked 3 tokens:")
        .assert_contains("3 revoked or expired tokens are hidden.");
    for token in chosen {
        assert_api_refuses(&app, &token.token).await;
    }
    assert_api_works(&app, &kept[0].token).await;
    let log = audit_log(&owner, "").await;
    let revocations: Vec<_> = log.iter().filter(|e| e.action == "token.revoked").collect();
    assert_eq!(revocations.len(), 3, "one event per token: {log:#?}");
    assert!(revocations.iter().all(|e| e.detail == "Laptop stolen"));
}

#[tokio::test]
async fn bulk_revoke_with_a_token_the_member_may_not_manage_revokes_none() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Bulk Rights Co").await;
    let member = join(&owner, &email_for("bulk rights member"), "member").await;
    let theirs = member.create_token("member's").await;
    let owners = owner.create_token("owner's").await;

    // The confirmation page refuses outright.
    assert_forbidden_page(&confirm_bulk(&member, &[theirs.id, owners.id]).await);
    // A forged form is refused inside the write, and the member's own token stays active.
    let csrf = member.csrf_from("/tokens").await;
    let ids = format!("{},{}", theirs.id, owners.id);
    let page = member
        .post(
            "/tokens/bulk-revoke",
            &[("csrf_token", &csrf), ("ids", &ids), ("reason", "")],
        )
        .await;
    assert_forbidden_page(&page);
    assert_api_works(&app, &theirs.token).await;
    assert_api_works(&app, &owners.token).await;

    // Another account's token id finds nothing: the page says none was chosen.
    let stranger = signed_up(&app.address, "Bulk Stranger Co").await;
    confirm_bulk(&stranger, &[owners.id])
        .await
        .assert_redirect("/tokens");
    let page = stranger
        .post(
            "/tokens/bulk-revoke",
            &[
                ("csrf_token", &stranger.csrf_from("/tokens").await),
                ("ids", &owners.id.to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_api_works(&app, &owners.token).await;
}

#[tokio::test]
async fn a_rolled_token_points_to_its_successor_in_the_list() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Rolled Co").await;
    let old = owner.create_token("Staging").await;
    let csrf = owner.csrf_from("/tokens").await;
    let rolled = owner
        .post(
            &format!("/tokens/{}/roll", old.id),
            &[("csrf_token", &csrf), ("grace", "24h")],
        )
        .await;
    let new = crate::support::browser::read_created_page(&rolled);

    let list = owner.get("/tokens").await;
    list.assert_contains("badge-rolled\">Rolled</span>")
        .assert_contains(&format!(
            "rolled → <a href=\"/tokens/{}\"><code>{}</code></a>",
            new.id, new.token.key
        ));
    assert_eq!(list.body.matches("badge-active\">Active</span>").count(), 1);
}
