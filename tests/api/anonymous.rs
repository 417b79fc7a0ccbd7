//! Anonymous visitors write nothing. The pages anyone may open (sign-in, sign-up, an
//! invitation, the front door) leave no session row and no other row behind; their forms
//! carry a signed cookie instead of a session's CSRF token. A session row appears at
//! sign-in, and not before.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use futures_util::StreamExt;
use keyward::db::DbConnection;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use reqwest::redirect::Policy;

use crate::support::admin::invitation_link;
use crate::support::api::{TestApp, spawn_app};
use crate::support::browser::{
    Browser, CSRF_COOKIE, CaseFailures, PASSWORD, Page, SESSION_COOKIE, email_for,
    html_page_problem, set_cookies, signed_up,
};

const REFUSED: &str = "This form has expired or did not come from this site.";

// ---------------------------------------------------------------------------------------------
// What the database holds
// ---------------------------------------------------------------------------------------------

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

#[derive(QueryableByName)]
struct Digest {
    #[diesel(sql_type = Text)]
    digest: String,
}

/// A connection of the test's own to the server's store, to read it as it is.
fn open(app: &TestApp) -> DbConnection {
    app.db.connect()
}

/// The number of rows in every table of the database, by table.
fn row_counts(conn: &mut DbConnection) -> BTreeMap<String, i64> {
    let tables = table_names(conn);
    assert!(
        tables.iter().any(|t| t == "sessions"),
        "the database should have a sessions table"
    );
    tables
        .into_iter()
        .map(|table| {
            let count: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM \"{table}\""))
                .get_result(conn)
                .unwrap_or_else(|e| panic!("count the rows of {table}: {e}"));
            (table, count.n)
        })
        .collect()
}

fn table_names(conn: &mut DbConnection) -> Vec<String> {
    let query = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        }
        DbConnection::Postgres(_) => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        }
    };
    diesel::sql_query(query)
        .load::<TableName>(conn)
        .expect("list the tables")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// Something that changes whenever anyone commits a change to the store, an update in
/// place included, which row counts would miss. SQLite's `data_version` does exactly that,
/// for this connection. PostgreSQL has no per-database equivalent (its transaction ids
/// are shared by every test's database on the server), so there it is a digest of every
/// row of every table.
fn data_version(conn: &mut DbConnection) -> String {
    if let DbConnection::Sqlite(sqlite) = conn {
        return diesel::sql_query("PRAGMA data_version")
            .get_result::<DataVersion>(sqlite)
            .expect("read data_version")
            .data_version
            .to_string();
    }
    table_names(conn)
        .into_iter()
        .map(|table| {
            let query = format!(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest \
                 FROM \"{table}\" t"
            );
            let digest: Digest = diesel::sql_query(query)
                .get_result(conn)
                .unwrap_or_else(|e| panic!("digest the rows of {table}: {e}"));
            format!("{table}:{}", digest.digest)
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn session_rows(app: &TestApp) -> i64 {
    row_counts(&mut open(app))["sessions"]
}

// ---------------------------------------------------------------------------------------------
// A browser's view of an anonymous form, taken apart
// ---------------------------------------------------------------------------------------------

/// A client with no cookie jar that stops at redirects: each request carries exactly the
/// cookies the test gives it.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

async fn read(request: String, response: reqwest::Response) -> Page {
    Page {
        request,
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap_or_default(),
    }
}

/// What one visit to a page with an anonymous form hands the browser.
struct AnonymousForm {
    /// The hidden `csrf_token` field's value.
    field: String,
    /// The value of the CSRF cookie the page set.
    cookie: String,
}

async fn open_form(app: &TestApp, path: &str) -> AnonymousForm {
    let response = bare_client()
        .get(app.url(path))
        .send()
        .await
        .expect("the server should answer");
    let page = read(format!("GET {path}"), response).await;
    page.assert_html_page(StatusCode::OK);
    let cookie = page.set_cookie(CSRF_COOKIE).unwrap_or_else(|| {
        panic!(
            "GET {path} should set {CSRF_COOKIE}; headers {:?}",
            page.headers
        )
    });
    assert!(
        page.session_set_cookie().is_none(),
        "GET {path} should not start a session"
    );
    AnonymousForm {
        field: page.csrf(),
        cookie: cookie.value,
    }
}

/// Posts `fields` to `path`, with `csrf_token` if given, carrying `cookie` as the CSRF
/// cookie if given and nothing else.
async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    csrf_token: Option<&str>,
    fields: &[(&str, &str)],
) -> Page {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    if let Some(token) = csrf_token {
        form.push(("csrf_token", token));
    }
    let mut request = bare_client().post(app.url(path)).form(&form);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("{CSRF_COOKIE}={cookie}"));
    }
    let response = request.send().await.expect("the server should answer");
    read(format!("POST {path}"), response).await
}

