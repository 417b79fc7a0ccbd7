//! Notices: mails about a user's tokens, each of which they may turn off. A revocation by
//! a leak report or an operator is queued in the revocation's own transaction; expiry
//! digests and new addresses are found by a sweep (`mail::sender`), which notes what it
//! mentioned so that each token, and each token's address, is mentioned once.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::outbox;
use super::schema::{
    accounts, address_notices, expiry_notices, mail_preferences, token_addresses, tokens, users,
};
use super::tx::Tx;
use crate::domain::{Email, ExpiringToken, Mail, UserId};
use crate::error::AppError;

/// How far ahead the digest looks.
pub const EXPIRY_WINDOW_DAYS: i64 = 7;
/// At most one digest per user in this long.
pub const DIGEST_EVERY_HOURS: i64 = 24;

/// Which notices a user gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    pub expiry_digest: bool,
    pub revocations: bool,
    pub new_ip: bool,
}

impl Default for Preferences {
    /// New addresses are off: a token used from many places would mail on every one.
    fn default() -> Self {
        Self {
            expiry_digest: true,
            revocations: true,
            new_ip: false,
        }
    }
}

pub fn preferences(conn: &mut DbConnection, user: UserId) -> Result<Preferences, AppError> {
    Ok(mail_preferences::table
        .find(user.0)
        .select((
            mail_preferences::expiry_digest,
            mail_preferences::revocations,
            mail_preferences::new_ip,
        ))
        .first::<(bool, bool, bool)>(conn)
        .optional()?
        .map_or_else(
            Preferences::default,
            |(expiry_digest, revocations, new_ip)| Preferences {
                expiry_digest,
                revocations,
                new_ip,
            },
        ))
}

/// The signed-in user chooses their notices.
pub fn set_preferences(tx: &mut Tx<'_>, chosen: Preferences) -> Result<(), AppError> {
    let user = tx.signed_in_user()?;
    ensure_row(tx.conn, user)?;
    diesel::update(mail_preferences::table.find(user.0))
        .set((
            mail_preferences::expiry_digest.eq(chosen.expiry_digest),
            mail_preferences::revocations.eq(chosen.revocations),
            mail_preferences::new_ip.eq(chosen.new_ip),
        ))
        .execute(tx.conn)?;
    Ok(())
}

