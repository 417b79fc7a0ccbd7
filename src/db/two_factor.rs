//! A person's second factor: their authenticator's sealed TOTP secret, their recovery codes
//! (HMACs only), and the sign-ins that wait for a code. The secret is sealed and opened with
//! the server's key (`auth::secret_key`), handed in: this module never sees it in the clear
//! except to check a code.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::audit::{Event, action};
use super::outbox;
use super::schema::{accounts, memberships, pending_sign_ins, recovery_codes, two_factor, users};
use super::tx::Tx;
use super::users::User;
use crate::auth::secret_key::SecretKey;
use crate::domain::{
    AccountId, AuditAction, Email, Mail, RecoveryCode, SecondFactor, TotpSecret, UserId,
};
use crate::error::AppError;

/// How long a right password waits for its second step.
pub const PENDING_MINUTES: i64 = 5;
/// Wrong codes a waiting sign-in survives; the next one ends it.
pub const PENDING_TRIES: i32 = 5;
/// How long an unconfirmed secret stays on the enrolment page before a fresh one replaces it.
const UNCONFIRMED_MINUTES: i64 = 30;

/// The associated data a user's sealed secret is bound to.
fn owner(user: UserId) -> Vec<u8> {
    format!("user {}", user.0).into_bytes()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = two_factor)]
struct Row {
    totp_sealed: Vec<u8>,
    created_at: NaiveDateTime,
    confirmed_at: Option<NaiveDateTime>,
    last_used_step: Option<i64>,
}

fn row(conn: &mut DbConnection, user: UserId) -> Result<Option<Row>, AppError> {
    Ok(two_factor::table
        .find(user.0)
        .select(Row::as_select())
        .first(conn)
        .optional()?)
}

/// What the security page says about a person's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub since: Option<NaiveDateTime>,
    /// Recovery codes not yet used.
    pub codes_left: i64,
}

impl Status {
    pub fn enabled(&self) -> bool {
        self.since.is_some()
    }
}

pub fn status(conn: &mut DbConnection, user: UserId) -> Result<Status, AppError> {
    let since = row(conn, user)?.and_then(|r| r.confirmed_at);
    let codes_left = if since.is_some() {
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user.0))
            .filter(recovery_codes::used_at.is_null())
            .count()
            .get_result(conn)?
    } else {
        0
    };
    Ok(Status { since, codes_left })
}

/// Whether `user` has a confirmed authenticator app (TOTP).
pub fn is_enabled(conn: &mut DbConnection, user: UserId) -> Result<bool, AppError> {
    Ok(row(conn, user)?.is_some_and(|r| r.confirmed_at.is_some()))
}

/// How many passkeys `user` holds. Here rather than in `passkeys`, which builds on this
/// module: the second step and the policy ask it without the passkey machinery.
pub fn passkey_count(conn: &mut DbConnection, user: UserId) -> Result<i64, AppError> {
    use super::schema::passkeys;
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user.0))
        .count()
        .get_result(conn)?)
}

/// Whether `user` has any second factor: an authenticator app or a passkey. This is what
/// the sign-in's second step, an account's requirement and the operator console ask.
pub fn has_second_factor(conn: &mut DbConnection, user: UserId) -> Result<bool, AppError> {
    Ok(is_enabled(conn, user)? || passkey_count(conn, user)? > 0)
}

/// The name of an account `user` belongs to that requires a second factor, if any.
pub(super) fn requiring_account(
    conn: &mut DbConnection,
    user: UserId,
) -> Result<Option<String>, AppError> {
    Ok(memberships::table
        .inner_join(accounts::table)
        .filter(memberships::user_id.eq(user.0))
        .filter(accounts::require_two_factor.eq(true))
        .select(accounts::name)
        .first(conn)
        .optional()?)
}

