//! `keyward backup FILE`: a consistent copy of a SQLite store, taken while servers use it.
//!
//! `VACUUM INTO` reads the database in one read transaction, so the copy is the database
//! as of one moment, whatever commits meanwhile (WAL lets writers carry on); and it writes
//! a compact file that opens as a store of its own. PostgreSQL has its own tools for this.

use std::path::Path;

use anyhow::bail;
use diesel::RunQueryDsl;
use diesel::sql_types::Text;

use super::DbConnection;
use crate::domain::DatabaseUrl;

/// What `backup` says about a PostgreSQL store, and its only answer there.
pub const USE_PG_DUMP: &str = "keyward backup copies SQLite stores; for PostgreSQL use pg_dump (for example: pg_dump --format=custom --file=keyward.dump \"$KEYWARD_DATABASE_URL\")";

/// Copies the store at `url` to `file`, which must not exist. Returns the copy's size.
pub fn to_file(url: &DatabaseUrl, file: &Path) -> anyhow::Result<u64> {
    let source = match url {
        DatabaseUrl::Postgres(_) => bail!(USE_PG_DUMP),
        DatabaseUrl::Sqlite(path) => Path::new(path),
    };
    // Opening a path that isn't there would make an empty store, and back that up.
    if !source.is_file() {
        bail!("there is no database at {url} to back up");
    }
    // VACUUM INTO refuses an existing file too; this says so in words, before any work.
    if file.exists() {
        bail!(
            "{} already exists; keyward backup never overwrites a file: choose a new name",
            file.display()
        );
    }
    let target = file
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{}: use a UTF-8 path", file.display()))?;
    let mut conn = super::open(url.expose())?;
    let DbConnection::Sqlite(sqlite) = &mut conn else {
        bail!(USE_PG_DUMP);
    };
    if let Err(e) = diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(sqlite)
    {
        // A copy cut short (a full disk) must not be left to pass for a backup. The file
        // wasn't there before, so it is this run's.
        let _ = std::fs::remove_file(file);
        bail!("cannot back up {url} to {}: {e}", file.display());
    }
    Ok(std::fs::metadata(file)?.len())
}
