//! Usage history: what the guard counts for each token and day (successes, wrong secrets,
//! 403s, 429s, other refusals and the server's failures), the last addresses a token was
//! used from, and the charts that show them. The counts are written in batches; these
//! stories flush the batch themselves instead of waiting for the background loop.

use reqwest::StatusCode;

use crate::support::admin::{count_rows, join};
use crate::support::api::{TestApp, Token, spawn_app, spawn_app_with};
use crate::support::browser::{Browser, Page, signed_up};

/// Writes what the guard has gathered, as the background loop would at its next tick.
async fn flush(app: &TestApp) {
    try_flush(app).await.expect("the batch should be written");
}

/// The same, returning how many tokens' figures were written, or the refusal.
async fn try_flush(app: &TestApp) -> Result<usize, keyward::error::AppError> {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || state.usage.flush(&state.pool))
        .await
        .expect("the flush should not panic")
}

fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

/// The chart's row for `day` in its table for screen readers (the first chart on the
/// page): successful, refused (4xx), forbidden, rate-limited, failed (5xx), wrong secret.
fn chart_row(page: &Page, day: &str) -> Option<Vec<i64>> {
    let row = page.body.find(&format!("<tr data-day=\"{day}\">"))?;
    page.body[row..]
        .split("<td>")
        .skip(1)
        .take(6)
        .map(|cell| cell[..cell.find('<')?].trim().parse().ok())
        .collect()
}

/// Successful calls on `day`, and all the others.
fn charted(page: &Page, day: &str) -> Option<(i64, i64)> {
    let cells = chart_row(page, day)?;
    Some((cells[0], cells[1..].iter().sum()))
}

/// A call to the API with the key and secret given.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    secret: &str,
) -> StatusCode {
    app.client
        .request(method, app.url(path))
        .basic_auth(key, Some(secret))
        .header("Content-Type", "application/json")
        .body("{\"name\": \"x\"}")
        .send()
        .await
        .expect("the server should answer")
        .status()
}

/// `GET /plans`, which every token may call: one counted use.
async fn get_plans(app: &TestApp, key: &str, secret: &str) -> StatusCode {
    call(app, reqwest::Method::GET, "/plans", key, secret).await
}

async fn read_only_token(browser: &Browser, name: &str) -> (i32, Token) {
    let form = browser.token_form().await;
    let page = browser.submit_token(&form, name, &["read"], "").await;
    let created = crate::dashboard_helpers::read_created_page(&page);
    (created.id, created.token)
}

