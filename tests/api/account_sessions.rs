//! `/account/sessions`: a person sees every browser signed in as them, with when, from where
//! and which browser, and ends any of those sessions, or all but this one. Another person's
//! session is a 404.

use reqwest::StatusCode;

use crate::support::admin::{assert_not_found_page, submit};
use crate::support::api::spawn_app;
use crate::support::browser::{Browser, PASSWORD, Page, email_for, html_page_problem};

pub const FIREFOX_ON_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const CHROME_ON_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// One row of the sessions table, as a person reads it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i32,
    pub browser: String,
    pub ip: String,
    pub current: bool,
}

/// The rows of `/account/sessions`, in the order shown.
pub fn session_rows(page: &Page) -> Vec<SessionRow> {
    let Some((_, body)) = page.body.split_once("<tbody>") else {
        return Vec::new();
    };
    let body = body.split("</tbody>").next().unwrap_or_default();
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let cell = |label: &str| {
                let marker = format!("data-label=\"{label}\">");
                let rest = &row[row.find(&marker).map_or(0, |at| at + marker.len())..];
                rest[..rest.find('<').unwrap_or(rest.len())]
                    .trim()
                    .to_string()
            };
            let action = "action=\"/account/sessions/";
            let id = row
                .find(action)
                .map(|at| &row[at + action.len()..])
                .and_then(|rest| rest[..rest.find('/')?].parse().ok())
                .unwrap_or_else(|| panic!("each session row has an end form: {row}"));
            SessionRow {
                id,
                browser: cell("Browser"),
                ip: cell("IP address"),
                current: row.contains("this session"),
            }
        })
        .collect()
}

/// `GET /account/sessions`, read into rows.
pub async fn sessions_of(browser: &Browser) -> Vec<SessionRow> {
    let page = browser.get("/account/sessions").await;
    page.assert_html_page(StatusCode::OK);
    session_rows(&page)
}

/// A browser naming itself `user_agent` that signs in as `email`.
pub async fn signed_in_as(address: &str, email: &str, user_agent: &str) -> Browser {
    let browser = Browser::with_user_agent(address, user_agent);
    browser
        .log_in(email, PASSWORD)
        .await
        .assert_redirect("/tokens");
    browser
}

/// Presses "End" on a session's row.
async fn end(browser: &Browser, id: i32) -> Page {
    submit(
        browser,
        "/account/sessions",
        &format!("/account/sessions/{id}/end"),
        &[],
    )
    .await
}

async fn assert_signed_in(browser: &Browser) {
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);
}

async fn assert_signed_out(browser: &Browser) {
    browser.get("/tokens").await.assert_redirect("/login");
}

#[tokio::test]
async fn the_list_shows_each_signed_in_browser_and_marks_this_one() {
    let app = spawn_app().await;
    let email = email_for("Two Laptops");
    Browser::new(&app.address)
        .sign_up("Two Laptops", &email)
        .await;
    let firefox = signed_in_as(&app.address, &email, FIREFOX_ON_LINUX).await;
    let chrome = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;

    let seen_from_firefox = sessions_of(&firefox).await;
    let labels: Vec<(&str, bool)> = seen_from_firefox
        .iter()
        .map(|s| (s.browser.as_str(), s.current))
        .collect();
    assert!(
        labels.contains(&("Firefox on Linux", true))
            && labels.contains(&("Chrome on Windows 10", false)),
        "Firefox should see itself marked and Chrome listed: {seen_from_firefox:?}"
    );
    assert!(
        seen_from_firefox.iter().all(|s| s.ip == "127.0.0.1"),
        "every session came from 127.0.0.1: {seen_from_firefox:?}"
    );
    // The sign-up's own session is listed too: three in all.
    assert_eq!(seen_from_firefox.len(), 3, "{seen_from_firefox:?}");

    let seen_from_chrome = sessions_of(&chrome).await;
    let current: Vec<&str> = seen_from_chrome
        .iter()
        .filter(|s| s.current)
        .map(|s| s.browser.as_str())
        .collect();
    assert_eq!(current, ["Chrome on Windows 10"], "{seen_from_chrome:?}");

    // The header links every page to the list.
    firefox
        .get("/tokens")
        .await
        .assert_contains("href=\"/account/sessions\"");
}

