//! A person's passkeys (WebAuthn credentials, kept as webauthn-rs's serialised `Passkey`:
//! a public key and its counter, nothing secret) and the ceremonies under way. Every query
//! for a passkey takes its user; a ceremony is taken once, by a conditional delete, so a
//! challenge is never answered twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn,
    WebauthnError,
};

use super::DbConnection;
use super::audit::action;
use super::schema::{passkey_ceremonies, passkeys};
use super::two_factor::{Spent, log, notify};
use super::tx::Tx;
use super::users::User;
use crate::auth::webauthn::CEREMONY_MINUTES;
use crate::domain::{PasskeyName, UserId};
use crate::error::AppError;

/// Live passwordless ceremonies kept at once: anyone may start one, so their number is
/// bounded (each is also limited per address, `AppState::passkey_starts`). At the bound the
/// oldest gives way, so a flood can't turn passkey sign-in away for everyone: to spoil a
/// person's sign-in it must start 10,000 others in the seconds that person takes to answer,
/// not once every 5 minutes.
pub const MAX_ANONYMOUS_CEREMONIES: i64 = 10_000;

/// One passkey, as the security page lists it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeySummary {
    pub id: i32,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

pub fn list(conn: &mut DbConnection, user: UserId) -> Result<Vec<PasskeySummary>, AppError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user.0))
        .order(passkeys::id.asc())
        .select(PasskeySummary::as_select())
        .load(conn)?)
}

/// Passkeys one person may hold: more than anyone carries, and few enough that a script
/// with a software authenticator can't grow the table, or every sign-in's list, without end.
pub const MOST_PASSKEYS: usize = 20;

fn too_many() -> String {
    format!(
        "You have {MOST_PASSKEYS} passkeys, as many as Keyward keeps for one person. Remove one you no longer use first."
    )
}

pub use super::two_factor::passkey_count as count;

/// A user's passkeys, as webauthn-rs takes them.
fn credentials(conn: &mut DbConnection, user: UserId) -> Result<Vec<(i32, Passkey)>, AppError> {
    let rows: Vec<(i32, String)> = passkeys::table
        .filter(passkeys::user_id.eq(user.0))
        .select((passkeys::id, passkeys::passkey))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, json)| Ok((id, parse_passkey(&json)?)))
        .collect()
}

