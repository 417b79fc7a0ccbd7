//! Several instances, one truth (issue 11, part 2): two `keyward serve` processes on one
//! store (the same SQLite file, or one PostgreSQL database when the suite runs there), as
//! a load balancer would put them. What one does, the other honours: a revocation, a
//! suspension or a member's removal through A is refused by B within a second; failed
//! sign-ins through A and B count against one limit; a session made on A works on B and
//! ends on B when it is ended on A; and the usage batches of both add up.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use keyward::db::schema::{token_usage_days, tokens};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::support::admin::{account_id, join, member_id, remove, submit};
use crate::support::api::{TestApp, Token, http_client, keyward_cli, spawn_app, spawn_app_at};
use crate::support::browser::{Browser, PASSWORD, email_for, signed_up};
use crate::support::process::ServerProcess;
use crate::support::store::TestDb;

/// The bound: a change through one instance is refused by every other within this.
const PROPAGATION: Duration = Duration::from_secs(1);

/// How long the test keeps asking B, so a miss fails with the lag it saw rather than hanging.
const GIVE_UP: Duration = Duration::from_secs(10);

/// Sign-ups one address may make in an hour (`limits::sign_in::SIGN_UPS_PER_IP`).
const SIGN_UPS_PER_ADDRESS: usize = 20;

/// Two server processes on one fresh store.
async fn two_instances() -> (TestDb, ServerProcess, ServerProcess) {
    let db = TestDb::new();
    let a = ServerProcess::start(&db.path).await;
    let b = ServerProcess::start(&db.path).await;
    (db, a, b)
}

/// B's answer to `GET /token` with `token`.
async fn status_on(server: &ServerProcess, token: &Token) -> StatusCode {
    http_client()
        .get(server.url("/token"))
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .expect("the server should answer")
        .status()
}

