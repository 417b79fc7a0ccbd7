//! What a person may change on a token after it is made: its name and its note, each
//! with its audit event; and the list's bulk revoke, one transaction for many tokens.

use diesel::prelude::*;

use super::audit::Event;
use super::schema::tokens;
use super::tokens::{Token, managed, may_hand_on, revoke_in_tx, token_target};
use super::tx::Tx;
use crate::domain::{
    Credits, ExternalId, KeyFieldsChange, KeyMeta, Reason, Refill, TokenId, TokenKey, TokenName,
    TokenNote, describe_credits,
};
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

/// Changes what one of the account's tokens carries for its verifiers, with one audit
/// event naming each field changed (the meta's content is not logged) and a cache note,
/// so every guard applies it from the next call. Setting the credits starts a new
/// balance (`credits_version`): spending counted against the old one is dropped. A token
/// acting may give no more than it holds ([`may_hand_on`]). A revoked token can't change.
pub fn set_key_fields(
    tx: &mut Tx<'_>,
    id: TokenId,
    change: &KeyFieldsChange,
) -> Result<Token, AppError> {
    let token = managed(tx, id)?;
    // A key can't loosen its own limits: its fence, its credits, its permissions.
    if tx.acting_token() == Some(token.token_id()) {
        return Err(AppError::forbidden(
            "A token can't change what it carries itself: its permissions, credits and allowed IPs are changed by a person or by another token.",
        ));
    }
    if token.revoked_at.is_some() {
        return Err(AppError::invalid(
            "This token is revoked: what it carries can no longer change.",
        ));
    }
    let before = token.key_fields()?;
    let after = change.applied_to(&before);
    if after == before {
        return Ok(token);
    }
    may_hand_on(tx, &after)?;
    let mut changed = Vec::new();
    if after.permissions != before.permissions {
        changed.push(format!("permissions {}", after.permissions));
    }
    if after.meta != before.meta {
        changed.push(
            if after.meta.is_some() {
                "meta set"
            } else {
                "meta cleared"
            }
            .into(),
        );
    }
    if after.external_id != before.external_id {
        changed.push(match &after.external_id {
            Some(id) => format!("external id {}", id.as_str()),
            None => "external id cleared".into(),
        });
    }
    let credits_changed = change.credits.is_some();
    if credits_changed {
        changed.push(match &after.credits {
            Some(credits) => describe_credits(credits),
            None => "no credit limit".into(),
        });
    }
    if after.allowed_ips != before.allowed_ips {
        changed.push(if after.allowed_ips.is_empty() {
            "allowed from anywhere".into()
        } else {
            format!("allowed from {}", after.allowed_ips.as_str())
        });
    }
    let refill = after.credits.and_then(|c| c.refill);
    let now = super::now();
    let updated: Token = diesel::update(tokens::table.find(token.id))
        .set((
            tokens::permissions.eq(&after.permissions),
            tokens::meta.eq(after.meta.as_ref().map(KeyMeta::to_stored)),
            tokens::external_id.eq(after.external_id.as_ref().map(ExternalId::as_str)),
            tokens::allowed_ips.eq(&after.allowed_ips),
        ))
        .returning(super::columns_of::<Token>())
        .get_result(tx.conn)?;
    let updated = if credits_changed {
        diesel::update(tokens::table.find(token.id))
            .set((
                tokens::credits_remaining.eq(after.credits.map(Credits::remaining)),
                tokens::credits_refill_interval.eq(refill.map(|r| r.interval.as_str())),
                tokens::credits_refill_amount.eq(refill.map(Refill::amount)),
                tokens::credits_refilled_at.eq(after.credits.map(|_| now)),
                tokens::credits_version.eq(tokens::credits_version + 1),
            ))
            .returning(super::columns_of::<Token>())
            .get_result(tx.conn)?
    } else {
        updated
    };
    tx.log(Event {
        action: super::audit::action::TOKEN_KEY_FIELDS_CHANGED,
        target: &token_target(&updated),
        token: Some(updated.token_id()),
        detail: &changed.join("; "),
    })?;
    let key = TokenKey::parse(&updated.key).map_err(AppError::internal)?;
    super::invalidations::record_token(tx.conn, &key)?;
    Ok(updated)
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
