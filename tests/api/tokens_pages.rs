//! The `/tokens` pages: a person creates a token, sees its secret once, and revokes it; the
//! API sees each step. Also what every page sends, and what a page of another account shows.

use reqwest::StatusCode;

use crate::support::api::{
    assert_401, assert_error_envelope, expect_json, http_client, spawn_app, status_with,
};
use crate::support::browser::{
    Browser, CaseFailures, Page, email_for, html_page_problem, read_created_page,
    refused_form_problems, signed_up,
};
use crate::support::process::ServerProcess;
use crate::support::store::TestDb;

#[tokio::test]
async fn a_token_made_in_the_dashboard_works_until_it_is_revoked_there() {
    let app = spawn_app().await;
    let email = email_for("Flow Co owner");
    let browser = Browser::new(&app.address);
    browser.sign_up("Flow Co", &email).await;

    // A new account has no tokens, and the list invites the first one.
    let empty = browser.get("/tokens").await;
    empty.assert_html_page(StatusCode::OK);
    assert!(
        empty.text().to_lowercase().contains("first token")
            && empty.body.contains("href=\"/tokens/new\""),
        "an empty list should invite creating the first token; body:\n{}",
        empty.body
    );
    assert_eq!(
        empty.first_token_link(),
        None,
        "a new account lists no tokens"
    );

    // The secret is shown once, with a ready curl line, on a page no cache keeps.
    let form = browser.token_form().await;
    let shown = browser
        .submit_token(&form, "CI deploys", &["read"], "")
        .await;
    let cache_control = shown
        .header("cache-control")
        .unwrap_or_default()
        .to_string();
    assert!(
        cache_control.contains("no-store"),
        "the secret page must not be cached, Cache-Control was {cache_control:?}"
    );
    let created = read_created_page(&shown);
    let token = &created.token;
    assert!(
        token.key.starts_with("kw_") && !token.key.contains(':'),
        "keys look like kw_..., with no colon: {:?}",
        token.key
    );
    assert_eq!(
        created.curl,
        format!(
            "curl -u {}:{} {}/clusters/",
            token.key, token.secret, app.address
        ),
        "the curl line should be ready to paste"
    );

    // The program can use it at once.
    expect_json(app.get_with_auth("/clusters/", token).await, StatusCode::OK).await;

    let listed = browser.get("/tokens").await;
    listed
        .assert_html_page(StatusCode::OK)
        .assert_contains("CI deploys")
        .assert_contains(&token.key);
    assert!(
        listed.body.contains("badge-active"),
        "the list should show the token as active; body:\n{}",
        listed.body
    );
    assert!(
        !listed.body.contains(&token.secret),
        "the list must never show the secret"
    );

    let token_page = format!("/tokens/{}", created.id);
    let before = browser.get(&token_page).await;
    before
        .assert_html_page(StatusCode::OK)
        .assert_contains(&token.key)
        .assert_contains("token.created");
    assert!(
        !before.body.contains(&token.secret),
        "the token's page must never show the secret"
    );

    // Revoke: a confirmation page, then the POST.
    let confirm = browser
        .get(&format!("/tokens/{}/confirm-revoke", created.id))
        .await;
    confirm.assert_html_page(StatusCode::OK);
    assert!(
        confirm
            .body
            .contains(&format!("action=\"/tokens/{}/revoke\"", created.id)),
        "the confirmation page should hold the revoke form; body:\n{}",
        confirm.body
    );
    // Typed by a person, so it is shown as text, never run as markup.
    let reason = "Leaked in a CI log <script>alert(1)</script> & \"pasted\"";
    browser
        .revoke(created.id, reason)
        .await
        .assert_redirect(&token_page);

    // From the moment revoke answered, the API refuses the token.
    assert_401(app.get_with_auth("/clusters/", token).await, false).await;

    let after = browser.get(&token_page).await;
    after
        .assert_html_page(StatusCode::OK)
        .assert_contains(reason)
        .assert_contains(&format!("by {email}"))
        .assert_contains("token.revoked");
    assert!(
        !after.body.contains("<script>alert(1)"),
        "the reason must be escaped, not written into the page as markup; body:\n{}",
        after.body
    );
    assert!(
        after.body.contains("badge-revoked"),
        "the token's page should show it revoked; body:\n{}",
        after.body
    );
    assert!(
        after
            .text_of("role=\"status\"")
            .is_some_and(|flash| flash.contains("revoked")),
        "a flash should confirm the revocation; body:\n{}",
        after.body
    );

    // The list hides it by default and says so; asked for revoked tokens, it shows it so.
    let relisted = browser.get("/tokens").await;
    relisted
        .assert_html_page(StatusCode::OK)
        .assert_contains("1 revoked or expired token is hidden.");
    assert!(!relisted.body.contains("badge-"), "{}", relisted.body);
    let revoked = browser.get("/tokens?status=revoked").await;
    assert!(
        revoked.body.contains("badge-revoked\">Revoked</span>")
            && !revoked.body.contains("badge-active"),
        "the list's status badge should say revoked; body:\n{}",
        revoked.body
    );
}

