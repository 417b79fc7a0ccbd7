//! A token's use as the guard saw it: the last use (on the token's row), calls per UTC day
//! (kept 90 days) and the last 5 client addresses. `usage` gathers them in memory
//! and writes them here in batches; the dashboard's charts read them.
//!
//! Every write adds to what is there (`count = count + n`, the earliest first sighting,
//! the latest last one), so several servers flushing into one database never overwrite
//! each other's figures, and a batch retried after a failure loses nothing.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use diesel::dsl::sql;
use diesel::sql_types::BigInt;

use super::DbConnection;
use super::schema::{token_addresses as addresses, token_usage_days as days, tokens};
use crate::domain::{AccountId, TokenId};
use crate::error::AppError;

/// How many UTC days of counts are kept, today included.
pub const DAYS_KEPT: i64 = 90;
/// How many distinct client addresses are kept per token, the most recent first.
pub const ADDRESSES_KEPT: usize = 5;

/// A day's calls with one token, by how the guard answered them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable)]
pub struct Counts {
    pub succeeded: i64,
    /// A known key with the wrong secret.
    pub wrong_secret: i64,
    /// 403: a missing scope or a suspended account.
    pub forbidden: i64,
    /// 429: over the token's rate limit.
    pub rate_limited: i64,
    /// Another 4xx after the guard let the call in (a 404, a 422 from a handler).
    pub refused: i64,
    /// A 5xx after the guard let the call in: the server failed to answer it.
    pub failed: i64,
}

impl Counts {
    /// Calls made with the secret, whatever the answer: the token's own use.
    pub fn with_secret(&self) -> i64 {
        self.succeeded + self.forbidden + self.rate_limited + self.refused + self.failed
    }

    /// Every call counted, wrong secrets included.
    pub fn total(&self) -> i64 {
        self.with_secret() + self.wrong_secret
    }

    pub fn add(&mut self, other: &Counts) {
        self.succeeded += other.succeeded;
        self.wrong_secret += other.wrong_secret;
        self.forbidden += other.forbidden;
        self.rate_limited += other.rate_limited;
        self.refused += other.refused;
        self.failed += other.failed;
    }
}

/// One client address and when it was first and last seen with a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub ip: IpAddr,
    pub first: NaiveDateTime,
    pub last: NaiveDateTime,
}

/// What one server gathered about one token since its last flush.
#[derive(Debug, Clone)]
pub struct TokenUsage {
    pub token: TokenId,
    /// The latest authenticated call, and its address.
    pub last_used: Option<(NaiveDateTime, Option<IpAddr>)>,
    pub days: Vec<(NaiveDate, Counts)>,
    pub addresses: Vec<Sighting>,
}

/// The first day still kept when today is `today`.
pub fn first_kept_day(today: NaiveDate) -> NaiveDate {
    today - chrono::Duration::days(DAYS_KEPT - 1)
}

/// Writes a batch in one transaction, adding to what other batches (and other servers)
/// wrote, then deletes days older than [`DAYS_KEPT`]. Never moves `last_used_at` back.
pub fn record(
    conn: &mut DbConnection,
    batch: &[TokenUsage],
    today: NaiveDate,
) -> Result<(), AppError> {
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        for usage in batch {
            record_one(conn, usage)?;
        }
        diesel::delete(days::table.filter(days::day.lt(first_kept_day(today)))).execute(conn)?;
        Ok(())
    })
}

