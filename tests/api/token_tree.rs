//! The tree of tokens that tokens make: a token made through `/access-tokens` belongs to
//! its maker, and revoking the maker, by any path, revokes everything it made, at once,
//! with an audit row that says so. The pages show the tree, and no API call makes an orphan.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::admin::{
    assert_api_refuses, assert_api_works, audit_log, count_rows, execute_sql, find_event, join,
    member_id, remove,
};
use crate::support::api::{TestApp, Token, eventually, expect_json, spawn_app};
use crate::support::browser::{
    Browser, CreatedToken, Page, email_for, read_created_page, signed_up, unescape,
};

/// A token made in the dashboard that may manage tokens: the tree's root.
async fn manager(browser: &Browser, name: &str) -> CreatedToken {
    let form = browser.token_form().await;
    let page = browser
        .submit_token(&form, name, &["read", "write", "tokens"], "")
        .await;
    read_created_page(&page)
}

/// `POST /access-tokens` by `maker`: a read+write child, with its secret.
async fn mint(app: &TestApp, maker: &Token, name: &str) -> Token {
    let body = expect_json(
        app.post_json(
            "/access-tokens",
            maker,
            &json!({"name": name, "scopes": ["read", "write"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    token_from(&body)
}

fn token_from(body: &Value) -> Token {
    Token {
        key: body["access_token"]["key"].as_str().expect("a key").into(),
        secret: body["access_token"]["secret"]
            .as_str()
            .expect("a secret")
            .into(),
    }
}

/// The child is refused by the guard within a few seconds (at once for the paths that
/// answer after the cache has dropped it; the sweep and the command line are seen at the
/// next poll of the log).
async fn assert_refused_soon(app: &TestApp, child: &Token, path: &str) {
    let refused = eventually(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async { app.get_with_auth("/plans", child).await.status() == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert!(
        refused,
        "{path}: the child still works after its maker went"
    );
    assert_api_refuses(app, child).await;
}

/// The text of the notice with `id`, tags and all, as a person reads it.
fn notice(page: &Page, id: &str) -> Option<String> {
    let start = page.body.find(&format!("id=\"{id}\""))?;
    let rest = &page.body[start..];
    let rest = &rest[rest.find('>')? + 1..];
    let inner = &rest[..rest.find("</div>").or_else(|| rest.find("</p>"))?];
    let text = crate::support::admin::strip_tags(inner);
    Some(unescape(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// The id in the link a page shows around `key`.
fn linked_id(body: &str, key: &str) -> i32 {
    let end = body
        .find(&format!("\"><code>{key}</code>"))
        .unwrap_or_else(|| panic!("a link to {key}"));
    let start = body[..end].rfind("/tokens/").expect("a token link") + "/tokens/".len();
    body[start..end].parse().expect("a token id")
}

/// The ways a maker stops working.
#[derive(Debug, Clone, Copy)]
enum Path {
    LeakReport,
    DeleteToken,
    CommandLine,
    Dashboard,
    AnotherToken,
    MemberRemoval,
    ExpirySweep,
}

#[tokio::test]
async fn revoking_a_maker_by_any_path_revokes_what_it_made_and_the_log_says_so() {
    let app = spawn_app().await;
    for path in [
        Path::LeakReport,
        Path::DeleteToken,
        Path::CommandLine,
        Path::Dashboard,
        Path::AnotherToken,
        Path::MemberRemoval,
        Path::ExpirySweep,
    ] {
        let label = format!("{path:?}");
        let owner = signed_up(&app.address, &format!("Tree {label}")).await;
        let member_email = email_for(&format!("tree member {label}"));
        let member = join(&owner, &member_email, "member").await;
        let maker = manager(&member, "terraform").await;
        let child = mint(&app, &maker.token, "deployer").await;
        let unrelated = member.create_token("unrelated").await;
        assert_api_works(&app, &child).await;

        match path {
            Path::LeakReport => {
                let report = json!([{"token": maker.token.secret, "type": "keyward_api_token",
                    "url": "https://example.com/leak", "source": "content"}]);
                let response = app
                    .client
                    .post(app.url("/secret-scanning/report"))
                    .json(&report)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{label}");
            }
            Path::DeleteToken => {
                expect_json(app.delete("/token", &maker.token).await, StatusCode::OK).await;
            }
            Path::CommandLine => {
                app.cli(&["token", "revoke", &maker.token.key, "--reason", "leaked"])
                    .await
                    .expect("the command line revokes");
            }
            Path::Dashboard => {
                member
                    .revoke(maker.id, "leaked")
                    .await
                    .assert_redirect(&format!("/tokens/{}", maker.id));
            }
            Path::AnotherToken => {
                let other = manager(&owner, "owner's manager").await;
                let path = format!("/access-tokens/{}", maker.token.key);
                expect_json(app.delete(&path, &other.token).await, StatusCode::OK).await;
            }
            Path::MemberRemoval => {
                let id = member_id(&owner, &member_email).await;
                remove(&owner, id).await.assert_redirect("/members");
            }
            Path::ExpirySweep => {
                execute_sql(
                    &app,
                    &format!(
                        "UPDATE tokens SET expires_at = '2000-01-01 00:00:00' WHERE key = '{}';",
                        maker.token.key
                    ),
                )
                .await;
            }
        }

        assert_refused_soon(&app, &child, &label).await;
        let rows = audit_log(&owner, "?action=token.revoked").await;
        let event = find_event(&rows, "token.revoked", &child.key);
        assert!(
            event
                .detail
                .starts_with(&format!("revoked with its maker {}", maker.token.key)),
            "{label}: {event:?}"
        );
        if !matches!(path, Path::MemberRemoval) {
            assert_api_works(&app, &unrelated.token).await;
        }
    }
}

#[tokio::test]
async fn the_whole_tree_goes_however_deep_and_nothing_outside_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Deep Trees").await;
    let root = manager(&owner, "root").await;
    let child = mint(&app, &root.token, "child").await;
    let below = mint(&app, &root.token, "below").await;
    let sibling = manager(&owner, "sibling").await;
    let cousin = mint(&app, &sibling.token, "cousin").await;
    // A token can't grant `tokens`, so today's API makes trees one level deep; the walk
    // must not rely on that. Hang `below` under `child` by hand.
    execute_sql(
        &app,
        &format!(
            "UPDATE tokens SET maker_token_id = (SELECT id FROM tokens WHERE key = '{}') \
             WHERE key = '{}';",
            child.key, below.key
        ),
    )
    .await;

    expect_json(app.delete("/token", &root.token).await, StatusCode::OK).await;

    assert_api_refuses(&app, &child).await;
    assert_api_refuses(&app, &below).await;
    assert_api_works(&app, &sibling.token).await;
    assert_api_works(&app, &cousin).await;
    let rows = audit_log(&owner, "?action=token.revoked").await;
    assert_eq!(
        find_event(&rows, "token.revoked", &below.key).detail,
        format!("revoked with its maker {}", child.key)
    );
    for token in [&root.token.key, &child.key] {
        let actor = &find_event(&rows, "token.revoked", token).actor;
        assert!(actor.contains(&root.token.key), "{actor}");
    }
}

#[tokio::test]
async fn the_pages_show_the_tree_and_the_confirmation_counts_what_goes_with_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Tree Pages").await;
    let maker = manager(&owner, "terraform").await;
    let first = mint(&app, &maker.token, "first").await;
    let second = mint(&app, &maker.token, "second").await;
    let third = mint(&app, &maker.token, "third").await;
    expect_json(app.delete("/token", &third).await, StatusCode::OK).await;

    let page = owner.get(&format!("/tokens/{}", maker.id)).await;
    page.assert_html_page(StatusCode::OK);
    let made = notice(&page, "made").expect("the tokens it made");
    for child in [&first, &second, &third] {
        assert!(made.contains(&child.key), "{made}");
    }

    let confirm = owner
        .get(&format!("/tokens/{}/confirm-revoke", maker.id))
        .await;
    confirm.assert_html_page(StatusCode::OK);
    let note = notice(&confirm, "descendants").expect("the confirmation says what goes with it");
    assert!(note.contains("2 other active tokens"), "{note}");

    let child_id = linked_id(&page.body, &first.key);
    let child_page = owner.get(&format!("/tokens/{child_id}")).await;
    child_page.assert_html_page(StatusCode::OK);
    let made_by = notice(&child_page, "made-by").expect("its maker");
    assert!(
        made_by.contains(&format!("Made by token {}", maker.token.key)),
        "{made_by}"
    );

    // A standalone token's confirmation says nothing of descendants.
    let lone = owner.create_token("lone").await;
    let lone_confirm = owner
        .get(&format!("/tokens/{}/confirm-revoke", lone.id))
        .await;
    assert!(notice(&lone_confirm, "descendants").is_none());
}

#[tokio::test]
async fn a_roll_through_the_api_makes_no_orphan() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "No Orphans").await;
    let maker = manager(&owner, "terraform").await;
    let standalone = owner.create_token("made by a person").await;
    let rolled = expect_json(
        app.post_json(
            &format!("/access-tokens/{}/roll", standalone.token.key),
            &maker.token,
            &json!({"grace": "now"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let successor = token_from(&rolled);
    assert_api_works(&app, &successor).await;

    expect_json(app.delete("/token", &maker.token).await, StatusCode::OK).await;
    assert_api_refuses(&app, &successor).await;
}

#[tokio::test]
async fn a_maker_revoked_while_it_mints_leaves_no_child_alive() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Racing Makers").await;
    for trial in 0..50 {
        let maker = manager(&owner, &format!("maker {trial}")).await;
        let child = json!({"name": "child", "scopes": ["read"]});
        let mint = app.post_json("/access-tokens", &maker.token, &child);
        let revoke = app.delete("/token", &maker.token);
        let (minted, revoked) = tokio::join!(mint, revoke);
        assert_eq!(revoked.status(), StatusCode::OK, "trial {trial}");
        if minted.status() == StatusCode::CREATED {
            let child = token_from(&minted.json().await.unwrap());
            assert_api_refuses(&app, &child).await;
        } else {
            // Refused inside the write (403), or already by the guard (401).
            let status = minted.status();
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
                "trial {trial}: {status}"
            );
        }
        let alive = count_rows(
            &app,
            &format!(
                "SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL AND maker_token_id = \
                 (SELECT id FROM tokens WHERE key = '{}')",
                maker.token.key
            ),
        )
        .await;
        assert_eq!(alive, 0, "trial {trial}: a child outlived its maker");
    }
}