#[tokio::test]
async fn a_tokens_page_charts_todays_calls_and_what_was_refused() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Charted Inc").await;
    let (id, token) = read_only_token(&owner, "reporting").await;
    let other = owner.create_token("other").await.token;

    for _ in 0..3 {
        let status = get_plans(&app, &token.key, &token.secret).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The right key with another token's (well-formed) secret: a wrong secret.
    for _ in 0..2 {
        let status = get_plans(&app, &token.key, &other.secret).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A read-only token may not create a cluster: a 403.
    let status = call(
        &app,
        reqwest::Method::POST,
        "/clusters",
        &token.key,
        &token.secret,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    flush(&app).await;

    let page = owner.get(&format!("/tokens/{id}")).await;
    page.assert_html_page(StatusCode::OK);
    assert_eq!(
        charted(&page, &today()),
        Some((3, 3)),
        "today's row: 3 successful, 3 refused"
    );
    assert_eq!(chart_row(&page, &today()), Some(vec![3, 0, 1, 0, 0, 2]));
    // Accessible: the SVG names itself, and carries a description of the numbers.
    page.assert_contains("<svg class=\"bars\"")
        .assert_contains("<title id=\"token-usage-title\">Calls in the last 30 days</title>")
        .assert_contains("3 successful calls, 0 refused, 1 forbidden and 0 rate-limited")
        .assert_contains("2 attempts with a wrong secret, drawn apart: they need only the key.")
        .assert_contains("Day (UTC)");
    // The other token's calls are its own.
    let today = today();
    let stored = count_rows(
        &app,
        &format!(
            "SELECT COUNT(*) FROM token_usage_days WHERE day = '{today}' \
             AND succeeded = 3 AND wrong_secret = 2 AND forbidden = 1 AND rate_limited = 0"
        ),
    )
    .await;
    assert_eq!(stored, 1);
    assert_eq!(
        count_rows(&app, "SELECT COUNT(*) FROM token_usage_days").await,
        1,
        "the other token made no call"
    );
}

#[tokio::test]
async fn a_handlers_404_or_422_counts_as_refused_not_as_a_success() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Refused Inc").await;
    let made = owner.create_token("writer").await;
    let (key, secret) = (&made.token.key, &made.token.secret);

    assert_eq!(get_plans(&app, key, secret).await, StatusCode::OK);
    let missing = call(
        &app,
        reqwest::Method::GET,
        "/clusters/no-such-cluster",
        key,
        secret,
    );
    assert_eq!(missing.await, StatusCode::NOT_FOUND);
    let invalid = app
        .client
        .post(app.url("/clusters"))
        .basic_auth(key, Some(secret))
        .header("Content-Type", "application/json")
        .body("{\"name\": \"\"}")
        .send()
        .await
        .expect("the server should answer");
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    flush(&app).await;

    let page = owner.get(&format!("/tokens/{}", made.id)).await;
    assert_eq!(chart_row(&page, &today()), Some(vec![1, 2, 0, 0, 0, 0]));
    page.assert_contains("1 successful calls, 2 refused, 0 forbidden and 0 rate-limited");
    let stored = count_rows(
        &app,
        "SELECT COUNT(*) FROM token_usage_days WHERE succeeded = 1 AND refused = 2",
    )
    .await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_call_the_server_failed_to_answer_counts_as_failed_not_as_a_success() {
    crate::sqlite_only!("the full disk is simulated through SQLite's max_page_count");
    use keyward::db::simulated_full_disk;
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Failed Inc").await;
    let made = owner.create_token("writer").await;
    let (key, secret) = (&made.token.key, &made.token.secret);

    assert_eq!(get_plans(&app, key, secret).await, StatusCode::OK);
    // Let in by the guard, then the store can't take the new cluster: a 503.
    simulated_full_disk::fill(&app.db.path).expect("the test database exists");
    let created = call(&app, reqwest::Method::POST, "/clusters", key, secret).await;
    simulated_full_disk::free(&app.db.path).expect("the test database exists");
    assert_eq!(created, StatusCode::SERVICE_UNAVAILABLE);
    flush(&app).await;

    let page = owner.get(&format!("/tokens/{}", made.id)).await;
    assert_eq!(chart_row(&page, &today()), Some(vec![1, 0, 0, 0, 1, 0]));
    page.assert_contains(
        "1 successful calls, 0 refused, 0 forbidden and 0 rate-limited, and 1 the server failed to answer.",
    );
    let stored = count_rows(
        &app,
        "SELECT COUNT(*) FROM token_usage_days WHERE succeeded = 1 AND failed = 1",
    )
    .await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn counts_from_two_flushes_add_up_and_unknown_keys_count_for_no_one() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Twice Inc").await;
    let created = owner.create_token("ci").await;
    let token = created.token;

    get_plans(&app, &token.key, &token.secret).await;
    flush(&app).await;
    get_plans(&app, &token.key, &token.secret).await;
    get_plans(&app, &token.key, &token.secret).await;
    // A key no token has, with a real secret: nobody's history.
    get_plans(&app, "kw_Zq8UnknownKey000", &token.secret).await;
    flush(&app).await;

    let page = owner.get(&format!("/tokens/{}", created.id)).await;
    assert_eq!(charted(&page, &today()), Some((3, 0)));
    assert_eq!(
        count_rows(&app, "SELECT COUNT(*) FROM token_usage_days").await,
        1
    );
}

#[tokio::test]
async fn the_last_five_addresses_are_listed_newest_first() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Roaming Inc").await;
    let created = owner.create_token("roaming").await;
    let token = &created.token;

    // Six machines call in turn, each from its own loopback address.
    for n in 2..=7u8 {
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from([127, 0, 0, n]))
            .build()
            .expect("a client");
        let status = client
            .get(app.url("/plans"))
            .basic_auth(&token.key, Some(&token.secret))
            .send()
            .await
            .expect("an answer")
            .status();
        assert_eq!(status, StatusCode::OK);
        // Apart in time, so "newest" is well defined.
        flush(&app).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let page = owner.get(&format!("/tokens/{}", created.id)).await;
    let listed: Vec<&str> = [
        "127.0.0.7",
        "127.0.0.6",
        "127.0.0.5",
        "127.0.0.4",
        "127.0.0.3",
    ]
    .into_iter()
    .filter(|ip| page.body.contains(&format!("<code>{ip}</code>")))
    .collect();
    assert_eq!(
        listed.len(),
        5,
        "the five latest are listed; body:\n{}",
        page.body
    );
    let at = |ip: &str| page.body.find(&format!("<code>{ip}</code>")).unwrap();
    assert!(at("127.0.0.7") < at("127.0.0.3"), "newest first");
    assert!(
        !page.body.contains("<code>127.0.0.2</code>"),
        "the oldest of six is dropped"
    );
    assert_eq!(
        count_rows(&app, "SELECT COUNT(*) FROM token_addresses").await,
        5
    );
}

/// Trusts, when `trusted`, forwarded headers from this host and from the inner proxy at
/// 10.0.0.1 that [`through_a_proxy`] names.
fn behind_proxies(config: &mut keyward::config::Config, trusted: bool) {
    config.trust_forwarded_headers = trusted;
    config.trusted_proxies =
        keyward::domain::parse_proxies("127.0.0.0/8, 10.0.0.0/8").expect("CIDRs");
}

/// Sends `request` with `token`, and the header two proxies in front (the inner at
/// 10.0.0.1) would add for a client at 203.0.113.9.
async fn through_a_proxy(request: reqwest::RequestBuilder, token: &Token) -> StatusCode {
    request
        .basic_auth(&token.key, Some(&token.secret))
        .header("X-Forwarded-For", "203.0.113.9, 10.0.0.1")
        .send()
        .await
        .expect("an answer")
        .status()
}

#[tokio::test]
async fn a_forwarded_address_counts_only_when_the_proxy_is_trusted() {
    for trusted in [false, true] {
        let app = spawn_app_with(|c| behind_proxies(c, trusted)).await;
        let owner = signed_up(&app.address, "Proxied Inc").await;
        let created = owner.create_token("behind a proxy").await;
        let status = through_a_proxy(app.client.get(app.url("/plans")), &created.token).await;
        assert_eq!(status, StatusCode::OK);
        flush(&app).await;

        let page = owner.get(&format!("/tokens/{}", created.id)).await;
        let (listed, not_listed) = if trusted {
            ("203.0.113.9", "127.0.0.1")
        } else {
            ("127.0.0.1", "203.0.113.9")
        };
        assert!(
            page.body.contains(&format!("<code>{listed}</code>")),
            "trusting the proxy: {trusted}; the page should list {listed}; body:\n{}",
            page.body
        );
        assert!(
            !page.body.contains(&format!("<code>{not_listed}</code>")),
            "trusting the proxy: {trusted}; {not_listed} should not be listed"
        );
    }
}

#[tokio::test]
async fn admins_see_the_accounts_chart_and_members_see_their_own_tokens_calls() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Team Inc").await;
    let member = join(&owner, "member@example.com", "member").await;
    let mine = owner.create_token("owner's").await.token;
    let theirs = member.create_token("member's").await.token;
    for _ in 0..4 {
        get_plans(&app, &mine.key, &mine.secret).await;
    }
    for _ in 0..2 {
        get_plans(&app, &theirs.key, &theirs.secret).await;
    }
    flush(&app).await;

    let list = owner.get("/tokens").await;
    list.assert_html_page(StatusCode::OK)
        .assert_contains("The account's calls in the last 30 days")
        .assert_contains("Calls, 14 days")
        .assert_contains("4 calls in the last 14 days")
        .assert_contains("2 calls in the last 14 days");
    assert_eq!(
        charted(&list, &today()),
        Some((6, 0)),
        "the account's total"
    );

    let list = member.get("/tokens").await;
    list.assert_html_page(StatusCode::OK)
        .assert_contains("2 calls in the last 14 days");
    assert!(
        !list.text().contains("The account's calls"),
        "a member sees no account-wide chart"
    );
    assert!(!list.text().contains("4 calls in the last 14 days"));
}