#[tokio::test]
async fn submitting_the_new_token_form_again_shows_the_token_page_without_the_secret() {
    let app = spawn_app().await;
    let browser = signed_up(&app.address, "Double Submit").await;
    let form = browser.token_form().await;

    let created = read_created_page(
        &browser
            .submit_token(&form, "Nightly backup", &["read", "write"], "30")
            .await,
    );
    let again = browser
        .submit_token(&form, "Nightly backup", &["read", "write"], "30")
        .await;

    again.assert_redirect(&format!("/tokens/{}", created.id));
    let page = browser.get(&format!("/tokens/{}", created.id)).await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains(&created.token.key);
    assert!(
        !page.body.contains(&created.token.secret),
        "the token's page must never show the secret"
    );
    let list = browser.get("/tokens").await;
    assert_eq!(
        list.body.matches("<td data-label=\"Name\"").count(),
        1,
        "the second submission must not make a second token; body:\n{}",
        list.body
    );
}

#[tokio::test]
async fn a_new_token_needs_a_name_and_a_scope() {
    let app = spawn_app().await;
    let browser = signed_up(&app.address, "Picky Forms").await;

    let cases: [(&str, &str, &[&str], &str); 3] = [
        (
            "blank name",
            "   ",
            &["read"],
            "The token name can't be blank.",
        ),
        (
            "no scope",
            "Scopeless",
            &[],
            "A token needs at least one scope.",
        ),
        ("neither", "", &[], "A token needs at least one scope."),
    ];
    let mut failures = CaseFailures::default();
    for (label, name, scopes, message) in cases {
        let form = browser.token_form().await;
        let page = browser.submit_token(&form, name, scopes, "").await;
        let mut problems = refused_form_problems(&page, message, &[("name", name)]);
        if page.element_text("token-secret").is_some() {
            problems.push("a secret was shown".to_string());
        }
        failures.record(label, problems, &page);
    }
    failures.assert_none("bad new-token forms not refused as contracted");
    let list = browser.get("/tokens").await;
    assert_eq!(
        list.first_token_link(),
        None,
        "no refused form may create a token; body:\n{}",
        list.body
    );
}

#[tokio::test]
async fn revoking_takes_a_post_and_a_get_on_the_revoke_route_is_405() {
    let app = spawn_app().await;
    let browser = signed_up(&app.address, "Link Clicker").await;
    let created = browser.create_token("prefetched").await;

    browser
        .get(&format!("/tokens/{}/revoke", created.id))
        .await
        .assert_html_page(StatusCode::METHOD_NOT_ALLOWED);

    expect_json(
        app.get_with_auth("/clusters/", &created.token).await,
        StatusCode::OK,
    )
    .await;
    let page = browser.get(&format!("/tokens/{}", created.id)).await;
    assert!(
        page.body.contains("badge-active"),
        "a GET must not revoke; body:\n{}",
        page.body
    );
}