fn parse_passkey(json: &str) -> Result<Passkey, AppError> {
    serde_json::from_str(json).map_err(|e| AppError::internal(format!("a stored passkey: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Ceremonies
// ---------------------------------------------------------------------------------------------

/// What a ceremony is for, and the state webauthn-rs needs to finish it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
enum Ceremony {
    /// Adding a passkey; `handle` is the id the authenticator keeps for the person.
    Register {
        handle: Uuid,
        state: PasskeyRegistration,
    },
    /// A passkey as a sign-in's second step.
    SecondStep { state: PasskeyAuthentication },
    /// A passkey confirming a signed-in person for sudo mode.
    Sudo { state: PasskeyAuthentication },
    /// Signing in with a passkey alone.
    SignIn { state: DiscoverableAuthentication },
}

impl Ceremony {
    fn purpose(&self) -> &'static str {
        match self {
            Ceremony::Register { .. } => "register",
            Ceremony::SecondStep { .. } => "second_step",
            Ceremony::Sudo { .. } => "sudo",
            Ceremony::SignIn { .. } => "sign_in",
        }
    }
}

/// Keeps `ceremony` for `user` (none for a passwordless sign-in) under the cookie whose
/// SHA-256 is `key_digest`. Expired ones are cleared first, a person's older ones of the
/// same kind replaced, and at [`MAX_ANONYMOUS_CEREMONIES`] the oldest passwordless one
/// dropped, so the table holds only live ones, and boundedly many.
fn start(
    conn: &mut DbConnection,
    key_digest: &[u8],
    user: Option<UserId>,
    ceremony: &Ceremony,
) -> Result<(), AppError> {
    let state = serde_json::to_string(ceremony)
        .map_err(|e| AppError::internal(format!("a passkey ceremony: {e}")))?;
    let purpose = ceremony.purpose();
    let now = super::now();
    super::tx::as_system(conn, |tx| {
        let conn = &mut *tx.conn;
        diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::expires_at.le(now)))
            .execute(conn)?;
        match user {
            Some(user) => {
                diesel::delete(
                    passkey_ceremonies::table
                        .filter(passkey_ceremonies::user_id.eq(user.0))
                        .filter(passkey_ceremonies::purpose.eq(purpose)),
                )
                .execute(conn)?;
            }
            None => {
                let live: i64 = passkey_ceremonies::table
                    .filter(passkey_ceremonies::user_id.is_null())
                    .count()
                    .get_result(conn)?;
                if live >= MAX_ANONYMOUS_CEREMONIES {
                    let oldest: Vec<i32> = passkey_ceremonies::table
                        .filter(passkey_ceremonies::user_id.is_null())
                        .order(passkey_ceremonies::id.asc())
                        .limit(live - MAX_ANONYMOUS_CEREMONIES + 1)
                        .select(passkey_ceremonies::id)
                        .load(conn)?;
                    diesel::delete(
                        passkey_ceremonies::table.filter(passkey_ceremonies::id.eq_any(oldest)),
                    )
                    .execute(conn)?;
                }
            }
        }
        diesel::insert_into(passkey_ceremonies::table)
            .values((
                passkey_ceremonies::key_digest.eq(key_digest),
                passkey_ceremonies::purpose.eq(purpose),
                passkey_ceremonies::user_id.eq(user.map(|u| u.0)),
                passkey_ceremonies::state.eq(&state),
                passkey_ceremonies::expires_at
                    .eq(now + chrono::Duration::minutes(CEREMONY_MINUTES)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Why a ceremony's answer was refused. Said to the person as is.
pub const CEREMONY_GONE: &str = "That passkey request has expired or was already used. Try again.";

/// Takes (deletes) the live ceremony the cookie names, if it is for `user`: whatever comes
/// of its answer, it can't be answered again.
fn take(
    conn: &mut DbConnection,
    key_digest: &[u8],
    user: Option<UserId>,
) -> Result<Option<Ceremony>, AppError> {
    let taken: Option<(Option<i32>, String, NaiveDateTime)> = diesel::delete(
        passkey_ceremonies::table.filter(passkey_ceremonies::key_digest.eq(key_digest)),
    )
    .returning((
        passkey_ceremonies::user_id,
        passkey_ceremonies::state,
        passkey_ceremonies::expires_at,
    ))
    .get_result(conn)
    .optional()?;
    let Some((owner, state, expires_at)) = taken else {
        return Ok(None);
    };
    if owner != user.map(|u| u.0) || expires_at <= super::now() {
        return Ok(None);
    }
    // A state that no longer reads (a webauthn-rs upgrade during the ceremony's 5 minutes,
    // say) is gone for the person, who starts again; the operator is told.
    match serde_json::from_str(&state) {
        Ok(ceremony) => Ok(Some(ceremony)),
        Err(e) => {
            tracing::warn!(error = %e, "a stored passkey ceremony could not be read");
            Ok(None)
        }
    }
}

/// A browser's answer, as JSON, read into `T`; anything else is refused as the person's
/// mistake, never a server error.
pub fn parse_answer<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, AppError> {
    serde_json::from_str(raw).map_err(|_| {
        AppError::invalid("The browser's passkey answer could not be read. Try again.")
    })
}

// ---------------------------------------------------------------------------------------------
// Registering and removing
// ---------------------------------------------------------------------------------------------

/// The id the person's authenticators keep for them: the one their passkeys already have,
/// else a new random one. It says nothing about them.
fn user_handle(conn: &mut DbConnection, user: UserId) -> Result<Uuid, AppError> {
    let existing: Option<Vec<u8>> = passkeys::table
        .filter(passkeys::user_id.eq(user.0))
        .select(passkeys::user_handle)
        .first(conn)
        .optional()?;
    Ok(existing
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .unwrap_or_else(Uuid::new_v4))
}

/// The ids of the person's passkeys, so an authenticator isn't registered twice: read from
/// their own column, with no stored passkey to parse.
fn credential_ids(
    conn: &mut DbConnection,
    user: UserId,
) -> Result<Vec<webauthn_rs::prelude::CredentialID>, AppError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user.0))
        .select(passkeys::credential_id)
        .load(conn)?)
}

/// What adding a passkey came to.
pub enum Registered {
    Added,
    /// Refused, with the sentence to show. The ceremony is spent all the same.
    Refused(String),
}

/// Finishes adding a passkey named `name` for the signed-in person, from the browser's
/// answer to the ceremony the cookie names; audited and mailed like a second factor. A
/// refusal is an answer, not an error, so that the ceremony's deletion is kept.
pub fn register(
    tx: &mut Tx<'_>,
    webauthn: &Webauthn,
    key_digest: &[u8],
    name: &PasskeyName,
    answer: &RegisterPublicKeyCredential,
    mail_on: bool,
) -> Result<Registered, AppError> {
    let user = tx.signed_in_user()?;
    let Some(Ceremony::Register { handle, state }) = take(tx.conn, key_digest, Some(user))? else {
        return Ok(Registered::Refused(CEREMONY_GONE.into()));
    };
    let passkey = match webauthn.finish_passkey_registration(answer, &state) {
        Ok(passkey) => passkey,
        Err(e) => return Ok(Registered::Refused(refusal(&e))),
    };
    // Checked again here, under the write lock: starting is checked outside it.
    if count(tx.conn, user)? >= MOST_PASSKEYS as i64 {
        return Ok(Registered::Refused(too_many()));
    }
    let credential_id: &[u8] = passkey.cred_id().as_ref();
    let taken: i64 = passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .count()
        .get_result(tx.conn)?;
    if taken > 0 {
        return Ok(Registered::Refused(
            "That passkey is already registered.".into(),
        ));
    }
    let json = serde_json::to_string(&passkey)
        .map_err(|e| AppError::internal(format!("a passkey: {e}")))?;
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::user_id.eq(user.0),
            passkeys::credential_id.eq(credential_id),
            passkeys::user_handle.eq(handle.as_bytes().as_slice()),
            passkeys::name.eq(name.as_str()),
            passkeys::passkey.eq(&json),
            passkeys::created_at.eq(super::now()),
        ))
        .execute(tx.conn)?;
    log(tx, action::PASSKEY_ADDED, &format!("passkey \"{name}\""))?;
    notify(
        tx.conn,
        user,
        mail_on,
        format!("A passkey named \"{name}\" was added"),
    )?;
    Ok(Registered::Added)
}

/// The sentence for a ceremony webauthn-rs refused. The details go to the log, not the page.
fn refusal(error: &WebauthnError) -> String {
    tracing::info!(error = %error, "a passkey answer was refused");
    match error {
        WebauthnError::CredentialPossibleCompromise => "That passkey's signature counter went backwards, which can mean it was copied. It was refused; remove it and add it again if you trust it.".into(),
        _ => "Your passkey's answer was not accepted. Try again.".into(),
    }
}

/// Removes the signed-in person's passkey `id`; someone else's is not found. An account
/// that requires a second factor keeps their last one.
pub fn remove(tx: &mut Tx<'_>, id: i32, mail_on: bool) -> Result<(), AppError> {
    let user = tx.signed_in_user()?;
    let name: String = passkeys::table
        .filter(passkeys::id.eq(id))
        .filter(passkeys::user_id.eq(user.0))
        .select(passkeys::name)
        .first(tx.conn)?;
    let others = count(tx.conn, user)? - 1;
    if others == 0
        && !super::two_factor::is_enabled(tx.conn, user)?
        && let Some(account) = super::two_factor::requiring_account(tx.conn, user)?
    {
        return Err(AppError::invalid(format!(
            "{account} requires two-factor sign-in of its members, and this is your only second factor. Add another passkey or an authenticator app first."
        )));
    }
    diesel::delete(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user.0)),
    )
    .execute(tx.conn)?;
    log(tx, action::PASSKEY_REMOVED, &format!("passkey \"{name}\""))?;
    notify(
        tx.conn,
        user,
        mail_on,
        format!("The passkey named \"{name}\" was removed"),
    )
}

