//! Invitations to join an account: a one-time link, valid for 7 days. Only the
//! SHA-256 of the link's token is stored, like API token secrets.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{accounts, invitations};
use crate::domain::{AccountId, Email, Role, SecretDigest, UserId, random_base62};
use crate::error::AppError;

pub const VALID_DAYS: i64 = 7;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: i32,
    pub account_id: i32,
    pub email: String,
    pub role: String,
    pub token_digest: Vec<u8>,
    pub invited_by: Option<i32>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
}

impl Invitation {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Member)
    }
}

fn digest(token: &str) -> Vec<u8> {
    SecretDigest::of(token).as_bytes().to_vec()
}

/// Creates an invitation and returns it with the token for the link.
/// Call inside a write transaction.
pub fn create(
    conn: &mut SqliteConnection,
    account: AccountId,
    email: &Email,
    role: Role,
    invited_by: UserId,
) -> Result<(Invitation, String), AppError> {
    let token = random_base62(43);
    let now = super::now();
    let invitation = diesel::insert_into(invitations::table)
        .values((
            invitations::account_id.eq(account.0),
            invitations::email.eq(email.as_str()),
            invitations::role.eq(role.as_str()),
            invitations::token_digest.eq(digest(&token)),
            invitations::invited_by.eq(invited_by.0),
            invitations::created_at.eq(now),
            invitations::expires_at.eq(now + chrono::Duration::days(VALID_DAYS)),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)?;
    Ok((invitation, token))
}

/// The open invitation for a link's token, with its account's name. Used, expired and
/// unknown links are all simply not found.
pub fn find_open(
    conn: &mut SqliteConnection,
    token: &str,
) -> Result<(Invitation, String), AppError> {
    Ok(invitations::table
        .inner_join(accounts::table)
        .filter(invitations::token_digest.eq(digest(token)))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::expires_at.gt(super::now()))
        .select((Invitation::as_select(), accounts::name))
        .first(conn)?)
}

/// Marks the invitation used. Fails if someone used it first.
/// Call inside a write transaction.
pub fn mark_accepted(conn: &mut SqliteConnection, id: i32) -> Result<(), AppError> {
    let changed = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::accepted_at.is_null()),
    )
    .set(invitations::accepted_at.eq(super::now()))
    .execute(conn)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// The account's invitations that are still open, newest first.
pub fn list_open(
    conn: &mut SqliteConnection,
    account: AccountId,
) -> Result<Vec<Invitation>, AppError> {
    Ok(invitations::table
        .filter(invitations::account_id.eq(account.0))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::expires_at.gt(super::now()))
        .order(invitations::id.desc())
        .select(Invitation::as_select())
        .load(conn)?)
}
