//! A token's use as the guard saw it: the last use (on the token's row), calls per UTC day
//! (kept 90 days) and the last 5 client addresses. `auth::usage` gathers them in memory
//! and writes them here in batches; the dashboard's charts read them.
//!
//! Every write adds to what is there (`count = count + n`, the earliest first sighting,
//! the latest last one), so several servers flushing into one database never overwrite
//! each other's figures, and a batch retried after a failure loses nothing.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Integer, Text, Timestamp};
use diesel::upsert::excluded;

use super::schema::{token_usage_days as days, tokens};
use crate::domain::{AccountId, TokenId};
use crate::error::AppError;

/// How many UTC days of counts are kept, today included.
pub const DAYS_KEPT: i64 = 90;
/// How many distinct client addresses are kept per token, the most recent first.
pub const ADDRESSES_KEPT: usize = 5;

/// A day's calls with one token, by how the guard answered them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct Counts {
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    /// A known key with the wrong secret.
    #[diesel(sql_type = BigInt)]
    pub wrong_secret: i64,
    /// 403: a missing scope or a suspended account.
    #[diesel(sql_type = BigInt)]
    pub forbidden: i64,
    /// 429: over the token's rate limit.
    #[diesel(sql_type = BigInt)]
    pub rate_limited: i64,
}

impl Counts {
    pub fn refused(&self) -> i64 {
        self.wrong_secret + self.forbidden + self.rate_limited
    }

    pub fn total(&self) -> i64 {
        self.succeeded + self.refused()
    }

    pub fn add(&mut self, other: &Counts) {
        self.succeeded += other.succeeded;
        self.wrong_secret += other.wrong_secret;
        self.forbidden += other.forbidden;
        self.rate_limited += other.rate_limited;
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
    conn: &mut SqliteConnection,
    batch: &[TokenUsage],
    today: NaiveDate,
) -> Result<(), AppError> {
    super::write(conn, |conn| {
        for usage in batch {
            record_one(conn, usage)?;
        }
        diesel::delete(days::table.filter(days::day.lt(first_kept_day(today)))).execute(conn)?;
        Ok(())
    })
}

fn record_one(conn: &mut SqliteConnection, usage: &TokenUsage) -> Result<(), AppError> {
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
    for (day, counts) in &usage.days {
        diesel::insert_into(days::table)
            .values((
                days::token_id.eq(token),
                days::day.eq(day),
                days::succeeded.eq(counts.succeeded),
                days::wrong_secret.eq(counts.wrong_secret),
                days::forbidden.eq(counts.forbidden),
                days::rate_limited.eq(counts.rate_limited),
            ))
            .on_conflict((days::token_id, days::day))
            .do_update()
            .set((
                days::succeeded.eq(days::succeeded + excluded(days::succeeded)),
                days::wrong_secret.eq(days::wrong_secret + excluded(days::wrong_secret)),
                days::forbidden.eq(days::forbidden + excluded(days::forbidden)),
                days::rate_limited.eq(days::rate_limited + excluded(days::rate_limited)),
            ))
            .execute(conn)?;
    }
    if usage.addresses.is_empty() {
        return Ok(());
    }
    for seen in &usage.addresses {
        // SQLite's two-argument min() and max() are scalar; timestamps are stored as
        // text of one fixed format, so text order is time order.
        diesel::sql_query(
            "INSERT INTO token_addresses (token_id, ip, first_seen_at, last_seen_at) \
             VALUES (?, ?, ?, ?) \
             ON CONFLICT (token_id, ip) DO UPDATE SET \
               first_seen_at = min(first_seen_at, excluded.first_seen_at), \
               last_seen_at = max(last_seen_at, excluded.last_seen_at)",
        )
        .bind::<Integer, _>(token)
        .bind::<Text, _>(seen.ip.to_string())
        .bind::<Timestamp, _>(seen.first)
        .bind::<Timestamp, _>(seen.last)
        .execute(conn)?;
    }
    diesel::sql_query(
        "DELETE FROM token_addresses WHERE token_id = ?1 AND ip NOT IN \
           (SELECT ip FROM token_addresses WHERE token_id = ?1 \
            ORDER BY last_seen_at DESC, ip LIMIT ?2)",
    )
    .bind::<Integer, _>(token)
    .bind::<BigInt, _>(ADDRESSES_KEPT as i64)
    .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Integer)]
    token_id: i32,
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(embed)]
    counts: Counts,
}

