//! What the accounts-and-admins tests share: submitting a form as a person would, inviting
//! and joining, operators, reading ids and roles off the members and operator pages, the audit
//! log as rows, and the API's answer while an account is suspended.

use diesel::connection::SimpleConnection;
use keyward::db::DbConnection;
use reqwest::{Response, StatusCode};

use crate::support::api::{
    SUPPORT_EMAIL, TestApp, Token, assert_401, assert_error_envelope, expect_json, keyward_cli,
};
use crate::support::browser::{Browser, PASSWORD, Page, unescape};

// ---------------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------------

/// Opens `page` for its CSRF token, then submits `fields` to `path` with it, as pressing a
/// button on that page would.
pub async fn submit(browser: &Browser, page: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = browser.csrf_from(page).await;
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    browser.post(path, &all).await
}

/// The 403 page a person sees when their role (or their lack of an account) forbids a thing.
pub fn assert_forbidden_page(page: &Page) {
    page.assert_html_page(StatusCode::FORBIDDEN)
        .assert_contains("Not allowed");
}

/// The 404 page: unknown, foreign, used or expired.
pub fn assert_not_found_page(page: &Page) {
    page.assert_html_page(StatusCode::NOT_FOUND)
        .assert_contains("Page not found");
}

/// The 422 page (or form) that says what to fix.
pub fn assert_invalid(page: &Page, message: &str) {
    page.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains(message);
}

// ---------------------------------------------------------------------------------------------
// Invitations
// ---------------------------------------------------------------------------------------------

/// Presses "Create invitation" on `/members`.
pub async fn invite(inviter: &Browser, email: &str, role: &str) -> Page {
    submit(
        inviter,
        "/members",
        "/members/invite",
        &[("email", email), ("role", role)],
    )
    .await
}

/// Invites `email` and returns the path of the link the page shows, `/invitations/TOKEN`.
pub async fn invitation_link(inviter: &Browser, email: &str, role: &str) -> String {
    let page = invite(inviter, email, role).await;
    page.assert_html_page(StatusCode::OK);
    let link = page.element_text("invite-link").unwrap_or_else(|| {
        panic!(
            "the page after inviting should show #invite-link; body:\n{}",
            page.body
        )
    });
    let path = link
        .strip_prefix(&inviter.address)
        .unwrap_or_else(|| panic!("the link {link:?} should point at {}", inviter.address));
    assert!(
        path.starts_with("/invitations/") && path.len() > "/invitations/".len(),
        "the link should be /invitations/TOKEN, was {link:?}"
    );
    path.to_string()
}

/// A new user's answer to the link: a password, twice.
pub async fn accept_as_new_user(browser: &Browser, link: &str, password: &str) -> Page {
    let fields = [("password", password), ("password_confirmation", password)];
    submit(browser, link, link, &fields).await
}

/// Invites `email` as `role` and has them join from a browser of their own.
pub async fn join(inviter: &Browser, email: &str, role: &str) -> Browser {
    let link = invitation_link(inviter, email, role).await;
    let browser = Browser::new(&inviter.address);
    accept_as_new_user(&browser, &link, PASSWORD)
        .await
        .assert_redirect("/tokens");
    browser
}

/// A connection of the test's own to the server's store (SQLite or PostgreSQL), set up as
/// the server's are (SQLite's busy timeout, so it waits its turn).
fn open(database: &str) -> DbConnection {
    keyward::db::open(database)
        .unwrap_or_else(|e| panic!("open the test database {database}: {e:#}"))
}

/// Makes every invitation of the server's database a week overdue, as time would.
pub async fn expire_invitations(app: &TestApp) {
    let path = app.db.path.clone();
    tokio::task::spawn_blocking(move || {
        open(&path)
            .batch_execute("UPDATE invitations SET expires_at = '2000-01-01 00:00:00';")
            .unwrap_or_else(|e| panic!("expire the invitations: {e}"));
    })
    .await
    .expect("expiring invitations should not panic");
}

// ---------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------