// ---------------------------------------------------------------------------------------------
// The stories
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_thousand_anonymous_page_views_write_nothing_to_any_table() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Quiet Door Ltd").await;
    let invitation = invitation_link(&owner, &email_for("quiet invitee"), "member").await;

    let mut conn = open(&app);
    let before = row_counts(&mut conn);
    let version = data_version(&mut conn);

    // Half from clients that never keep a cookie, half from one browser that keeps the CSRF
    // cookie it is given, as a person's would.
    let paths = [
        "/login",
        "/signup",
        invitation.as_str(),
        "/",
        "/login?signed_out=1",
    ];
    let keeper = Browser::new(&app.address);
    let views = (0..1000).map(|i| (paths[i % paths.len()], i % 2 == 0));
    let pages: Vec<Page> = futures_util::stream::iter(views)
        .map(|(path, keeps_cookies)| {
            let (app, keeper) = (&app, &keeper);
            async move {
                if keeps_cookies {
                    keeper.get(path).await
                } else {
                    let response = bare_client()
                        .get(app.url(path))
                        .send()
                        .await
                        .expect("the server should answer");
                    read(format!("GET {path}"), response).await
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    let mut failures = CaseFailures::default();
    for page in &pages {
        let mut problems = Vec::new();
        let expected = if page.request == "GET /" {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::OK
        };
        if page.status != expected {
            problems.push(format!("status {} (expected {expected})", page.status));
        }
        if page.session_set_cookie().is_some() {
            problems.push("it set a session cookie".to_string());
        }
        failures.record("anonymous view", problems, page);
    }
    failures.assert_none("every anonymous view should answer without a session");
    assert_eq!(pages.len(), 1000);

    assert_eq!(
        row_counts(&mut conn),
        before,
        "1,000 anonymous page views changed the number of rows"
    );
    assert_eq!(
        data_version(&mut conn),
        version,
        "1,000 anonymous page views committed a change to the database"
    );
}

#[tokio::test]
async fn a_session_row_appears_at_sign_in_and_not_before() {
    let app = spawn_app().await;
    signed_up(&app.address, "Row Counter").await;
    let rows = session_rows(&app);

    let browser = Browser::new(&app.address);
    let csrf = browser.csrf_from("/login").await;
    assert_eq!(
        session_rows(&app),
        rows,
        "the sign-in page made a session row"
    );
    assert_eq!(
        browser.session_cookie(),
        None,
        "the sign-in page set a session cookie"
    );

    browser
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", &email_for("Row Counter")),
                ("password", PASSWORD),
            ],
        )
        .await
        .assert_redirect("/tokens");
    assert_eq!(session_rows(&app), rows + 1, "signing in makes one row");
    browser
        .get("/tokens")
        .await
        .assert_html_page(StatusCode::OK);
}

#[tokio::test]
async fn sign_up_sign_in_and_an_invitation_work_with_the_signed_cookie_alone() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Cookie Forms").await;
    let invitation = invitation_link(&owner, &email_for("cookie joiner"), "member").await;

    let signup = open_form(&app, "/signup").await;
    let page = post_form(
        &app,
        "/signup",
        Some(&signup.cookie),
        Some(&signup.field),
        &[
            ("account_name", "Second Cookie Forms"),
            ("email", &email_for("second cookie forms")),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ],
    )
    .await;
    page.assert_redirect("/tokens");
    assert!(page.session_set_cookie().is_some(), "sign-up signs in");

    let login = open_form(&app, "/login").await;
    let page = post_form(
        &app,
        "/login",
        Some(&login.cookie),
        Some(&login.field),
        &[
            ("email", &email_for("Cookie Forms")),
            ("password", PASSWORD),
        ],
    )
    .await;
    page.assert_redirect("/tokens");
    assert!(page.session_set_cookie().is_some(), "sign-in signs in");

    let join = open_form(&app, &invitation).await;
    let page = post_form(
        &app,
        &invitation,
        Some(&join.cookie),
        Some(&join.field),
        &[("password", PASSWORD), ("password_confirmation", PASSWORD)],
    )
    .await;
    page.assert_redirect("/tokens");
    assert!(page.session_set_cookie().is_some(), "joining signs in");
}

