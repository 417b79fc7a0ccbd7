//! Single sign-on's store: the sign-ins on their way through the provider (`oidc_flows`,
//! single-use, 10 minutes), and who a person is at the provider (`oidc_identities`, keyed
//! by issuer and `sub`, never by email alone). `sign_in` decides, in one transaction,
//! whether a verified ID token names a linked user, links an existing one, or makes one.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::audit::{Event, action};
use super::schema::{accounts, oidc_flows, oidc_identities, users};
use super::tx::Tx;
use super::users::User;
use crate::domain::{AccountId, Email, Role, UserId};
use crate::error::AppError;

/// How long a person may spend at the provider's sign-in page.
pub const FLOW_MINUTES: i64 = 10;

/// What a flow is for.
pub const SIGN_IN: &str = "sign-in";
/// Sudo mode: the signed-in user proves it is them again.
pub const REAUTH: &str = "reauth";
/// The signed-in user connects their identity at the provider (`connect`).
pub const CONNECT: &str = "connect";

/// A flow as it waits for the callback.
pub struct NewFlow<'a> {
    pub state_digest: &'a [u8],
    pub browser_digest: &'a [u8],
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
    pub purpose: &'a str,
    pub user: Option<UserId>,
    pub return_to: &'a str,
}

/// A flow taken back at the callback.
#[derive(Queryable)]
pub struct Flow {
    pub pkce_verifier: String,
    pub nonce: String,
    pub purpose: String,
    pub user_id: Option<i32>,
    pub return_to: String,
    pub expires_at: NaiveDateTime,
}

