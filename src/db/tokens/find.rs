//! Reading tokens: one account's lists and pages, one token by id or key, the guard's
//! lookup, and the operator's lookups across accounts, named as such.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;

use crate::db::audit::action;
use crate::db::schema::{audit_events, tokens, users};
use crate::db::tx::Tx;
use crate::domain::{AccountId, LifetimeLimit, SecretDigest, TokenId, TokenKey, UserId};
use crate::error::AppError;

use super::*;

/// The key of one of the account's tokens; another account's is `NotFound`.
pub fn key_in_account(
    conn: &mut DbConnection,
    account: AccountId,
    id: TokenId,
) -> Result<String, AppError> {
    Ok(tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq(id.0))
        .select(tokens::key)
        .first(conn)?)
}

/// Filters for the token list.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub creator: Option<UserId>,
    pub status: Option<Status>,
}

/// A token with the email of whoever created it, and who revoked it as the audit log
/// names them: a person's email, an operator, the command line, the system, or a token
/// (itself or another).
#[derive(Debug, Clone)]
pub struct TokenView {
    pub token: Token,
    pub creator_email: Option<String>,
    pub revoker: Option<String>,
}

/// The tokens table joined to the email of whoever created each token and to its
/// revocation's audit event (a token is revoked once, and that is logged once), so a
/// list of tokens is one query, not two more per token. Add filters, then load rows
/// and turn each into a view with [`TokenView::from`].
macro_rules! with_people {
    () => {{
        let creators = diesel::alias!(users as creators);
        tokens::table
            .left_join(creators.on(tokens::user_id.eq(creators.field(users::id).nullable())))
            .left_join(
                audit_events::table.on(audit_events::token_id
                    .eq(tokens::id.nullable())
                    .and(audit_events::action.eq(action::TOKEN_REVOKED))),
            )
            .select((
                Token::as_select(),
                creators.field(users::email).nullable(),
                audit_events::actor_label.nullable(),
            ))
    }};
}

pub(in crate::db) type ViewRow = (Token, Option<String>, Option<String>);

impl From<ViewRow> for TokenView {
    fn from((token, creator_email, revoker): ViewRow) -> Self {
        Self {
            token,
            creator_email,
            revoker,
        }
    }
}

/// The account's tokens, newest first.
pub fn list_for_account(
    conn: &mut DbConnection,
    account: AccountId,
    filter: &TokenFilter,
) -> Result<Vec<TokenView>, AppError> {
    let mut query = with_people!()
        .filter(tokens::account_id.eq(account.0))
        .into_boxed();
    if let Some(creator) = filter.creator {
        query = query.filter(tokens::user_id.eq(creator.0));
    }
    let now = crate::db::now();
    query = match filter.status {
        None => query,
        Some(Status::Revoked) => query.filter(tokens::revoked_at.is_not_null()),
        Some(Status::Expired) => query
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.le(now)),
        Some(Status::Active) => query.filter(crate::db::standing::token_active_at(now)),
    };
    let rows: Vec<ViewRow> = query
        .order((tokens::created_at.desc(), tokens::id.desc()))
        .load(conn)?;
    Ok(rows.into_iter().map(TokenView::from).collect())
}

/// One token of the account; another account's id is `NotFound`.
pub fn find_for_account(
    conn: &mut DbConnection,
    account: AccountId,
    id: TokenId,
) -> Result<TokenView, AppError> {
    let row: ViewRow = with_people!()
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq(id.0))
        .first(conn)?;
    Ok(row.into())
}

/// Operator and CLI: a token in any account, by its public key.
pub fn find_by_key_any_account(
    conn: &mut DbConnection,
    key: &TokenKey,
) -> Result<Option<TokenView>, AppError> {
    find_any_account(conn, Unique::Key(key))
}

/// Operator: a token in any account, by a pasted (leaked) secret.
pub fn find_by_digest_any_account(
    conn: &mut DbConnection,
    digest: &SecretDigest,
) -> Result<Option<TokenView>, AppError> {
    find_any_account(conn, Unique::Digest(digest))
}

/// A column no two tokens share, with the value to find.
enum Unique<'a> {
    Key(&'a TokenKey),
    Digest(&'a SecretDigest),
}

/// The one token, in whichever account, that has `value`.
fn find_any_account(
    conn: &mut DbConnection,
    value: Unique<'_>,
) -> Result<Option<TokenView>, AppError> {
    let query = with_people!().into_boxed();
    let query = match value {
        Unique::Key(key) => query.filter(tokens::key.eq(key.as_str())),
        Unique::Digest(digest) => query.filter(tokens::secret_digest.eq(digest.as_bytes())),
    };
    let row: Option<ViewRow> = query.first(conn).optional()?;
    Ok(row.map(TokenView::from))
}

/// The guard's one read on a cache miss: the token by key, whatever its state.
pub fn find_for_guard(
    conn: &mut DbConnection,
    key: &TokenKey,
) -> Result<Option<(Token, crate::db::accounts::Account)>, AppError> {
    use crate::db::schema::accounts;
    Ok(tokens::table
        .inner_join(accounts::table)
        .filter(tokens::key.eq(key.as_str()))
        .select((
            Token::as_select(),
            crate::db::accounts::Account::as_select(),
        ))
        .first(conn)
        .optional()?)
}

/// The account's active tokens that live longer than `limit` allows (or for ever): made
/// before the limit was set, they keep working until their own expiry.
pub fn outliving(
    conn: &mut DbConnection,
    account: AccountId,
    limit: LifetimeLimit,
) -> Result<Vec<TokenView>, AppError> {
    let now = crate::db::now();
    let rows: Vec<ViewRow> = with_people!()
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::revoked_at.is_null())
        .filter(
            tokens::expires_at
                .is_null()
                .or(tokens::expires_at.gt(now + limit.duration())),
        )
        .order((tokens::created_at.desc(), tokens::id.desc()))
        .load(conn)?;
    Ok(rows.into_iter().map(TokenView::from).collect())
}

