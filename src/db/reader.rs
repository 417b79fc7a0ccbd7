//! Each server worker's own read connection, for the API's hot reads (`GET /clusters`).
//!
//! Handing a read to the blocking pool (`web::block`) and checking a connection out of
//! r2d2 cost more than the read itself: a page of clusters is a few microseconds of
//! SQLite, the thread hop and the pool's lock several times that. So each worker keeps one
//! connection and reads on its own thread. That is safe to do on an async worker because
//! in WAL mode a reader never waits for the writer, and this connection is opened with
//! `busy_timeout = 0`: in the rare case that SQLite would make it wait (a WAL recovery),
//! it fails at once, and the read is done again the usual way, on the blocking pool, where
//! waiting is harmless. The connection is `query_only`, so nothing can write through it.
//!
//! On PostgreSQL there is no such reader: a read there is a network round trip, which must
//! not block an async worker, so every read goes to the blocking pool.

use std::cell::RefCell;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

use super::{Conn, DbConnection, Pool};
use crate::domain::DatabaseUrl;
use crate::error::AppError;

const READER_PRAGMAS: &str = "PRAGMA busy_timeout = 0;
PRAGMA query_only = 1;
PRAGMA foreign_keys = ON;";

/// One per worker: built in the `HttpServer::new` factory, so it is never shared between
/// threads (and needs no lock).
pub struct WorkerReader {
    /// The SQLite file; `None` on PostgreSQL, where every read goes to the pool.
    sqlite_path: Option<String>,
    conn: RefCell<Option<DbConnection>>,
}

impl WorkerReader {
    pub fn new(database: &DatabaseUrl) -> Self {
        Self {
            sqlite_path: match database {
                DatabaseUrl::Sqlite(path) => Some(path.clone()),
                DatabaseUrl::Postgres(_) => None,
            },
            conn: RefCell::new(None),
        }
    }

    /// Runs `f` on this worker's connection, opening it on first use.
    fn on_worker<T>(
        &self,
        f: &impl Fn(&mut DbConnection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let Some(path) = &self.sqlite_path else {
            return Err(AppError::internal("no worker reader on PostgreSQL"));
        };
        // `f` is synchronous, so no other task on this thread can hold the borrow.
        let mut slot = self
            .conn
            .try_borrow_mut()
            .map_err(|_| AppError::internal("worker reader re-entered"))?;
        if slot.is_none() {
            let mut conn = SqliteConnection::establish(path)
                .map_err(|e| AppError::internal(format!("opening the worker reader: {e}")))?;
            conn.batch_execute(READER_PRAGMAS)?;
            *slot = Some(DbConnection::Sqlite(conn));
        }
        let conn = slot
            .as_mut()
            .ok_or_else(|| AppError::internal("worker reader missing"))?;
        let result = f(conn);
        if matches!(
            result,
            Err(AppError::Internal(_) | AppError::Unavailable { .. })
        ) {
            // Busy, or broken: start afresh next time.
            *slot = None;
        }
        result
    }

    /// Reads with `f` on this worker's thread. A read that fails for any reason but the
    /// answer itself (not found, invalid) is done once more on the blocking pool, with a
    /// pooled connection that waits for locks as every other does.
    pub async fn read<T, F>(&self, pool: &Pool, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        if self.sqlite_path.is_none() {
            return super::run(pool, move |conn: &mut Conn| f(conn)).await;
        }
        match self.on_worker(&f) {
            Err(AppError::Internal(err)) => {
                tracing::debug!(error = %err, "worker read failed; reading on the blocking pool");
                super::run(pool, move |conn: &mut Conn| f(conn)).await
            }
            Err(AppError::Unavailable { .. }) => {
                super::run(pool, move |conn: &mut Conn| f(conn)).await
            }
            other => other,
        }
    }
}
