//! What a person may change on a token after it is made: its name and its note, each
//! with its audit event; and the list's bulk revoke, one transaction for many tokens.

use diesel::prelude::*;

use super::audit::Event;
use super::schema::tokens;
use super::tokens::{Token, managed, revoke_in_tx, token_target};
use super::tx::Tx;
use crate::domain::{Reason, TokenId, TokenKey, TokenName, TokenNote};
use crate::error::AppError;

/// Renames one of the account's tokens, with its audit event. The guard's cached copy is
/// dropped, so `GET /token` answers the new name. The same name changes and logs nothing.
pub fn rename(tx: &mut Tx<'_>, id: TokenId, name: &TokenName) -> Result<Token, AppError> {
    let token = managed(tx, id)?;
    if token.name == name.as_str() {
        return Ok(token);
    }
    let renamed: Token = diesel::update(tokens::table.find(token.id))
        .set(tokens::name.eq(name.as_str()))
        .returning(super::columns_of::<Token>())
        .get_result(tx.conn)?;
    tx.log(Event {
        action: super::audit::action::TOKEN_RENAMED,
        target: &token_target(&renamed),
        token: Some(renamed.token_id()),
        detail: &format!("renamed from “{}” to “{}”", token.name, renamed.name),
    })?;
    let key = TokenKey::parse(&renamed.key).map_err(AppError::internal)?;
    super::invalidations::record_token(tx.conn, &key)?;
    Ok(renamed)
}

/// Sets one of the account's tokens' note (empty clears it), with its audit event, which
/// holds the new note. A revoked token's note may still change: it records why. The same
/// note changes and logs nothing.
pub fn set_note(tx: &mut Tx<'_>, id: TokenId, note: &TokenNote) -> Result<Token, AppError> {
    let token = managed(tx, id)?;
    if token.note == note.as_str() {
        return Ok(token);
    }
    let changed: Token = diesel::update(tokens::table.find(token.id))
        .set(tokens::note.eq(note.as_str()))
        .returning(super::columns_of::<Token>())
        .get_result(tx.conn)?;
    let detail = if note.as_str().is_empty() {
        "note cleared".to_string()
    } else {
        format!("note: {}", note.as_str())
    };
    tx.log(Event {
        action: super::audit::action::TOKEN_NOTE_CHANGED,
        target: &token_target(&changed),
        token: Some(changed.token_id()),
        detail: &detail,
    })?;
    Ok(changed)
}

/// Revokes these tokens of the account with one reason, each with its own audit event and
/// cache note, all in this one transaction: if the actor may not manage any one of them,
/// or one is not the account's, none is revoked. Tokens already revoked are left as they
/// are. Returns the tokens this revoked.
pub fn revoke_many(
    tx: &mut Tx<'_>,
    ids: &[TokenId],
    reason: &Reason,
) -> Result<Vec<Token>, AppError> {
    let actor = tx.actor().clone();
    let mut revoked = Vec::with_capacity(ids.len());
    for id in ids {
        let token = managed(tx, *id)?;
        if token.revoked_at.is_some() {
            continue;
        }
        revoked.push(revoke_in_tx(tx.conn, token, &actor, reason.as_str())?);
    }
    Ok(revoked)
}
