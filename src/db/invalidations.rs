//! A log of "forget what you cached about this" notes, written in the same transaction
//! as the change. Every server polls it by sequence number, so a revocation made by the
//! CLI or by another instance reaches its cache within one poll interval.

use diesel::prelude::*;

use super::schema::cache_invalidations;
use crate::domain::{AccountId, TokenKey};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable)]
pub struct Invalidation {
    pub seq: i32,
    pub token_key: Option<String>,
    pub account_id: Option<i32>,
    pub at: chrono::NaiveDateTime,
}

pub fn record_token(conn: &mut SqliteConnection, key: &TokenKey) -> Result<(), AppError> {
    diesel::insert_into(cache_invalidations::table)
        .values((
            cache_invalidations::token_key.eq(key.as_str()),
            cache_invalidations::at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn record_account(conn: &mut SqliteConnection, id: AccountId) -> Result<(), AppError> {
    diesel::insert_into(cache_invalidations::table)
        .values((
            cache_invalidations::account_id.eq(id.0),
            cache_invalidations::at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn latest_seq(conn: &mut SqliteConnection) -> Result<i32, AppError> {
    Ok(cache_invalidations::table
        .select(diesel::dsl::max(cache_invalidations::seq))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0))
}

pub fn since(conn: &mut SqliteConnection, seq: i32) -> Result<Vec<Invalidation>, AppError> {
    Ok(cache_invalidations::table
        .filter(cache_invalidations::seq.gt(seq))
        .order(cache_invalidations::seq.asc())
        .limit(1000)
        .load(conn)?)
}