// By hand: the verifier and nonce are secrets while the flow lives.
impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Stores a new flow, and drops the ones that ran out.
pub fn start_flow(conn: &mut DbConnection, new: &NewFlow<'_>) -> Result<(), AppError> {
    let now = super::now();
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::delete(oidc_flows::table.filter(oidc_flows::expires_at.le(now))).execute(conn)?;
        diesel::insert_into(oidc_flows::table)
            .values((
                oidc_flows::state_digest.eq(new.state_digest),
                oidc_flows::browser_digest.eq(new.browser_digest),
                oidc_flows::pkce_verifier.eq(new.pkce_verifier),
                oidc_flows::nonce.eq(new.nonce),
                oidc_flows::purpose.eq(new.purpose),
                oidc_flows::user_id.eq(new.user.map(|u| u.0)),
                oidc_flows::return_to.eq(new.return_to),
                oidc_flows::created_at.eq(now),
                oidc_flows::expires_at.eq(now + chrono::Duration::minutes(FLOW_MINUTES)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Takes the flow named by `state` out of the store, if this browser started it: whatever
/// comes of it, it is used. `None` when no live flow has that state for this browser. A
/// state carried to another browser (with or without its code) leaves the flow alone, so
/// whoever learns a state can't spoil the sign-in of the person it belongs to. Both digests
/// are SHA-256 of random values, so comparing them in SQL tells a timer nothing.
pub fn take_flow(
    conn: &mut DbConnection,
    state_digest: &[u8],
    browser_digest: Option<&[u8]>,
) -> Result<Option<Flow>, AppError> {
    let Some(browser_digest) = browser_digest else {
        return Ok(None);
    };
    let flow: Option<Flow> = super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        Ok(diesel::delete(
            oidc_flows::table
                .filter(oidc_flows::state_digest.eq(state_digest))
                .filter(oidc_flows::browser_digest.eq(browser_digest)),
        )
        .returning((
            oidc_flows::pkce_verifier,
            oidc_flows::nonce,
            oidc_flows::purpose,
            oidc_flows::user_id,
            oidc_flows::return_to,
            oidc_flows::expires_at,
        ))
        .get_result(conn)
        .optional()?)
    })?;
    Ok(flow.filter(|f| f.expires_at > super::now()))
}

/// The user linked to (issuer, subject), if any.
pub fn linked_user(
    conn: &mut DbConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<User>, AppError> {
    Ok(oidc_identities::table
        .inner_join(users::table)
        .filter(oidc_identities::issuer.eq(issuer))
        .filter(oidc_identities::subject.eq(subject))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// What the provider vouched for, as the sign-in needs it.
pub struct Vouched<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
}

/// What an SSO sign-in came to.
pub enum SignedIn {
    /// A known user (linked before, or just now), and the account the session opens in.
    User {
        user: User,
        account: Option<AccountId>,
        /// A user made by this sign-in: they may name their account next.
        new: bool,
    },
    /// Refused, with the sentence the page shows.
    Refused(String),
}

/// An SSO sign-in, in one transaction: the linked user; else the user with the verified
/// email, linked now unless linked to another identity at this provider already; else a
/// new user with no password (joining the account that claimed their email's domain, if
/// one did). An unverified email never links to anyone.
pub fn sign_in(tx: &mut Tx<'_>, vouched: &Vouched<'_>) -> Result<SignedIn, AppError> {
    let now = super::now();
    if let Some(user) = linked_user(tx.conn, vouched.issuer, vouched.subject)? {
        diesel::update(
            oidc_identities::table
                .filter(oidc_identities::issuer.eq(vouched.issuer))
                .filter(oidc_identities::subject.eq(vouched.subject)),
        )
        .set((
            oidc_identities::email.eq(vouched.email),
            oidc_identities::last_sign_in_at.eq(now),
        ))
        .execute(tx.conn)?;
        let account = super::users::record_sign_in(tx, &user, true)?;
        return Ok(SignedIn::User {
            user,
            account,
            new: false,
        });
    }
    let Some(email) = vouched.email.and_then(|e| Email::parse(e).ok()) else {
        return Ok(SignedIn::Refused(
            "Your provider did not send an email address Keyward can use. Ask its administrator to release the email claim to Keyward.".into(),
        ));
    };
    let existing = super::users::find_by_email(tx.conn, &email)?;
    let (user, new) = match existing {
        Some(_) if !vouched.email_verified => {
            return Ok(SignedIn::Refused(format!(
                "{email} already has a Keyward sign-in, but your provider has not verified that the address is yours, so it can't be linked. Verify it at your provider, or sign in with your Keyward password."
            )));
        }
        // A Keyward user whose own address was never verified may not be who has it: for
        // one made by an unverified SSO sign-in, or signed up by someone else first, a link
        // would let that first person in as the address's owner.
        Some(user) if user.email_verified_at.is_none() => {
            return Ok(SignedIn::Refused(format!(
                "{email} already has a Keyward sign-in, but Keyward never verified that address, so it can't be linked. Reset that sign-in's password from the sign-in page (the mail proves the address), then sign in through your provider again."
            )));
        }
        // Taken on trust (signed up while mail was off): whoever signed up first may not be
        // the address's owner, who would be let into their sign-in. Only someone who holds
        // that sign-in's password can connect the provider to it.
        Some(user) if user.email_assumed => {
            return Ok(SignedIn::Refused(format!(
                "{email} already has a Keyward sign-in, but its address was taken on trust (this server sends no mail to prove it), so your provider can't be linked to it from here. If that sign-in is yours, sign in with its password and connect your provider on your email page. If it isn't, tell your Keyward operator."
            )));
        }
        // One identity per provider, as connecting allows: a second account at the same
        // provider that claims the address (a renamed, recycled or shared one) must not
        // become a second way into a sign-in that already has its link there.
        Some(user) if is_linked(tx.conn, user.user_id(), vouched.issuer)? => {
            return Ok(SignedIn::Refused(format!(
                "{email} already has a Keyward sign-in, linked to another identity at your provider, so this one can't be linked. Sign in through your provider as the identity you linked before; if you can't, ask an owner of your account or your Keyward operator."
            )));
        }
        Some(user) => (user, false),
        None => {
            let user =
                super::users::create_without_password(tx.conn, &email, vouched.email_verified)?;
            (user, true)
        }
    };
    link(tx.conn, &user, vouched, now)?;
    tx.act_as(user.user_id(), &user.email);
    if new && vouched.email_verified {
        join_claimed_domain(tx, &user, &email)?;
    }
    let account = super::users::record_sign_in(tx, &user, true)?;
    if !new && let Some(account) = account {
        tx.log_to(
            account,
            Event {
                action: action::SSO_LINKED,
                target: &format!("user {}", user.email),
                token: None,
                detail: "linked by the provider's verified email",
            },
        )?;
    }
    Ok(SignedIn::User { user, account, new })
}

/// Links `user` to the identity the provider vouched for.
fn link(
    conn: &mut DbConnection,
    user: &User,
    vouched: &Vouched<'_>,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::insert_into(oidc_identities::table)
        .values((
            oidc_identities::user_id.eq(user.id),
            oidc_identities::issuer.eq(vouched.issuer),
            oidc_identities::subject.eq(vouched.subject),
            oidc_identities::email.eq(vouched.email),
            oidc_identities::created_at.eq(now),
            oidc_identities::last_sign_in_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// What connecting the provider to a signed-in person came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Connected {
    /// Linked now, and the address proven.
    Linked,
    /// That identity was this person's already.
    AlreadyLinked,
    /// Refused, with the sentence the page shows.
    Refused(String),
}

/// `user` connects their identity at the provider: a person who proved in this browser that
/// they hold that Keyward sign-in (a session, or its password a moment ago) and whose
/// provider vouched for the same address, verified. Both prove the address is theirs, so it
/// stops being taken on trust. An identity linked to someone else, a second identity at the
/// same provider, or another or unverified address links nothing.
pub fn connect(
    tx: &mut Tx<'_>,
    user: UserId,
    vouched: &Vouched<'_>,
) -> Result<Connected, AppError> {
    let user = super::users::find(tx.conn, user)?;
    match linked_user(tx.conn, vouched.issuer, vouched.subject)? {
        Some(linked) if linked.id == user.id => return Ok(Connected::AlreadyLinked),
        Some(_) => {
            return Ok(Connected::Refused(
                "That identity at your provider is linked to another Keyward sign-in, so nothing changed.".into(),
            ));
        }
        None => {}
    }
    if is_linked(tx.conn, user.user_id(), vouched.issuer)? {
        return Ok(Connected::Refused(
            "Your sign-in is linked to another identity at your provider already, so nothing changed.".into(),
        ));
    }
    let same = vouched
        .email
        .is_some_and(|e| e.eq_ignore_ascii_case(&user.email));
    if !same || !vouched.email_verified {
        let vouched_for = vouched.email.unwrap_or("no address");
        return Ok(Connected::Refused(format!(
            "Your provider vouched for {vouched_for}{}, and you sign in as {}: they must be the same verified address, so nothing changed.",
            if vouched.email_verified {
                ""
            } else {
                " (not verified)"
            },
            user.email
        )));
    }
    let now = super::now();
    link(tx.conn, &user, vouched, now)?;
    super::users::prove_address(tx.conn, &user)?;
    tx.act_as(user.user_id(), &user.email);
    if let Some(account) = super::memberships::first_account_of(tx.conn, user.user_id())? {
        tx.log_to(
            account,
            Event {
                action: action::SSO_LINKED,
                target: &format!("user {}", user.email),
                token: None,
                detail: "connected by the person, who proved both their Keyward sign-in and the provider's verified address",
            },
        )?;
    }
    Ok(Connected::Linked)
}

/// A new user whose verified email's domain an account claimed joins it as a member.
fn join_claimed_domain(tx: &mut Tx<'_>, user: &User, email: &Email) -> Result<(), AppError> {
    let Some((_, domain)) = email.as_str().rsplit_once('@') else {
        return Ok(());
    };
    let claimed: Option<i32> = accounts::table
        .filter(accounts::claimed_domain.eq(domain.to_ascii_lowercase()))
        .select(accounts::id)
        .first(tx.conn)
        .optional()?;
    if let Some(account) = claimed.map(AccountId) {
        let how = format!(", through the claimed domain {domain}");
        super::invitations::join(tx, user, account, Role::Member, &how)?;
    }
    Ok(())
}

/// Whether `user` is linked to an identity at the provider `issuer`. A link to a provider
/// the operator has since replaced doesn't count: it can sign nobody in, and the person
/// must be able to connect the new one.
pub fn is_linked(conn: &mut DbConnection, user: UserId, issuer: &str) -> Result<bool, AppError> {
    let n: i64 = oidc_identities::table
        .filter(oidc_identities::user_id.eq(user.0))
        .filter(oidc_identities::issuer.eq(issuer))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
