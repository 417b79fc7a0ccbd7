//! Invitations to join an account: a one-time link, valid for 7 days, until used or
//! cancelled. Only the SHA-256 of the link's token is stored, like API token secrets.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::audit::{Event, action};
use super::schema::{accounts, invitations, users};
use super::tx::Tx;
use super::users::User;
use crate::domain::{AccountId, Email, Role, SecretDigest, UserId, random_base62};
use crate::error::AppError;
use crate::policy::{self, Action, Standing};

pub const VALID_DAYS: i64 = 7;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: i32,
    pub account_id: i32,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<i32>,
    pub expires_at: NaiveDateTime,
}

fn digest(token: &str) -> Vec<u8> {
    SecretDigest::of(token).as_bytes().to_vec()
}

/// Invitations that can still be used at `now`: not accepted, not cancelled, not expired.
#[diesel::dsl::auto_type(no_type_alias)]
fn open_at(now: NaiveDateTime) -> _ {
    invitations::accepted_at
        .is_null()
        .and(invitations::cancelled_at.is_null())
        .and(invitations::expires_at.gt(now))
}

/// Invites `email` to the account acted in as `role`, with its audit event. Returns the
/// invitation and the token for its link, which is shown once.
pub fn invite(
    tx: &mut Tx<'_>,
    email: &Email,
    role: Role,
) -> Result<(Invitation, String), AppError> {
    tx.require(Action::Invite { role })?;
    let account = tx.account()?;
    let inviter = tx
        .user()
        .ok_or_else(|| AppError::internal("an invitation needs a signed-in inviter"))?;
    if let Some(user) = super::users::find_by_email(tx.conn, email)?
        && super::memberships::role_of(tx.conn, user.user_id(), account)?.is_some()
    {
        return Err(AppError::invalid(format!(
            "{email} is already a member of this account."
        )));
    }
    let token = random_base62(43);
    let now = super::now();
    let invitation = diesel::insert_into(invitations::table)
        .values((
            invitations::account_id.eq(account.0),
            invitations::email.eq(email.as_str()),
            invitations::role.eq(role),
            invitations::token_digest.eq(digest(&token)),
            invitations::invited_by.eq(inviter.0),
            invitations::created_at.eq(now),
            invitations::expires_at.eq(now + chrono::Duration::days(VALID_DAYS)),
        ))
        .returning(super::columns_of::<Invitation>())
        .get_result(tx.conn)?;
    tx.log(Event {
        action: action::MEMBER_INVITED,
        target: &format!("user {email}"),
        token: None,
        detail: &format!("as {role}"),
    })?;
    Ok((invitation, token))
}

/// Cancels one of the account's open invitations, with its audit event; its link stops
/// working at once. Another account's, a used or an already cancelled one is a 404.
pub fn cancel(tx: &mut Tx<'_>, id: i32) -> Result<Invitation, AppError> {
    tx.require(Action::ManageMembers)?;
    let account = tx.account()?;
    let invitation: Invitation = diesel::update(
        invitations::table
            .filter(invitations::id.eq(id))
            .filter(invitations::account_id.eq(account.0))
            .filter(open_at(super::now())),
    )
    .set(invitations::cancelled_at.eq(super::now()))
    .returning(super::columns_of::<Invitation>())
    .get_result(tx.conn)?;
    tx.log(Event {
        action: action::INVITATION_CANCELLED,
        target: &format!("user {}", invitation.email),
        token: None,
        detail: &format!("as {}", invitation.role),
    })?;
    Ok(invitation)
}

/// Cancels every open invitation `inviter` sent in the account; returns how many.
/// Part of `members::remove_member`, inside its transaction.
pub(super) fn cancel_all_from(
    conn: &mut DbConnection,
    account: AccountId,
    inviter: UserId,
) -> Result<usize, AppError> {
    Ok(diesel::update(
        invitations::table
            .filter(invitations::account_id.eq(account.0))
            .filter(invitations::invited_by.eq(inviter.0))
            .filter(open_at(super::now())),
    )
    .set(invitations::cancelled_at.eq(super::now()))
    .execute(conn)?)
}

/// The usable invitation for a link's token, with its account's name. Used, cancelled,
/// expired and unknown links are all simply not found; so is a link whose sender may no
/// longer invite someone as its role (a removed or demoted admin's links are dead).
pub fn find_open(conn: &mut DbConnection, token: &str) -> Result<(Invitation, String), AppError> {
    let (invitation, account_name): (Invitation, String) = invitations::table
        .inner_join(accounts::table)
        .filter(invitations::token_digest.eq(digest(token)))
        .filter(open_at(super::now()))
        .select((Invitation::as_select(), accounts::name))
        .first(conn)?;
    if !sender_may_invite(conn, &invitation)? {
        return Err(AppError::NotFound);
    }
    Ok((invitation, account_name))
}

