//! The append-only audit log. Events are written in the same transaction as the
//! change they record, so the log can't miss a change or claim one that rolled back.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::schema::audit_events;
use crate::domain::{AccountId, AuditAction, TokenId, UserId};
use crate::error::AppError;

/// Who did something, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<UserId>,
    /// An email, "command line" or "system".
    pub label: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            user_id: None,
            label: "command line".into(),
            ip: None,
        }
    }

    pub fn system() -> Self {
        Self {
            user_id: None,
            label: "system".into(),
            ip: None,
        }
    }
}

/// The actions the log records, by their old constant names, for call sites that read
/// better with them.
pub mod action {
    use crate::domain::AuditAction;

    pub const TOKEN_CREATED: AuditAction = AuditAction::TokenCreated;
    pub const TOKEN_REVOKED: AuditAction = AuditAction::TokenRevoked;
    pub const TOKEN_EXPIRED: AuditAction = AuditAction::TokenExpired;
    pub const TOKEN_ROLLED: AuditAction = AuditAction::TokenRolled;
    pub const TOKEN_RATE_LIMIT_CHANGED: AuditAction = AuditAction::TokenRateLimitChanged;
    pub const TOKEN_API_REFUSED: AuditAction = AuditAction::TokenApiRefused;
    pub const TOKEN_RENAMED: AuditAction = AuditAction::TokenRenamed;
    pub const TOKEN_NOTE_CHANGED: AuditAction = AuditAction::TokenNoteChanged;
    pub const TOKEN_KEY_FIELDS_CHANGED: AuditAction = AuditAction::TokenKeyFieldsChanged;
    pub const MEMBER_INVITED: AuditAction = AuditAction::MemberInvited;
    pub const INVITATION_CANCELLED: AuditAction = AuditAction::InvitationCancelled;
    pub const MEMBER_JOINED: AuditAction = AuditAction::MemberJoined;
    pub const MEMBER_REMOVED: AuditAction = AuditAction::MemberRemoved;
    pub const MEMBER_ROLE_CHANGED: AuditAction = AuditAction::MemberRoleChanged;
    pub const LOGIN_SUCCEEDED: AuditAction = AuditAction::LoginSucceeded;
    pub const LOGIN_FAILED: AuditAction = AuditAction::LoginFailed;
    pub const PASSWORD_CHANGED: AuditAction = AuditAction::PasswordChanged;
    pub const SESSION_ENDED: AuditAction = AuditAction::SessionEnded;
    pub const API_SUSPENDED: AuditAction = AuditAction::ApiSuspended;
    pub const API_RESTORED: AuditAction = AuditAction::ApiRestored;
    pub const ACCOUNT_CREATED: AuditAction = AuditAction::AccountCreated;
    pub const TOKEN_LIFETIME_SET: AuditAction = AuditAction::TokenLifetimeSet;
    pub const CLUSTER_CREATED: AuditAction = AuditAction::ClusterCreated;
    pub const CLUSTER_UPDATED: AuditAction = AuditAction::ClusterUpdated;
    pub const CLUSTER_DELETED: AuditAction = AuditAction::ClusterDeleted;
    pub const TWO_FACTOR_ENABLED: AuditAction = AuditAction::TwoFactorEnabled;
    pub const TWO_FACTOR_DISABLED: AuditAction = AuditAction::TwoFactorDisabled;
    pub const RECOVERY_CODES_REGENERATED: AuditAction = AuditAction::RecoveryCodesRegenerated;
    pub const RECOVERY_CODE_USED: AuditAction = AuditAction::RecoveryCodeUsed;
    pub const PASSKEY_ADDED: AuditAction = AuditAction::PasskeyAdded;
    pub const PASSKEY_REMOVED: AuditAction = AuditAction::PasskeyRemoved;
    pub const TWO_FACTOR_POLICY_SET: AuditAction = AuditAction::TwoFactorPolicySet;
    pub const SSO_LINKED: AuditAction = AuditAction::SsoLinked;
    pub const SSO_POLICY_SET: AuditAction = AuditAction::SsoPolicySet;
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub actor_label: String,
    pub action: AuditAction,
    pub target: String,
    pub token_id: Option<i32>,
    pub ip: Option<String>,
    pub at: NaiveDateTime,
    pub detail: String,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditEvent<'a> {
    account_id: i32,
    actor_id: Option<i32>,
    actor_label: &'a str,
    action: AuditAction,
    target: &'a str,
    token_id: Option<i32>,
    ip: Option<&'a str>,
    at: NaiveDateTime,
    detail: &'a str,
}

/// What happened, to what. `token` links the event to a token's trail.
pub struct Event<'a> {
    pub action: AuditAction,
    pub target: &'a str,
    pub token: Option<TokenId>,
    pub detail: &'a str,
}

pub fn record(
    conn: &mut DbConnection,
    account: AccountId,
    actor: &Actor,
    event: Event<'_>,
) -> Result<(), AppError> {
    diesel::insert_into(audit_events::table)
        .values(NewAuditEvent {
            account_id: account.0,
            actor_id: actor.user_id.map(|u| u.0),
            actor_label: &actor.label,
            action: event.action,
            target: event.target,
            token_id: event.token.map(|t| t.0),
            ip: actor.ip.as_deref(),
            at: super::now(),
            detail: event.detail,
        })
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub actor: Option<String>,
}

pub const PAGE_SIZE: i64 = 50;

/// A page of the account's log, newest first, and whether another page follows.
pub fn list_for_account(
    conn: &mut DbConnection,
    account: AccountId,
    filter: &AuditFilter,
    page: i64,
) -> Result<(Vec<AuditEvent>, bool), AppError> {
    let mut query = audit_events::table
        .filter(audit_events::account_id.eq(account.0))
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(*action));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_events::actor_label.eq(actor.clone()));
    }
    let mut rows: Vec<AuditEvent> = query
        .order(audit_events::id.desc())
        .offset((page.max(1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
        .load(conn)?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok((rows, more))
}

/// The distinct actors in an account's log, for the filter's menu.
pub fn actors_for_account(
    conn: &mut DbConnection,
    account: AccountId,
) -> Result<Vec<String>, AppError> {
    Ok(audit_events::table
        .filter(audit_events::account_id.eq(account.0))
        .select(audit_events::actor_label)
        .distinct()
        .order(audit_events::actor_label.asc())
        .load(conn)?)
}

/// One token's trail, oldest first.
pub fn list_for_token(
    conn: &mut DbConnection,
    account: AccountId,
    token: TokenId,
) -> Result<Vec<AuditEvent>, AppError> {
    Ok(audit_events::table
        .filter(audit_events::account_id.eq(account.0))
        .filter(audit_events::token_id.eq(token.0))
        .order(audit_events::id.asc())
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// How the audit log names an API token that acts.
pub fn token_actor_label(key: &str, name: &str) -> String {
    format!("API token {key} ({name})")
}
