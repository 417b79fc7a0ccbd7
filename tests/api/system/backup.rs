//! `keyward backup FILE`: a copy of a SQLite store taken while a server runs and writes,
//! that serves as a store of its own, with every token as it was. It never overwrites a
//! file, and for PostgreSQL it points to pg_dump.

use reqwest::StatusCode;

use crate::support::api::{http_client, status_with};
use crate::support::process::{
    ServerProcess, binary_account_with_token, binary_token, keyward_binary, keyward_binary_ok,
};
use crate::support::store::TestDb;

/// How many tokens the backed-up store holds.
const TOKENS: usize = 12;

#[tokio::test]
async fn a_backup_taken_while_the_server_writes_serves_every_token_once_restored() {
    crate::sqlite_only!("keyward backup copies SQLite stores; PostgreSQL has pg_dump");
    let db = TestDb::new();
    let (account, first) = binary_account_with_token(&db.path, "Backed Up", "t0").await;
    let mut tokens = vec![first];
    for n in 1..TOKENS {
        tokens.push(binary_token(&db.path, &account, &format!("t{n}")).await);
    }
    let revoked = tokens.pop().expect("at least one token");
    keyward_binary_ok(
        &db.path,
        &["token", "revoke", &revoked.key, "--reason", "rotated"],
    )
    .await;
    let server = ServerProcess::start(&db.path).await;
    let client = http_client();

    // The server keeps writing while the copy is taken: tokens are used (their last_used
    // figures are written every few seconds) and more are created.
    let copy = db.dir().join("keyward-backup.db");
    let copy_path = copy.to_str().expect("a UTF-8 path").to_string();
    let writer = {
        let database = db.path.clone();
        let account = account.clone();
        tokio::spawn(async move {
            let mut made = Vec::new();
            for n in 0..3 {
                made.push(binary_token(&database, &account, &format!("during {n}")).await);
            }
            made
        })
    };
    for token in &tokens {
        assert_eq!(
            status_with(&client, &server.url("/token"), token).await,
            StatusCode::OK
        );
    }
    let printed = keyward_binary_ok(&db.path, &["backup", &copy_path]).await;
    assert!(
        printed.starts_with(&format!("backed up to {copy_path}")),
        "backup should say where the copy is: {printed:?}"
    );
    let made_during = writer.await.expect("the writer should not panic");
    drop(server);

    // Restore: a server on the copy alone.
    let restored = ServerProcess::start(&copy_path).await;
    for token in &tokens {
        assert_eq!(
            status_with(&client, &restored.url("/token"), token).await,
            StatusCode::OK,
            "token {} should work on the restored copy",
            token.key
        );
    }
    assert_eq!(
        status_with(&client, &restored.url("/token"), &revoked).await,
        StatusCode::UNAUTHORIZED,
        "a token revoked before the backup stays revoked in it"
    );
    // The copy is one moment of the store: each token made meanwhile is there whole, or
    // not at all. Whichever, the listing and the guard agree.
    let listed = keyward_binary_ok(&copy_path, &["token", "list", "--account", &account]).await;
    for token in tokens.iter().chain([&revoked]) {
        assert!(
            listed.contains(&token.key),
            "the copy lists {}:\n{listed}",
            token.key
        );
    }
    for token in &made_during {
        let expected = if listed.contains(&token.key) {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(
            status_with(&client, &restored.url("/token"), token).await,
            expected,
            "a token made during the backup is in the copy whole or not at all: {}",
            token.key
        );
    }
    // And the original carries on: the copy took nothing from it.
    let original = keyward_binary_ok(&db.path, &["token", "list", "--account", &account]).await;
    assert_eq!(original.lines().count(), TOKENS + made_during.len());
}

#[tokio::test]
async fn a_backup_never_overwrites_a_file() {
    crate::sqlite_only!("keyward backup copies SQLite stores; PostgreSQL has pg_dump");
    let db = TestDb::new();
    binary_account_with_token(&db.path, "Precious", "ci").await;
    let existing = db.dir().join("yesterday.db");
    std::fs::write(&existing, b"yesterday's backup").expect("write a file");
    let existing = existing.to_str().expect("a UTF-8 path").to_string();

    let output = keyward_binary(&["--database-url", &db.path, "backup", &existing], &[]);

    assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{output:?}");
    assert_eq!(
        output.stderr.trim().lines().count(),
        1,
        "one line: {output:?}"
    );
    assert!(
        output.stderr.contains("already exists"),
        "the refusal says why: {output:?}"
    );
    assert_eq!(
        std::fs::read(&existing).expect("the file is still there"),
        b"yesterday's backup"
    );
}

#[tokio::test]
async fn backing_up_a_store_that_is_not_there_makes_nothing() {
    crate::sqlite_only!("keyward backup copies SQLite stores; PostgreSQL has pg_dump");
    let db = TestDb::new();
    let copy = db.dir().join("copy.db");
    let copy_path = copy.to_str().expect("a UTF-8 path");

    let output = keyward_binary(&["--database-url", &db.path, "backup", copy_path], &[]);

    assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{output:?}");
    assert!(
        output.stderr.contains("there is no database at"),
        "{output:?}"
    );
    assert!(!copy.exists(), "no copy of nothing");
    assert!(
        !std::path::Path::new(&db.path).exists(),
        "and no empty store where there was none"
    );
}

#[tokio::test]
async fn a_postgres_store_is_backed_up_with_pg_dump() {
    // No server is needed: the command answers before connecting.
    let output = keyward_binary(
        &[
            "--database-url",
            "postgres://keyward@127.0.0.1:1/keyward",
            "backup",
            "/nonexistent/keyward.dump",
        ],
        &[],
    );
    assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{output:?}");
    assert_eq!(
        output.stderr.trim().lines().count(),
        1,
        "one line: {output:?}"
    );
    assert!(output.stderr.contains("use pg_dump"), "{output:?}");
}