/// Whether whoever sent `invitation` may still invite someone as its role: a removed or
/// demoted admin's invitations are dead.
fn sender_may_invite(conn: &mut DbConnection, invitation: &Invitation) -> Result<bool, AppError> {
    let Some(inviter) = invitation.invited_by.map(UserId) else {
        return Ok(false);
    };
    let account = AccountId(invitation.account_id);
    let inviter_role = super::memberships::role_of(conn, inviter, account)?;
    Ok(policy::allows(
        &Standing::member(inviter, inviter_role, false),
        Action::Invite {
            role: invitation.role,
        },
    ))
}

/// The usable invitations sent to `email`, with their accounts' names, oldest first: what
/// a person signed in through single sign-on, with that address verified, may take up.
pub fn open_for_email(
    conn: &mut DbConnection,
    email: &str,
) -> Result<Vec<(Invitation, String)>, AppError> {
    let rows: Vec<(Invitation, String)> = invitations::table
        .inner_join(accounts::table)
        .filter(invitations::email.eq(email))
        .filter(open_at(super::now()))
        .order(invitations::id.asc())
        .select((Invitation::as_select(), accounts::name))
        .load(conn)?;
    let mut usable = Vec::with_capacity(rows.len());
    for (invitation, name) in rows {
        if sender_may_invite(conn, &invitation)? {
            usable.push((invitation, name));
        }
    }
    Ok(usable)
}

/// The signed-in person takes up invitation `id` without its link. It must have been sent
/// to their address, and that address must be verified: proving the address is all the
/// link proves. Anything else is simply not found.
pub fn accept_as_signed_in(tx: &mut Tx<'_>, id: i32) -> Result<Joined, AppError> {
    let user = super::users::find(tx.conn, tx.signed_in_user()?)?;
    if !user.address_proven() {
        return Err(AppError::NotFound);
    }
    let (invitation, account_name) = open_for_email(tx.conn, &user.email)?
        .into_iter()
        .find(|(invitation, _)| invitation.id == id)
        .ok_or(AppError::NotFound)?;
    let account = AccountId(invitation.account_id);
    if super::memberships::role_of(tx.conn, user.user_id(), account)?.is_some() {
        return Err(AppError::invalid(format!(
            "{} is already a member of {account_name}.",
            user.email
        )));
    }
    diesel::update(invitations::table.find(invitation.id))
        .set(invitations::accepted_at.eq(super::now()))
        .execute(tx.conn)?;
    join(
        tx,
        &user,
        account,
        invitation.role,
        ", signed in through single sign-on",
    )?;
    Ok(Joined {
        user: user.user_id(),
        account,
        account_name,
    })
}

/// Who is taking up an invitation: a person who already has a sign-in (their password
/// checked before the write), or a new one with the hash of the password they chose.
pub enum Joiner {
    Existing(UserId),
    New(String),
}

/// What joining gave: the user, the account and its name.
pub struct Joined {
    pub user: UserId,
    pub account: AccountId,
    pub account_name: String,
}

/// Uses the invitation behind `token`: creates the user if new, makes them a member
/// with the invited role, and logs it. The link must still be open, and whoever sent it
/// must still be allowed to invite someone as that role: a removed or demoted admin's
/// links are dead.
pub fn accept(tx: &mut Tx<'_>, token: &str, joiner: Joiner) -> Result<Joined, AppError> {
    let (invitation, account_name) = find_open(tx.conn, token)?;
    let account = AccountId(invitation.account_id);
    if tx.account()? != account {
        return Err(AppError::NotFound);
    }
    let inviter = invitation
        .invited_by
        .map(UserId)
        .ok_or(AppError::NotFound)?;
    let inviter_role = super::memberships::role_of(tx.conn, inviter, account)?;
    if !policy::allows(
        &Standing::member(inviter, inviter_role, false),
        Action::Invite {
            role: invitation.role,
        },
    ) {
        return Err(AppError::NotFound);
    }
    let email = Email::parse(&invitation.email).map_err(AppError::internal)?;
    let existing = super::users::find_by_email(tx.conn, &email)?;
    let user = match (existing, joiner) {
        (Some(user), Joiner::Existing(id)) if user.user_id() == id => user,
        // The inviter sees the link too, mailed or not: whoever follows it may be the
        // inviter, so it proves no address (a mailed link of one's own, or the provider, does).
        (None, Joiner::New(hash)) => super::users::create(
            tx.conn,
            &email,
            &hash,
            false,
            super::users::Address::Assumed,
        )?,
        // Someone signed up with this email between the form and now.
        _ => {
            return Err(AppError::invalid(
                "This email's sign-in changed while you were joining. Reload the page and try again.",
            ));
        }
    };
    if super::memberships::role_of(tx.conn, user.user_id(), account)?.is_some() {
        return Err(AppError::invalid(format!(
            "{email} is already a member of {account_name}. Sign in to use it."
        )));
    }
    diesel::update(invitations::table.find(invitation.id))
        .set(invitations::accepted_at.eq(super::now()))
        .execute(tx.conn)?;
    super::users::record_login(tx.conn, user.user_id())?;
    // From here on the visitor is the member they are becoming.
    tx.act_as(user.user_id(), &user.email);
    join(tx, &user, account, invitation.role, "")?;
    Ok(Joined {
        user: user.user_id(),
        account,
        account_name,
    })
}

