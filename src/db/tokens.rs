//! API tokens. Every function that reads or changes one token takes the account, so a
//! token can only be reached through the account that owns it. The operator's lookups
//! across accounts are separate and named as such.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::audit::{self, Actor, Event, action};
use super::schema::{tokens, users};
use crate::domain::{
    AccountId, Scopes, SecretDigest, TokenId, TokenKey, TokenName, TokenSecret, UserId,
};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tokens)]
pub struct Token {
    pub id: i32,
    pub account_id: i32,
    pub user_id: Option<i32>,
    pub name: String,
    pub key: String,
    pub secret_digest: Vec<u8>,
    pub secret_hint: String,
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<i32>,
    pub revoke_reason: Option<String>,
    pub expiry_logged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Revoked,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Status::Active),
            "revoked" => Some(Status::Revoked),
            "expired" => Some(Status::Expired),
            _ => None,
        }
    }
}

impl Token {
    pub fn token_id(&self) -> TokenId {
        TokenId(self.id)
    }

    pub fn account(&self) -> AccountId {
        AccountId(self.account_id)
    }

    pub fn status_at(&self, now: NaiveDateTime) -> Status {
        if self.revoked_at.is_some() {
            Status::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Status::Expired
        } else {
            Status::Active
        }
    }

    pub fn status(&self) -> Status {
        self.status_at(super::now())
    }

    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scopes).unwrap_or_else(|_| Scopes::all())
    }
}

#[derive(Insertable)]
#[diesel(table_name = tokens)]
struct NewToken<'a> {
    account_id: i32,
    user_id: Option<i32>,
    name: &'a str,
    key: &'a str,
    secret_digest: &'a [u8],
    secret_hint: &'a str,
    scopes: &'a str,
    created_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
}

/// What a new token needs. The key and secret are generated here.
pub struct TokenRequest<'a> {
    pub account: AccountId,
    pub creator: Option<UserId>,
    pub name: &'a TokenName,
    pub scopes: &'a Scopes,
    pub expires_at: Option<NaiveDateTime>,
}

/// Creates a token and its audit event in one transaction. The secret is returned
/// once, here, and only its digest and last four characters are stored.
pub fn create(
    conn: &mut SqliteConnection,
    request: TokenRequest<'_>,
    actor: &Actor,
) -> Result<(Token, TokenSecret), AppError> {
    let key = TokenKey::generate();
    let secret = TokenSecret::generate();
    super::write(conn, |conn| {
        let token = diesel::insert_into(tokens::table)
            .values(NewToken {
                account_id: request.account.0,
                user_id: request.creator.map(|u| u.0),
                name: request.name.as_str(),
                key: key.as_str(),
                secret_digest: secret.digest().as_bytes(),
                secret_hint: &secret.hint(),
                scopes: &request.scopes.to_string(),
                created_at: super::now(),
                expires_at: request.expires_at,
            })
            .returning(Token::as_returning())
            .get_result(conn)?;
        super::invalidations::record_token_created(conn, &key)?;
        let detail = format!("scopes {}", request.scopes);
        audit::record(
            conn,
            request.account,
            actor,
            Event {
                action: action::TOKEN_CREATED,
                target: &token_target(&token),
                token: Some(token.token_id()),
                detail: &detail,
            },
        )?;
        Ok(token)
    })
    .map(|token| (token, secret))
}

fn token_target(token: &Token) -> String {
    format!("token {} ({})", token.name, token.key)
}

/// Filters for the token list.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub creator: Option<UserId>,
    pub status: Option<Status>,
}

/// A token with the emails of whoever created and revoked it.
#[derive(Debug, Clone)]
pub struct TokenView {
    pub token: Token,
    pub creator_email: Option<String>,
    pub revoker_email: Option<String>,
}

fn with_people(conn: &mut SqliteConnection, token: Token) -> Result<TokenView, AppError> {
    let email_of =
        |conn: &mut SqliteConnection, id: Option<i32>| -> Result<Option<String>, AppError> {
            match id {
                Some(id) => Ok(users::table
                    .find(id)
                    .select(users::email)
                    .first(conn)
                    .optional()?),
                None => Ok(None),
            }
        };
    let creator_email = email_of(conn, token.user_id)?;
    let revoker_email = email_of(conn, token.revoked_by)?;
    Ok(TokenView {
        token,
        creator_email,
        revoker_email,
    })
}

/// The account's tokens, newest first.
pub fn list_for_account(
    conn: &mut SqliteConnection,
    account: AccountId,
    filter: &TokenFilter,
) -> Result<Vec<TokenView>, AppError> {
    let mut query = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .select(Token::as_select())
        .into_boxed();
    if let Some(creator) = filter.creator {
        query = query.filter(tokens::user_id.eq(creator.0));
    }
    let now = super::now();
    query = match filter.status {
        None => query,
        Some(Status::Revoked) => query.filter(tokens::revoked_at.is_not_null()),
        Some(Status::Expired) => query
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.le(now)),
        Some(Status::Active) => query
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.is_null().or(tokens::expires_at.gt(now))),
    };
    let rows: Vec<Token> = query
        .order((tokens::created_at.desc(), tokens::id.desc()))
        .load(conn)?;
    rows.into_iter().map(|t| with_people(conn, t)).collect()
}

/// One token of the account; another account's id is `NotFound`.
pub fn find_for_account(
    conn: &mut SqliteConnection,
    account: AccountId,
    id: TokenId,
) -> Result<TokenView, AppError> {
    let token = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(conn)?;
    with_people(conn, token)
}

