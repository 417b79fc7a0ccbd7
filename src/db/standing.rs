//! What the database says about whoever asks for a change, read inside the write's own
//! transaction: the user's email and operator flag, their role, and the acting token.
//!
//! It reads the tables straight from the schema, plus `memberships::role_of`, a plain
//! query on a module that imports no other store module. Every store module imports
//! `tx::Tx`, so if `tx` read the standing through `users`, `tokens` or `accounts`, those
//! modules and `tx` would import each other in a circle; this module keeps `tx` at the
//! bottom of the store, beside `audit`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{accounts, tokens, users};
use crate::domain::{AccountId, ApiState, RateLimit, Role, Scopes, TokenId, TokenKey, UserId};
use crate::error::AppError;

/// A signed-in user as the write path sees them.
pub(super) struct UserFacts {
    pub email: String,
    pub operator: bool,
    pub verified: bool,
}

/// The user's email and operator flag; `None` once the user is gone.
pub(super) fn user(conn: &mut DbConnection, id: UserId) -> Result<Option<UserFacts>, AppError> {
    Ok(users::table
        .find(id.0)
        .select((users::email, users::operator, users::email_verified_at))
        .first::<(String, bool, Option<NaiveDateTime>)>(conn)
        .optional()?
        .map(|(email, operator, verified_at)| UserFacts {
            email,
            operator,
            verified: verified_at.is_some(),
        }))
}

/// The user's role in the account, or `None` when they are not a member.
pub(super) fn role(
    conn: &mut DbConnection,
    user: UserId,
    account: AccountId,
) -> Result<Option<Role>, AppError> {
    super::memberships::role_of(conn, user, account)
}

/// An API token that acts, as far as its standing needs it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = tokens)]
pub(super) struct ActingToken {
    pub key: String,
    pub name: String,
    /// Who made it; `None` for the command line's tokens.
    pub user_id: Option<i32>,
    pub scopes: Scopes,
    pub expires_at: Option<NaiveDateTime>,
    pub rate_limit_per_minute: Option<RateLimit>,
}

impl ActingToken {
    pub fn maker(&self) -> Option<UserId> {
        self.user_id.map(UserId)
    }
}

/// The token `id` with `key` in `account`, if it may still act: not revoked and not
/// expired (the rule of `tokens::Token::status`); with whether its account's API access
/// is suspended, when it may do nothing but revoke itself.
pub(super) fn acting_token(
    conn: &mut DbConnection,
    account: AccountId,
    id: TokenId,
    key: &TokenKey,
) -> Result<Option<(ActingToken, bool)>, AppError> {
    let now = super::now();
    let found: Option<(ActingToken, ApiState)> = tokens::table
        .inner_join(accounts::table)
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq(id.0))
        .filter(tokens::key.eq(key.as_str()))
        .filter(token_active_at(now))
        .select((ActingToken::as_select(), accounts::api_state))
        .first(conn)
        .optional()?;
    Ok(found.map(|(token, state)| (token, state == ApiState::Suspended)))
}

/// A token's `Active` status (`tokens::Token::status_at`) as SQL: not revoked, and not
/// expired at `now`. Here, at the bottom of the store's layers, so any query may use it.
#[diesel::dsl::auto_type(no_type_alias)]
pub fn token_active_at(now: NaiveDateTime) -> _ {
    tokens::revoked_at
        .is_null()
        .and(tokens::expires_at.is_null().or(tokens::expires_at.gt(now)))
}