/// Creates an operator (who belongs to no account) with the command line, signs them in,
/// and sets up their second factor, as the console asks.
pub async fn operator(app: &TestApp, email: &str) -> Browser {
    let database = app.db.path.clone();
    let owned = email.to_string();
    tokio::task::spawn_blocking(move || {
        let args = ["operator", "create", "--email", owned.as_str()];
        keyward_cli(&database, &args, &format!("{PASSWORD}\n"))
    })
    .await
    .expect("the CLI task should not panic")
    .unwrap_or_else(|e| panic!("`keyward operator create --email {email}` failed: {e}"));
    let browser = Browser::new(&app.address);
    browser
        .log_in(email, PASSWORD)
        .await
        .assert_redirect("/admin");
    // The console needs a second factor: the operator sets one up first.
    crate::support::two_factor::enrol(&browser).await;
    browser
}

/// An account's id, read off the operator console's row for `account_name`.
pub async fn account_id(operator: &Browser, account_name: &str) -> i32 {
    let page = operator.get("/admin").await;
    page.assert_html_page(StatusCode::OK);
    let marker = format!(">{account_name}</a> <span class=\"muted\">(");
    id_in_row(&page.body, &marker, "/admin/accounts/").unwrap_or_else(|| {
        panic!(
            "the console should list {account_name:?} with its API-access form; body:\n{}",
            page.body
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

/// Presses "Remove" for `user_id` on `/members`.
pub async fn remove(actor: &Browser, user_id: i32) -> Page {
    submit(
        actor,
        "/members",
        &format!("/members/{user_id}/remove"),
        &[],
    )
    .await
}

/// Chooses `role` for `user_id` on `/members`.
pub async fn set_role(actor: &Browser, user_id: i32, role: &str) -> Page {
    let path = format!("/members/{user_id}/role");
    submit(actor, "/members", &path, &[("role", role)]).await
}

/// The row of the members table for `email`, if listed.
fn member_row<'a>(page: &'a Page, email: &str) -> Option<&'a str> {
    row_after(&page.body, &format!("data-label=\"Email\">{email}"))
}

/// From `marker` to the end of its table row.
fn row_after<'a>(body: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &body[body.find(marker)?..];
    Some(&rest[..rest.find("</tr>").unwrap_or(rest.len())])
}

/// The number after the first `prefix` in the table row that `marker` starts.
fn id_in_row(body: &str, marker: &str, prefix: &str) -> Option<i32> {
    let row = row_after(body, marker)?;
    let digits: String = row[row.find(prefix)? + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `GET /members`, which the viewer must be allowed to see.
pub async fn members_page(viewer: &Browser) -> Page {
    let page = viewer.get("/members").await;
    page.assert_html_page(StatusCode::OK);
    page
}

/// The user id of `email`, read off the members page. An owner sees it on every row; an
/// admin on every row but their own.
pub async fn member_id(viewer: &Browser, email: &str) -> i32 {
    let page = members_page(viewer).await;
    let marker = format!("data-label=\"Email\">{email}");
    id_in_row(&page.body, &marker, "/members/").unwrap_or_else(|| {
        panic!(
            "the members page should list {email} with a form that names their id; body:\n{}",
            page.body
        )
    })
}

/// The role the members page shows for `email`, or `None` if they are not a member.
pub async fn member_role(viewer: &Browser, email: &str) -> Option<String> {
    let page = members_page(viewer).await;
    let row = member_row(&page, email)?;
    let cell = &row[row.find("data-label=\"Role\">")?..];
    // An owner sees a menu with the role selected; anyone else sees the role as text.
    let shown = match cell.find(" selected>") {
        Some(at) => &cell[at + " selected>".len()..],
        None => &cell["data-label=\"Role\">".len()..],
    };
    Some(shown[..shown.find('<')?].trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// The audit log
// ---------------------------------------------------------------------------------------------

/// One row of `/audit`, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The text of the cell labelled `label` in one table row, tags stripped.
fn cell(row: &str, label: &str) -> String {
    let marker = format!("data-label=\"{label}\">");
    let Some(at) = row.find(&marker) else {
        return String::new();
    };
    let rest = &row[at + marker.len()..];
    let inner = &rest[..rest.find("</td>").unwrap_or(rest.len())];
    unescape(strip_tags(inner).trim())
}

/// The text of some HTML with its tags left out, entities still escaped.
pub fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// The events a page of the audit log lists, in the order shown.
pub fn audit_rows(page: &Page) -> Vec<AuditRow> {
    let Some((_, body)) = page.body.split_once("<tbody>") else {
        return Vec::new();
    };
    let body = body.split("</tbody>").next().unwrap_or_default();
    body.split("<tr>")
        .skip(1)
        .map(|row| AuditRow {
            actor: cell(row, "Actor"),
            action: cell(row, "Action"),
            target: cell(row, "Target"),
            detail: cell(row, "Detail"),
        })
        .collect()
}

/// `GET /audit{query}` (e.g. `?action=token.revoked`) as `viewer`, read into rows.
pub async fn audit_log(viewer: &Browser, query: &str) -> Vec<AuditRow> {
    let page = viewer.get(&format!("/audit{query}")).await;
    page.assert_html_page(StatusCode::OK);
    audit_rows(&page)
}

/// The first (newest) row with `action` whose target mentions `target`; panics listing the log.
pub fn find_event<'a>(rows: &'a [AuditRow], action: &str, target: &str) -> &'a AuditRow {
    rows.iter()
        .find(|r| r.action == action && r.target.contains(target))
        .unwrap_or_else(|| {
            panic!("the audit log should show {action} on {target:?}; it shows:\n{rows:#?}")
        })
}

// ---------------------------------------------------------------------------------------------
// The API, as a program sees it
// ---------------------------------------------------------------------------------------------

/// Who suspended an account's API access: the 403 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendedBy {
    Operator,
    Owners,
}

/// The one sentence of a suspended account's 403.
pub fn suspended_sentence(by: SuspendedBy) -> String {
    match by {
        SuspendedBy::Operator => format!(
            "This account's API access has been suspended by the operator. Contact {SUPPORT_EMAIL}."
        ),
        SuspendedBy::Owners => {
            "This account's API access has been turned off by its owners.".into()
        }
    }
}

/// Asserts exactly `{"errors": [<the suspension sentence>], "status": 403}`.
pub async fn assert_suspended(response: Response, by: SuspendedBy) {
    let errors = assert_error_envelope(response, StatusCode::FORBIDDEN).await;
    assert_eq!(
        errors,
        [suspended_sentence(by)],
        "a suspended account's token gets the suspension sentence and nothing else"
    );
}

/// `GET /clusters/` with the token.
pub async fn call_api(app: &TestApp, token: &Token) -> Response {
    app.get_with_auth("/clusters/", token).await
}

/// The token works: `GET /clusters/` answers 200.
pub async fn assert_api_works(app: &TestApp, token: &Token) {
    expect_json(call_api(app, token).await, StatusCode::OK).await;
}

/// The token is dead: `GET /clusters/` answers the contracted 401.
pub async fn assert_api_refuses(app: &TestApp, token: &Token) {
    assert_401(call_api(app, token).await, false).await;
}

/// Runs `SELECT COUNT(*) ...` on the server's database, as an auditor with a copy would.
pub async fn count_rows(app: &TestApp, count_query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let path = app.db.path.clone();
    let query = count_query.replacen("COUNT(*)", "COUNT(*) AS n", 1);
    tokio::task::spawn_blocking(move || {
        diesel::RunQueryDsl::get_result::<Count>(diesel::sql_query(&query), &mut open(&path))
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .n
    })
    .await
    .expect("the count should not panic")
}

/// Runs SQL on the server's database behind its back, as a bad migration or a hand edit would.
pub async fn execute_sql(app: &TestApp, sql: &str) {
    let path = app.db.path.clone();
    let sql = sql.to_string();
    tokio::task::spawn_blocking(move || {
        open(&path)
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
    .await
    .expect("the SQL task should not panic");
}