/// One of the account's tokens' counts from `since` on, by day; days without calls are
/// missing. Another account's token has none.
pub fn daily_for_token(
    conn: &mut SqliteConnection,
    account: AccountId,
    token: TokenId,
    since: NaiveDate,
) -> Result<Vec<(NaiveDate, Counts)>, AppError> {
    let rows: Vec<DayRow> = diesel::sql_query(
        "SELECT d.token_id, d.day, d.succeeded, d.wrong_secret, d.forbidden, d.rate_limited \
         FROM token_usage_days d JOIN tokens t ON t.id = d.token_id \
         WHERE t.account_id = ? AND d.token_id = ? AND d.day >= ? ORDER BY d.day",
    )
    .bind::<Integer, _>(account.0)
    .bind::<Integer, _>(token.0)
    .bind::<Date, _>(since)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.day, r.counts)).collect())
}

/// Every one of the account's tokens' counts from `since` on, by token and day: one query
/// for the whole token list.
pub fn daily_for_account_tokens(
    conn: &mut SqliteConnection,
    account: AccountId,
    since: NaiveDate,
) -> Result<HashMap<TokenId, Vec<(NaiveDate, Counts)>>, AppError> {
    let rows: Vec<DayRow> = diesel::sql_query(
        "SELECT d.token_id, d.day, d.succeeded, d.wrong_secret, d.forbidden, d.rate_limited \
         FROM token_usage_days d JOIN tokens t ON t.id = d.token_id \
         WHERE t.account_id = ? AND d.day >= ? ORDER BY d.day",
    )
    .bind::<Integer, _>(account.0)
    .bind::<Date, _>(since)
    .load(conn)?;
    let mut by_token: HashMap<TokenId, Vec<(NaiveDate, Counts)>> = HashMap::new();
    for row in rows {
        by_token
            .entry(TokenId(row.token_id))
            .or_default()
            .push((row.day, row.counts));
    }
    Ok(by_token)
}

/// The account's calls from `since` on, all tokens together, by day.
pub fn daily_for_account(
    conn: &mut SqliteConnection,
    account: AccountId,
    since: NaiveDate,
) -> Result<Vec<(NaiveDate, Counts)>, AppError> {
    #[derive(QueryableByName)]
    struct AccountDay {
        #[diesel(sql_type = Date)]
        day: NaiveDate,
        #[diesel(embed)]
        counts: Counts,
    }
    let rows: Vec<AccountDay> = diesel::sql_query(
        "SELECT d.day, SUM(d.succeeded) AS succeeded, SUM(d.wrong_secret) AS wrong_secret, \
           SUM(d.forbidden) AS forbidden, SUM(d.rate_limited) AS rate_limited \
         FROM token_usage_days d JOIN tokens t ON t.id = d.token_id \
         WHERE t.account_id = ? AND d.day >= ? GROUP BY d.day ORDER BY d.day",
    )
    .bind::<Integer, _>(account.0)
    .bind::<Date, _>(since)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.day, r.counts)).collect())
}

/// A client address as stored: text, since it is only ever shown.
#[derive(Debug, Clone, QueryableByName)]
pub struct Address {
    #[diesel(sql_type = Text)]
    pub ip: String,
    #[diesel(sql_type = Timestamp)]
    pub first_seen_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    pub last_seen_at: NaiveDateTime,
}

/// One of the account's tokens' last addresses, the most recent first.
pub fn addresses_for_token(
    conn: &mut SqliteConnection,
    account: AccountId,
    token: TokenId,
) -> Result<Vec<Address>, AppError> {
    Ok(diesel::sql_query(
        "SELECT a.ip, a.first_seen_at, a.last_seen_at \
         FROM token_addresses a JOIN tokens t ON t.id = a.token_id \
         WHERE t.account_id = ? AND a.token_id = ? \
         ORDER BY a.last_seen_at DESC, a.ip LIMIT ?",
    )
    .bind::<Integer, _>(account.0)
    .bind::<Integer, _>(token.0)
    .bind::<BigInt, _>(ADDRESSES_KEPT as i64)
    .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel_migrations::MigrationHarness;

    fn database() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").expect("an in-memory database");
        conn.run_pending_migrations(crate::db::MIGRATIONS)
            .expect("the migrations run");
        conn.batch_execute(
            "INSERT INTO accounts (id, name, slug, api_state, created_at) \
               VALUES (1, 'Acme', 'acme', 'active', '2026-01-01 00:00:00'), \
                      (2, 'Other', 'other', 'active', '2026-01-01 00:00:00'); \
             INSERT INTO tokens (id, account_id, name, key, secret_digest, secret_hint, scopes, created_at) \
               VALUES (1, 1, 'ci', 'kw_aaaaaaaaaaaaaaaa', x'00', 'abcd', 'read', '2026-01-01 00:00:00'), \
                      (2, 2, 'ci', 'kw_bbbbbbbbbbbbbbbb', x'01', 'abcd', 'read', '2026-01-01 00:00:00');",
        )
        .expect("two accounts with a token each");
        conn
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
                    rate_limited: 0
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
