//! A log of what every process's caches must learn, written in the same transaction
//! as the change: "forget this token" (a revocation), "forget this account" (a
//! suspension), "this key now exists" (a creation), and "this account's clusters
//! changed" (for the rendered pages of `GET /clusters`). Every server polls it by sequence
//! number, so a change made by the CLI or by another instance reaches its cache within
//! one poll interval.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteValue};

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

impl ToSql<Text, Sqlite> for NoteKind {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.as_str());
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for NoteKind {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let raw = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
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
    conn: &mut SqliteConnection,
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
pub fn record_token(conn: &mut SqliteConnection, key: &TokenKey) -> Result<(), AppError> {
    record(conn, NoteKind::Forget, Some(key), None)
}

/// The account's API access changed: every cache drops its tokens.
pub fn record_account(conn: &mut SqliteConnection, id: AccountId) -> Result<(), AppError> {
    record(conn, NoteKind::Forget, None, Some(id))
}

/// The token was created: every cache learns that its key exists. Call inside the
/// creating transaction, so no process can know of a key the database doesn't hold.
pub fn record_token_created(conn: &mut SqliteConnection, key: &TokenKey) -> Result<(), AppError> {
    record(conn, NoteKind::Created, Some(key), None)
}

/// The account's clusters changed: every process drops its rendered pages of them. Call
/// inside the changing transaction.
pub fn record_clusters(conn: &mut SqliteConnection, account: AccountId) -> Result<(), AppError> {
    record(conn, NoteKind::Clusters, None, Some(account))
}

pub fn latest_seq(conn: &mut SqliteConnection) -> Result<i32, AppError> {
    Ok(cache_invalidations::table
        .select(diesel::dsl::max(cache_invalidations::seq))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0))
}

/// Up to [`BATCH`] notes after `seq`, oldest first.
pub fn since(conn: &mut SqliteConnection, seq: i32) -> Result<Vec<Invalidation>, AppError> {
    Ok(cache_invalidations::table
        .filter(cache_invalidations::seq.gt(seq))
        .order(cache_invalidations::seq.asc())
        .limit(BATCH as i64)
        .select(Invalidation::as_select())
        .load(conn)?)
}

/// How many tokens exist, so the set of known keys can be sized once.
pub fn token_count(conn: &mut SqliteConnection) -> Result<usize, AppError> {
    let count: i64 = tokens::table.count().get_result(conn)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The log's starting point: every token's key, streamed rather than collected, so a
/// million keys never sit in memory as strings. A process reads [`latest_seq`] before
/// this, and learns of any key created since from the log. Returns how many it read.
pub fn each_token_key(
    conn: &mut SqliteConnection,
    mut each: impl FnMut(&str),
) -> Result<usize, AppError> {
    let mut seen = 0;
    let keys = tokens::table
        .select(tokens::key)
        .load_iter::<String, diesel::connection::DefaultLoadingMode>(conn)?;
    for key in keys {
        each(&key?);
        seen += 1;
    }
    Ok(seen)
}
