//! Who belongs to which account, and with what role.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::accounts::Account;
use super::schema::{accounts, memberships, users};
use crate::domain::{AccountId, Role, UserId};
use crate::error::AppError;

pub fn create(
    conn: &mut SqliteConnection,
    user: UserId,
    account: AccountId,
    role: Role,
) -> Result<(), AppError> {
    diesel::insert_into(memberships::table)
        .values((
            memberships::user_id.eq(user.0),
            memberships::account_id.eq(account.0),
            memberships::role.eq(role.as_str()),
            memberships::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user's role in the account, or `None` when they are not a member.
pub fn role_of(
    conn: &mut SqliteConnection,
    user: UserId,
    account: AccountId,
) -> Result<Option<Role>, AppError> {
    let role: Option<String> = memberships::table
        .filter(memberships::user_id.eq(user.0))
        .filter(memberships::account_id.eq(account.0))
        .select(memberships::role)
        .first(conn)
        .optional()?;
    role.map(|r| Role::parse(&r).map_err(AppError::internal))
        .transpose()
}

/// Every account the user belongs to, oldest membership first.
pub fn accounts_of(
    conn: &mut SqliteConnection,
    user: UserId,
) -> Result<Vec<(Account, Role)>, AppError> {
    let rows: Vec<(Account, String)> = memberships::table
        .inner_join(accounts::table)
        .filter(memberships::user_id.eq(user.0))
        .order(memberships::id.asc())
        .select((Account::as_select(), memberships::role))
        .load(conn)?;
    rows.into_iter()
        .map(|(a, r)| Ok((a, Role::parse(&r).map_err(AppError::internal)?)))
        .collect()
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

pub fn list(conn: &mut SqliteConnection, account: AccountId) -> Result<Vec<Member>, AppError> {
    let rows: Vec<(i32, String, String, NaiveDateTime, Option<NaiveDateTime>)> = memberships::table
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
    rows.into_iter()
        .map(|(id, email, role, joined_at, last_login_at)| {
            Ok(Member {
                user_id: UserId(id),
                email,
                role: Role::parse(&role).map_err(AppError::internal)?,
                joined_at,
                last_login_at,
            })
        })
        .collect()
}

pub fn count_owners(conn: &mut SqliteConnection, account: AccountId) -> Result<i64, AppError> {
    Ok(memberships::table
        .filter(memberships::account_id.eq(account.0))
        .filter(memberships::role.eq(Role::Owner.as_str()))
        .count()
        .get_result(conn)?)
}

pub fn set_role(
    conn: &mut SqliteConnection,
    account: AccountId,
    user: UserId,
    role: Role,
) -> Result<(), AppError> {
    let changed = diesel::update(
        memberships::table
            .filter(memberships::account_id.eq(account.0))
            .filter(memberships::user_id.eq(user.0)),
    )
    .set(memberships::role.eq(role.as_str()))
    .execute(conn)?;
    if changed == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

pub fn remove(
    conn: &mut SqliteConnection,
    account: AccountId,
    user: UserId,
) -> Result<(), AppError> {
    let removed = diesel::delete(
        memberships::table
            .filter(memberships::account_id.eq(account.0))
            .filter(memberships::user_id.eq(user.0)),
    )
    .execute(conn)?;
    if removed == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}