/// Calls B with `token` until B lets it in, so the token is warm in B's cache.
async fn warm(server: &ServerProcess, token: &Token) {
    let started = Instant::now();
    while status_on(server, token).await != StatusCode::OK {
        assert!(
            started.elapsed() < GIVE_UP,
            "{} never learned of the new token",
            server.address
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks `server` with `token` until it answers `refusal`, and says how long that took from
/// `since`. Bounded by [`GIVE_UP`].
async fn refused_after(
    server: &ServerProcess,
    token: &Token,
    refusal: StatusCode,
    since: Instant,
) -> Duration {
    loop {
        let status = status_on(server, token).await;
        if status == refusal {
            return since.elapsed();
        }
        assert_eq!(
            status,
            StatusCode::OK,
            "only {refusal} or a 200 is expected"
        );
        assert!(
            since.elapsed() < GIVE_UP,
            "{} still lets the token in {GIVE_UP:?} after the change",
            server.address
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_created_on_one_instance_works_on_its_first_call_to_the_other() {
    let (_db, a, b) = two_instances().await;
    let owner = signed_up(&a.address, "Load Balanced Co").await;

    for round in 0..20 {
        let created = owner.create_token(&format!("worker {round}")).await;
        // Right after A's secret page, and before B's next poll of the log could tell it.
        assert_eq!(
            status_on(&b, &created.token).await,
            StatusCode::OK,
            "round {round}: B refused a token A had just made"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_instance_is_refused_by_the_other_within_a_second() {
    let (_db, a, b) = two_instances().await;
    let owner = signed_up(&a.address, "Propagation Co").await;
    let created = owner.create_token("deploy bot").await;
    warm(&b, &created.token).await;

    owner
        .revoke(created.id, "rotated")
        .await
        .assert_redirect(&format!("/tokens/{}", created.id));
    let revoked = Instant::now();
    // A itself refuses at once: the revoke answered only after A's cache dropped it.
    assert_eq!(
        status_on(&a, &created.token).await,
        StatusCode::UNAUTHORIZED
    );

    let lag = refused_after(&b, &created.token, StatusCode::UNAUTHORIZED, revoked).await;
    assert!(
        lag <= PROPAGATION,
        "B refused the revoked token after {lag:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_suspended_on_one_instance_is_refused_by_the_other_within_a_second() {
    let (db, a, b) = two_instances().await;
    let owner = signed_up(&a.address, "Suspended Co").await;
    let created = owner.create_token("nightly job").await;
    warm(&b, &created.token).await;

    let op_email = email_for("instances operator");
    let database = db.path.clone();
    let args_email = op_email.clone();
    tokio::task::spawn_blocking(move || {
        let args = ["operator", "create", "--email", args_email.as_str()];
        keyward_cli(&database, &args, &format!("{PASSWORD}\n"))
    })
    .await
    .expect("the CLI task should not panic")
    .expect("an operator is made");
    let op = Browser::new(&a.address);
    op.log_in(&op_email, PASSWORD)
        .await
        .assert_redirect("/admin");
    crate::support::two_factor::enrol(&op).await;
    let account = account_id(&op, "Suspended Co").await;

    let path = format!("/admin/accounts/{account}/api-access");
    let fields = [("state", "suspended"), ("reason", "unpaid invoices")];
    let answer = submit(&op, "/admin", &path, &fields).await;
    assert!(
        answer.status.is_redirection(),
        "the suspension should be accepted: {} {}",
        answer.status,
        answer.body
    );
    let suspended = Instant::now();
    assert_eq!(status_on(&a, &created.token).await, StatusCode::FORBIDDEN);

    let lag = refused_after(&b, &created.token, StatusCode::FORBIDDEN, suspended).await;
    assert!(
        lag <= PROPAGATION,
        "B refused the suspended account after {lag:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_on_one_instance_loses_their_token_on_the_other_within_a_second() {
    let (_db, a, b) = two_instances().await;
    let owner = signed_up(&a.address, "Removal Co").await;
    let member_email = email_for("removal member");
    let member = join(&owner, &member_email, "member").await;
    let theirs = member.create_token("member's laptop").await;
    warm(&b, &theirs.token).await;

    let id = member_id(&owner, &member_email).await;
    remove(&owner, id).await.assert_redirect("/members");
    let removed = Instant::now();
    assert_eq!(status_on(&a, &theirs.token).await, StatusCode::UNAUTHORIZED);

    let lag = refused_after(&b, &theirs.token, StatusCode::UNAUTHORIZED, removed).await;
    assert!(
        lag <= PROPAGATION,
        "B refused the removed member's token after {lag:?}"
    );
}

/// A wrong password for `email`, typed on `server`'s sign-in page; the answer's status and
/// Retry-After.
async fn wrong_password(server: &ServerProcess, email: &str) -> (StatusCode, Option<String>) {
    let page = Browser::new(&server.address)
        .log_in(email, "not the password at all")
        .await;
    (
        page.status,
        page.header(RETRY_AFTER.as_str()).map(str::to_string),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_through_two_instances_add_up_to_one_limit() {
    let (_db, a, b) = two_instances().await;
    let email = email_for("guessed at twice");
    Browser::new(&a.address).sign_up("Guessed Co", &email).await;

    // The free failures of one (address, email) pair, split between the instances.
    for server in [&a, &a, &a, &b, &b] {
        assert_eq!(
            wrong_password(server, &email).await.0,
            StatusCode::UNAUTHORIZED,
            "a free failure on {}",
            server.address
        );
    }
    // Each instance has seen fewer than the free five, yet both now make the pair wait.
    for server in [&b, &a] {
        let (status, retry_after) = wrong_password(server, &email).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "on {}",
            server.address
        );
        assert!(retry_after.is_some(), "a 429 says when to try again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_from_one_address_through_two_instances_add_up_to_one_limit() {
    let (_db, a, b) = two_instances().await;
    for n in 0..SIGN_UPS_PER_ADDRESS {
        let server = if n % 2 == 0 { &a } else { &b };
        Browser::new(&server.address)
            .sign_up(&format!("Busy Co {n}"), &email_for(&format!("busy {n}")))
            .await;
    }
    for server in [&a, &b] {
        let page = Browser::new(&server.address)
            .submit_signup(
                "One Too Many",
                &email_for("one too many"),
                PASSWORD,
                PASSWORD,
            )
            .await;
        page.assert_html_page(StatusCode::TOO_MANY_REQUESTS);
        assert!(page.header(RETRY_AFTER.as_str()).is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_guesses_at_both_instances_at_once_gets_only_the_free_failures() {
    let (_db, a, b) = two_instances().await;
    let email = email_for("burst target");
    Browser::new(&b.address).sign_up("Burst Co", &email).await;

    // Four at each instance at once: within each one's argon2 queue, so none is turned
    // away as busy; only the shared count can refuse them.
    let guesses = [&a, &b, &a, &b, &a, &b, &a, &b].map(|server| wrong_password(server, &email));
    let answers: Vec<StatusCode> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let checked = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let waited = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        (checked, waited),
        (5, 3),
        "exactly the free five were checked: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_instance_works_on_the_other_and_ends_there_at_logout() {
    let (_db, a, b) = two_instances().await;
    let on_a = signed_up(&a.address, "Roaming Co").await;
    let session = on_a
        .session_cookie()
        .expect("signing up leaves a session cookie");
    // The same browser, its next request sent by the load balancer to B.
    let on_b = Browser::with_session_cookie(&b.address, &session);
    on_b.get("/tokens")
        .await
        .assert_html_page(StatusCode::OK)
        .assert_contains("Roaming Co");

    on_a.log_out().await;
    let after = on_b.get("/tokens").await;
    assert!(
        after.status.is_redirection()
            && after
                .header("location")
                .is_some_and(|to| to.starts_with("/login")),
        "B should send the signed-out browser to sign in, not answer {} {}",
        after.status,
        after.body
    );
}

/// The stored count of successful calls with `key`, summed over its days.
fn stored_successes(database: &str, key: &str) -> i64 {
    let mut conn = keyward::db::open(database).expect("open the test store");
    let id: i32 = tokens::table
        .filter(tokens::key.eq(key))
        .select(tokens::id)
        .first(&mut conn)
        .expect("the token exists");
    token_usage_days::table
        .filter(token_usage_days::token_id.eq(id))
        .select(token_usage_days::succeeded)
        .load::<i64>(&mut conn)
        .expect("read the usage days")
        .into_iter()
        .sum()
}

/// Writes what `app`'s guard has gathered, as its background loop would.
async fn flush(app: &TestApp) -> usize {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || state.usage.flush(&state.pool))
        .await
        .expect("the flush should not panic")
        .expect("the batch should be written")
}

/// Calls `/token` `n` times on `app`, each let in.
async fn calls(app: &TestApp, token: &Token, n: usize) {
    for _ in 0..n {
        assert_eq!(
            app.get_with_auth("/token", token).await.status(),
            StatusCode::OK
        );
    }
}

// Two servers in this process rather than two binaries: each has its own cache and usage
// batch, as two instances do, and the test flushes them itself (at the same moment, too)
// instead of waiting out the binary's five-second loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_batches_from_two_instances_add_up_without_loss_or_double_counting() {
    let a = spawn_app_with_slow_flush(None).await;
    let b = spawn_app_with_slow_flush(Some(&a.db.path)).await;
    let (_, token) = a.account_with_token("Counted Co").await;
    b.pick_up_changes().await;

    calls(&a, &token, 7).await;
    calls(&b, &token, 5).await;
    let (from_a, from_b) = tokio::join!(flush(&a), flush(&b));
    assert_eq!(
        (from_a, from_b),
        (1, 1),
        "each instance had one token's figures"
    );
    assert_eq!(stored_successes(&a.db.path, &token.key), 12);

    // Again, on top of what is there; and flushing with nothing gathered adds nothing.
    calls(&b, &token, 4).await;
    calls(&a, &token, 2).await;
    let (_, _) = tokio::join!(flush(&a), flush(&b));
    let (empty_a, empty_b) = tokio::join!(flush(&a), flush(&b));
    assert_eq!((empty_a, empty_b), (0, 0), "nothing left to write");
    assert_eq!(stored_successes(&a.db.path, &token.key), 18);
}

/// A server whose own loop won't flush during the test, on a new store, or on `shared`.
async fn spawn_app_with_slow_flush(shared: Option<&str>) -> TestApp {
    let slow = |config: &mut keyward::config::Config| {
        config.usage_flush_interval = Duration::from_secs(3600);
    };
    match shared {
        None => crate::support::api::spawn_app_with(slow).await,
        // The second server's own TestDb goes unused: it reaches the first's store.
        Some(database) => spawn_app_at(TestDb::new(), database, slow).await,
    }
}

/// A full disk (or a database gone) under the sign-in limits refuses the sign-in with a
/// 503: a guess is never let through uncounted.
#[tokio::test]
async fn a_sign_in_whose_count_cannot_be_written_is_refused_not_let_through() {
    crate::sqlite_only!("the simulated full disk is a SQLite file's");
    let app = spawn_app().await;
    let email = email_for("full disk sign in");
    Browser::new(&app.address).sign_up("Full Co", &email).await;

    keyward::db::simulated_full_disk::fill(&app.db.path).expect("the test store exists");
    let refused = Browser::new(&app.address).log_in(&email, PASSWORD).await;
    let wrong = Browser::new(&app.address)
        .log_in(&email, "not the password at all")
        .await;
    keyward::db::simulated_full_disk::free(&app.db.path).expect("the test store exists");

    for page in [&refused, &wrong] {
        page.assert_html_page(StatusCode::SERVICE_UNAVAILABLE)
            // The person learns it is the server, not their password, and to come back.
            .assert_contains("its storage is full or failing. Nothing was changed.");
        assert!(page.header(RETRY_AFTER.as_str()).is_some());
    }
    // With room again, the right password signs in.
    Browser::new(&app.address)
        .log_in(&email, PASSWORD)
        .await
        .assert_redirect("/tokens");
}
