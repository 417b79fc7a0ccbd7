//! A log of what every process's caches must learn, written in the same transaction
//! as the change: "forget this token" (a revocation), "forget this account" (a
//! suspension), "this key now exists" (a creation), and "this account's clusters
//! changed" (for the rendered pages of `GET /clusters`). Every server polls it by sequence
//! number, so a change made by the CLI or by another instance reaches its cache within
//! one poll interval.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::prelude::*;

use super::DbConnection;
use diesel::backend::Backend;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

use super::schema::{cache_invalidations, tokens};
use crate::domain::{AccountId, TokenKey};
use crate::error::AppError;

/// The most notes one read returns; the cache reads batch after batch until the log is
/// drained, so a change of any size arrives whole.
pub const BATCH: usize = 1000;

/// What a note asks of the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum NoteKind {
    /// Drop what is cached about the token or the account the note names.
    Forget,
    /// The token the note names now exists: add its key to the set of known keys.
    Created,
    /// The clusters of the account the note names changed: drop its rendered pages.
    Clusters,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Forget => "forget",
            NoteKind::Created => "created",
            NoteKind::Clusters => "clusters",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "forget" => Some(NoteKind::Forget),
            "created" => Some(NoteKind::Created),
            "clusters" => Some(NoteKind::Clusters),
            _ => None,
        }
    }
}

// Generic over the backend, like `domain::sql::text_column!`: the same column on either store.
impl<DB> ToSql<Text, DB> for NoteKind
where
    DB: Backend,
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.as_str().to_sql(out)
    }
}

impl<DB> FromSql<Text, DB> for NoteKind
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let raw = String::from_sql(value)?;
        NoteKind::parse(&raw).ok_or_else(|| format!("unknown cache note kind {raw:?}").into())
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cache_invalidations)]
pub struct Invalidation {
    pub seq: i32,
    pub kind: NoteKind,
    pub token_key: Option<String>,
    pub account_id: Option<i32>,
    pub at: chrono::NaiveDateTime,
}

fn record(
    conn: &mut DbConnection,
    kind: NoteKind,
    key: Option<&TokenKey>,
    account: Option<AccountId>,
) -> Result<(), AppError> {
    diesel::insert_into(cache_invalidations::table)
        .values((
            cache_invalidations::kind.eq(kind),
            cache_invalidations::token_key.eq(key.map(TokenKey::as_str)),
            cache_invalidations::account_id.eq(account.map(|a| a.0)),
            cache_invalidations::at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The token was revoked: every cache drops it. Call inside the revoking transaction.
pub fn record_token(conn: &mut DbConnection, key: &TokenKey) -> Result<(), AppError> {
    record(conn, NoteKind::Forget, Some(key), None)
}

/// The account's API access changed: every cache drops its tokens.
pub fn record_account(conn: &mut DbConnection, id: AccountId) -> Result<(), AppError> {
    record(conn, NoteKind::Forget, None, Some(id))
}

/// The token was created: every cache learns that its key exists. Call inside the
/// creating transaction, so no process can know of a key the database doesn't hold.
pub fn record_token_created(conn: &mut DbConnection, key: &TokenKey) -> Result<(), AppError> {
    record(conn, NoteKind::Created, Some(key), None)
}

/// The account's clusters changed: every process drops its rendered pages of them. Call
/// inside the changing transaction.
pub fn record_clusters(conn: &mut DbConnection, account: AccountId) -> Result<(), AppError> {
    record(conn, NoteKind::Clusters, None, Some(account))
}

pub fn latest_seq(conn: &mut DbConnection) -> Result<i32, AppError> {
    Ok(cache_invalidations::table
        .select(diesel::dsl::max(cache_invalidations::seq))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0))
}

/// Up to [`BATCH`] notes after `seq`, oldest first.
pub fn since(conn: &mut DbConnection, seq: i32) -> Result<Vec<Invalidation>, AppError> {
    Ok(cache_invalidations::table
        .filter(cache_invalidations::seq.gt(seq))
        .order(cache_invalidations::seq.asc())
        .limit(BATCH as i64)
        .select(Invalidation::as_select())
        .load(conn)?)
}

/// How many tokens exist, so the set of known keys can be sized once.
pub fn token_count(conn: &mut DbConnection) -> Result<usize, AppError> {
    let count: i64 = tokens::table.count().get_result(conn)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// How many keys one read of [`each_token_key`] returns.
const KEY_PAGE: i64 = 10_000;

/// The log's starting point: every token's key, read a page at a time by id, so a
/// million keys never sit in memory as strings. (On PostgreSQL a single query would: libpq
/// holds a whole result before the first row is read, and diesel's `MultiConnection` has no
/// row-by-row mode.) A process reads [`latest_seq`] before this, and learns from the log of
/// any key created since, whichever page it would have fallen in. Returns how many it read.
pub fn each_token_key(
    conn: &mut DbConnection,
    mut each: impl FnMut(&str),
) -> Result<usize, AppError> {
    let mut seen = 0;
    let mut after = 0;
    loop {
        let page: Vec<(i32, String)> = tokens::table
            .filter(tokens::id.gt(after))
            .order(tokens::id.asc())
            .limit(KEY_PAGE)
            .select((tokens::id, tokens::key))
            .load(conn)?;
        let Some((last, _)) = page.last() else {
            return Ok(seen);
        };
        after = *last;
        for (_, key) in &page {
            each(key);
        }
        seen += page.len();
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    /// Keys are read a page at a time; every key arrives once, across page boundaries.
    #[test]
    fn every_key_is_read_once_however_many_pages_they_fill() {
        let mut sqlite = crate::db::migrated_sqlite_in_memory();
        let count = KEY_PAGE * 2 + 7;
        sqlite
            .batch_execute(&format!(
                "INSERT INTO accounts (name, slug, created_at) VALUES ('a', 'a', '2026-01-01 00:00:00');
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
                 INSERT INTO tokens (account_id, name, key, secret_digest, secret_hint, scopes, created_at)
                 SELECT 1, 't', 'kw_' || i, randomblob(32), 'abcd', 'read', '2026-01-01 00:00:00' FROM n;"
            ))
            .expect("seed the tokens");
        let mut conn = DbConnection::Sqlite(sqlite);
        let mut keys = std::collections::HashSet::new();
        let read = each_token_key(&mut conn, |key| {
            assert!(keys.insert(key.to_string()), "{key} arrived twice");
        })
        .expect("read the keys");
        assert_eq!(read, usize::try_from(count).unwrap());
        assert_eq!(keys.len(), read);
        assert!(keys.contains("kw_1") && keys.contains(&format!("kw_{count}")));
    }
}
