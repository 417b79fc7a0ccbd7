//! Revoking tokens, by every path (the dashboard, the API, the command line, an operator,
//! a leak report, a member's removal, the expiry sweep). A token's descendants go with it,
//! in the same transaction.

use diesel::prelude::*;

use crate::db::DbConnection;

use crate::db::audit::{self, Actor, Event, action};
use crate::db::schema::tokens;
use crate::db::tx::Tx;
use crate::domain::{AccountId, Reason, SecretDigest, TokenId, TokenKey, TokenRefusal, UserId};
use crate::error::AppError;
use crate::policy::Action;

use super::*;

/// What a token revoking itself leaves as its reason.
pub const REVOKED_ITSELF: &str = "Revoked by the token itself (DELETE /token).";

/// The acting token revokes itself (`DELETE /token`): no scope needed, only its own key
/// and secret. The audit event names the token as the actor.
pub fn revoke_itself(tx: &mut Tx<'_>) -> Result<Token, AppError> {
    let id = tx.acting_token().ok_or(AppError::NotFound)?;
    tx.require(Action::RevokeItself { token: id })?;
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(tx.conn)?;
    let actor = tx.actor().clone();
    revoke_in_tx(tx.conn, token, &actor, REVOKED_ITSELF)
}

/// One of the account's tokens, read under the write lock, if the actor may manage it.
pub(in crate::db) fn managed(tx: &mut Tx<'_>, id: TokenId) -> Result<Token, AppError> {
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: token.user_id.map(UserId),
    })?;
    Ok(token)
}

/// Revokes one of the account's tokens, if the actor may manage it, with its audit
/// event and a cache invalidation. Revoking a revoked token changes nothing and logs
/// nothing.
pub fn revoke(tx: &mut Tx<'_>, id: TokenId, reason: &Reason) -> Result<Token, AppError> {
    let token = managed(tx, id)?;
    let actor = tx.actor().clone();
    revoke_in_tx(tx.conn, token, &actor, reason.as_str())
}

/// Revokes `token`, as read under the write lock by the caller, and every token below it
/// in its tree ([`revoke_descendants`]). The row is written, not read back: the caller's
/// read is the only one, and the answer is that row as changed.
pub(in crate::db) fn revoke_in_tx(
    conn: &mut DbConnection,
    token: Token,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    let revoked = revoke_row(conn, token, actor, reason)?;
    revoke_descendants(conn, &revoked, actor, "")?;
    Ok(revoked)
}

/// Revokes every unrevoked token below `maker` in its tree, each with "revoked with its
/// maker kw_…" (and `why`, when given) and its own audit event and cache note, in the
/// caller's transaction. Returns how many it revoked.
fn revoke_descendants(
    conn: &mut DbConnection,
    maker: &Token,
    actor: &Actor,
    why: &str,
) -> Result<usize, AppError> {
    let tree = crate::db::token_tree::descendants(conn, maker.id)?;
    let mut keys = std::collections::HashMap::from([(maker.id, maker.key.clone())]);
    let mut revoked = 0;
    for link in tree {
        let child: Token = tokens::table
            .find(link.id)
            .select(Token::as_select())
            .first(conn)?;
        keys.insert(child.id, child.key.clone());
        if child.revoked_at.is_some() {
            continue;
        }
        let maker_key = keys.get(&link.maker).map_or("", String::as_str);
        let reason = format!("revoked with its maker {maker_key}{why}");
        revoke_row(conn, child, actor, &reason)?;
        revoked += 1;
    }
    Ok(revoked)
}

/// One token's revocation: the row, its audit event and its cache note.
fn revoke_row(
    conn: &mut DbConnection,
    token: Token,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    let revoked = Token {
        revoked_at: Some(crate::db::now()),
        revoked_by: actor.user_id.map(|u| u.0),
        revoke_reason: Some(reason.to_string()).filter(|r| !r.is_empty()),
        ..token
    };
    diesel::update(tokens::table.find(revoked.id))
        .set((
            tokens::revoked_at.eq(revoked.revoked_at),
            tokens::revoked_by.eq(revoked.revoked_by),
            tokens::revoke_reason.eq(&revoked.revoke_reason),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        revoked.account(),
        actor,
        Event {
            action: action::TOKEN_REVOKED,
            target: &token_target(&revoked),
            token: Some(revoked.token_id()),
            detail: reason,
        },
    )?;
    let key = TokenKey::parse(&revoked.key).map_err(AppError::internal)?;
    crate::db::invalidations::record_token(conn, &key)?;
    Ok(revoked)
}

/// Revokes every active token a member created in the account, when they are removed.
/// Part of `members::remove_member`, which holds the write lock and checked the rules.
pub(in crate::db) fn revoke_all_of_creator(
    conn: &mut DbConnection,
    account: AccountId,
    creator: UserId,
    actor: &Actor,
    reason: &str,
) -> Result<Vec<Token>, AppError> {
    let active: Vec<i32> = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::user_id.eq(creator.0))
        .filter(tokens::revoked_at.is_null())
        .select(tokens::id)
        .order(tokens::id)
        .load(conn)?;
    let mut revoked = Vec::new();
    for id in active {
        // Read each one now: revoking an earlier one may have taken it with its tree.
        let token: Token = tokens::table
            .find(id)
            .select(Token::as_select())
            .first(conn)?;
        if token.revoked_at.is_none() {
            revoked.push(revoke_in_tx(conn, token, actor, reason)?);
        }
    }
    Ok(revoked)
}