/// Renames the signed-in person's passkey `id`; someone else's is not found.
pub fn rename(tx: &mut Tx<'_>, id: i32, name: &PasskeyName) -> Result<(), AppError> {
    let user = tx.signed_in_user()?;
    let renamed = diesel::update(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user.0)),
    )
    .set(passkeys::name.eq(name.as_str()))
    .execute(tx.conn)?;
    if renamed == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signing in
// ---------------------------------------------------------------------------------------------

/// Stores what an accepted assertion says of its passkey: the new signature counter
/// (which webauthn-rs has checked went forward, or refused it as a possible clone) and
/// when it was last used.
fn record_use(
    conn: &mut DbConnection,
    id: i32,
    mut passkey: Passkey,
    result: &AuthenticationResult,
) -> Result<(), AppError> {
    passkey.update_credential(result);
    let json = serde_json::to_string(&passkey)
        .map_err(|e| AppError::internal(format!("a passkey: {e}")))?;
    diesel::update(passkeys::table.find(id))
        .set((
            passkeys::passkey.eq(json),
            passkeys::last_used_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// What a passkey check of a known person is for: each has ceremonies of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFor {
    /// A sign-in's second step, after a right password.
    SecondStep,
    /// Sudo mode, for a signed-in person.
    Sudo,
}

/// Starts a check of `user` with their passkeys; `None` if they have none.
pub fn start_check(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    key_digest: &[u8],
    user: UserId,
    check: CheckFor,
) -> Result<Option<serde_json::Value>, AppError> {
    let creds: Vec<Passkey> = credentials(conn, user)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if creds.is_empty() {
        return Ok(None);
    }
    let (challenge, state) = webauthn
        .start_passkey_authentication(&creds)
        .map_err(|e| AppError::internal(format!("a passkey challenge: {e}")))?;
    let ceremony = match check {
        CheckFor::SecondStep => Ceremony::SecondStep { state },
        CheckFor::Sudo => Ceremony::Sudo { state },
    };
    start(conn, key_digest, Some(user), &ceremony)?;
    Ok(Some(to_json(&challenge)?))
}

/// Checks `answer` to the `check` ceremony the cookie names as `user`'s, and spends it.
/// `false` for any refusal, which the caller counts as a wrong code.
fn check_answer(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    key_digest: &[u8],
    user: UserId,
    answer: &PublicKeyCredential,
    check: CheckFor,
) -> Result<bool, AppError> {
    let state = match (take(conn, key_digest, Some(user))?, check) {
        (Some(Ceremony::SecondStep { state }), CheckFor::SecondStep)
        | (Some(Ceremony::Sudo { state }), CheckFor::Sudo) => state,
        _ => return Ok(false),
    };
    let result = match webauthn.finish_passkey_authentication(answer, &state) {
        Ok(result) => result,
        Err(e) => {
            tracing::info!(error = %e, ?check, "a passkey answer was refused");
            return Ok(false);
        }
    };
    let used: &[u8] = result.cred_id().as_ref();
    let found = credentials(conn, user)?
        .into_iter()
        .find(|(_, p)| AsRef::<[u8]>::as_ref(p.cred_id()) == used);
    let Some((id, passkey)) = found else {
        return Ok(false);
    };
    record_use(conn, id, passkey, &result)?;
    Ok(true)
}

/// A passkey's answer at the second step, checked and spent as `user`'s: the closure
/// `two_factor::second_step` runs inside its write. An answer that can't be read counts
/// as a wrong one.
pub fn answer_check(
    webauthn: Webauthn,
    key_digest: Option<Vec<u8>>,
    raw: String,
) -> impl FnOnce(&mut DbConnection, UserId) -> Result<Option<Spent>, AppError> {
    move |conn, user| {
        let (Some(key_digest), Ok(answer)) =
            (key_digest, parse_answer::<PublicKeyCredential>(&raw))
        else {
            return Ok(None);
        };
        Ok(check_answer(
            conn,
            &webauthn,
            &key_digest,
            user,
            &answer,
            CheckFor::SecondStep,
        )?
        .then_some(Spent::Passkey))
    }
}

/// A passkey's answer confirming `user` for sudo mode, checked and spent; an answer that
/// can't be read, or to no live sudo ceremony of theirs, is a wrong one.
pub fn sudo_check(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    key_digest: &[u8],
    user: UserId,
    raw: &str,
) -> Result<bool, AppError> {
    let Ok(answer) = parse_answer::<PublicKeyCredential>(raw) else {
        return Ok(false);
    };
    check_answer(conn, webauthn, key_digest, user, &answer, CheckFor::Sudo)
}

/// Starts a passwordless sign-in: the browser offers whichever passkey the person picks.
pub fn start_sign_in(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    key_digest: &[u8],
) -> Result<serde_json::Value, AppError> {
    let (mut challenge, state) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| AppError::internal(format!("a passkey challenge: {e}")))?;
    // webauthn-rs asks for conditional mediation (autofill); a button asks at once.
    challenge.mediation = None;
    start(conn, key_digest, None, &Ceremony::SignIn { state })?;
    to_json(&challenge)
}

/// Whose passkey an answer names, if any is registered: for the sign-in limits, which
/// count per email, before the answer is checked.
pub fn claimed_user(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    answer: &PublicKeyCredential,
) -> Result<Option<User>, AppError> {
    let Ok((_, credential_id)) = webauthn.identify_discoverable_authentication(answer) else {
        return Ok(None);
    };
    let user_id: Option<i32> = passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(passkeys::user_id)
        .first(conn)
        .optional()?;
    user_id
        .map(|id| super::users::find(conn, UserId(id)))
        .transpose()
}

/// What a passwordless sign-in came to.
pub enum SignIn {
    SignedIn {
        user: User,
        account: Option<crate::domain::AccountId>,
    },
    /// Refused, with the sentence to show.
    Refused(String),
    /// A right passkey, but the person is a member of this account, which requires its
    /// members to sign in through the identity provider: a passkey must not outlive the
    /// provider's say.
    SsoRequired { account: String },
}

/// Checks a passwordless answer to the ceremony the cookie names, in one write: the
/// ceremony is spent, the passkey found by its id and its user handle, the signature and
/// counter checked, and the sign-in recorded (a refusal too, when the passkey is known).
/// With single sign-on on (`sso_on`), a member of an account that requires it is refused
/// after the check, as a right password is.
pub fn sign_in(
    tx: &mut Tx<'_>,
    webauthn: &Webauthn,
    key_digest: &[u8],
    answer: &PublicKeyCredential,
    sso_on: bool,
) -> Result<SignIn, AppError> {
    let Some(Ceremony::SignIn { state }) = take(tx.conn, key_digest, None)? else {
        return Ok(SignIn::Refused(CEREMONY_GONE.into()));
    };
    let unknown = || SignIn::Refused("That passkey is not registered with Keyward.".into());
    let Ok((handle, credential_id)) = webauthn.identify_discoverable_authentication(answer) else {
        return Ok(unknown());
    };
    let row: Option<(i32, i32, Vec<u8>, String)> = passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select((
            passkeys::id,
            passkeys::user_id,
            passkeys::user_handle,
            passkeys::passkey,
        ))
        .first(tx.conn)
        .optional()?;
    let Some((id, user_id, stored_handle, json)) = row else {
        return Ok(unknown());
    };
    if stored_handle != handle.as_bytes() {
        return Ok(unknown());
    }
    let passkey = parse_passkey(&json)?;
    let user = super::users::find(tx.conn, UserId(user_id))?;
    match webauthn.finish_discoverable_authentication_v2(answer, state, &passkey) {
        Ok(result) => {
            record_use(tx.conn, id, passkey, &result)?;
            if sso_on
                && let Some(account) = super::accounts::sso_required_of(tx.conn, user.user_id())?
            {
                return Ok(SignIn::SsoRequired { account });
            }
            let account = super::users::record_sign_in(tx, &user, true)?;
            Ok(SignIn::SignedIn { user, account })
        }
        Err(e) => {
            super::users::record_sign_in(tx, &user, false)?;
            Ok(SignIn::Refused(refusal(&e)))
        }
    }
}

/// Starts adding a passkey for `user`, named as the person and their email address.
pub fn start_registration(
    conn: &mut DbConnection,
    webauthn: &Webauthn,
    key_digest: &[u8],
    user: &User,
) -> Result<serde_json::Value, AppError> {
    let id = user.user_id();
    let handle = user_handle(conn, id)?;
    let exclude = credential_ids(conn, id)?;
    if exclude.len() >= MOST_PASSKEYS {
        return Err(AppError::invalid(too_many()));
    }
    let (challenge, state) = webauthn
        .start_passkey_registration(handle, &user.email, &user.email, Some(exclude))
        .map_err(|e| AppError::internal(format!("a passkey challenge: {e}")))?;
    start(
        conn,
        key_digest,
        Some(id),
        &Ceremony::Register { handle, state },
    )?;
    let mut json = to_json(&challenge)?;
    // A discoverable credential, where the authenticator can keep one, so that the same
    // passkey also signs in without a password. webauthn-rs asks for none by default.
    if let Some(selection) = json
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(|s| s.as_object_mut())
    {
        selection.insert("residentKey".into(), "preferred".into());
    }
    Ok(json)
}

fn to_json<T: Serialize>(challenge: &T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(challenge)
        .map_err(|e| AppError::internal(format!("a passkey challenge: {e}")))
}
