//! The SQLite store: a pool whose every connection is set up the same way,
//! embedded migrations, and one query module per table.
//!
//! Every connection runs with:
//! * `journal_mode=WAL`, so readers never wait for the writer;
//! * `busy_timeout=5000`, so a writer waits its turn instead of failing with "database is locked";
//! * `synchronous=FULL`: each commit is fsynced before it returns. A revocation that has
//!   answered must survive a power cut, not just `kill -9`, and writes here are rare
//!   (the API's hot path never writes), so the extra fsync costs nothing that matters;
//! * `foreign_keys=ON`.
//!
//! Writes go through [`write`], which opens the transaction with `BEGIN IMMEDIATE`: a
//! deferred transaction that reads first and writes later can't wait out a busy lock and
//! fails at once with SQLITE_BUSY.

pub mod accounts;
pub mod audit;
pub mod clusters;
pub mod invalidations;
pub(crate) mod invitations;
pub mod memberships;
pub mod reader;
pub mod schema;
pub(crate) mod server_settings;
pub(crate) mod sessions;
#[doc(hidden)]
pub mod simulated_full_disk;
pub mod tokens;
pub mod tx;
pub mod usage;
pub mod users;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, PooledConnection};
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::AppError;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type Pool = r2d2::Pool<ConnectionManager<SqliteConnection>>;
pub type Conn = PooledConnection<ConnectionManager<SqliteConnection>>;

const PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;";

#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating if needed) and migrates the database, then builds the pool.
/// Errors are one readable line, such as "cannot open database /x/y.db: unable to open database file".
pub fn connect(database_url: &str) -> anyhow::Result<Pool> {
    // One direct connection first: it fails fast on a bad path, where the pool would
    // retry for its whole timeout, and it runs the migrations before anyone else reads.
    let mut conn = SqliteConnection::establish(database_url)
        .map_err(|e| anyhow::anyhow!("cannot open database {database_url}: {e}"))?;
    conn.batch_execute(PRAGMAS)
        .map_err(|e| anyhow::anyhow!("cannot use database {database_url}: {e}"))?;
    conn.run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("cannot migrate database {database_url}: {e}"))?;
    drop(conn);

    r2d2::Pool::builder()
        .max_size(16)
        .connection_timeout(std::time::Duration::from_secs(10))
        .connection_customizer(Box::new(Pragmas))
        .build(ConnectionManager::<SqliteConnection>::new(database_url))
        .with_context(|| format!("cannot open database {database_url}"))
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front.
/// Changes made on someone's behalf go through [`tx::transact`], which builds on this.
pub fn write<T, F>(conn: &mut SqliteConnection, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut SqliteConnection) -> Result<T, AppError>,
{
    conn.immediate_transaction(|conn| {
        simulated_full_disk::before_write(conn)?;
        f(conn)
    })
}

/// The current time in UTC, with all its precision. diesel stores it as SQLite text
/// (`%F %T%.f`) with every fractional digit, so a time written reads back equal, and
/// text comparisons order times as time does.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
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