#[tokio::test]
async fn a_reason_longer_than_500_characters_is_refused_and_revokes_nothing() {
    let app = spawn_app().await;
    let browser = signed_up(&app.address, "Wordy Co").await;
    let created = browser.create_token("still needed").await;

    browser
        .revoke(created.id, &"because ".repeat(70))
        .await
        .assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("The reason must have at most 500 characters.");

    expect_json(
        app.get_with_auth("/clusters/", &created.token).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn another_accounts_token_is_not_found_for_show_confirm_and_revoke_and_keeps_working() {
    let app = spawn_app().await;
    let bob = signed_up(&app.address, "Bob Builders").await;
    let bobs = bob.create_token("bob's deploys").await;
    let alice = signed_up(&app.address, "Alice Analytics").await;
    let csrf = alice.csrf_from("/tokens").await;
    let nonexistent = bobs.id + 100_000;

    // Bob's token and a token that does not exist must look the same to Alice.
    let mut failures = CaseFailures::default();
    for action in ["show", "confirm", "revoke"] {
        let mut pages: Vec<Page> = Vec::new();
        for id in [bobs.id, nonexistent] {
            pages.push(match action {
                "show" => alice.get(&format!("/tokens/{id}")).await,
                "confirm" => alice.get(&format!("/tokens/{id}/confirm-revoke")).await,
                _ => {
                    let fields = [("csrf_token", csrf.as_str()), ("reason", "not mine")];
                    alice.post(&format!("/tokens/{id}/revoke"), &fields).await
                }
            });
        }
        for page in &pages {
            let problems = html_page_problem(page, StatusCode::NOT_FOUND);
            failures.record(action, problems.into_iter().collect(), page);
        }
        if pages[0].body != pages[1].body {
            let problem = "another account's token answers differently from a missing one";
            failures.record(action, vec![problem.to_string()], &pages[0]);
        }
    }
    failures.assert_none("expected the same 404 page for a foreign and a missing token");

    expect_json(
        app.get_with_auth("/clusters/", &bobs.token).await,
        StatusCode::OK,
    )
    .await;
    let page = bob.get(&format!("/tokens/{}", bobs.id)).await;
    page.assert_html_page(StatusCode::OK);
    assert!(
        page.body.contains("badge-active") && !page.text().contains("not mine"),
        "Alice must not have revoked Bob's token; body:\n{}",
        page.body
    );
}

/// Problems with the headers every page must send, if any.
fn security_header_problems(page: &Page) -> Vec<String> {
    let mut problems = Vec::new();
    match page.header("content-security-policy") {
        None => problems.push("no Content-Security-Policy".to_string()),
        Some(csp) => {
            let directive = |name: &str| {
                csp.split(';')
                    .map(str::trim)
                    .find(|d| d.split_whitespace().next() == Some(name))
                    .map(str::to_string)
            };
            match directive("script-src").or_else(|| directive("default-src")) {
                None => problems.push(format!("the CSP leaves scripts unrestricted: {csp:?}")),
                Some(scripts) if scripts.contains("'unsafe-inline'") || scripts.contains('*') => {
                    problems.push(format!("the CSP allows inline or any scripts: {scripts:?}"));
                }
                Some(_) => {}
            }
        }
    }
    if !page
        .header("x-frame-options")
        .is_some_and(|v| v.eq_ignore_ascii_case("DENY"))
    {
        problems.push(format!(
            "X-Frame-Options is {:?}, expected DENY",
            page.header("x-frame-options")
        ));
    }
    if page
        .header("referrer-policy")
        .is_none_or(|v| v.trim().is_empty())
    {
        problems.push("no Referrer-Policy".to_string());
    }
    if !page
        .header("x-content-type-options")
        .is_some_and(|v| v.eq_ignore_ascii_case("nosniff"))
    {
        problems.push(format!(
            "X-Content-Type-Options is {:?}, expected nosniff",
            page.header("x-content-type-options")
        ));
    }
    problems
}

#[tokio::test]
async fn every_page_sends_the_security_headers() {
    let app = spawn_app().await;
    let anonymous = Browser::new(&app.address);
    let browser = signed_up(&app.address, "Header Check").await;
    let form = browser.token_form().await;

    let pages = [
        anonymous.get("/login").await,
        anonymous.get("/signup").await,
        browser.get("/tokens").await,
        browser.get("/tokens/new").await,
        browser.submit_token(&form, "headers", &["read"], "7").await,
        browser.get_html("/no-such-page").await,
    ];
    let failures: Vec<String> = pages
        .iter()
        .filter_map(|page| {
            let problems = security_header_problems(page);
            (!problems.is_empty()).then(|| format!("  {}: {}", page.request, problems.join("; ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "pages without the security headers:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn an_unknown_path_is_a_404_page_for_a_browser_and_the_json_envelope_for_a_program() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);

    browser
        .get_html("/no-such-page")
        .await
        .assert_html_page(StatusCode::NOT_FOUND);

    let response = app
        .client
        .get(app.url("/no-such-page"))
        .send()
        .await
        .expect("the server should answer");
    assert_error_envelope(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_token_whose_secret_was_shown_still_works_after_kill_9() {
    let db = TestDb::new();
    let server = ServerProcess::start(&db.path).await;
    let browser = signed_up(&server.address, "Crash Test").await;
    let created = browser.create_token("survivor").await;

    // SIGKILL right after the page with the secret was served: no shutdown hook runs.
    server.kill();
    let server = ServerProcess::start(&db.path).await;

    let status = status_with(&http_client(), &server.url("/clusters/"), &created.token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the token whose secret was shown must survive kill -9"
    );
}

#[tokio::test]
async fn a_token_page_names_who_made_it_and_who_revoked_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Names Co").await;
    let member_email = email_for("names member");
    let member = crate::admin_helpers::join(&owner, &member_email, "member").await;
    let made = member.create_token("made by the member").await;
    owner
        .revoke(made.id, "rotated")
        .await
        .assert_redirect(&format!("/tokens/{}", made.id));

    let page = owner.get(&format!("/tokens/{}", made.id)).await;
    page.assert_html_page(StatusCode::OK)
        .assert_contains(&format!("<dt>Created by</dt><dd>{member_email}</dd>"))
        .assert_contains(&format!("by {}: “rotated”", email_for("Names Co")));
    // The owner's list, which names every token's creator, says the same once asked to
    // show revoked tokens.
    owner
        .get("/tokens?status=all")
        .await
        .assert_contains(&format!(
            "<span class=\"muted creator\">by {member_email}</span>"
        ));
}

#[tokio::test]
async fn a_token_page_names_the_command_line_or_the_token_that_revoked_it() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Revokers Co").await;
    let by_cli = owner.create_token("revoked on the command line").await;
    let by_token = owner.create_token("revoked by terraform").await;
    let form = owner.token_form().await;
    let manager = read_created_page(
        &owner
            .submit_token(&form, "terraform", &["read", "tokens"], "")
            .await,
    );
    app.cli(&["token", "revoke", "--reason", "rotated", &by_cli.token.key])
        .await
        .expect("the CLI revokes the token");
    expect_json(
        app.delete(
            &format!("/access-tokens/{}", by_token.token.key),
            &manager.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;

    owner
        .get(&format!("/tokens/{}", by_cli.id))
        .await
        .assert_contains("by command line");
    owner
        .get(&format!("/tokens/{}", by_token.id))
        .await
        .assert_contains(&format!("by API token {} (terraform)", manager.token.key));
}

#[tokio::test]
async fn a_new_token_form_without_its_nonce_makes_nothing_and_says_to_fill_it_in_again() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Stale Form Co").await;
    let mut form = owner.token_form().await;
    form.nonce = String::from("from-an-older-page");

    owner
        .submit_token(&form, "never made", &["read"], "")
        .await
        .assert_redirect("/tokens/new");
    owner
        .get("/tokens/new")
        .await
        .assert_contains("That form has expired. Fill it in again.");
    let list = owner.get("/tokens").await;
    assert!(!list.body.contains("never made"), "no token was made");
}

#[tokio::test]
async fn the_secret_page_says_how_to_store_it_and_what_to_do_on_a_leak() {
    let app = spawn_app().await;
    let browser = signed_up(&app.address, "Advice Co").await;
    let form = browser.token_form().await;
    let page = browser
        .submit_token(&form, "deploys", &["read"], "30")
        .await;
    let created = read_created_page(&page);
    page.assert_contains("Store it safely")
        .assert_contains("Never commit it to a repository")
        .assert_contains("If it leaks")
        .assert_contains(&format!(
            "<a href=\"/tokens/{}/confirm-revoke\">Revoke it</a>",
            created.id
        ))
        .assert_contains(&format!(
            "<a href=\"/tokens/{}/confirm-roll\">roll it</a>",
            created.id
        ));
}
