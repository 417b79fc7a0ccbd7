//! Password reset: a one-time link, mailed (or printed by the command line), that sets a
//! new password and ends every session of its user.

use diesel::prelude::*;

use super::email_links::{self, LinkToken, Purpose};
use super::outbox;
use super::schema::users;
use super::tx::Tx;
use super::verification::{LoggedAs, log_for_user};
use crate::domain::{AuditAction, Email, Mail};
use crate::error::AppError;

/// Someone asks to reset the password of `email`. If it has a sign-in, a link is queued
/// to it; if not, nothing happens, and the caller answers the same either way.
pub fn request(tx: &mut Tx<'_>, email: &Email) -> Result<(), AppError> {
    if let Some(user) = super::users::find_by_email(tx.conn, email)? {
        let token = email_links::create(tx.conn, user.user_id(), Purpose::Reset, email)?;
        outbox::enqueue(
            tx.conn,
            email,
            &Mail::PasswordReset {
                token: token.expose().to_string(),
            },
        )?;
    }
    Ok(())
}

/// The command line's reset: the link itself, for the operator to pass on. An email with
/// no sign-in is an error here: the operator may know.
pub fn link_for(tx: &mut Tx<'_>, email: &Email) -> Result<LinkToken, AppError> {
    let user = super::users::find_by_email(tx.conn, email)?
        .ok_or_else(|| AppError::invalid(format!("No user has the email {email}.")))?;
    let token = email_links::create(tx.conn, user.user_id(), Purpose::Reset, email)?;
    log_for_user(
        tx,
        (user.user_id(), &user.email),
        LoggedAs::Actor,
        AuditAction::ResetLinkIssued,
        "a one-time reset link, valid 30 minutes",
    )?;
    Ok(token)
}

/// Follows a reset link with a new password's hash: sets it, ends every session of the
/// user (whoever held one was maybe the reason for the reset), marks the address proven
/// (the link reached it) and mails a notice. Returns the user's email. A link unknown,
/// used, expired, or sent to an address the user no longer has, is a 404.
pub fn reset(tx: &mut Tx<'_>, token: &str, new_hash: &str) -> Result<String, AppError> {
    let link = email_links::consume(tx.conn, Purpose::Reset, token)?.ok_or(AppError::NotFound)?;
    let user = super::users::find(tx.conn, link.user)?;
    if user.email != link.email {
        return Err(AppError::NotFound);
    }
    let now = super::now();
    diesel::update(users::table.find(user.id))
        .set((
            users::password_hash.eq(new_hash),
            users::email_verified_at.eq(user.email_verified_at.unwrap_or(now)),
            // The link was mailed to the address, or an operator handed it over and vouches
            // for whom (`keyward user reset-password`): either way the address is proven.
            users::email_assumed.eq(false),
        ))
        .execute(tx.conn)?;
    super::sessions::delete_all_of(tx.conn, user.user_id())?;
    let email = Email::parse(&user.email).map_err(AppError::internal)?;
    outbox::enqueue(tx.conn, &email, &Mail::PasswordChanged {})?;
    log_for_user(
        tx,
        (user.user_id(), &user.email),
        LoggedAs::LinkHolder,
        AuditAction::PasswordReset,
        "with a mailed link; every session ended",
    )?;
    Ok(user.email)
}
