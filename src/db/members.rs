//! What an account's admins do to its members: remove one, or change their role. These
//! are the changes that reach past the `memberships` table, so they live above it and
//! above the tables they touch: removing a member also revokes the tokens they made
//! (`tokens`) and cancels the invitations they sent (`invitations`). Those modules and
//! `memberships` never call back up here.

use super::audit::{Event, action};
use super::memberships::{count_owners, role_of};
use super::tx::Tx;
use crate::domain::{Role, UserId};
use crate::error::AppError;
use crate::policy::Action;

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
    super::memberships::delete(tx.conn, target, account)?;
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
    super::memberships::set_role(tx.conn, target, account, role)?;
    tx.log(Event {
        action: action::MEMBER_ROLE_CHANGED,
        target: &format!("user {}", user.email),
        token: None,
        detail: &format!("{current} → {role}"),
    })?;
    Ok(user.email)
}
