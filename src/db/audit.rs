//! The append-only audit log. Events are written in the same transaction as the
//! change they record, so the log can't miss a change or claim one that rolled back.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::audit_events;
use crate::domain::{AccountId, TokenId, UserId};
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

/// The actions the log records. Stored as their dotted names.
pub mod action {
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const TOKEN_EXPIRED: &str = "token.expired";
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const API_SUSPENDED: &str = "api.suspended";
    pub const API_RESTORED: &str = "api.restored";
    pub const ACCOUNT_CREATED: &str = "account.created";

    pub const ALL: [&str; 12] = [
        TOKEN_CREATED,
        TOKEN_REVOKED,
        TOKEN_EXPIRED,
        MEMBER_INVITED,
        MEMBER_JOINED,
        MEMBER_REMOVED,
        MEMBER_ROLE_CHANGED,
        LOGIN_SUCCEEDED,
        LOGIN_FAILED,
        API_SUSPENDED,
        API_RESTORED,
        ACCOUNT_CREATED,
    ];
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i32,
    pub account_id: i32,
    pub actor_id: Option<i32>,
    pub actor_label: String,
    pub action: String,
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
    action: &'a str,
    target: &'a str,
    token_id: Option<i32>,
    ip: Option<&'a str>,
    at: NaiveDateTime,
    detail: &'a str,
}

/// What happened, to what. `token` links the event to a token's trail.
pub struct Event<'a> {
    pub action: &'a str,
    pub target: &'a str,
    pub token: Option<TokenId>,
    pub detail: &'a str,
}

pub fn record(
    conn: &mut SqliteConnection,
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
    pub action: Option<String>,
    pub actor: Option<String>,
}

pub const PAGE_SIZE: i64 = 50;

/// A page of the account's log, newest first, and whether another page follows.
pub fn list_for_account(
    conn: &mut SqliteConnection,
    account: AccountId,
    filter: &AuditFilter,
    page: i64,
) -> Result<(Vec<AuditEvent>, bool), AppError> {
    let mut query = audit_events::table
        .filter(audit_events::account_id.eq(account.0))
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
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
    conn: &mut SqliteConnection,
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
    conn: &mut SqliteConnection,
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