#[tokio::test]
async fn another_accounts_token_page_shows_nothing_of_its_use() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Private Inc").await;
    let created = owner.create_token("private").await;
    get_plans(&app, &created.token.key, &created.token.secret).await;
    flush(&app).await;

    let stranger = signed_up(&app.address, "Stranger Inc").await;
    let page = stranger.get(&format!("/tokens/{}", created.id)).await;
    page.assert_html_page(StatusCode::NOT_FOUND);
    assert!(!page.body.contains("127.0.0.1"));
}

#[tokio::test]
async fn counts_a_full_disk_refused_are_written_once_it_has_room_and_none_twice() {
    crate::sqlite_only!("the full disk is simulated through SQLite's max_page_count");
    use keyward::db::simulated_full_disk;

    // Only this story flushes: the background loop would race it for the batch.
    let app =
        spawn_app_with(|c| c.usage_flush_interval = std::time::Duration::from_secs(3600)).await;
    let owner = signed_up(&app.address, "Full Disk Inc").await;
    let created = owner.create_token("ci").await;
    let token = &created.token;
    for _ in 0..2 {
        get_plans(&app, &token.key, &token.secret).await;
    }

    simulated_full_disk::fill(&app.db.path).expect("the test database exists");
    let refused = try_flush(&app).await;
    // The API doesn't notice: it never writes.
    let status = get_plans(&app, &token.key, &token.secret).await;
    assert_eq!(status, StatusCode::OK);
    simulated_full_disk::free(&app.db.path).expect("the test database exists");
    assert!(refused.is_err(), "a full disk refuses the batch");

    assert_eq!(try_flush(&app).await.ok(), Some(1), "one token's figures");
    assert_eq!(
        try_flush(&app).await.ok(),
        Some(0),
        "nothing is left to write twice"
    );
    let page = owner.get(&format!("/tokens/{}", created.id)).await;
    assert_eq!(charted(&page, &today()), Some((3, 0)));
}

#[tokio::test]
async fn the_audit_log_names_the_same_address_as_the_usage_history() {
    for trusted in [false, true] {
        let app = spawn_app_with(|c| behind_proxies(c, trusted)).await;
        let owner = signed_up(&app.address, "Proxied Inc").await;
        let created = owner.create_token("revokes itself").await;
        let status = through_a_proxy(app.client.delete(app.url("/token")), &created.token).await;
        assert_eq!(status, StatusCode::OK);

        let expected = if trusted { "203.0.113.9" } else { "127.0.0.1" };
        let logged = count_rows(
            &app,
            &format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = 'token.revoked' AND ip = '{expected}'"
            ),
        )
        .await;
        assert_eq!(
            logged, 1,
            "trusting the proxy: {trusted}; the revocation should be logged from {expected}"
        );
    }
}
