//! Changing what a token may do after it is made: its rate limit.

use diesel::prelude::*;

use crate::db::audit::{Event, action};
use crate::db::schema::tokens;
use crate::db::tx::Tx;
use crate::domain::{RateLimit, TokenId, TokenKey, TokenRefusal};
use crate::error::AppError;
use crate::policy::Action;

use super::*;

/// Sets or clears one of the account's tokens' rate limit, if the actor may manage the
/// token, with its audit event and a cache note, so every server's guard reloads the
/// token and applies the new limit. A revoked token keeps the limit it had, and setting
/// the limit it already has changes and logs nothing.
pub fn set_rate_limit(
    tx: &mut Tx<'_>,
    id: TokenId,
    limit: Option<RateLimit>,
) -> Result<Token, AppError> {
    let token = managed(tx, id)?;
    if token.revoked_at.is_some() {
        return Err(AppError::Token(TokenRefusal::LimitOfRevoked));
    }
    if token.rate_limit_per_minute == limit {
        return Ok(token);
    }
    let loosens = match (token.rate_limit_per_minute, limit) {
        (Some(_), None) => true,
        (Some(now), Some(wanted)) => wanted.per_minute() > now.per_minute(),
        (None, _) => false,
    };
    if loosens {
        tx.require(Action::LoosenRateLimit)?;
    }
    let changed = diesel::update(tokens::table.find(token.id))
        .set(tokens::rate_limit_per_minute.eq(limit))
        .returning(crate::db::columns_of::<Token>())
        .get_result(tx.conn)?;
    let describe = |limit: Option<RateLimit>| match limit {
        Some(limit) => format!("at most {limit}"),
        None => "no limit".to_string(),
    };
    tx.log(Event {
        action: action::TOKEN_RATE_LIMIT_CHANGED,
        target: &token_target(&changed),
        token: Some(changed.token_id()),
        detail: &format!(
            "from {} to {}",
            describe(token.rate_limit_per_minute),
            describe(limit)
        ),
    })?;
    let key = TokenKey::parse(&changed.key).map_err(AppError::internal)?;
    crate::db::invalidations::record_token(tx.conn, &key)?;
    Ok(changed)
}