/// The secret the signed-in person is enrolling: the unconfirmed one they were shown, if
/// still fresh, else a new one (which replaces it). `None` once they have a confirmed one.
/// One row per person, so opening the page again costs nothing more.
pub fn enrolment_secret(
    tx: &mut Tx<'_>,
    key: &SecretKey,
) -> Result<Option<(TotpSecret, Vec<u8>)>, AppError> {
    let user = tx.signed_in_user()?;
    let now = super::now();
    match row(tx.conn, user)? {
        Some(r) if r.confirmed_at.is_some() => return Ok(None),
        Some(r) if now - r.created_at < chrono::Duration::minutes(UNCONFIRMED_MINUTES) => {
            let secret = TotpSecret::from_bytes(key.open(&r.totp_sealed, &owner(user))?)
                .map_err(AppError::internal)?;
            return Ok(Some((secret, r.totp_sealed)));
        }
        _ => {}
    }
    let secret = TotpSecret::generate();
    let sealed = key.seal(secret.expose(), &owner(user))?;
    diesel::delete(two_factor::table.find(user.0)).execute(tx.conn)?;
    diesel::insert_into(two_factor::table)
        .values((
            two_factor::user_id.eq(user.0),
            two_factor::totp_sealed.eq(&sealed),
            two_factor::created_at.eq(now),
        ))
        .execute(tx.conn)?;
    Ok(Some((secret, sealed)))
}

/// What a confirmation came to.
pub enum Confirmed {
    /// The recovery codes to show, once.
    Enabled(Vec<RecoveryCode>),
    /// A wrong code; nothing changed.
    WrongCode,
    /// The secret shown is no longer the one waiting (it was replaced in another window,
    /// or confirmed there already).
    Stale,
}

/// Confirms enrolment of the secret sealed as `shown` with a `code` from it: the secret
/// becomes the person's second factor (its step counted as used) and ten recovery codes
/// are made.
pub fn confirm(
    tx: &mut Tx<'_>,
    key: &SecretKey,
    shown: &[u8],
    code: &str,
    unix_now: i64,
    mail_on: bool,
) -> Result<Confirmed, AppError> {
    let user = tx.signed_in_user()?;
    let Some(r) = row(tx.conn, user)? else {
        return Ok(Confirmed::Stale);
    };
    if r.confirmed_at.is_some() || r.totp_sealed != shown {
        return Ok(Confirmed::Stale);
    }
    let secret = TotpSecret::from_bytes(key.open(&r.totp_sealed, &owner(user))?)
        .map_err(AppError::internal)?;
    let step = match SecondFactor::parse(code) {
        Some(SecondFactor::Totp(code)) => secret.matching_step(&code, unix_now),
        _ => None,
    };
    let Some(step) = step else {
        return Ok(Confirmed::WrongCode);
    };
    diesel::update(two_factor::table.find(user.0))
        .set((
            two_factor::confirmed_at.eq(super::now()),
            two_factor::last_used_step.eq(step),
        ))
        .execute(tx.conn)?;
    let codes = replace_codes(tx.conn, key, user)?;
    log(tx, action::TWO_FACTOR_ENABLED, "an authenticator app")?;
    notify(
        tx.conn,
        user,
        mail_on,
        "Two-factor sign-in was turned on, with an authenticator app".into(),
    )?;
    Ok(Confirmed::Enabled(codes))
}

/// Ten new recovery codes for `user`, voiding any before.
fn replace_codes(
    conn: &mut DbConnection,
    key: &SecretKey,
    user: UserId,
) -> Result<Vec<RecoveryCode>, AppError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user.0)))
        .execute(conn)?;
    let now = super::now();
    let codes: Vec<RecoveryCode> = (0..crate::domain::RECOVERY_CODES)
        .map(|_| RecoveryCode::generate())
        .collect();
    for code in &codes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user.0),
                recovery_codes::code_digest.eq(key.code_digest(code.expose())),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(codes)
}

/// New recovery codes for the signed-in person, who must have a second factor.
pub fn regenerate_codes(
    tx: &mut Tx<'_>,
    key: &SecretKey,
    mail_on: bool,
) -> Result<Vec<RecoveryCode>, AppError> {
    let user = tx.signed_in_user()?;
    if !is_enabled(tx.conn, user)? {
        return Err(AppError::invalid(
            "You have no second factor, so no recovery codes to replace.",
        ));
    }
    let codes = replace_codes(tx.conn, key, user)?;
    log(
        tx,
        action::RECOVERY_CODES_REGENERATED,
        "the old ones no longer work",
    )?;
    notify(
        tx.conn,
        user,
        mail_on,
        "New recovery codes were made, and the old ones no longer work".into(),
    )?;
    Ok(codes)
}

