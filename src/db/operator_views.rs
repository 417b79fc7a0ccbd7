//! What the operator console reads across accounts: accounts found by name, slug or a
//! member's email, one account's token counts, and the operators. Never shown to a tenant.

use diesel::prelude::*;

use super::DbConnection;
use super::accounts::{AccountSummary, list_with_counts};
use super::schema::{accounts, memberships, tokens, users};
use super::token_search::{contains_pattern, lower};
use crate::domain::AccountId;
use crate::error::AppError;

/// The most accounts one search shows.
pub const SEARCH_LIMIT: usize = 50;

/// Accounts whose name or slug, or one of whose members' email, contains `text` (any
/// case), newest first, with their counts.
pub fn search_accounts(
    conn: &mut DbConnection,
    text: &str,
) -> Result<Vec<AccountSummary>, AppError> {
    let pattern = contains_pattern(text);
    let ids: Vec<i32> = accounts::table
        .left_join(memberships::table.on(memberships::account_id.eq(accounts::id)))
        .left_join(users::table.on(users::id.eq(memberships::user_id)))
        .filter(
            lower(accounts::name.nullable())
                .like(pattern.clone())
                .escape('\\')
                .or(lower(accounts::slug.nullable())
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower(users::email.nullable()).like(pattern).escape('\\')),
        )
        .select(accounts::id)
        .distinct()
        .load(conn)?;
    Ok(list_with_counts(conn)?
        .into_iter()
        .filter(|s| ids.contains(&s.account.id))
        .take(SEARCH_LIMIT)
        .collect())
}

/// An account's tokens by status: active, revoked, expired.
pub fn token_counts(
    conn: &mut DbConnection,
    account: AccountId,
) -> Result<(i64, i64, i64), AppError> {
    let now = super::now();
    let of_account = || tokens::table.filter(tokens::account_id.eq(account.0));
    let active: i64 = of_account()
        .filter(super::standing::token_active_at(now))
        .count()
        .get_result(conn)?;
    let revoked: i64 = of_account()
        .filter(tokens::revoked_at.is_not_null())
        .count()
        .get_result(conn)?;
    let expired: i64 = of_account()
        .filter(tokens::revoked_at.is_null())
        .filter(tokens::expires_at.le(now))
        .count()
        .get_result(conn)?;
    Ok((active, revoked, expired))
}

/// Every operator's email and when they last signed in, by email.
pub fn operators(
    conn: &mut DbConnection,
) -> Result<Vec<(String, Option<chrono::NaiveDateTime>)>, AppError> {
    Ok(users::table
        .filter(users::operator.eq(true))
        .order(users::email.asc())
        .select((users::email, users::last_login_at))
        .load(conn)?)
}