fn record_one(conn: &mut DbConnection, usage: &TokenUsage) -> Result<(), AppError> {
    let token = usage.token.0;
    if let Some((at, ip)) = usage.last_used {
        diesel::update(
            tokens::table.find(token).filter(
                tokens::last_used_at
                    .is_null()
                    .or(tokens::last_used_at.lt(at)),
            ),
        )
        .set((
            tokens::last_used_at.eq(at),
            tokens::last_used_ip.eq(ip.map(|ip| ip.to_string())),
        ))
        .execute(conn)?;
    }
    // Read, then add or insert: portable to both stores (diesel's multi-store connection
    // has no ON CONFLICT), and race-free because write transactions take turns (`db::tx::transact`).
    for (day, counts) in &usage.days {
        let this_day = days::table.find((token, day));
        let added = diesel::update(this_day)
            .set((
                days::succeeded.eq(days::succeeded + counts.succeeded),
                days::wrong_secret.eq(days::wrong_secret + counts.wrong_secret),
                days::forbidden.eq(days::forbidden + counts.forbidden),
                days::rate_limited.eq(days::rate_limited + counts.rate_limited),
                days::refused.eq(days::refused + counts.refused),
                days::failed.eq(days::failed + counts.failed),
            ))
            .execute(conn)?;
        if added == 0 {
            diesel::insert_into(days::table)
                .values((
                    days::token_id.eq(token),
                    days::day.eq(day),
                    days::succeeded.eq(counts.succeeded),
                    days::wrong_secret.eq(counts.wrong_secret),
                    days::forbidden.eq(counts.forbidden),
                    days::rate_limited.eq(counts.rate_limited),
                    days::refused.eq(counts.refused),
                    days::failed.eq(counts.failed),
                ))
                .execute(conn)?;
        }
    }
    if usage.addresses.is_empty() {
        return Ok(());
    }
    for seen in &usage.addresses {
        let ip = seen.ip.to_string();
        let known: Option<(NaiveDateTime, NaiveDateTime)> = addresses::table
            .find((token, &ip))
            .select((addresses::first_seen_at, addresses::last_seen_at))
            .first(conn)
            .optional()?;
        match known {
            Some((first, last)) => {
                diesel::update(addresses::table.find((token, &ip)))
                    .set((
                        addresses::first_seen_at.eq(first.min(seen.first)),
                        addresses::last_seen_at.eq(last.max(seen.last)),
                    ))
                    .execute(conn)?;
            }
            None => {
                diesel::insert_into(addresses::table)
                    .values((
                        addresses::token_id.eq(token),
                        addresses::ip.eq(&ip),
                        addresses::first_seen_at.eq(seen.first),
                        addresses::last_seen_at.eq(seen.last),
                    ))
                    .execute(conn)?;
            }
        }
    }
    let kept: Vec<String> = addresses::table
        .filter(addresses::token_id.eq(token))
        .order((addresses::last_seen_at.desc(), addresses::ip))
        .limit(ADDRESSES_KEPT as i64)
        .select(addresses::ip)
        .load(conn)?;
    diesel::delete(
        addresses::table
            .filter(addresses::token_id.eq(token))
            .filter(addresses::ip.ne_all(kept)),
    )
    .execute(conn)?;
    Ok(())
}

/// The counts of a day's row, in [`Counts`]' order.
macro_rules! counts_of_row {
    () => {
        (
            days::succeeded,
            days::wrong_secret,
            days::forbidden,
            days::rate_limited,
            days::refused,
            days::failed,
        )
    };
}

/// One of the account's tokens' counts from `since` on, by day; days without calls are
/// missing. Another account's token has none.
pub fn daily_for_token(
    conn: &mut DbConnection,
    account: AccountId,
    token: TokenId,
    since: NaiveDate,
) -> Result<Vec<(NaiveDate, Counts)>, AppError> {
    Ok(days::table
        .inner_join(tokens::table)
        .filter(tokens::account_id.eq(account.0))
        .filter(days::token_id.eq(token.0))
        .filter(days::day.ge(since))
        .order(days::day)
        .select((days::day, counts_of_row!()))
        .load(conn)?)
}

