//! The ways back into a sign-in: a password reset, through a one-time link, mailed (or
//! printed by the command line), that sets a new password and ends every session of its
//! user; and an operator's reset of a person's second factors, from the command line.

use std::fmt;

use diesel::prelude::*;

use super::email_links::{self, LinkToken, Purpose};
use super::outbox;
use super::schema::users;
use super::schema::{passkey_ceremonies, passkeys, pending_sign_ins};
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

/// What an operator's reset of a person's second factors took away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub authenticator_app: bool,
    pub passkeys: i64,
    /// Recovery codes not yet used.
    pub recovery_codes: i64,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = Vec::new();
        if self.authenticator_app {
            parts.push("the authenticator app".to_string());
        }
        if self.passkeys > 0 {
            parts.push(plural(self.passkeys, "passkey", "passkeys"));
        }
        if self.authenticator_app {
            parts.push(plural(
                self.recovery_codes,
                "recovery code",
                "recovery codes",
            ));
        }
        match parts.split_last() {
            Some((last, [])) => write!(f, "{last}"),
            Some((last, rest)) => write!(f, "{} and {last}", rest.join(", ")),
            None => write!(f, "nothing"),
        }
    }
}

/// The way back in for a person who lost every second factor, from the command line: their
/// authenticator app, recovery codes and passkeys are deleted, with any ceremony or sign-in
/// waiting on them, and every session of theirs ends (whoever holds one may be why they
/// lost them). Their password then signs them in; an account that requires a second factor
/// sends them to set one up. They are mailed a notice, and their first account's log says
/// who did it. The operator vouches that whoever asked is that person.
pub fn reset_second_factors(
    tx: &mut Tx<'_>,
    email: &Email,
    mail_on: bool,
) -> Result<Removed, AppError> {
    let user = super::users::find_by_email(tx.conn, email)?
        .ok_or_else(|| AppError::invalid(format!("No user has the email {email}.")))?;
    let id = user.user_id();
    let status = super::two_factor::status(tx.conn, id)?;
    let removed = Removed {
        authenticator_app: status.enabled(),
        passkeys: super::two_factor::passkey_count(tx.conn, id)?,
        recovery_codes: status.codes_left,
    };
    if !removed.authenticator_app && removed.passkeys == 0 {
        return Err(AppError::invalid(format!(
            "{email} has no second factor: their password alone signs them in."
        )));
    }
    super::two_factor::forget_authenticator(tx.conn, id)?;
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(id.0))).execute(tx.conn)?;
    diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::user_id.eq(id.0)))
        .execute(tx.conn)?;
    diesel::delete(pending_sign_ins::table.filter(pending_sign_ins::user_id.eq(id.0)))
        .execute(tx.conn)?;
    super::sessions::delete_all_of(tx.conn, id)?;
    log_for_user(
        tx,
        (id, &user.email),
        LoggedAs::Actor,
        AuditAction::SecondFactorsReset,
        &format!("{removed} removed; every session ended"),
    )?;
    super::two_factor::notify(
        tx.conn,
        id,
        mail_on,
        "Your Keyward operator removed your second factors and signed you out everywhere: your password alone signs you in until you set one up again".into(),
    )?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::Removed;

    #[test]
    fn what_a_reset_removed_reads_as_a_list() {
        let removed = |authenticator_app, passkeys, recovery_codes| Removed {
            authenticator_app,
            passkeys,
            recovery_codes,
        };
        assert_eq!(removed(false, 1, 0).to_string(), "1 passkey");
        assert_eq!(
            removed(true, 0, 10).to_string(),
            "the authenticator app and 10 recovery codes"
        );
        assert_eq!(
            removed(true, 2, 1).to_string(),
            "the authenticator app, 2 passkeys and 1 recovery code"
        );
    }
}