#[tokio::test]
async fn an_anonymous_form_without_its_own_genuine_cookie_and_field_is_refused() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Forgery Target").await;
    let invitation = invitation_link(&owner, &email_for("forged joiner"), "member").await;
    let new_account = [
        ("account_name", "Forged Account"),
        ("email", "forged.account@example.test"),
        ("password", PASSWORD),
        ("password_confirmation", PASSWORD),
    ];
    let owner_email = email_for("Forgery Target");
    let sign_in = [("email", owner_email.as_str()), ("password", PASSWORD)];
    let join = [("password", PASSWORD), ("password_confirmation", PASSWORD)];
    let forms: [(&str, &[(&str, &str)]); 3] = [
        ("/signup", &new_account),
        ("/login", &sign_in),
        (invitation.as_str(), &join),
    ];

    let mut failures = CaseFailures::default();
    for (path, fields) in forms {
        let mine = open_form(&app, path).await;
        let theirs = open_form(&app, path).await;
        assert_ne!(mine.field, theirs.field, "two visits share a token");
        let (nonce, rest) = mine.cookie.split_once('.').expect("NONCE.ISSUED.MAC");
        let (issued, _) = rest.split_once('.').expect("NONCE.ISSUED.MAC");
        let forged_cookie = format!("{nonce}.{issued}.{}", "A".repeat(43));

        let cases = [
            ("the field, no cookie", None, Some(mine.field.as_str())),
            (
                "the field with another visit's cookie",
                Some(theirs.cookie.as_str()),
                Some(mine.field.as_str()),
            ),
            (
                "the field with a cookie of the same nonce and a forged signature",
                Some(forged_cookie.as_str()),
                Some(mine.field.as_str()),
            ),
            ("the cookie, no field", Some(mine.cookie.as_str()), None),
            (
                "the cookie with another visit's field",
                Some(mine.cookie.as_str()),
                Some(theirs.field.as_str()),
            ),
        ];
        for (label, cookie, field) in cases {
            let page = post_form(&app, path, cookie, field, fields).await;
            let mut problems: Vec<String> = html_page_problem(&page, StatusCode::FORBIDDEN)
                .into_iter()
                .collect();
            if !page.text().contains(REFUSED) {
                problems.push(format!("no {REFUSED:?}"));
            }
            if page.session_set_cookie().is_some() {
                problems.push("it signed someone in".into());
            }
            failures.record(&format!("{path}: {label}"), problems, &page);
        }
    }
    failures.assert_none("expected the 403 page, and no sign-in");

    // Nothing the refused forms asked for happened: the email is still free and the
    // invitation still open.
    Browser::new(&app.address)
        .sign_up("Forged Account", "forged.account@example.test")
        .await;
    let join = open_form(&app, &invitation).await;
    post_form(
        &app,
        &invitation,
        Some(&join.cookie),
        Some(&join.field),
        &[("password", PASSWORD), ("password_confirmation", PASSWORD)],
    )
    .await
    .assert_redirect("/tokens");
}

#[tokio::test]
async fn the_signed_out_notice_needs_no_session() {
    let app = spawn_app().await;
    let response = bare_client()
        .get(app.url("/login?signed_out=1"))
        .send()
        .await
        .expect("the server should answer");
    assert!(
        set_cookies(&response)
            .iter()
            .all(|c| c.name != SESSION_COOKIE),
        "the notice started a session"
    );
    assert!(response.headers().get(LOCATION).is_none());
    read("GET /login?signed_out=1".into(), response)
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("You have signed out.");
}
