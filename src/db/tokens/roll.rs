//! Rolling a token: a successor with the same name, scopes and fields, and the old token
//! kept alive for a grace period.

use diesel::prelude::*;

use crate::db::audit::{Event, action};
use crate::db::schema::tokens;
use crate::db::tx::Tx;
use crate::domain::{TokenId, TokenKey, TokenName, TokenRefusal, TokenSecret, UserId};
use crate::error::AppError;
use crate::policy::Action;

use super::*;

/// What a roll made: the successor, with its secret (shown once), and the old token
/// with its new, nearer expiry.
pub struct Rolled {
    pub old: Token,
    pub new: Token,
    pub secret: TokenSecret,
}

/// Rolls one of the account's tokens, if the actor may manage it (the rule for
/// revocation): a successor with a new key and secret, the same name, creator and scopes,
/// and the old token's lifetime again, capped by the account's policy. The old token's
/// secret keeps working for `grace` (never past its own expiry), then answers 401 like
/// any expired token. Both get a `token.rolled` event.
///
/// The check that the token has no successor yet and the insert hold the write lock
/// together, and the unique index on `rolled_to` backs it: rolling twice at once makes
/// one successor, and the second attempt is told so.
pub fn roll(tx: &mut Tx<'_>, id: TokenId, grace: chrono::Duration) -> Result<Rolled, AppError> {
    let account = tx.account()?;
    let old = super::revoke::managed(tx, id)?;
    let now = crate::db::now();
    match old.status_at(now) {
        Status::Revoked => return Err(AppError::Token(TokenRefusal::RollRevoked)),
        Status::Expired => return Err(AppError::Token(TokenRefusal::RollExpired)),
        Status::Active => {}
    }
    if let Some(successor) = old.rolled_to {
        let key: String = tokens::table
            .find(successor)
            .select(tokens::key)
            .first(tx.conn)?;
        return Err(AppError::Token(TokenRefusal::AlreadyRolled {
            successor: key,
        }));
    }

    // The successor lives as long as the old token was made to, within the policy.
    let limit = crate::db::accounts::find(tx.conn, account)?.max_token_lifetime_days;
    let lifetime = old.expires_at.map(|e| e - old.created_at);
    let expires_at = match (lifetime, limit) {
        (Some(life), Some(limit)) => Some(now + life.min(limit.duration())),
        (Some(life), None) => Some(now + life),
        (None, Some(limit)) => Some(now + limit.duration()),
        (None, None) => None,
    };
    let request = TokenRequest {
        name: TokenName::parse(&old.name).map_err(AppError::internal)?,
        scopes: old.scopes,
        expires_at,
        rate_limit: old.rate_limit_per_minute,
        // The successor carries what the old one does, its balance as last written
        // included.
        fields: old.key_fields()?,
    };
    let (new, secret) = insert_row(
        tx.conn,
        account,
        old.user_id.map(UserId),
        request,
        Successor {
            form_nonce: None,
            rolled_from: Some(old.id),
            // Rolled through the API, the successor is the calling token's: revoking that
            // token must take it too. Rolled by a person, it stays in the old one's tree.
            maker: tx.acting_token().or(old.maker_token_id.map(TokenId)),
        },
    )?;

    let ends = old.expires_at.map_or(now + grace, |e| e.min(now + grace));
    let old: Token = diesel::update(tokens::table.find(old.id))
        .set((
            tokens::expires_at.eq(Some(ends)),
            tokens::rolled_to.eq(Some(new.id)),
        ))
        .returning(crate::db::columns_of::<Token>())
        .get_result(tx.conn)?;
    // The old token's cached copy carries its old expiry: drop it, so the next request
    // reads the new one.
    let old_key = TokenKey::parse(&old.key).map_err(AppError::internal)?;
    crate::db::invalidations::record_token(tx.conn, &old_key)?;

    let until = if ends <= now {
        "the old secret stopped working at once".to_string()
    } else {
        format!(
            "the old secret works until {} UTC",
            ends.format("%Y-%m-%d %H:%M:%S")
        )
    };
    tx.log(Event {
        action: action::TOKEN_ROLLED,
        target: &token_target(&old),
        token: Some(old.token_id()),
        detail: &format!("rolled to {}; {until}", new.key),
    })?;
    tx.log(Event {
        action: action::TOKEN_ROLLED,
        target: &token_target(&new),
        token: Some(new.token_id()),
        detail: &format!("rolled from {}", old.key),
    })?;
    Ok(Rolled { old, new, secret })
}

/// [`roll`] for a calling API token, by key. Besides the rules of a roll, a token may not
/// roll itself (a leaked token must not mint a successor that outlives its revocation),
/// nor a token holding `tokens` (which only a person grants), nor one whose successor it
/// couldn't have made itself (`policy::may_mint`): all read inside this write.
pub fn roll_by_token(
    tx: &mut Tx<'_>,
    key: &TokenKey,
    grace: chrono::Duration,
) -> Result<Rolled, AppError> {
    let caller = tx
        .calling_token()
        .ok_or_else(|| AppError::internal("roll_by_token needs a calling token"))?;
    let target: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: target.user_id.map(UserId),
    })?;
    if target.token_id() == caller.id {
        return Err(AppError::Token(TokenRefusal::RollItself));
    }
    if target.scopes.contains(crate::domain::Scope::Tokens) {
        return Err(AppError::Token(TokenRefusal::RollTokensScope));
    }
    let rolled = roll(tx, target.token_id(), grace)?;
    // The error rolls the whole write back: no successor, no audit rows.
    crate::policy::may_mint(&caller, rolled.new.scopes, rolled.new.expires_at)
        .and_then(|()| crate::policy::may_limit(&caller, rolled.new.rate_limit_per_minute))
        .map_err(|why| {
            AppError::Token(TokenRefusal::SuccessorTooBroad {
                key: rolled.old.key.clone(),
                why,
            })
        })?;
    Ok(rolled)
}
