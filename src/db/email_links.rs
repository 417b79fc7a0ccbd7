//! One-time links sent by mail: verify an address, reset a password, confirm a new
//! address. The token has 256 random bits; only its SHA-256 is stored, like API token
//! secrets. A link works once, until it expires.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::email_links;
use crate::domain::{Email, SecretDigest, UserId, random_base62};
use crate::error::AppError;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
    Change,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
            Purpose::Change => "change",
        }
    }

    /// How long a link works.
    pub fn lifetime(self) -> chrono::Duration {
        match self {
            Purpose::Reset => chrono::Duration::minutes(30),
            Purpose::Verify | Purpose::Change => chrono::Duration::hours(24),
        }
    }
}

/// A link's token, as it appears in the mail. `Debug` hides it.
pub struct LinkToken(String);

impl LinkToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

fn digest(token: &str) -> Vec<u8> {
    SecretDigest::of(token).as_bytes().to_vec()
}

/// Makes a link for `user` to `email`, and returns its token. Older unused links of the
/// same purpose stop working: only the newest mail's link counts.
pub fn create(
    conn: &mut DbConnection,
    user: UserId,
    purpose: Purpose,
    email: &Email,
) -> Result<LinkToken, AppError> {
    let now = super::now();
    retire(conn, user, purpose, now)?;
    // 43 base62 characters: about 256 bits.
    let token = random_base62(43);
    diesel::insert_into(email_links::table)
        .values((
            email_links::user_id.eq(user.0),
            email_links::purpose.eq(purpose.as_str()),
            email_links::token_digest.eq(digest(&token)),
            email_links::email.eq(email.as_str()),
            email_links::created_at.eq(now),
            email_links::expires_at.eq(now + purpose.lifetime()),
        ))
        .execute(conn)?;
    Ok(LinkToken(token))
}

/// Ends every unused link of `purpose` that `user` has.
pub fn retire(
    conn: &mut DbConnection,
    user: UserId,
    purpose: Purpose,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(
        email_links::table
            .filter(email_links::user_id.eq(user.0))
            .filter(email_links::purpose.eq(purpose.as_str()))
            .filter(email_links::used_at.is_null()),
    )
    .set(email_links::used_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// A usable link: whose it is and the address it was sent to.
#[derive(Debug, Clone)]
pub struct OpenLink {
    pub id: i32,
    pub user: UserId,
    pub email: String,
}

/// The link behind `token`, if it is for `purpose`, unused and unexpired.
pub fn find_open(
    conn: &mut DbConnection,
    purpose: Purpose,
    token: &str,
) -> Result<Option<OpenLink>, AppError> {
    Ok(email_links::table
        .filter(email_links::token_digest.eq(digest(token)))
        .filter(email_links::purpose.eq(purpose.as_str()))
        .filter(email_links::used_at.is_null())
        .filter(email_links::expires_at.gt(super::now()))
        .select((email_links::id, email_links::user_id, email_links::email))
        .first::<(i32, i32, String)>(conn)
        .optional()?
        .map(|(id, user, email)| OpenLink {
            id,
            user: UserId(user),
            email,
        }))
}

/// Uses the link behind `token`: it works this once. Call inside the write that acts on
/// it; a link used, expired or unknown is `None`.
pub fn consume(
    conn: &mut DbConnection,
    purpose: Purpose,
    token: &str,
) -> Result<Option<OpenLink>, AppError> {
    let Some(link) = find_open(conn, purpose, token)? else {
        return Ok(None);
    };
    let used = diesel::update(
        email_links::table
            .filter(email_links::id.eq(link.id))
            .filter(email_links::used_at.is_null()),
    )
    .set(email_links::used_at.eq(super::now()))
    .execute(conn)?;
    Ok((used == 1).then_some(link))
}
