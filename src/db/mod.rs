//! The store: one connection type, [`DbConnection`], that is either SQLite or PostgreSQL,
//! a pool whose every connection is set up the same way, embedded migrations for each
//! backend, and one query module per table. The query modules are written once, against
//! diesel's `MultiBackend`: there is no second copy of the store.
//!
//! `KEYWARD_DATABASE_URL` chooses ([`DatabaseUrl`]): `postgres://…` or `postgresql://…` is
//! PostgreSQL, a path (or `sqlite://PATH`) is SQLite, the default.
//!
//! Every SQLite connection runs with:
//! * `journal_mode=WAL`, so readers never wait for the writer;
//! * `busy_timeout=5000`, so a writer waits its turn instead of failing with "database is locked";
//! * `synchronous=FULL`: each commit is fsynced before it returns. A revocation that has
//!   answered must survive a power cut, not just `kill -9`, and writes here are rare
//!   (the API's hot path never writes), so the extra fsync costs nothing that matters;
//! * `foreign_keys=ON`.
//!
//! Every PostgreSQL connection sets `synchronous_commit = on` (whatever the server's
//! default), for the same reason as `synchronous=FULL`, and a `statement_timeout`, so a
//! wedged query can't hold a pooled connection for ever.
//!
//! Writes go through [`tx::transact`], which gives both backends the same single-writer
//! semantics; see there.
//!
//! A query function written for SQLite alone converts mechanically:
//! * `&mut SqliteConnection` becomes `&mut DbConnection` (`use super::DbConnection;`);
//! * `.returning(T::as_returning())` becomes `.returning(super::columns_of::<T>())`;
//! * `conn.immediate_transaction(...)` becomes [`tx::transact`] (or [`tx::as_system`]);
//! * a `ToSql`/`FromSql` impl for `Sqlite` becomes generic over the backend, like
//!   `domain::sql::text_column!`;
//! * `insert_or_ignore_into` and `on_conflict` have no `MultiBackend` form: inside
//!   the write path, read then insert (writes take turns, so nothing slips between), or match
//!   on the connection's variant.

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod clusters;
pub mod credits;
pub mod email_links;
pub mod invalidations;
pub(crate) mod invitations;
pub mod members;
pub mod memberships;
pub mod notices;
pub mod oidc;
pub mod operator_views;
pub mod outbox;
pub mod passkeys;
pub mod reader;
pub mod recovery;
pub mod schema;
pub(crate) mod server_settings;
pub(crate) mod sessions;
pub mod sign_in_counts;
#[cfg(feature = "test-support")]
pub mod simulated_full_disk;
mod standing;
pub mod token_edits;
pub mod token_search;
pub mod token_tree;
pub mod tokens;
pub mod two_factor;
pub mod tx;
pub mod usage;
pub mod users;
pub mod verification;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::r2d2::{CustomizeConnection, R2D2Connection};
use diesel::{Connection, ConnectionResult, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::domain::DatabaseUrl;
use crate::error::AppError;

/// One connection, to either store. Query functions take `&mut DbConnection` and are
/// checked against both backends at compile time. Code that must differ (the write lock,
/// migrations, `INSERT … ON CONFLICT`, which diesel's `MultiBackend` can't express)
/// matches on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = r2d2::PooledConnection<Manager>;

const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 5000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;";

/// `lock_timeout` matches SQLite's `busy_timeout` in spirit: a writer waits its turn, but
/// not for ever. Every statement Keyward runs is small; 30 s means something is wrong.
const POSTGRES_SETUP: &str = "SET synchronous_commit = on;
SET lock_timeout = '10s';
SET statement_timeout = '30s';";

/// The key of the advisory lock every PostgreSQL write transaction takes first
/// ("keyward" in ASCII). Any constant works, as long as nothing else on the server uses it.
const WRITE_LOCK: i64 = 0x006b_6579_7761_7264;
/// Held, per session, while migrations run, so instances started together migrate once.
const MIGRATION_LOCK: i64 = WRITE_LOCK + 1;

/// Makes the pool's connections, choosing the driver from the URL itself rather than
/// letting diesel try each driver in turn (which would hand a PostgreSQL URL that can't
/// be reached to SQLite, as a file name).
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let Some(_opening) = Opening::start() else {
            let closing = "the process is exiting".to_string();
            return Err(diesel::r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection(closing),
            ));
        };
        establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Connections the pools of this process are opening right now, on r2d2's own threads,
