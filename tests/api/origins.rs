//! Where the site says it is served from: the CSRF origin check and every absolute link (the
//! curl line, invitation links) come from the public URL, else the request's `Host`. A
//! proxy's `X-Forwarded-Host` and `X-Forwarded-Proto` count only when the operator trusts
//! them; otherwise anyone could send them.

use reqwest::StatusCode;

use crate::support::api::{TestApp, spawn_app, spawn_app_with};
use crate::support::browser::{
    Browser, PASSWORD, Page, email_for, html_page_problem, read_created_page,
};

const FORGED: [(&str, &str); 2] = [
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
];

/// Submits the new-token form with `headers` added.
async fn create_token_with(browser: &Browser, headers: &[(&str, &str)]) -> Page {
    let form = browser.token_form().await;
    browser
        .post_with_headers(
            "/tokens",
            headers,
            &[
                ("csrf_token", &form.csrf),
                ("nonce", &form.nonce),
                ("name", "behind a proxy"),
                ("read", "1"),
                ("expires_in_days", ""),
            ],
        )
        .await
}

/// Submits the invitation form on `/members` with `headers` added.
async fn invite_with(browser: &Browser, headers: &[(&str, &str)]) -> Page {
    let csrf = browser.csrf_from("/members").await;
    browser
        .post_with_headers(
            "/members/invite",
            headers,
            &[
                ("csrf_token", &csrf),
                ("email", &email_for("proxied invitee")),
                ("role", "member"),
            ],
        )
        .await
}

fn invite_link(page: &Page) -> String {
    page.assert_html_page(StatusCode::OK);
    page.element_text("invite-link")
        .unwrap_or_else(|| panic!("the page should show #invite-link; body:\n{}", page.body))
}

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    FORGED.iter().chain(extra).copied().collect()
}

async fn owner(app: &TestApp, name: &str) -> Browser {
    let browser = Browser::new(&app.address);
    browser.sign_up(name, &email_for(name)).await;
    browser
}

#[tokio::test]
async fn a_forged_forwarded_host_passes_no_origin_check() {
    let app = spawn_app().await;
    let browser = owner(&app, "Forwarded Forgery").await;
    let evil_origin = [("Origin", "https://evil.example")];

    let page = create_token_with(&browser, &with(&evil_origin)).await;
    assert_eq!(html_page_problem(&page, StatusCode::FORBIDDEN), None);
    assert!(
        !browser
            .get("/tokens")
            .await
            .text()
            .contains("behind a proxy"),
        "the refused form created a token"
    );

    // An anonymous form too: the sign-in with a forged origin signs no one in.
    let csrf = Browser::new(&app.address).csrf_from("/login").await;
    let page = browser
        .post_with_headers(
            "/login",
            &with(&evil_origin),
            &[
                ("csrf_token", &csrf),
                ("email", &email_for("Forwarded Forgery")),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(html_page_problem(&page, StatusCode::FORBIDDEN), None);
}

#[tokio::test]
async fn a_forged_forwarded_host_changes_no_link() {
    let app = spawn_app().await;
    let browser = owner(&app, "Forwarded Links").await;

    let created = read_created_page(&create_token_with(&browser, &FORGED).await);
    assert!(
        created
            .curl
            .ends_with(&format!(" {}/clusters/", app.address)),
        "the curl line should name this server, not the forged host: {}",
        created.curl
    );

    let link = invite_link(&invite_with(&browser, &FORGED).await);
    assert!(
        link.starts_with(&format!("{}/invitations/", app.address)),
        "the invitation link should name this server, not the forged host: {link}"
    );
}

#[tokio::test]
async fn trusted_forwarded_headers_name_the_origin_and_the_links() {
    let app = spawn_app_with(|config| config.trust_forwarded_headers = true).await;
    let browser = owner(&app, "Behind A Proxy").await;
    let proxied = [
        ("X-Forwarded-Host", "keys.example.com"),
        ("X-Forwarded-Proto", "https"),
    ];
    let mut from_the_proxy = proxied.to_vec();
    from_the_proxy.push(("Origin", "https://keys.example.com"));

    let created = read_created_page(&create_token_with(&browser, &from_the_proxy).await);
    assert!(
        created
            .curl
            .ends_with(" https://keys.example.com/clusters/"),
        "the curl line should name the proxy's origin: {}",
        created.curl
    );
    let link = invite_link(&invite_with(&browser, &from_the_proxy).await);
    assert!(
        link.starts_with("https://keys.example.com/invitations/"),
        "the invitation link should name the proxy's origin: {link}"
    );

    // The server's own address is not the origin the proxy reports.
    let mut mismatched = proxied.to_vec();
    let own = app.address.clone();
    mismatched.push(("Origin", own.as_str()));
    let page = create_token_with(&browser, &mismatched).await;
    assert_eq!(html_page_problem(&page, StatusCode::FORBIDDEN), None);
}

#[tokio::test]
async fn a_public_url_names_the_origin_whatever_the_headers_say() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("http://keys.example.com".into());
        config.trust_forwarded_headers = true;
    })
    .await;
    let browser = owner(&app, "Public Address").await;

    let created = read_created_page(&create_token_with(&browser, &FORGED).await);
    assert!(
        created.curl.ends_with(" http://keys.example.com/clusters/"),
        "the curl line should name the public URL: {}",
        created.curl
    );
    let own = app.address.clone();
    let page = create_token_with(&browser, &[("Origin", own.as_str())]).await;
    assert_eq!(html_page_problem(&page, StatusCode::FORBIDDEN), None);
    let page = create_token_with(&browser, &[("Origin", "http://keys.example.com")]).await;
    read_created_page(&page);
}
