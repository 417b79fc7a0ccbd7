//! Who belongs to which account, and with what role: the `memberships` table's own
//! queries. It imports no other store module and takes no `Tx`, so every module above it
//! (`tx`'s standing, `accounts`, `invitations`, `members`) can call it without a circle.
//! Changes that reach past this table, such as removing a member, live in `members`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::schema::{memberships, passkeys, two_factor, users};
use crate::domain::{AccountId, Role, UserId};
use crate::error::AppError;

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

/// The account the user's oldest membership is in: where a session opens.
pub(super) fn first_account_of(
    conn: &mut DbConnection,
    user: UserId,
) -> Result<Option<AccountId>, AppError> {
    Ok(memberships::table
        .filter(memberships::user_id.eq(user.0))
        .order(memberships::id.asc())
        .select(memberships::account_id)
        .first::<i32>(conn)
        .optional()?
        .map(AccountId))
}

/// One row of the members page.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub joined_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// Whether they sign in with a second factor.
    pub two_factor: bool,
}

pub fn list(conn: &mut DbConnection, account: AccountId) -> Result<Vec<Member>, AppError> {
    type Row = (
        i32,
        String,
        Role,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        bool,
    );
    let rows: Vec<Row> = memberships::table
        .inner_join(users::table)
        .left_join(two_factor::table.on(two_factor::user_id.eq(users::id)))
        .filter(memberships::account_id.eq(account.0))
        .order(users::email.asc())
        .select((
            users::id,
            users::email,
            memberships::role,
            memberships::created_at,
            users::last_login_at,
            two_factor::confirmed_at.nullable(),
            diesel::dsl::exists(passkeys::table.filter(passkeys::user_id.eq(users::id))),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, email, role, joined_at, last_login_at, confirmed, passkey)| Member {
                user_id: UserId(id),
                email,
                role,
                joined_at,
                last_login_at,
                two_factor: confirmed.is_some() || passkey,
            },
        )
        .collect())
}

/// How many owners the account has.
pub(super) fn count_owners(conn: &mut DbConnection, account: AccountId) -> Result<i64, AppError> {
    Ok(memberships::table
        .filter(memberships::account_id.eq(account.0))
        .filter(memberships::role.eq(Role::Owner))
        .count()
        .get_result(conn)?)
}

/// Takes `user` out of `account`. Part of `members::remove_member`, which checked the
/// rules and deals with what the member leaves behind.
pub(super) fn delete(
    conn: &mut DbConnection,
    user: UserId,
    account: AccountId,
) -> Result<(), AppError> {
    diesel::delete(
        memberships::table
            .filter(memberships::account_id.eq(account.0))
            .filter(memberships::user_id.eq(user.0)),
    )
    .execute(conn)?;
    Ok(())
}

/// Gives `user` a new role in `account`. Part of `members::change_role`, which checked
/// the rules.
pub(super) fn set_role(
    conn: &mut DbConnection,
    user: UserId,
    account: AccountId,
    role: Role,
) -> Result<(), AppError> {
    diesel::update(
        memberships::table
            .filter(memberships::account_id.eq(account.0))
            .filter(memberships::user_id.eq(user.0)),
    )
    .set(memberships::role.eq(role))
    .execute(conn)?;
    Ok(())
}
