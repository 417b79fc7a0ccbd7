//! Each test's own store: a SQLite file in a directory of its own, or, when
//! `KEYWARD_TEST_POSTGRES_URL` is set, a PostgreSQL database made for the test and dropped
//! after it; and the `sqlite_only!`/`postgres_only!` guards for tests of one store alone.

use tempfile::TempDir;

/// Set to a PostgreSQL URL (`postgres://user@127.0.0.1:PORT/postgres`) to run the suite on
/// PostgreSQL: each test then gets a database of its own on that server, made for it and
/// dropped after it. Unset, each test gets a SQLite file.
pub const POSTGRES_ENV: &str = "KEYWARD_TEST_POSTGRES_URL";

/// The server the suite runs on, when it runs on PostgreSQL.
pub fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Whether this run of the suite is on PostgreSQL.
pub fn on_postgres() -> bool {
    postgres_server().is_some()
}

/// Returns from the test, saying why, when the suite runs on PostgreSQL: for tests of what
/// only a SQLite file has (its pages, its pragmas, a full disk under it).
#[macro_export]
macro_rules! sqlite_only {
    ($why:expr) => {
        if $crate::support::store::on_postgres() {
            eprintln!("skipped on PostgreSQL: {}", $why);
            return;
        }
    };
}

/// Returns from the test, saying why, unless the suite runs on PostgreSQL.
#[macro_export]
macro_rules! postgres_only {
    ($why:expr) => {
        if !$crate::support::store::on_postgres() {
            eprintln!(
                "skipped on SQLite: {} (set {} to run it)",
                $why,
                $crate::support::store::POSTGRES_ENV
            );
            return;
        }
    };
}

/// A test's own store: a SQLite file in a directory of its own, deleted with it; or, on
/// PostgreSQL, a database of its own, dropped with it. `path` is what `--database-url`
/// takes either way.
pub struct TestDb {
    _dir: TempDir,
    pub path: String,
    /// Dropped with the store: the database goes with it.
    _postgres: Option<PostgresDb>,
}

impl TestDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        if let Some(server) = postgres_server() {
            let postgres = PostgresDb::create(&server);
            return Self {
                _dir: dir,
                path: postgres.url.clone(),
                _postgres: Some(postgres),
            };
        }
        let path = dir
            .path()
            .join("keyward.db")
            .to_str()
            .expect("temporary paths are UTF-8")
            .to_string();
        Self {
            _dir: dir,
            path,
            _postgres: None,
        }
    }

    /// A directory deleted with the store, for files a test makes beside it (a backup).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A connection of the test's own, to read or change the store behind the server's back.
    pub fn connect(&self) -> keyward::db::DbConnection {
        keyward::db::open(&self.path)
            .unwrap_or_else(|e| panic!("open the test database {}: {e:#}", self.path))
    }
}

/// A database made for one test on the PostgreSQL server, dropped (with any connection a
/// killed server left behind) when the test ends.
struct PostgresDb {
    server: String,
    name: String,
    url: String,
}

impl PostgresDb {
    fn create(server: &str) -> Self {
        use diesel::connection::SimpleConnection;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // Unique across the test binaries running at once, and across reruns.
        let name = format!(
            "keyward_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let mut admin = admin_connection(server);
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("create the test database {name}: {e}"));
        let url = database_url(server, &name);
        Self {
            server: server.to_string(),
            name,
            url,
        }
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = admin_connection(&self.server).batch_execute(&drop) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

fn admin_connection(server: &str) -> diesel::PgConnection {
    use diesel::Connection;
    diesel::PgConnection::establish(server)
        .unwrap_or_else(|e| panic!("connect to {POSTGRES_ENV} ({server}): {e}"))
}

/// `server` with its database name replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let after_scheme = base.find("://").map_or(0, |at| at + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |at| after_scheme + at);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[test]
fn a_test_database_url_names_the_test_database() {
    assert_eq!(
        database_url("postgres://pg@127.0.0.1:5432/postgres", "t1"),
        "postgres://pg@127.0.0.1:5432/t1"
    );
    assert_eq!(
        database_url("postgresql://pg@localhost?host=/tmp/s", "t1"),
        "postgresql://pg@localhost/t1?host=/tmp/s"
    );
}