/// and whether the process has stopped them opening more. libpq must not be inside a
/// connection's setup when the process exits: OpenSSL's exit-time cleanup would free
/// what that thread is using, and the process dies of a signal after its work is done.
static OPENING: AtomicUsize = AtomicUsize::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// One connection being opened by a pool; counted from before the exit flag is read, so
/// [`finish_connecting`] either waits for it or it sees the flag and opens nothing.
struct Opening;

impl Opening {
    fn start() -> Option<Self> {
        OPENING.fetch_add(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            OPENING.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self)
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        OPENING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Stops every pool of this process from opening connections, and waits up to `within`
/// for those being opened to finish. For the binary's last step before it exits, once the
/// server has stopped: no pool works after it.
pub fn finish_connecting(within: Duration) -> bool {
    EXITING.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + within;
    while OPENING.load(Ordering::SeqCst) > 0 {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[derive(Debug)]
struct Setup;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Setup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        setup(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

fn setup(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => sqlite_setup(c),
        DbConnection::Postgres(c) => c.batch_execute(POSTGRES_SETUP),
    }
}

/// A new file's switch to WAL needs the whole file for a moment, and SQLite answers
/// "database is locked" at once, without waiting out `busy_timeout`, to a process that
/// asks while another holds a lock it would have to wait behind (a deadlock to SQLite).
/// Instances started together on a new file (and `keyward migrate` beside them) met it
/// under load, so the setup is tried again for up to 5 s.
fn sqlite_setup(c: &mut SqliteConnection) -> diesel::QueryResult<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match c.batch_execute(SQLITE_SETUP) {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("database is locked")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

/// One connection of the kind the URL names, not yet set up.
fn establish(url: &DatabaseUrl) -> ConnectionResult<DbConnection> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => DbConnection::Sqlite(SqliteConnection::establish(path)?),
        DatabaseUrl::Postgres(url) => {
            DbConnection::Postgres(PgConnection::establish(&with_connect_timeout(url))?)
        }
    })
}

/// libpq waits for ever on a host that drops packets; a server that can't reach its
/// database should say so, not hang. Unless the URL says otherwise, give up after 10 s.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=10")
    } else {
        format!("{url}?connect_timeout=10")
    }
}

/// One connection, set up like the pool's: for tools and tests that need no pool.
pub fn open(database_url: &str) -> anyhow::Result<DbConnection> {
    open_url(&DatabaseUrl::parse(database_url).map_err(|e| anyhow::anyhow!(e))?)
}

/// [`open`], for a URL already parsed.
pub fn open_url(url: &DatabaseUrl) -> anyhow::Result<DbConnection> {
    let mut conn =
        establish(url).map_err(|e| anyhow::anyhow!("cannot open database {url}: {e}"))?;
    setup(&mut conn).map_err(|e| anyhow::anyhow!("cannot use database {url}: {e}"))?;
    Ok(conn)
}

/// Opens the database (creating a SQLite file if needed), runs pending migrations, then
/// builds the pool. Errors are one readable line, such as
/// "cannot open database /x/y.db: unable to open database file".
pub fn connect(database_url: &str) -> anyhow::Result<Pool> {
    let url = DatabaseUrl::parse(database_url).map_err(|e| anyhow::anyhow!(e))?;
    connect_to(&url)
}

/// [`connect`], for a URL already parsed.
pub fn connect_to(url: &DatabaseUrl) -> anyhow::Result<Pool> {
    connect_watched(url, Box::new(r2d2::NopEventHandler))
}

/// [`connect_to`], telling `events` of every checkout (and its wait) and timeout.
pub fn connect_watched(
    url: &DatabaseUrl,
    events: Box<dyn r2d2::HandleEvent>,
) -> anyhow::Result<Pool> {
    migrate(url)?;
    pool_watched(url, events)
}

/// The pool alone, without touching the schema.
pub fn pool(url: &DatabaseUrl) -> anyhow::Result<Pool> {
    pool_watched(url, Box::new(r2d2::NopEventHandler))
}

