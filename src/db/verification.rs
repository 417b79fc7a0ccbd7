//! Addresses proven by mail: sign-up while mail is on, the verification link, and changing
//! the address a user signs in with. Every mail is queued in the change's own transaction.

use diesel::prelude::*;

use super::audit::Event;
use super::email_links::{self, Purpose};
use super::outbox;
use super::schema::users;
use super::tx::Tx;
use crate::domain::{AccountName, AuditAction, Email, Mail, UserId};
use crate::error::AppError;

/// A visitor signs up while mail is on. A new address gets an account, unverified, and a
/// link to verify it; an address that already has a sign-in gets a mail saying someone
/// tried. Both answer the same, so sign-up tells nobody which addresses have a sign-in.
pub fn sign_up(
    tx: &mut Tx<'_>,
    name: &AccountName,
    email: &Email,
    password_hash: &str,
) -> Result<(), AppError> {
    if super::users::find_by_email(tx.conn, email)?.is_some() {
        return outbox::enqueue(tx.conn, email, &Mail::SignUpAttempt {});
    }
    let (user, _) = super::accounts::sign_up(tx, name, email, password_hash)?;
    diesel::update(users::table.find(user.id))
        .set(users::email_verified_at.eq(None::<chrono::NaiveDateTime>))
        .execute(tx.conn)?;
    send_verification(tx, user.user_id(), email)
}

/// Queues a new verification link for `user` at `email`; older links stop working.
fn send_verification(tx: &mut Tx<'_>, user: UserId, email: &Email) -> Result<(), AppError> {
    let token = email_links::create(tx.conn, user, Purpose::Verify, email)?;
    outbox::enqueue(
        tx.conn,
        email,
        &Mail::VerifyEmail {
            token: token.expose().to_string(),
        },
    )
}

/// The signed-in user asks for another verification link. A proven address needs none; one
/// taken on trust (mail was off when it came) may be proven now.
pub fn resend(tx: &mut Tx<'_>) -> Result<(), AppError> {
    let user = super::users::find(tx.conn, tx.signed_in_user()?)?;
    if user.address_proven() {
        return Err(AppError::invalid("Your email address is already verified."));
    }
    let email = Email::parse(&user.email).map_err(AppError::internal)?;
    send_verification(tx, user.user_id(), &email)
}

/// Follows a verification link: the address it was sent to is proven, if the user still
/// signs in with it. Returns the address. An unknown, used or expired link is a 404.
pub fn verify(tx: &mut Tx<'_>, token: &str) -> Result<String, AppError> {
    let link = email_links::consume(tx.conn, Purpose::Verify, token)?.ok_or(AppError::NotFound)?;
    let changed = diesel::update(
        users::table
            .find(link.user.0)
            .filter(users::email.eq(&link.email)),
    )
    .set((
        users::email_verified_at.eq(super::now()),
        users::email_assumed.eq(false),
    ))
    .execute(tx.conn)?;
    if changed != 1 {
        return Err(AppError::NotFound);
    }
    log_for_user(
        tx,
        (link.user, &link.email),
        LoggedAs::LinkHolder,
        AuditAction::EmailVerified,
        "",
    )?;
    Ok(link.email)
}

/// The signed-in user asks to sign in with `new_email` instead: a link goes to the new
/// address, and nothing changes until it is followed. Whether the address is taken is
/// only said when the link is followed, by its owner.
pub fn request_change(tx: &mut Tx<'_>, new_email: &Email) -> Result<(), AppError> {
    let user = super::users::find(tx.conn, tx.signed_in_user()?)?;
    if user.email == new_email.as_str() {
        return Err(AppError::invalid("That is already your email address."));
    }
    let token = email_links::create(tx.conn, user.user_id(), Purpose::Change, new_email)?;
    outbox::enqueue(
        tx.conn,
        new_email,
        &Mail::ConfirmNewEmail {
            token: token.expose().to_string(),
        },
    )
}

/// Follows a link sent to a new address: the user signs in with it from now on, it is
/// verified, and the old address is told. Returns the new address.
pub fn confirm_change(tx: &mut Tx<'_>, token: &str) -> Result<String, AppError> {
    let link = email_links::consume(tx.conn, Purpose::Change, token)?.ok_or(AppError::NotFound)?;
    let user = super::users::find(tx.conn, link.user)?;
    let new_email = Email::parse(&link.email).map_err(AppError::internal)?;
    if super::users::find_by_email(tx.conn, &new_email)?.is_some() {
        return Err(AppError::invalid(format!(
            "{new_email} already has a Keyward sign-in, so it can't be yours as well."
        )));
    }
    diesel::update(users::table.find(user.id))
        .set((
            users::email.eq(new_email.as_str()),
            users::email_verified_at.eq(super::now()),
            users::email_assumed.eq(false),
        ))
        .execute(tx.conn)?;
    // Links mailed to the old address stop working.
    email_links::retire(tx.conn, user.user_id(), Purpose::Reset, super::now())?;
    email_links::retire(tx.conn, user.user_id(), Purpose::Verify, super::now())?;
    let old = Email::parse(&user.email).map_err(AppError::internal)?;
    outbox::enqueue(
        tx.conn,
        &old,
        &Mail::EmailChanged {
            new_email: new_email.to_string(),
        },
    )?;
    let detail = format!("from {old}");
    log_for_user(
        tx,
        (user.user_id(), new_email.as_str()),
        LoggedAs::LinkHolder,
        AuditAction::EmailChanged,
        &detail,
    )?;
    Ok(new_email.to_string())
}

/// Who a link's change is logged as: the person who followed it (a visitor until then),
/// or whoever acts (the command line).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LoggedAs {
    LinkHolder,
    Actor,
}

/// Logs a change to a person's sign-in in their first account, as sign-ins are (see
/// `users::record_sign_in`); a user with no account leaves no row.
pub(super) fn log_for_user(
    tx: &mut Tx<'_>,
    (user, email): (UserId, &str),
    logged_as: LoggedAs,
    action: AuditAction,
    detail: &str,
) -> Result<(), AppError> {
    let Some(account) = super::memberships::first_account_of(tx.conn, user)? else {
        return Ok(());
    };
    if logged_as == LoggedAs::LinkHolder {
        tx.act_as(user, email);
    }
    tx.log_to(
        account,
        Event {
            action,
            target: &format!("user {email}"),
            token: None,
            detail,
        },
    )
}

/// Used by the link's page before the form is sent: whether `token` still works.
pub fn link_is_open(
    conn: &mut super::DbConnection,
    purpose: Purpose,
    token: &str,
) -> Result<bool, AppError> {
    Ok(email_links::find_open(conn, purpose, token)?.is_some())
}
