//! Users: people who sign in. Emails are unique without regard to case.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::schema::users;
use super::tx::Tx;
use crate::domain::{Email, SessionId, UserId};
use crate::error::AppError;

#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i32,
    pub email: String,
    pub password_hash: String,
    pub operator: bool,
    pub created_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// `None` until the address is proven by a mailed link (only while mail is on).
    pub email_verified_at: Option<NaiveDateTime>,
    /// The address was taken on trust (see [`Address::Assumed`]).
    pub email_assumed: bool,
}

impl User {
    pub fn user_id(&self) -> UserId {
        UserId(self.id)
    }

    /// Whether the person has a Keyward password: someone made by a single sign-on has
    /// none (an empty hash) until they set one through a password reset.
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }

    /// Whether mail or the provider proved the address is this person's: only such an
    /// address links a single sign-on, claims its domain or takes up an invitation
    /// without its link. An address taken on trust lets its holder act, not more.
    pub fn address_proven(&self) -> bool {
        self.email_verified_at.is_some() && !self.email_assumed
    }
}

/// How a new user's address is known to be theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// A link mailed to it was followed, or the provider vouched for it.
    Proven,
    /// Taken on trust: no mail could prove it (mail is off, an operator typed it, or an
    /// invitation link, which its inviter sees too). Someone else may hold that address.
    Assumed,
}

/// What a user made by a single sign-on has instead of a password hash: nothing that
/// any password matches.
pub const NO_PASSWORD: &str = "";

/// The hash is not secret in the way a password is, but it has no business in logs either.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    email: &'a str,
    password_hash: &'a str,
    operator: bool,
    created_at: NaiveDateTime,
    /// Set at once: only a sign-up while mail is on starts unverified (`db::verification`).
    email_verified_at: Option<NaiveDateTime>,
    email_assumed: bool,
}

pub fn find_by_email(conn: &mut DbConnection, email: &Email) -> Result<Option<User>, AppError> {
    Ok(users::table
        .filter(users::email.eq(email.as_str()))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: UserId) -> Result<User, AppError> {
    Ok(users::table
        .find(id.0)
        .select(User::as_select())
        .first(conn)?)
}

/// Inserts a user; an email already in use is a clear 422, not a constraint error.
pub fn create(
    conn: &mut DbConnection,
    email: &Email,
    password_hash: &str,
    operator: bool,
    address: Address,
) -> Result<User, AppError> {
    diesel::insert_into(users::table)
        .values(NewUser {
            email: email.as_str(),
            password_hash,
            operator,
            created_at: super::now(),
            email_verified_at: Some(super::now()),
            email_assumed: address == Address::Assumed,
        })
        .returning(super::columns_of::<User>())
        .get_result(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppError::invalid(format!(
                "{email} already has a Keyward sign-in. Sign in instead, or use another email."
            )),
            other => other.into(),
        })
}

/// A user made by a single sign-on: no password; their email verified if the provider
/// said so. A taken email is the same clear 422 as `create`'s.
pub fn create_without_password(
    conn: &mut DbConnection,
    email: &Email,
    email_verified: bool,
) -> Result<User, AppError> {
    let user = create(conn, email, NO_PASSWORD, false, Address::Proven)?;
    if email_verified {
        return Ok(user);
    }
    Ok(diesel::update(users::table.find(user.id))
        .set(users::email_verified_at.eq(None::<NaiveDateTime>))
        .returning(super::columns_of::<User>())
        .get_result(conn)?)
}

/// Mail or the provider has just proven `user`'s address: it is verified (since now, if it
/// wasn't) and no longer taken on trust.
pub fn prove_address(conn: &mut DbConnection, user: &User) -> Result<(), AppError> {
    diesel::update(users::table.find(user.id))
        .set((
            users::email_verified_at.eq(user.email_verified_at.unwrap_or_else(super::now)),
            users::email_assumed.eq(false),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_operator(conn: &mut DbConnection, id: UserId) -> Result<(), AppError> {
    diesel::update(users::table.find(id.0))
        .set(users::operator.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Sets the acting user's new password hash, if `old_hash` is still the current one (a
/// change made meanwhile in another window wins), and ends every other session of theirs.
/// Returns how many sessions ended.
pub fn change_password(
    tx: &mut Tx<'_>,
    old_hash: &str,
    new_hash: &str,
    keep: SessionId,
) -> Result<usize, AppError> {
    let id = tx.signed_in_user()?;
    let changed = diesel::update(
        users::table
            .find(id.0)
            .filter(users::password_hash.eq(old_hash)),
    )
    .set(users::password_hash.eq(new_hash))
    .execute(tx.conn)?;
    if changed != 1 {
        return Err(AppError::invalid(
            "Your password was changed meanwhile, in another window. Sign in again with the new one.",
        ));
    }
    let ended = super::sessions::delete_others(tx.conn, id, keep)?;
    let target = format!("user {}", tx.actor().label);
    tx.log_personal(super::audit::Event {
        action: super::audit::action::PASSWORD_CHANGED,
        target: &target,
        token: None,
        detail: &format!("{ended} other session(s) ended"),
    })?;
    Ok(ended)
}

pub fn record_login(conn: &mut DbConnection, id: UserId) -> Result<(), AppError> {
    diesel::update(users::table.find(id.0))
        .set(users::last_login_at.eq(super::now()))
        .execute(conn)?;
    Ok(())
}

/// Records a sign-in by a known user, right password or wrong: on success the login
/// time, and either way one audit row, in one transaction. Returns the account the
/// session opens in: the user's first, if any.
///
/// The row goes in that first account alone. A sign-in belongs to the person, not to
/// any one account, so one row says it; the first account is the one the session opens
/// in, so its admins are the ones who see where the person signs in to. One row per
/// membership, as before, let a guesser make the server write (and fsync) as many rows
/// per wrong password as the victim has accounts, and told every account's admins about
/// the person's sign-ins everywhere. A user with no account (an operator, or someone
/// who was removed) leaves no row: there is no account log to put it in.
pub fn record_sign_in(
    tx: &mut Tx<'_>,
    user: &User,
    succeeded: bool,
) -> Result<Option<crate::domain::AccountId>, AppError> {
    use super::audit::{Event, action};
    if succeeded {
        record_login(tx.conn, user.user_id())?;
    }
    let first = super::memberships::first_account_of(tx.conn, user.user_id())?;
    if let Some(account) = first {
        tx.act_as(user.user_id(), &user.email);
        tx.log_to(
            account,
            Event {
                action: if succeeded {
                    action::LOGIN_SUCCEEDED
                } else {
                    action::LOGIN_FAILED
                },
                target: &format!("user {}", user.email),
                token: None,
                detail: "",
            },
        )?;
    }
    Ok(first)
}