/// Turns the signed-in person's second factor off: the secret and the codes are deleted.
pub fn disable(tx: &mut Tx<'_>, mail_on: bool) -> Result<(), AppError> {
    let user = tx.signed_in_user()?;
    if !is_enabled(tx.conn, user)? {
        return Err(AppError::invalid("Two-factor sign-in is already off."));
    }
    // Like GitHub's organisations: an account that requires it keeps it on, unless a
    // passkey stays.
    let requiring = if passkey_count(tx.conn, user)? > 0 {
        None
    } else {
        requiring_account(tx.conn, user)?
    };
    if let Some(account) = requiring {
        return Err(AppError::invalid(format!(
            "{account} requires two-factor sign-in of its members, so it stays on. You can make new recovery codes instead."
        )));
    }
    forget_authenticator(tx.conn, user)?;
    log(
        tx,
        action::TWO_FACTOR_DISABLED,
        "the authenticator and recovery codes",
    )?;
    notify(
        tx.conn,
        user,
        mail_on,
        "Two-factor sign-in was turned off: your password alone signs you in now".into(),
    )?;
    Ok(())
}

/// Deletes `user`'s authenticator app (its sealed secret) and their recovery codes: turning
/// it off, and an operator's reset.
pub(super) fn forget_authenticator(conn: &mut DbConnection, user: UserId) -> Result<(), AppError> {
    diesel::delete(two_factor::table.find(user.0)).execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user.0)))
        .execute(conn)?;
    Ok(())
}

/// Mails `user` a sentence about their second factor, when mail is on: a change they
/// didn't make is how they learn someone else holds their sign-in.
pub(super) fn notify(
    conn: &mut DbConnection,
    user: UserId,
    mail_on: bool,
    change: String,
) -> Result<(), AppError> {
    if !mail_on {
        return Ok(());
    }
    let email = super::users::find(conn, user)?.email;
    let email = Email::parse(&email).map_err(AppError::internal)?;
    outbox::enqueue(conn, &email, &Mail::TwoFactorChanged { change })
}

pub(super) fn log(tx: &mut Tx<'_>, action: AuditAction, detail: &str) -> Result<(), AppError> {
    let target = format!("user {}", tx.actor().label);
    tx.log_personal(Event {
        action,
        target: &target,
        token: None,
        detail,
    })
}

/// Checks `factor` as `user`'s second factor at `unix_now`, and spends it: a TOTP step is
/// recorded so its code is never taken again (RFC 6238, 5.2), a recovery code is marked
/// used. Both are conditional updates, so two requests racing with one code can't both win.
/// Returns whether it was right, and whether a recovery code was spent.
pub fn spend(
    conn: &mut DbConnection,
    key: &SecretKey,
    user: UserId,
    factor: &SecondFactor,
    unix_now: i64,
) -> Result<Option<Spent>, AppError> {
    let Some(r) = row(conn, user)?.filter(|r| r.confirmed_at.is_some()) else {
        return Ok(None);
    };
    match factor {
        SecondFactor::Totp(code) => {
            let secret = TotpSecret::from_bytes(key.open(&r.totp_sealed, &owner(user))?)
                .map_err(AppError::internal)?;
            let Some(step) = secret.matching_step(code, unix_now) else {
                return Ok(None);
            };
            if r.last_used_step.is_some_and(|last| step <= last) {
                return Ok(None);
            }
            let taken = diesel::update(
                two_factor::table.find(user.0).filter(
                    two_factor::last_used_step
                        .is_null()
                        .or(two_factor::last_used_step.lt(step)),
                ),
            )
            .set(two_factor::last_used_step.eq(step))
            .execute(conn)?;
            Ok((taken == 1).then_some(Spent::Totp))
        }
        SecondFactor::Recovery(code) => {
            let taken = diesel::update(
                recovery_codes::table
                    .filter(recovery_codes::user_id.eq(user.0))
                    .filter(recovery_codes::code_digest.eq(key.code_digest(code.expose())))
                    .filter(recovery_codes::used_at.is_null()),
            )
            .set(recovery_codes::used_at.eq(super::now()))
            .execute(conn)?;
            Ok((taken == 1).then_some(Spent::RecoveryCode))
        }
    }
}

/// Which kind of factor a right code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    Totp,
    RecoveryCode,
    Passkey,
}

// ---------------------------------------------------------------------------------------------
// Sign-ins waiting for their second step
// ---------------------------------------------------------------------------------------------