/// Revokes one of the account's tokens, with its audit event and a cache invalidation,
/// in one transaction. Revoking a revoked token changes nothing and logs nothing.
pub fn revoke(
    conn: &mut SqliteConnection,
    account: AccountId,
    id: TokenId,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    super::write(conn, |conn| {
        let token: Token = tokens::table
            .filter(tokens::account_id.eq(account.0))
            .filter(tokens::id.eq(id.0))
            .select(Token::as_select())
            .first(conn)?;
        revoke_in_tx(conn, token, actor, reason)
    })
}

fn revoke_in_tx(
    conn: &mut SqliteConnection,
    token: Token,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    let revoked = diesel::update(tokens::table.find(token.id))
        .set((
            tokens::revoked_at.eq(super::now()),
            tokens::revoked_by.eq(actor.user_id.map(|u| u.0)),
            tokens::revoke_reason.eq(Some(reason).filter(|r| !r.is_empty())),
        ))
        .returning(Token::as_returning())
        .get_result(conn)?;
    audit::record(
        conn,
        revoked.account(),
        actor,
        Event {
            action: action::TOKEN_REVOKED,
            target: &token_target(&revoked),
            token: Some(revoked.token_id()),
            detail: reason,
        },
    )?;
    let key = TokenKey::parse(&revoked.key).map_err(AppError::internal)?;
    super::invalidations::record_token(conn, &key)?;
    Ok(revoked)
}

/// Revokes every active token a member created in the account (when they are removed).
/// Call inside a write transaction.
pub fn revoke_all_of_creator(
    conn: &mut SqliteConnection,
    account: AccountId,
    creator: UserId,
    actor: &Actor,
    reason: &str,
) -> Result<Vec<Token>, AppError> {
    let active: Vec<Token> = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::user_id.eq(creator.0))
        .filter(tokens::revoked_at.is_null())
        .select(Token::as_select())
        .load(conn)?;
    active
        .into_iter()
        .map(|t| revoke_in_tx(conn, t, actor, reason))
        .collect()
}

/// Operator and CLI: a token in any account, by its public key.
pub fn find_by_key_any_account(
    conn: &mut SqliteConnection,
    key: &TokenKey,
) -> Result<Option<TokenView>, AppError> {
    let token: Option<Token> = tokens::table
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(conn)
        .optional()?;
    token.map(|t| with_people(conn, t)).transpose()
}

/// Operator: a token in any account, by a pasted (leaked) secret.
pub fn find_by_digest_any_account(
    conn: &mut SqliteConnection,
    digest: &SecretDigest,
) -> Result<Option<TokenView>, AppError> {
    let token: Option<Token> = tokens::table
        .filter(tokens::secret_digest.eq(digest.as_bytes()))
        .select(Token::as_select())
        .first(conn)
        .optional()?;
    token.map(|t| with_people(conn, t)).transpose()
}

/// CLI and operator: revoke by key in whatever account holds it.
pub fn revoke_by_key_any_account(
    conn: &mut SqliteConnection,
    key: &TokenKey,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    super::write(conn, |conn| {
        let token: Token = tokens::table
            .filter(tokens::key.eq(key.as_str()))
            .select(Token::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::invalid(format!("No token has the key {key}.")))?;
        revoke_in_tx(conn, token, actor, reason)
    })
}

/// The guard's one read on a cache miss: the token by key, whatever its state.
pub fn find_for_guard(
    conn: &mut SqliteConnection,
    key: &TokenKey,
) -> Result<Option<(Token, super::accounts::Account)>, AppError> {
    use super::schema::accounts;
    Ok(tokens::table
        .inner_join(accounts::table)
        .filter(tokens::key.eq(key.as_str()))
        .select((Token::as_select(), super::accounts::Account::as_select()))
        .first(conn)
        .optional()?)
}

/// One token's most recent use, as gathered in memory by the guard.
#[derive(Debug, Clone)]
pub struct Usage {
    pub token: TokenId,
    pub at: NaiveDateTime,
    pub ip: Option<std::net::IpAddr>,
}

/// Writes a batch of uses in one transaction. Never moves `last_used_at` backwards.
pub fn record_usage(conn: &mut SqliteConnection, batch: &[Usage]) -> Result<(), AppError> {
    super::write(conn, |conn| {
        for usage in batch {
            diesel::update(
                tokens::table.find(usage.token.0).filter(
                    tokens::last_used_at
                        .is_null()
                        .or(tokens::last_used_at.lt(usage.at)),
                ),
            )
            .set((
                tokens::last_used_at.eq(usage.at),
                tokens::last_used_ip.eq(usage.ip.map(|ip| ip.to_string())),
            ))
            .execute(conn)?;
        }
        Ok(())
    })
}

/// Logs `token.expired` once for every unrevoked token past its expiry, and returns how
/// many it logged. The read that finds none takes no write lock.
pub fn log_expired(conn: &mut SqliteConnection) -> Result<usize, AppError> {
    let unlogged = |conn: &mut SqliteConnection| {
        tokens::table
            .filter(tokens::expiry_logged.eq(false))
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.le(super::now()))
            .select(Token::as_select())
            .limit(1000)
            .load::<Token>(conn)
    };
    if unlogged(conn)?.is_empty() {
        return Ok(0);
    }
    super::write(conn, |conn| {
        // Read again under the write lock: another process may have logged them meanwhile.
        let expired = unlogged(conn)?;
        for token in &expired {
            diesel::update(tokens::table.find(token.id))
                .set(tokens::expiry_logged.eq(true))
                .execute(conn)?;
            let detail = token
                .expires_at
                .map(|e| format!("expired at {e} UTC"))
                .unwrap_or_default();
            audit::record(
                conn,
                token.account(),
                &Actor::system(),
                Event {
                    action: action::TOKEN_EXPIRED,
                    target: &token_target(token),
                    token: Some(token.token_id()),
                    detail: &detail,
                },
            )?;
        }
        Ok(expired.len())
    })
}
