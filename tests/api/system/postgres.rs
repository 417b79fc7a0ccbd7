//! The store itself: the URL chooses SQLite or PostgreSQL, migrations are embedded for
//! each and applied once, a PostgreSQL that can't be reached at start stops the program
//! with one line, and on PostgreSQL write transactions take turns as SQLite's do and
//! commit durably whatever the server's default.
//!
//! The rest of the suite runs on PostgreSQL too, with `KEYWARD_TEST_POSTGRES_URL` set.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use keyward::db;

use crate::support::api::http_client;
use crate::support::pg_cluster::PgCluster;
use crate::support::process::{ServerProcess, binary_account_with_token, keyward_binary};
use crate::support::store::{TestDb, on_postgres};

fn migration_names(backend: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn both_stores_have_the_same_migrations() {
    let sqlite = migration_names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, migration_names("postgres"));
}

#[tokio::test]
async fn keyward_migrate_applies_each_migration_once() {
    let db = TestDb::new();
    let backend = if on_postgres() { "postgres" } else { "sqlite" };
    let expected = migration_names(backend);

    let first = keyward_binary(&["--database-url", &db.path, "migrate"], &[]);
    assert!(first.status.is_some_and(|s| s.success()), "{first:?}");
    let applied: Vec<String> = first.stdout.lines().map(str::to_string).collect();
    assert_eq!(applied.len(), expected.len(), "{first:?}");
    for (line, folder) in applied.iter().zip(&expected) {
        // A migration's version is its folder's date and number, in order.
        let (version, _) = folder.split_once('_').expect("folders are VERSION_name");
        let digits: String = version.chars().filter(char::is_ascii_digit).collect();
        let line_digits: String = line.chars().filter(char::is_ascii_digit).collect();
        assert!(line.starts_with("applied "), "{line}");
        assert_eq!(line_digits, digits, "{line} for {folder}");
    }

    let again = keyward_binary(&["--database-url", &db.path, "migrate"], &[]);
    assert!(again.status.is_some_and(|s| s.success()), "{again:?}");
    assert_eq!(again.stdout, "", "nothing is left to apply the second time");
}

