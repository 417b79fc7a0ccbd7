//! Revocation is complete however many tokens it touches. A member who holds more tokens
//! than one read of the change log returns is removed; every one of their tokens is refused
//! on the very next request by the server that removed them, and by another server process
//! on the same file as soon as it polls, all at once rather than a batch at a time.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use keyward::db::DbConnection;
use keyward::db::invalidations::NoteKind;
use keyward::db::schema::{cache_invalidations, memberships};
use keyward::db::tokens::TokenRequest;
use keyward::db::tx::{Principal, transact};
use keyward::domain::{AccountId, Scopes, TokenName, UserId};
use reqwest::StatusCode;

use crate::support::admin::{join, member_id, submit};
use crate::support::api::{
    Token, assert_401, eventually, http_client, spawn_app_with, status_with,
};
use crate::support::browser::{email_for, signed_up};
use crate::support::process::ServerProcess;

/// More than one read of the change log returns (1,000), which is what once let the last
/// 500 through.
const TOKENS: usize = 1500;

/// Requests in flight at once while warming and checking 1,500 tokens.
const IN_FLIGHT: usize = 16;

/// A generous bound on the other process's 250 ms poll, for a debug build on a busy machine.
const PROPAGATION: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_refuses_all_1500_of_their_cached_tokens_at_once() {
    // This server never polls in the test's lifetime: whatever it refuses right after the
    // removal, it refuses because the removal itself applied the whole log.
    let app = spawn_app_with(|config| {
        config.invalidation_poll_interval = Duration::from_secs(3600);
    })
    .await;
    let owner = signed_up(&app.address, "Scale Co").await;
    let member_email = email_for("scale member");
    let _member = join(&owner, &member_email, "member").await;
    let member = member_id(&owner, &member_email).await;

    let tokens = seed_tokens(&app.db.path, member, TOKENS).await;
    app.pick_up_changes().await;
    // A second server on the same file; it learns the keys as it starts.
    let other = ServerProcess::start(&app.db.path).await;

    // Every token works on both servers, and is now in each one's cache.
    let here = app.url("/token");
    let there = other.url("/token");
    assert_eq!(statuses(&here, &tokens).await, vec![StatusCode::OK; TOKENS]);
    assert_eq!(
        statuses(&there, &tokens).await,
        vec![StatusCode::OK; TOKENS]
    );
    let uncached: Vec<&str> = tokens
        .iter()
        .map(|t| t.key.as_str())
        .filter(|key| app.state.cache.get(key).is_none())
        .collect();
    assert!(uncached.is_empty(), "not cached after use: {uncached:?}");

    submit(
        &owner,
        "/members",
        &format!("/members/{member}/remove"),
        &[],
    )
    .await
    .assert_redirect("/members");

    // In the order the removal revoked them, read from the log itself.
    let by_revocation = in_revocation_order(&app.db.path, tokens).await;
    let (first, last) = (&by_revocation[0], &by_revocation[TOKENS - 1]);

    // Here, the very next request with any of them is refused: the last revoked first.
    let mut newest_first = by_revocation.clone();
    newest_first.reverse();
    let let_in = admitted(&statuses(&here, &newest_first).await);
    assert!(
        let_in.is_empty(),
        "{} of {TOKENS} tokens still worked after the removal answered (positions {:?} from the last revoked)",
        let_in.len(),
        &let_in[..let_in.len().min(10)]
    );
    assert_401(app.get_with_auth("/token", last).await, false).await;

    // There, once the first token revoked is refused, the last one is too: the poll applies
    // the whole removal in one step. Then every one of them is refused.
    let client = http_client();
    let noticed = eventually(PROPAGATION, Duration::from_millis(10), || async {
        status_with(&client, &there, first).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        noticed,
        "the other server still let the first revoked token in after {PROPAGATION:?}"
    );
    assert_eq!(
        status_with(&client, &there, last).await,
        StatusCode::UNAUTHORIZED,
        "the other server refused the first revoked token but let the last one in"
    );
    let let_in = admitted(&statuses(&there, &newest_first).await);
    assert!(
        let_in.is_empty(),
        "{} of {TOKENS} tokens still worked on the other server (positions {:?} from the last revoked)",
        let_in.len(),
        &let_in[..let_in.len().min(10)]
    );
}

/// Creates `count` tokens for the member through the write path and `db::tokens::create`,
/// so each is written with its audit event and its log note. The connection skips the
/// flush per commit (SQLite's `synchronous=OFF`, PostgreSQL's `synchronous_commit=off`),
/// which only the seeding needs.
async fn seed_tokens(database: &str, member: i32, count: usize) -> Vec<Token> {
    let database = database.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = keyward::db::open(&database)
            .unwrap_or_else(|e| panic!("open the test database {database}: {e:#}"));
        let unsynced = match &mut conn {
            DbConnection::Sqlite(c) => c.batch_execute("PRAGMA synchronous = OFF;"),
            DbConnection::Postgres(c) => c.batch_execute("SET synchronous_commit = off;"),
        };
        unsynced.expect("set up the seeding connection");
        let account: i32 = memberships::table
            .filter(memberships::user_id.eq(member))
            .select(memberships::account_id)
            .first(&mut conn)
            .expect("the member belongs to the account");
        // The member makes them, through the write path, as the dashboard would.
        let member = Principal::User {
            id: UserId(member),
            ip: None,
        };
        (0..count)
            .map(|n| {
                let request = TokenRequest {
                    name: TokenName::parse(&format!("bulk {n:04}")).expect("a valid name"),
                    scopes: Scopes::all(),
                    expires_at: None,
                    rate_limit: None,
                    fields: Default::default(),
                };
                let (token, secret) =
                    transact(&mut conn, &member, Some(AccountId(account)), |tx| {
                        keyward::db::tokens::create(tx, request)
                    })
                    .unwrap_or_else(|e| panic!("seed token {n}: {e}"));
                Token {
                    key: token.key,
                    secret: secret.expose().to_string(),
                }
            })
            .collect()
    })
    .await
    .expect("seeding should not panic")
}

/// `tokens` ordered as the log's "forget" notes name them.
async fn in_revocation_order(database: &str, tokens: Vec<Token>) -> Vec<Token> {
    let database = database.to_string();
    let order: Vec<Option<String>> = tokio::task::spawn_blocking(move || {
        let mut conn = keyward::db::open(&database)
            .unwrap_or_else(|e| panic!("open the test database {database}: {e:#}"));
        cache_invalidations::table
            .filter(cache_invalidations::kind.eq(NoteKind::Forget))
            .order(cache_invalidations::seq.asc())
            .select(cache_invalidations::token_key)
            .load(&mut conn)
            .expect("read the log")
    })
    .await
    .expect("reading the log should not panic");
    let mut by_key: std::collections::HashMap<String, Token> =
        tokens.into_iter().map(|t| (t.key.clone(), t)).collect();
    let ordered: Vec<Token> = order
        .into_iter()
        .flatten()
        .filter_map(|key| by_key.remove(&key))
        .collect();
    assert!(
        by_key.is_empty(),
        "{} tokens have no revocation note in the log",
        by_key.len()
    );
    ordered
}

/// The status of one `GET url` per token, in the tokens' order, a few at a time.
async fn statuses(url: &str, tokens: &[Token]) -> Vec<StatusCode> {
    let client = http_client();
    stream::iter(tokens)
        .map(|token| status_with(&client, url, token))
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

/// The positions of the answers that let the request in.
fn admitted(statuses: &[StatusCode]) -> Vec<usize> {
    statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != StatusCode::UNAUTHORIZED)
        .map(|(i, _)| i)
        .collect()
}