fn pool_watched(url: &DatabaseUrl, events: Box<dyn r2d2::HandleEvent>) -> anyhow::Result<Pool> {
    // One direct connection first: it fails fast on a bad path or an unreachable server,
    // where the pool would retry for its whole timeout.
    let mut conn =
        establish(url).map_err(|e| anyhow::anyhow!("cannot open database {url}: {e}"))?;
    setup(&mut conn).map_err(|e| anyhow::anyhow!("cannot use database {url}: {e}"))?;
    drop(conn);
    r2d2::Pool::builder()
        .max_size(16)
        // r2d2 otherwise opens all 16 at once, in the command line too; one is kept
        // warm and the rest are made as requests need them.
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        // No reaper thread: a connection is closed only by the thread that returns it
        // broken, or when the pool goes, never by a thread of r2d2's as the process exits.
        .idle_timeout(None)
        .max_lifetime(None)
        .connection_customizer(Box::new(Setup))
        .event_handler(events)
        // A refused connection is logged by the pool's own error handler; the answer a
        // request gets is the 503 of `From<r2d2::Error>`.
        .build(Manager { url: url.clone() })
        .map_err(|e| anyhow::anyhow!("cannot open database {url}: {e}"))
}

/// Runs the migrations the database hasn't had yet; returns their names.
pub fn migrate(url: &DatabaseUrl) -> anyhow::Result<Vec<String>> {
    let mut conn =
        establish(url).map_err(|e| anyhow::anyhow!("cannot open database {url}: {e}"))?;
    setup(&mut conn).map_err(|e| anyhow::anyhow!("cannot use database {url}: {e}"))?;
    let applied = match &mut conn {
        // One `BEGIN IMMEDIATE` around them all: two processes started together on a new
        // file take turns (the second finds nothing left to do) instead of one failing
        // with "database is locked" when its deferred transaction tries to write.
        DbConnection::Sqlite(c) => c.immediate_transaction(|c| {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|done| done.iter().map(ToString::to_string).collect())
        }),
        DbConnection::Postgres(c) => {
            // The migrations take no lock of their own: two instances started at once
            // would both try to apply them. The first takes this lock and migrates; the
            // second waits, then finds nothing left to do. Migrations are not bound by
            // the pool's statement_timeout: a big table may take a while.
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            diesel::sql_query(lock)
                .execute(c)
                .map_err(|e| anyhow::anyhow!("cannot lock database {url} to migrate it: {e}"))?;
            c.batch_execute("SET statement_timeout = 0")
                .map_err(|e| anyhow::anyhow!("cannot use database {url}: {e}"))?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|done| done.iter().map(ToString::to_string).collect());
            // Closing the connection would release the lock too; this is only tidier.
            let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .execute(c);
            result
        }
    };
    applied.map_err(|e| anyhow::anyhow!("cannot migrate database {url}: {e}"))
}

/// The columns of `T`, for `RETURNING`. diesel's `as_returning()` is typed for one
/// backend, and `MultiBackend` can't hand such a selection on to the connection it wraps;
/// a plain tuple of columns it can, and `T`'s `Queryable` reads it in the same order.
pub fn columns_of<T: diesel::Selectable<MultiBackend>>() -> T::SelectExpression {
    T::construct_selection()
}

/// Whether the database answers, within `timeout`: `/readyz`'s question.
pub fn ping(pool: &Pool, timeout: Duration) -> Result<(), AppError> {
    let mut conn = pool.get_timeout(timeout)?;
    conn.ping()?;
    Ok(())
}

/// The current time, truncated to whole microseconds: what both stores keep, so a time
/// read back equals the time written.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

/// Runs blocking database work on the blocking pool, with a connection from `pool`.
pub async fn run<T, F>(pool: &Pool, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut Conn) -> Result<T, AppError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

/// A migrated SQLite database in memory, for the unit tests of one connection (a pool would
/// give each of its connections an empty database of its own).
#[cfg(test)]
pub(crate) fn migrated_sqlite_in_memory() -> diesel::SqliteConnection {
    use diesel::Connection;
    use diesel_migrations::MigrationHarness;
    let mut conn = diesel::SqliteConnection::establish(":memory:").expect("an in-memory database");
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .expect("the migrations run");
    conn
}