#[tokio::test]
async fn an_unreachable_postgres_at_start_is_one_line_on_stderr_and_exit_code_1() {
    // Port 1 on the loopback refuses at once; the password must not be printed.
    let url = "postgres://keyward:hunter2@127.0.0.1:1/keyward";
    let output = keyward_binary(
        &["serve"],
        &[
            ("KEYWARD_DATABASE_URL", url),
            ("KEYWARD_BIND", "127.0.0.1:0"),
            ("KEYWARD_SUPPORT_EMAIL", "support@keyward.test"),
        ],
    );

    assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{output:?}");
    let lines: Vec<&str> = output.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {output:?}");
    assert!(
        lines[0].starts_with(
            "keyward: cannot open database postgres://keyward:***@127.0.0.1:1/keyward"
        ),
        "the line names the database, without its password: {}",
        lines[0]
    );
    assert!(!output.stderr.contains("hunter2") && !output.stdout.contains("hunter2"));
    assert!(
        output.stdout.is_empty(),
        "nothing claims to listen: {output:?}"
    );
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[tokio::test]
async fn postgres_connections_commit_durably_whatever_the_server_default() {
    crate::postgres_only!("synchronous_commit is PostgreSQL's");
    let db = TestDb::new();
    // The database's own default says "don't wait for the flush"...
    let mut admin = db.connect();
    let name: Setting = diesel::sql_query("SELECT current_database()::text AS value")
        .get_result(&mut admin)
        .expect("the database's name");
    diesel::sql_query(format!(
        "ALTER DATABASE \"{}\" SET synchronous_commit = off",
        name.value
    ))
    .execute(&mut admin)
    .expect("change the database's default");

    // ...and every connection Keyward makes, pooled or not, overrides it.
    let pool = db::connect(&db.path).expect("a pool");
    let mut pooled = pool.get().expect("a pooled connection");
    let mut direct = db.connect();
    for conn in [&mut *pooled, &mut direct] {
        let setting: Setting =
            diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
                .get_result(conn)
                .expect("read synchronous_commit");
        assert_eq!(setting.value, "on");
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Two write transactions at once: the second waits for the first to commit, then sees
/// what it wrote, as under SQLite's `BEGIN IMMEDIATE`. The test waits for PostgreSQL to
/// report the second one blocked on the write lock, so it asserts no timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_write_transactions_take_turns_and_each_sees_the_last() {
    crate::postgres_only!("the advisory write lock is PostgreSQL's");
    let db = TestDb::new();
    let pool = db::connect(&db.path).expect("a pool");

    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let first_pool = pool.clone();
    let first = std::thread::spawn(move || {
        let mut conn = first_pool.get().expect("a connection");
        db::tx::as_system(&mut conn, |tx| {
            let conn = &mut *tx.conn;
            entered_tx.send(()).expect("the test listens");
            go_rx.recv().expect("the test says go");
            diesel::sql_query(
                "INSERT INTO server_settings (name, value) VALUES ('turns', 'first')",
            )
            .execute(conn)?;
            Ok(())
        })
    });
    entered_rx.recv().expect("the first write starts");

    let second_pool = pool.clone();
    let second = std::thread::spawn(move || {
        let mut conn = second_pool.get().expect("a connection");
        db::tx::as_system(&mut conn, |tx| {
            let conn = &mut *tx.conn;
            let seen: Setting = diesel::sql_query(
                "SELECT coalesce((SELECT value FROM server_settings WHERE name = 'turns'), 'nothing') AS value",
            )
            .get_result(conn)?;
            Ok(seen.value)
        })
    });

    // The second transaction is waiting for the lock the first holds.
    let mut watcher = db.connect();
    let waiting =
        crate::helpers::eventually(Duration::from_secs(20), Duration::from_millis(20), || {
            let count: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_locks \
                 WHERE locktype = 'advisory' AND NOT granted AND database = \
                 (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .get_result(&mut watcher)
            .expect("read pg_locks");
            std::future::ready(count.n == 1)
        })
        .await;
    assert!(waiting, "the second write should wait for the first");
    assert!(!second.is_finished(), "the second write can't have run yet");

    go_tx.send(()).expect("the first write waits");
    first
        .join()
        .expect("the first write doesn't panic")
        .expect("the first write commits");
    let seen = second
        .join()
        .expect("the second write doesn't panic")
        .expect("the second write commits");
    assert_eq!(
        seen, "first",
        "the second write sees what the first committed"
    );
}

#[tokio::test]
async fn help_never_shows_the_database_password() {
    let output = keyward_binary(
        &["--help"],
        &[(
            "KEYWARD_DATABASE_URL",
            "postgres://keyward:hunter2@db/keyward",
        )],
    );
    assert!(output.status.is_some_and(|s| s.success()), "{output:?}");
    assert!(output.stdout.contains("--database-url"), "{output:?}");
    assert!(!output.stdout.contains("hunter2"), "{}", output.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_together_migrate_once() {
    let db = TestDb::new();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let database = db.path.clone();
            tokio::task::spawn_blocking(move || {
                keyward_binary(&["--database-url", &database, "migrate"], &[])
            })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        let output = run.await.expect("the run doesn't panic");
        assert!(output.status.is_some_and(|s| s.success()), "{output:?}");
        applied.extend(output.stdout.lines().map(str::to_string));
    }
    let backend = if on_postgres() { "postgres" } else { "sqlite" };
    assert_eq!(
        applied.len(),
        migration_names(backend).len(),
        "each migration is applied by exactly one of them: {applied:?}"
    );
}

/// How a run of the binary ended, for the assertion's message: by its own exit code or by
/// a signal (139 from a shell is SIGSEGV).
fn ending(output: &crate::support::process::BinaryOutput) -> String {
    use std::os::unix::process::ExitStatusExt;
    match output.status {
        None => "hung (killed after the timeout)".into(),
        Some(status) => match status.signal() {
            Some(signal) => format!("died of signal {signal}"),
            None => format!("exited {}", status.code().unwrap_or(-1)),
        },
    }
}

fn own_cluster() -> PgCluster {
    PgCluster::start().expect("the PostgreSQL run of the suite has PostgreSQL's binaries")
}

#[test]
fn two_hundred_command_line_runs_on_a_password_protected_postgres_restarted_twice_all_succeed() {
    crate::postgres_only!("starts a PostgreSQL cluster of its own, with SCRAM passwords");
    let cluster = own_cluster();
    let run = |args: &[&str]| {
        let mut argv = vec!["--database-url", cluster.url.as_str()];
        argv.extend_from_slice(args);
        keyward_binary(&argv, &[])
    };
    let first = run(&["account", "create", "--name", "Scripted Ops"]);
    assert!(
        first.status.is_some_and(|s| s.success()),
        "{}",
        ending(&first)
    );
    let slug = first.stdout.trim().to_string();

    let mut keys: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    for round in 0..200 {
        if round == 66 || round == 133 {
            cluster.restart();
        }
        let name = format!("job {round}");
        let output = match round % 4 {
            0 | 1 => run(&["token", "create", "--account", &slug, "--name", &name]),
            2 => run(&["token", "list", "--account", &slug]),
            _ => match keys.pop() {
                Some(key) => run(&["token", "revoke", &key, "--reason", "rotated"]),
                None => run(&["account", "create", "--name", &name]),
            },
        };
        if !output.status.is_some_and(|s| s.success()) {
            failures.push(format!(
                "round {round}: {} — {}",
                ending(&output),
                output.stderr.trim()
            ));
        } else if round % 4 < 2 {
            keys.push(crate::helpers::parse_token_output(&output.stdout).key);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 200 runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_server_on_a_password_protected_postgres_exits_cleanly_on_sigterm() {
    crate::postgres_only!("starts a PostgreSQL cluster of its own, with SCRAM passwords");
    let cluster = tokio::task::spawn_blocking(own_cluster)
        .await
        .expect("the cluster starts");
    let (_, token) = binary_account_with_token(&cluster.url, "Stopped Co", "ci").await;
    for round in 0..5 {
        let server = ServerProcess::start(&cluster.url).await;
        // Enough calls at once that the pool is still opening connections when told to stop.
        let calls: Vec<_> = (0..20)
            .map(|_| {
                http_client()
                    .get(server.url("/token"))
                    .basic_auth(&token.key, Some(&token.secret))
                    .send()
            })
            .collect();
        let answered = futures_util::future::join_all(calls).await;
        assert!(
            answered
                .iter()
                .any(|r| r.as_ref().is_ok_and(|r| r.status().is_success()))
        );
        let status = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .expect("terminate should not panic");
        assert!(
            status.is_some_and(|s| s.success()),
            "round {round}: on SIGTERM the server ended with {status:?}"
        );
    }
}
