//! Who belongs to which account, and with what role.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::accounts::Account;
use super::audit::{Event, action};
use super::schema::{accounts, memberships, users};
use super::tx::Tx;
use crate::domain::{AccountId, Role, UserId};
use crate::error::AppError;
use crate::policy::Action;

pub fn create(
    conn: &mut DbConnection,
    user: UserId,
    account: AccountId,
    role: Role,
) -> Result<(), AppError> {
    diesel::insert_into(memberships::table)
        .values((
            memberships::user_id.eq(user.0),
            memberships::account_id.eq(account.0),
            memberships::role.eq(role),
            memberships::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user's role in the account, or `None` when they are not a member.
pub fn role_of(
    conn: &mut DbConnection,
    user: UserId,
    account: AccountId,
) -> Result<Option<Role>, AppError> {
    Ok(memberships::table
        .filter(memberships::user_id.eq(user.0))
        .filter(memberships::account_id.eq(account.0))
        .select(memberships::role)
        .first(conn)
        .optional()?)
}

/// Every account the user belongs to, oldest membership first.
pub fn accounts_of(
    conn: &mut DbConnection,
    user: UserId,
) -> Result<Vec<(Account, Role)>, AppError> {
    Ok(memberships::table
        .inner_join(accounts::table)
        .filter(memberships::user_id.eq(user.0))
        .order(memberships::id.asc())
        .select((Account::as_select(), memberships::role))
        .load(conn)?)
}

/// One row of the members page.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub joined_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
}

pub fn list(conn: &mut DbConnection, account: AccountId) -> Result<Vec<Member>, AppError> {
    let rows: Vec<(i32, String, Role, NaiveDateTime, Option<NaiveDateTime>)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::account_id.eq(account.0))
        .order(users::email.asc())
        .select((
            users::id,
            users::email,
            memberships::role,
            memberships::created_at,
            users::last_login_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, email, role, joined_at, last_login_at)| Member {
            user_id: UserId(id),
            email,
            role,
            joined_at,
            last_login_at,
        })
        .collect())
}

fn count_owners(conn: &mut DbConnection, account: AccountId) -> Result<i64, AppError> {
    Ok(memberships::table
        .filter(memberships::account_id.eq(account.0))
        .filter(memberships::role.eq(Role::Owner))
        .count()
        .get_result(conn)?)
}

/// The member's role in the account acted in, or 404 if they are not in it.
fn role_in(tx: &mut Tx<'_>, user: UserId) -> Result<Role, AppError> {
    let account = tx.account()?;
    role_of(tx.conn, user, account)?.ok_or(AppError::NotFound)
}

/// Refuses to take away the account's last owner.
fn keep_an_owner(tx: &mut Tx<'_>, losing: Role) -> Result<(), AppError> {
    let account = tx.account()?;
    if losing == Role::Owner && count_owners(tx.conn, account)? <= 1 {
        return Err(AppError::invalid(
            "An account needs at least one owner. Make someone else an owner first.",
        ));
    }
    Ok(())
}

/// What a removal did.
#[derive(Debug, Clone)]
pub struct Removed {
    pub email: String,
    pub tokens_revoked: usize,
    pub invitations_cancelled: usize,
}

/// Removes a member from the account acted in. In the same transaction it revokes every
/// token they created there and cancels every invitation they sent, so nothing they
/// made outlives their membership.
pub fn remove_member(tx: &mut Tx<'_>, target: UserId) -> Result<Removed, AppError> {
    let role = role_in(tx, target)?;
    tx.require(Action::RemoveMember { role })?;
    keep_an_owner(tx, role)?;
    let account = tx.account()?;
    let actor = tx.actor().clone();
    let user = super::users::find(tx.conn, target)?;
    let revoked = super::tokens::revoke_all_of_creator(
        tx.conn,
        account,
        target,
        &actor,
        "member removed from the account",
    )?;
    let cancelled = super::invitations::cancel_all_from(tx.conn, account, target)?;
    diesel::delete(
        memberships::table
            .filter(memberships::account_id.eq(account.0))
            .filter(memberships::user_id.eq(target.0)),
    )
    .execute(tx.conn)?;
    tx.log(Event {
        action: action::MEMBER_REMOVED,
        target: &format!("user {}", user.email),
        token: None,
        detail: &format!(
            "{} token(s) revoked, {cancelled} invitation(s) cancelled",
            revoked.len()
        ),
    })?;
    Ok(Removed {
        email: user.email,
        tokens_revoked: revoked.len(),
        invitations_cancelled: cancelled,
    })
}

/// Gives a member of the account acted in a new role; returns their email. The same
/// role again changes nothing and logs nothing.
pub fn change_role(tx: &mut Tx<'_>, target: UserId, role: Role) -> Result<String, AppError> {
    let current = role_in(tx, target)?;
    tx.require(Action::ChangeRole {
        from: current,
        to: role,
    })?;
    let user = super::users::find(tx.conn, target)?;
    if current == role {
        return Ok(user.email);
    }
    if role != Role::Owner {
        keep_an_owner(tx, current)?;
    }
    let account = tx.account()?;
    diesel::update(
        memberships::table
            .filter(memberships::account_id.eq(account.0))
            .filter(memberships::user_id.eq(target.0)),
    )
    .set(memberships::role.eq(role))
    .execute(tx.conn)?;
    tx.log(Event {
        action: action::MEMBER_ROLE_CHANGED,
        target: &format!("user {}", user.email),
        token: None,
        detail: &format!("{current} → {role}"),
    })?;
    Ok(user.email)
}