/// `user` joins `account` as `role`: the membership, and the audit row that says how.
pub(in crate::db) fn join(
    tx: &mut Tx<'_>,
    user: &User,
    account: AccountId,
    role: Role,
    how: &str,
) -> Result<(), AppError> {
    super::memberships::create(tx.conn, user.user_id(), account, role)?;
    tx.log_to(
        account,
        Event {
            action: action::MEMBER_JOINED,
            target: &format!("user {}", user.email),
            token: None,
            detail: &format!("as {role}{how}"),
        },
    )
}

/// An open invitation as the members page lists it, with who sent it.
pub struct OpenInvitation {
    pub invitation: Invitation,
    pub inviter_email: Option<String>,
}

/// The account's invitations that are still open, newest first.
pub fn list_open(
    conn: &mut DbConnection,
    account: AccountId,
) -> Result<Vec<OpenInvitation>, AppError> {
    let rows: Vec<(Invitation, Option<String>)> = invitations::table
        .left_join(users::table.on(invitations::invited_by.eq(users::id.nullable())))
        .filter(invitations::account_id.eq(account.0))
        .filter(open_at(super::now()))
        .order(invitations::id.desc())
        .select((Invitation::as_select(), users::email.nullable()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(invitation, inviter_email)| OpenInvitation {
            invitation,
            inviter_email,
        })
        .collect())
}

/// Gives one of the account's open invitations a new link, with its audit event, and
/// returns it with the link's token, shown once. Only the link's digest is stored, so an
/// old link can't be shown again: a new one replaces it, the old one stops working, and
/// the expiry stays. The renewer must be allowed to invite as its role, and becomes its
/// sender, whose right to invite the link then rests on.
pub fn renew_link(tx: &mut Tx<'_>, id: i32) -> Result<(Invitation, String), AppError> {
    tx.require(Action::ManageMembers)?;
    let account = tx.account()?;
    let renewer = tx
        .user()
        .ok_or_else(|| AppError::internal("a new invitation link needs a signed-in member"))?;
    let open: Invitation = invitations::table
        .filter(invitations::id.eq(id))
        .filter(invitations::account_id.eq(account.0))
        .filter(open_at(super::now()))
        .select(Invitation::as_select())
        .first(tx.conn)?;
    tx.require(Action::Invite { role: open.role })?;
    let token = random_base62(43);
    let invitation: Invitation = diesel::update(invitations::table.find(open.id))
        .set((
            invitations::token_digest.eq(digest(&token)),
            invitations::invited_by.eq(renewer.0),
        ))
        .returning(super::columns_of::<Invitation>())
        .get_result(tx.conn)?;
    tx.log(Event {
        action: action::MEMBER_INVITED,
        target: &format!("user {}", invitation.email),
        token: None,
        detail: &format!(
            "as {}; a new link, the old one no longer works",
            invitation.role
        ),
    })?;
    Ok((invitation, token))
}

/// [`invite`], with the link mailed to the invited address in the same transaction.
pub fn invite_by_mail(
    tx: &mut Tx<'_>,
    email: &Email,
    role: Role,
) -> Result<(Invitation, String), AppError> {
    let (invitation, token) = invite(tx, email, role)?;
    let account = super::accounts::find(tx.conn, tx.account()?)?;
    let mail = crate::domain::Mail::Invitation {
        token: token.clone(),
        account: account.name,
        role: role.to_string(),
        inviter: tx.actor().label.clone(),
    };
    super::outbox::enqueue(tx.conn, email, &mail)?;
    Ok((invitation, token))
}
