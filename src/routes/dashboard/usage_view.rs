//! What the token pages show of a token's use: the 30-day chart and last addresses on
//! the token's page, a sparkline per row and the account's chart on `/tokens`. The
//! figures are written by the guard's batches (`usage`), so they trail the API by
//! up to one flush interval.

use std::collections::HashMap;

use super::view::{RowUsage, TimeView};
use crate::charts::{self, BarChart};
use crate::db::{self, usage::Counts};
use crate::domain::{AccountId, TokenId};
use crate::error::AppError;
use crate::state::AppState;

/// Days on a chart, and in a list row's sparkline.
const CHART_DAYS: u32 = 30;
const SPARK_DAYS: u32 = 14;

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn days_back(days: u32) -> chrono::NaiveDate {
    today() - chrono::Duration::days(i64::from(days) - 1)
}

/// One address a token was used from, shaped for the page.
pub struct AddressRow {
    pub ip: String,
    pub first: TimeView,
    pub last: TimeView,
}

/// What the token's page shows of its use.
pub struct TokenUsageView {
    pub chart: BarChart,
    pub addresses: Vec<AddressRow>,
}

/// The token's chart and addresses. The caller has already checked that the signed-in
/// person may see the token; the queries are scoped to the account all the same.
pub async fn for_token(
    state: &AppState,
    account: AccountId,
    token: TokenId,
) -> Result<TokenUsageView, AppError> {
    let since = days_back(CHART_DAYS);
    let (days, addresses) = db::run(&state.pool, move |conn| {
        Ok((
            db::usage::daily_for_token(conn, account, token, since)?,
            db::usage::addresses_for_token(conn, account, token)?,
        ))
    })
    .await?;
    Ok(TokenUsageView {
        chart: charts::daily_bars(
            "token-usage",
            "Calls in the last 30 days",
            today(),
            CHART_DAYS,
            &days,
        ),
        addresses: addresses
            .into_iter()
            .map(|a| AddressRow {
                ip: a.ip,
                first: TimeView::new(a.first_seen_at),
                last: TimeView::new(a.last_seen_at),
            })
            .collect(),
    })
}

/// What `/tokens` shows of use: a sparkline and a count for every token, and for
/// those who see every token, the account's own chart. Two queries, whatever the count.
pub async fn for_list(
    state: &AppState,
    account: AccountId,
    account_chart: bool,
) -> Result<(HashMap<TokenId, RowUsage>, Option<BarChart>), AppError> {
    let since = days_back(CHART_DAYS.max(SPARK_DAYS));
    let (by_token, account_days) = db::run(&state.pool, move |conn| {
        let by_token = db::usage::daily_for_account_tokens(conn, account, since)?;
        let account_days = if account_chart {
            Some(db::usage::daily_for_account(conn, account, since)?)
        } else {
            None
        };
        Ok((by_token, account_days))
    })
    .await?;
    let today = today();
    let spark_start = days_back(SPARK_DAYS);
    let rows = by_token
        .into_iter()
        .map(|(token, days)| {
            let total: i64 = days
                .iter()
                .filter(|(d, _)| *d >= spark_start)
                .map(|(_, c): &(_, Counts)| c.total())
                .sum();
            let usage = RowUsage {
                sparkline: charts::sparkline(today, SPARK_DAYS, &days),
                total: charts::grouped(total),
            };
            (token, usage)
        })
        .collect();
    let chart = account_days.map(|days| {
        charts::daily_bars(
            "account-usage",
            "The account's calls in the last 30 days",
            today,
            CHART_DAYS,
            &days,
        )
    });
    Ok((rows, chart))
}