/// Writes the defaults for `user` if they have no row. Inside a write: nothing slips
/// between the read and the insert.
fn ensure_row(conn: &mut DbConnection, user: UserId) -> Result<(), AppError> {
    let exists: i64 = mail_preferences::table
        .filter(mail_preferences::user_id.eq(user.0))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        let defaults = Preferences::default();
        diesel::insert_into(mail_preferences::table)
            .values((
                mail_preferences::user_id.eq(user.0),
                mail_preferences::expiry_digest.eq(defaults.expiry_digest),
                mail_preferences::revocations.eq(defaults.revocations),
                mail_preferences::new_ip.eq(defaults.new_ip),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The maker of a token and what a notice names it by, if the maker wants `wanted`.
fn addressee(
    conn: &mut DbConnection,
    token_id: i32,
    wanted: impl Fn(&Preferences) -> bool,
) -> Result<Option<(Email, String, String, String)>, AppError> {
    let row: Option<(Option<i32>, String, String, String)> = tokens::table
        .inner_join(accounts::table)
        .filter(tokens::id.eq(token_id))
        .select((tokens::user_id, tokens::key, tokens::name, accounts::name))
        .first(conn)
        .optional()?;
    let Some((Some(maker), key, name, account)) = row else {
        return Ok(None);
    };
    if !wanted(&preferences(conn, UserId(maker))?) {
        return Ok(None);
    }
    let email: String = users::table.find(maker).select(users::email).first(conn)?;
    let email = Email::parse(&email).map_err(AppError::internal)?;
    Ok(Some((email, key, name, account)))
}

/// Queues the notice that token `token_id` was revoked by `by` for `reason`, to its maker
/// if they want it. Call inside the revocation's transaction.
pub fn token_revoked(
    conn: &mut DbConnection,
    token_id: i32,
    by: &str,
    reason: &str,
) -> Result<(), AppError> {
    let Some((email, key, name, account)) = addressee(conn, token_id, |p| p.revocations)? else {
        return Ok(());
    };
    outbox::enqueue(
        conn,
        &email,
        &Mail::TokenRevoked {
            key,
            name,
            account,
            by: by.to_string(),
            reason: reason.to_string(),
        },
    )
}

/// Queues one digest per user of their active tokens that expire within the week and no
/// digest has named, unless they had one in the last day or turned digests off. Returns
/// how many digests were queued. Runs inside one write, so instances take turns.
pub fn queue_expiry_digests(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        let soon: Vec<(i32, i32, String, String, String, NaiveDateTime)> = tokens::table
            .inner_join(accounts::table)
            .left_join(expiry_notices::table)
            .filter(expiry_notices::token_id.nullable().is_null())
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.gt(now))
            .filter(tokens::expires_at.le(now + chrono::Duration::days(EXPIRY_WINDOW_DAYS)))
            .filter(tokens::user_id.is_not_null())
            .order(tokens::expires_at.asc())
            .select((
                tokens::id,
                tokens::user_id.assume_not_null(),
                tokens::key,
                tokens::name,
                accounts::name,
                tokens::expires_at.assume_not_null(),
            ))
            .load(conn)?;
        let mut by_user: BTreeMap<i32, Vec<(i32, ExpiringToken)>> = BTreeMap::new();
        for (id, user, key, name, account, expires_at) in soon {
            by_user.entry(user).or_default().push((
                id,
                ExpiringToken {
                    key,
                    name,
                    account,
                    expires_at: expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                },
            ));
        }
        let mut queued = 0;
        for (user, tokens) in by_user {
            let user = UserId(user);
            ensure_row(conn, user)?;
            let (wanted, last): (bool, Option<NaiveDateTime>) = mail_preferences::table
                .find(user.0)
                .select((
                    mail_preferences::expiry_digest,
                    mail_preferences::last_expiry_digest_at,
                ))
                .first(conn)?;
            if last.is_some_and(|last| now - last < chrono::Duration::hours(DIGEST_EVERY_HOURS)) {
                // Named in tomorrow's digest instead.
                continue;
            }
            for (id, _) in &tokens {
                diesel::insert_into(expiry_notices::table)
                    .values((
                        expiry_notices::token_id.eq(id),
                        expiry_notices::noticed_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            if !wanted {
                continue;
            }
            let email: String = users::table.find(user.0).select(users::email).first(conn)?;
            let email = Email::parse(&email).map_err(AppError::internal)?;
            let tokens = tokens.into_iter().map(|(_, t)| t).collect();
            outbox::enqueue(conn, &email, &Mail::ExpiryDigest { tokens })?;
            diesel::update(mail_preferences::table.find(user.0))
                .set(mail_preferences::last_expiry_digest_at.eq(now))
                .execute(conn)?;
            queued += 1;
        }
        Ok(queued)
    })
}

/// Queues a notice for each token address first seen in the last day that no sweep has
/// looked at, when the token had used another address before and its maker wants these
/// notices. A token's first address is noted, never mailed. Returns how many were queued.
pub fn queue_new_addresses(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        let fresh: Vec<(i32, String, NaiveDateTime)> = token_addresses::table
            .left_join(
                address_notices::table.on(address_notices::token_id
                    .eq(token_addresses::token_id)
                    .and(address_notices::ip.eq(token_addresses::ip))),
            )
            .filter(address_notices::token_id.nullable().is_null())
            .filter(token_addresses::first_seen_at.gt(now - chrono::Duration::days(1)))
            .order(token_addresses::first_seen_at.asc())
            .select((
                token_addresses::token_id,
                token_addresses::ip,
                token_addresses::first_seen_at,
            ))
            .load(conn)?;
        let mut queued = 0;
        for (token_id, ip, first_seen) in fresh {
            diesel::insert_into(address_notices::table)
                .values((
                    address_notices::token_id.eq(token_id),
                    address_notices::ip.eq(&ip),
                    address_notices::noticed_at.eq(now),
                ))
                .execute(conn)?;
            let older: i64 = token_addresses::table
                .filter(token_addresses::token_id.eq(token_id))
                .filter(token_addresses::first_seen_at.lt(first_seen))
                .count()
                .get_result(conn)?;
            let noticed_before: i64 = address_notices::table
                .filter(address_notices::token_id.eq(token_id))
                .filter(address_notices::ip.ne(&ip))
                .count()
                .get_result(conn)?;
            if older == 0 && noticed_before == 0 {
                continue;
            }
            let Some((email, key, name, account)) = addressee(conn, token_id, |p| p.new_ip)? else {
                continue;
            };
            outbox::enqueue(
                conn,
                &email,
                &Mail::NewAddress {
                    key,
                    name,
                    account,
                    ip,
                },
            )?;
            queued += 1;
        }
        Ok(queued)
    })
}