/// A right password for `user`, waiting for its code under the cookie whose SHA-256 is
/// `key_digest`. Expired ones are cleared first, so the table holds only live ones; each
/// took a right password and a sign-in attempt to make.
pub fn start_pending(
    conn: &mut DbConnection,
    user: UserId,
    key_digest: &[u8],
) -> Result<(), AppError> {
    let now = super::now();
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::delete(pending_sign_ins::table.filter(pending_sign_ins::expires_at.le(now)))
            .execute(conn)?;
        diesel::insert_into(pending_sign_ins::table)
            .values((
                pending_sign_ins::key_digest.eq(key_digest),
                pending_sign_ins::user_id.eq(user.0),
                pending_sign_ins::created_at.eq(now),
                pending_sign_ins::expires_at.eq(now + chrono::Duration::minutes(PENDING_MINUTES)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// The user a live waiting sign-in belongs to, if the cookie names one.
pub fn pending_user(conn: &mut DbConnection, key_digest: &[u8]) -> Result<Option<User>, AppError> {
    Ok(pending_sign_ins::table
        .inner_join(users::table)
        .filter(pending_sign_ins::key_digest.eq(key_digest))
        .filter(pending_sign_ins::expires_at.gt(super::now()))
        .filter(pending_sign_ins::failures.lt(PENDING_TRIES))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// What a code at the second step came to.
pub enum Step {
    /// Signed in, in this account (if any).
    SignedIn {
        user: User,
        account: Option<AccountId>,
    },
    /// Wrong; this many tries are left.
    Wrong { left: i32 },
    /// No live waiting sign-in (expired, used, or out of tries): start from the password.
    Gone,
}

/// A code typed at the second step, checked and spent as `user`'s.
pub fn code_check(
    key: std::sync::Arc<SecretKey>,
    code: String,
    unix_now: i64,
) -> impl FnOnce(&mut DbConnection, UserId) -> Result<Option<Spent>, AppError> {
    move |conn, user| match SecondFactor::parse(&code) {
        Some(factor) => spend(conn, &key, user, &factor, unix_now),
        None => Ok(None),
    }
}

/// The second step, in one write: the waiting sign-in is read, the factor checked and
/// spent by `check` (a code, or a passkey's answer), and then either the sign-in is
/// recorded and the waiting row deleted (so a second tab with the same right code finds
/// nothing), or the failure is counted and, at the fifth, the row deleted.
pub fn second_step(
    tx: &mut Tx<'_>,
    key_digest: &[u8],
    mail_on: bool,
    check: impl FnOnce(&mut DbConnection, UserId) -> Result<Option<Spent>, AppError>,
) -> Result<Step, AppError> {
    let now = super::now();
    let pending: Option<(i32, i32, i32)> = pending_sign_ins::table
        .filter(pending_sign_ins::key_digest.eq(key_digest))
        .filter(pending_sign_ins::expires_at.gt(now))
        .filter(pending_sign_ins::failures.lt(PENDING_TRIES))
        .select((
            pending_sign_ins::id,
            pending_sign_ins::user_id,
            pending_sign_ins::failures,
        ))
        .first(tx.conn)
        .optional()?;
    let Some((id, user_id, failures)) = pending else {
        return Ok(Step::Gone);
    };
    let user = super::users::find(tx.conn, UserId(user_id))?;
    let Some(spent) = check(tx.conn, user.user_id())? else {
        let failures = failures + 1;
        if failures >= PENDING_TRIES {
            diesel::delete(pending_sign_ins::table.find(id)).execute(tx.conn)?;
        } else {
            diesel::update(pending_sign_ins::table.find(id))
                .set(pending_sign_ins::failures.eq(failures))
                .execute(tx.conn)?;
        }
        super::users::record_sign_in(tx, &user, false)?;
        return Ok(Step::Wrong {
            left: PENDING_TRIES - failures,
        });
    };
    diesel::delete(pending_sign_ins::table.find(id)).execute(tx.conn)?;
    let account = super::users::record_sign_in(tx, &user, true)?;
    if spent == Spent::RecoveryCode {
        let left: i64 = recovery_codes::table
            .filter(recovery_codes::user_id.eq(user.id))
            .filter(recovery_codes::used_at.is_null())
            .count()
            .get_result(tx.conn)?;
        let target = format!("user {}", user.email);
        if let Some(account) = account {
            tx.log_to(
                account,
                Event {
                    action: action::RECOVERY_CODE_USED,
                    target: &target,
                    token: None,
                    detail: &format!("at sign-in; {left} left"),
                },
            )?;
        }
        notify(
            tx.conn,
            user.user_id(),
            mail_on,
            format!("A recovery code was used to sign in; {left} of your recovery codes are left"),
        )?;
    }
    Ok(Step::SignedIn { user, account })
}