#[tokio::test]
async fn ending_another_session_signs_that_browser_out_at_once() {
    let app = spawn_app().await;
    let email = email_for("Lost Phone");
    let laptop = Browser::with_user_agent(&app.address, FIREFOX_ON_LINUX);
    laptop.sign_up("Lost Phone", &email).await;
    let phone = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;
    assert_signed_in(&phone).await;

    let phone_session = sessions_of(&laptop)
        .await
        .into_iter()
        .find(|s| !s.current)
        .expect("the phone's session is listed");
    end(&laptop, phone_session.id)
        .await
        .assert_redirect("/account/sessions");
    let page = laptop.get("/account/sessions").await;
    page.assert_contains("That session has ended.");

    assert_signed_out(&phone).await;
    assert_signed_in(&laptop).await;
    let left = session_rows(&page);
    assert!(
        left.len() == 1 && left[0].current,
        "only this session is left: {left:?}"
    );
}

#[tokio::test]
async fn ending_all_other_sessions_keeps_this_one() {
    let app = spawn_app().await;
    let email = email_for("Many Devices");
    let main = Browser::new(&app.address);
    main.sign_up("Many Devices", &email).await;
    let others = [
        signed_in_as(&app.address, &email, FIREFOX_ON_LINUX).await,
        signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await,
    ];
    assert_eq!(sessions_of(&main).await.len(), 3);

    submit(
        &main,
        "/account/sessions",
        "/account/sessions/end-others",
        &[],
    )
    .await
    .assert_redirect("/account/sessions");
    let page = main.get("/account/sessions").await;
    page.assert_contains("2 other sessions ended.");

    for other in &others {
        assert_signed_out(other).await;
    }
    assert_signed_in(&main).await;
    let left = session_rows(&page);
    assert!(
        left.len() == 1 && left[0].current,
        "only this session is left: {left:?}"
    );
}

#[tokio::test]
async fn ending_this_session_from_the_list_is_signing_out() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.address);
    browser
        .sign_up("Self Ender", &email_for("Self Ender"))
        .await;
    let this = sessions_of(&browser).await[0].clone();
    assert!(this.current);

    end(&browser, this.id)
        .await
        .assert_redirect("/login?signed_out=1");
    assert_signed_out(&browser).await;
}

#[tokio::test]
async fn another_persons_session_is_not_found_and_stays_signed_in() {
    let app = spawn_app().await;
    let victim = Browser::new(&app.address);
    victim.sign_up("Victim Co", &email_for("Victim Co")).await;
    let victim_session = sessions_of(&victim).await[0].id;
    let intruder = Browser::new(&app.address);
    intruder
        .sign_up("Intruder Co", &email_for("Intruder Co"))
        .await;

    assert_not_found_page(&end(&intruder, victim_session).await);
    assert_not_found_page(&end(&intruder, victim_session + 1000).await);
    assert_signed_in(&victim).await;
    assert!(
        sessions_of(&intruder)
            .await
            .iter()
            .all(|s| s.id != victim_session),
        "the intruder's list shows only their own sessions"
    );
}

#[tokio::test]
async fn ending_a_session_needs_the_csrf_token_and_a_post() {
    let app = spawn_app().await;
    let email = email_for("Careful Ender");
    let laptop = Browser::new(&app.address);
    laptop.sign_up("Careful Ender", &email).await;
    let phone = signed_in_as(&app.address, &email, CHROME_ON_WINDOWS).await;
    let phone_session = sessions_of(&laptop)
        .await
        .into_iter()
        .find(|s| !s.current)
        .expect("the phone's session is listed");
    let path = format!("/account/sessions/{}/end", phone_session.id);

    let forged = laptop.post(&path, &[("csrf_token", "forged")]).await;
    assert_eq!(html_page_problem(&forged, StatusCode::FORBIDDEN), None);
    let forged_all = laptop.post("/account/sessions/end-others", &[]).await;
    assert_eq!(html_page_problem(&forged_all, StatusCode::FORBIDDEN), None);
    laptop
        .get(&path)
        .await
        .assert_status(StatusCode::METHOD_NOT_ALLOWED);

    assert_signed_in(&phone).await;
}
