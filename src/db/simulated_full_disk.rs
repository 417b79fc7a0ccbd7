//! For tests only: makes SQLite refuse every write to one database file as a full disk
//! would, so a test can show that a refused write answers an error, claims nothing and
//! loses nothing. The server and the command line never call it.
//!
//! How: `PRAGMA max_page_count = 1` caps a connection's database at its current size
//! (SQLite won't set it lower), and a write that then needs a new page fails with
//! SQLITE_FULL, "database or disk is full", the very error a full disk gives. The cap is
//! per connection, so the write path ([`super::tx::transact`]) applies it, to whichever pooled connection runs a
//! write on a file marked full here; the server's and the command line's alike, since they
//! open the same file. A write that fits in the free space of pages it already has would
//! still succeed (as it can on a real disk whose WAL has room), so each write first adds
//! ballast bigger than every free page: every write is refused, the worst case.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::AppError;

/// Set once any file has been marked full; until then a write pays one atomic load.
static ARMED: AtomicBool = AtomicBool::new(false);
static FULL: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);

/// SQLite's largest page count, its default cap.
const NO_CAP: u32 = 4_294_967_294;

fn full_files() -> MutexGuard<'static, HashSet<PathBuf>> {
    // The set stays consistent whatever a panicking holder did: inserts and removes only.
    FULL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// From now on, every write to the database at `path` fails with SQLITE_FULL.
pub fn fill(path: &str) -> std::io::Result<()> {
    let file = Path::new(path).canonicalize()?;
    full_files().insert(file);
    ARMED.store(true, Ordering::SeqCst);
    Ok(())
}

/// The disk has room again: writes to `path` succeed as before.
pub fn free(path: &str) -> std::io::Result<()> {
    let file = Path::new(path).canonicalize()?;
    full_files().remove(&file);
    Ok(())
}

#[derive(QueryableByName)]
struct MainFile {
    #[diesel(sql_type = Text)]
    file: String,
}

/// Runs at the start of every write transaction. Does nothing unless a test has filled a
/// disk in this process.
pub(super) fn before_write(conn: &mut SqliteConnection) -> Result<(), AppError> {
    if !ARMED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let main: MainFile =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .get_result(conn)?;
    let full = Path::new(&main.file)
        .canonicalize()
        .is_ok_and(|file| full_files().contains(&file));
    if !full {
        // Lift the cap a filled disk may have left on this connection.
        conn.batch_execute(&format!("PRAGMA max_page_count = {NO_CAP}"))?;
        return Ok(());
    }
    conn.batch_execute("PRAGMA max_page_count = 1")?;
    diesel::sql_query(
        "INSERT INTO server_settings (name, value) \
         SELECT 'simulated-full-disk ballast', zeroblob((f.freelist_count + 2) * p.page_size) \
         FROM pragma_freelist_count AS f, pragma_page_size AS p",
    )
    .execute(conn)?;
    // Not reached: the ballast needs more pages than the cap leaves. Should it ever fit,
    // the transaction still rolls back, ballast and all.
    Err(AppError::internal(
        "the simulated full disk took a write it should have refused",
    ))
}