/// Every one of the account's tokens' counts from `since` on, by token and day: one query
/// for the whole token list.
pub fn daily_for_account_tokens(
    conn: &mut DbConnection,
    account: AccountId,
    since: NaiveDate,
) -> Result<HashMap<TokenId, Vec<(NaiveDate, Counts)>>, AppError> {
    let rows: Vec<(i32, NaiveDate, Counts)> = days::table
        .inner_join(tokens::table)
        .filter(tokens::account_id.eq(account.0))
        .filter(days::day.ge(since))
        .order(days::day)
        .select((days::token_id, days::day, counts_of_row!()))
        .load(conn)?;
    let mut by_token: HashMap<TokenId, Vec<(NaiveDate, Counts)>> = HashMap::new();
    for (token, day, counts) in rows {
        by_token
            .entry(TokenId(token))
            .or_default()
            .push((day, counts));
    }
    Ok(by_token)
}

/// The account's calls from `since` on, all tokens together, by day.
pub fn daily_for_account(
    conn: &mut DbConnection,
    account: AccountId,
    since: NaiveDate,
) -> Result<Vec<(NaiveDate, Counts)>, AppError> {
    // CAST: PostgreSQL sums BIGINTs as NUMERIC; both stores read a BIGINT back.
    let total =
        |column: &str| sql::<BigInt>(&format!("CAST(SUM(token_usage_days.{column}) AS BIGINT)"));
    Ok(days::table
        .inner_join(tokens::table)
        .filter(tokens::account_id.eq(account.0))
        .filter(days::day.ge(since))
        .group_by(days::day)
        .order(days::day)
        .select((
            days::day,
            (
                total("succeeded"),
                total("wrong_secret"),
                total("forbidden"),
                total("rate_limited"),
                total("refused"),
                total("failed"),
            ),
        ))
        .load(conn)?)
}

