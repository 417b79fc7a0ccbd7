//! Seeds a database with many tokens at once, for the scale benchmark
//! (`bench/seed_million.sh`): `bench/seed_million.sql` in one transaction, not a million
//! runs of the command line. Migrates the file first if it is new. The SQL is SQLite's.
//!
//!     cargo run --release --example seed_million -- keyward.db acme-inc 1000000

use anyhow::{Context, bail};
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Integer};

const SEED: &str = include_str!("seed_million.sql");

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [database, account, count] = args.as_slice() else {
        bail!("usage: seed_million DATABASE ACCOUNT_SLUG COUNT");
    };
    let count: i64 = count
        .parse()
        .with_context(|| format!("COUNT must be a whole number, not {count:?}"))?;
    let pool = keyward::db::connect(database)?;
    let mut conn = pool.get()?;
    let account = keyward::db::accounts::find_by_slug(&mut conn, account)
        .map_err(|e| anyhow::anyhow!("no account {account:?}: {e}"))?;
    let started = std::time::Instant::now();
    let inserted = keyward::db::tx::as_system(&mut conn, |tx| {
        let conn = &mut *tx.conn;
        Ok(diesel::sql_query(SEED)
            .bind::<Integer, _>(account.id)
            .bind::<BigInt, _>(count)
            .execute(conn)?)
    })?;
    println!(
        "seeded {inserted} tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