/// Active tokens that expire within `within` and have not been rolled yet: the ones
/// someone should roll soon. Only `creator`'s when given.
pub fn expiring_soon(
    conn: &mut DbConnection,
    account: AccountId,
    creator: Option<UserId>,
    within: chrono::Duration,
) -> Result<Vec<TokenView>, AppError> {
    let now = crate::db::now();
    let mut query = with_people!()
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::revoked_at.is_null())
        .filter(tokens::rolled_to.is_null())
        .filter(tokens::expires_at.gt(now))
        .filter(tokens::expires_at.le(now + within))
        .into_boxed();
    if let Some(creator) = creator {
        query = query.filter(tokens::user_id.eq(creator.0));
    }
    let rows: Vec<ViewRow> = query.order(tokens::expires_at.asc()).load(conn)?;
    Ok(rows.into_iter().map(TokenView::from).collect())
}

// ---------------------------------------------------------------------------------------------
// The token-management API (`/access-tokens`), where the actor is a token, and leaked-secret
// reports (`/secret-scanning/report`), where it is the system.
// ---------------------------------------------------------------------------------------------

/// One page of the account's tokens, newest first, and how many there are in all; only
/// `creator`'s when given.
pub fn page_for_account(
    conn: &mut DbConnection,
    account: AccountId,
    creator: Option<UserId>,
    paging: crate::domain::Paging,
) -> Result<(Vec<TokenView>, i64), AppError> {
    let mut count = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .count()
        .into_boxed();
    let mut query = with_people!()
        .filter(tokens::account_id.eq(account.0))
        .into_boxed();
    if let Some(creator) = creator {
        count = count.filter(tokens::user_id.eq(creator.0));
        query = query.filter(tokens::user_id.eq(creator.0));
    }
    let total = count.get_result(conn)?;
    let rows: Vec<ViewRow> = query
        .order((tokens::created_at.desc(), tokens::id.desc()))
        .offset(paging.offset())
        .limit(paging.size())
        .load(conn)?;
    Ok((rows.into_iter().map(TokenView::from).collect(), total))
}

/// One of the account's tokens by its key; another account's key is `NotFound`.
pub fn find_by_key_for_account(
    conn: &mut DbConnection,
    account: AccountId,
    key: &TokenKey,
) -> Result<TokenView, AppError> {
    let row: ViewRow = with_people!()
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::key.eq(key.as_str()))
        .first(conn)?;
    Ok(row.into())
}

/// One of the account's tokens' id, by its key; another account's key is `NotFound`.
pub fn id_by_key_in_account(tx: &mut Tx<'_>, key: &TokenKey) -> Result<TokenId, AppError> {
    let id: i32 = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::key.eq(key.as_str()))
        .select(tokens::id)
        .first(tx.conn)?;
    Ok(TokenId(id))
}

/// Of these digests, those that belong to a token, each with whether that token is
/// still unrevoked: an expired token may still have a live tree below it, which a leak
/// must take down. One indexed read (the digest column is unique), whatever the accounts.
pub fn digests_known(
    conn: &mut DbConnection,
    digests: &[SecretDigest],
) -> Result<Vec<(SecretDigest, bool)>, AppError> {
    if digests.is_empty() {
        return Ok(Vec::new());
    }
    let bytes: Vec<&[u8]> = digests.iter().map(SecretDigest::as_bytes).collect();
    let found: Vec<Token> = tokens::table
        .filter(tokens::secret_digest.eq_any(bytes))
        .select(Token::as_select())
        .load(conn)?;
    Ok(found
        .iter()
        .filter_map(|t| {
            let digest = SecretDigest::from_bytes(&t.secret_digest)?;
            Some((digest, t.revoked_at.is_none()))
        })
        .collect())
}

/// Every account's slug with its tokens that are neither revoked nor expired at `now`
/// (zero for an account with none), for the metrics' per-account gauge. One grouped read
/// across all accounts: the server's own figure, never shown to a tenant.
pub fn active_per_account(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Vec<(String, i64)>, AppError> {
    use crate::db::schema::accounts;
    let active = tokens::account_id
        .eq(accounts::id)
        .and(crate::db::standing::token_active_at(now));
    Ok(accounts::table
        .left_join(tokens::table.on(active))
        .group_by((accounts::id, accounts::slug))
        .select((accounts::slug, diesel::dsl::count(tokens::id.nullable())))
        .order_by(accounts::id)
        .load(conn)?)
}