/// Operators and the command line: revoke by key in whatever account holds it.
pub fn revoke_by_key(tx: &mut Tx<'_>, key: &TokenKey, reason: &Reason) -> Result<Token, AppError> {
    tx.require(Action::OperatorConsole)?;
    let token: Token = tokens::table
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(tx.conn)
        .optional()?
        .ok_or_else(|| {
            AppError::Token(TokenRefusal::NoSuchKey {
                key: key.to_string(),
            })
        })?;
    let actor = tx.actor().clone();
    let was_active = token.revoked_at.is_none();
    let revoked = revoke_in_tx(tx.conn, token, &actor, reason.as_str())?;
    if was_active {
        crate::db::notices::token_revoked(tx.conn, revoked.id, "an operator", reason.as_str())?;
    }
    Ok(revoked)
}

/// Logs `token.expired` once for every unrevoked token past its expiry, and returns how
/// many it logged. The read that finds none takes no write lock.
pub fn log_expired(conn: &mut DbConnection) -> Result<usize, AppError> {
    let unlogged = |conn: &mut DbConnection| {
        tokens::table
            .filter(tokens::expiry_logged.eq(false))
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.le(crate::db::now()))
            .select(Token::as_select())
            .limit(1000)
            .load::<Token>(conn)
    };
    if unlogged(conn)?.is_empty() {
        return Ok(0);
    }
    crate::db::tx::as_system(conn, |tx| {
        // Read again under the write lock: another process may have logged them meanwhile.
        let expired = unlogged(tx.conn)?;
        for token in &expired {
            diesel::update(tokens::table.find(token.id))
                .set(tokens::expiry_logged.eq(true))
                .execute(tx.conn)?;
            let detail = token
                .expires_at
                .map(|e| format!("expired at {e} UTC"))
                .unwrap_or_default();
            tx.log_to(
                token.account(),
                Event {
                    action: action::TOKEN_EXPIRED,
                    target: &token_target(token),
                    token: Some(token.token_id()),
                    detail: &detail,
                },
            )?;
            // A token never outlives its maker: what it made goes when it expires.
            let actor = tx.actor().clone();
            revoke_descendants(tx.conn, token, &actor, ", which expired")?;
        }
        Ok(expired.len())
    })
}

/// Revokes one of the account's tokens by its key, if the actor may manage it. Another
/// account's key is `NotFound`; revoking a revoked token changes and logs nothing.
pub fn revoke_by_key_in_account(
    tx: &mut Tx<'_>,
    key: &TokenKey,
    reason: &Reason,
) -> Result<Token, AppError> {
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: token.user_id.map(UserId),
    })?;
    let actor = tx.actor().clone();
    revoke_in_tx(tx.conn, token, &actor, reason.as_str())
}

/// Revokes the token each leaked secret belongs to, in whatever account holds it, with
/// that secret's reason. Secrets of no token, and tokens already revoked, change nothing.
/// Returns how many tokens this revoked.
pub fn revoke_leaked(tx: &mut Tx<'_>, leaks: &[(SecretDigest, Reason)]) -> Result<usize, AppError> {
    tx.require(Action::RevokeLeakedSecret)?;
    let actor = tx.actor().clone();
    let mut revoked = 0;
    for (digest, reason) in leaks {
        let token: Option<Token> = tokens::table
            .filter(tokens::secret_digest.eq(digest.as_bytes()))
            .select(Token::as_select())
            .first(tx.conn)
            .optional()?;
        if let Some(token) = token.filter(|t| t.revoked_at.is_none()) {
            let id = token.id;
            revoke_in_tx(tx.conn, token, &actor, reason.as_str())?;
            crate::db::notices::token_revoked(
                tx.conn,
                id,
                "a leaked-secret report",
                reason.as_str(),
            )?;
            revoked += 1;
        }
    }
    Ok(revoked)
}