/// A client address as stored: text, since it is only ever shown.
#[derive(Debug, Clone, Queryable)]
pub struct Address {
    pub ip: String,
    pub first_seen_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

/// One of the account's tokens' last addresses, the most recent first.
pub fn addresses_for_token(
    conn: &mut DbConnection,
    account: AccountId,
    token: TokenId,
) -> Result<Vec<Address>, AppError> {
    Ok(addresses::table
        .inner_join(tokens::table)
        .filter(tokens::account_id.eq(account.0))
        .filter(addresses::token_id.eq(token.0))
        .order((addresses::last_seen_at.desc(), addresses::ip))
        .limit(ADDRESSES_KEPT as i64)
        .select((
            addresses::ip,
            addresses::first_seen_at,
            addresses::last_seen_at,
        ))
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    fn database() -> DbConnection {
        let mut conn = crate::db::migrated_sqlite_in_memory();
        conn.batch_execute(
            "INSERT INTO accounts (id, name, slug, api_state, created_at) \
               VALUES (1, 'Acme', 'acme', 'active', '2026-01-01 00:00:00'), \
                      (2, 'Other', 'other', 'active', '2026-01-01 00:00:00'); \
             INSERT INTO tokens (id, account_id, name, key, secret_digest, secret_hint, scopes, created_at) \
               VALUES (1, 1, 'ci', 'kw_aaaaaaaaaaaaaaaa', x'00', 'abcd', 'read', '2026-01-01 00:00:00'), \
                      (2, 2, 'ci', 'kw_bbbbbbbbbbbbbbbb', x'01', 'abcd', 'read', '2026-01-01 00:00:00');",
        )
        .expect("two accounts with a token each");
        DbConnection::Sqlite(conn)
    }

    fn day(d: &str) -> NaiveDate {
        d.parse().expect("a date")
    }

    fn at(t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").expect("a time")
    }

    fn counts(succeeded: i64, wrong_secret: i64) -> Counts {
        Counts {
            succeeded,
            wrong_secret,
            forbidden: 1,
            rate_limited: 0,
            refused: 0,
            failed: 1,
        }
    }

    fn usage(token: i32, days: Vec<(NaiveDate, Counts)>, ips: &[(&str, &str)]) -> TokenUsage {
        TokenUsage {
            token: TokenId(token),
            last_used: None,
            days,
            addresses: ips
                .iter()
                .map(|(ip, t)| Sighting {
                    ip: ip.parse().expect("an address"),
                    first: at(t),
                    last: at(t),
                })
                .collect(),
        }
    }

    #[test]
    fn two_servers_flushing_the_same_day_add_up() {
        let mut conn = database();
        let today = day("2026-11-28");
        let first = usage(1, vec![(today, counts(3, 2))], &[]);
        let second = usage(1, vec![(today, counts(10, 0))], &[]);
        record(&mut conn, &[first], today).unwrap();
        record(&mut conn, &[second], today).unwrap();

        let kept = daily_for_token(&mut conn, AccountId(1), TokenId(1), today).unwrap();
        assert_eq!(
            kept,
            vec![(
                today,
                Counts {
                    succeeded: 13,
                    wrong_secret: 2,
                    forbidden: 2,
                    rate_limited: 0,
                    refused: 0,
                    failed: 2,
                }
            )]
        );
        // Another account sees none of it, and its own token's figures stay apart.
        assert!(
            daily_for_token(&mut conn, AccountId(2), TokenId(1), today)
                .unwrap()
                .is_empty()
        );
        assert!(
            daily_for_account(&mut conn, AccountId(2), today)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn days_older_than_ninety_are_pruned_by_the_next_batch() {
        let mut conn = database();
        let today = day("2026-11-28");
        let oldest_kept = first_kept_day(today);
        let too_old = oldest_kept.pred_opt().unwrap();
        record(
            &mut conn,
            &[usage(
                1,
                vec![(too_old, counts(1, 0)), (oldest_kept, counts(2, 0))],
                &[],
            )],
            today - chrono::Duration::days(1),
        )
        .unwrap();
        assert_eq!(
            daily_for_token(&mut conn, AccountId(1), TokenId(1), too_old)
                .unwrap()
                .len(),
            2
        );

        record(&mut conn, &[], today).unwrap();

        let kept = daily_for_token(&mut conn, AccountId(1), TokenId(1), too_old).unwrap();
        assert_eq!(
            kept.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            [oldest_kept]
        );
        assert_eq!(oldest_kept, day("2026-08-31"));
    }

    #[test]
    fn the_five_latest_addresses_are_kept_with_their_first_sighting() {
        let mut conn = database();
        let today = day("2026-11-28");
        let ips = [
            ("10.0.0.1", "2026-11-28 10:00:01"),
            ("10.0.0.2", "2026-11-28 10:00:02"),
            ("10.0.0.3", "2026-11-28 10:00:03"),
            ("10.0.0.4", "2026-11-28 10:00:04"),
            ("10.0.0.5", "2026-11-28 10:00:05"),
        ];
        record(&mut conn, &[usage(1, vec![], &ips)], today).unwrap();
        // A later batch: the second address again, and a sixth.
        let later = [
            ("10.0.0.2", "2026-11-28 11:00:00"),
            ("2001:db8::6", "2026-11-28 11:00:01"),
        ];
        record(&mut conn, &[usage(1, vec![], &later)], today).unwrap();

        let kept = addresses_for_token(&mut conn, AccountId(1), TokenId(1)).unwrap();
        let ips: Vec<&str> = kept.iter().map(|a| a.ip.as_str()).collect();
        assert_eq!(
            ips,
            [
                "2001:db8::6",
                "10.0.0.2",
                "10.0.0.5",
                "10.0.0.4",
                "10.0.0.3"
            ]
        );
        assert_eq!(kept[1].first_seen_at, at("2026-11-28 10:00:02"));
        assert_eq!(kept[1].last_seen_at, at("2026-11-28 11:00:00"));
        assert!(
            addresses_for_token(&mut conn, AccountId(2), TokenId(1))
                .unwrap()
                .is_empty()
        );
    }
}
