//! API tokens. Every function that reads or changes one token takes the account, so a
//! token can only be reached through the account that owns it. The operator's lookups
//! across accounts are separate and named as such.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::audit::{self, Actor, Event, action};
use super::schema::{audit_events, tokens, users};
use super::tx::Tx;
use crate::domain::{
    AccountId, Credits, ExternalId, IpAllowlist, KeyFields, KeyMeta, LifetimeLimit, Permissions,
    RateLimit, Reason, Refill, RefillInterval, Scopes, SecretDigest, TokenId, TokenKey, TokenName,
    TokenSecret, UserId,
};
use crate::error::AppError;
use crate::policy::Action;

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
    pub scopes: Scopes,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<i32>,
    pub revoke_reason: Option<String>,
    pub expiry_logged: bool,
    /// The token this one was rolled from, and the one it was rolled to.
    pub rolled_from: Option<i32>,
    pub rolled_to: Option<i32>,
    pub rate_limit_per_minute: Option<RateLimit>,
    /// The token that made this one through the API; `None` for the dashboard's and the
    /// command line's tokens, which stand alone.
    pub maker_token_id: Option<i32>,
    /// Free text: the token's purpose, owner or ticket.
    pub note: String,
    /// What the token carries for its verifiers; [`Token::key_fields`] types them.
    pub permissions: Permissions,
    pub meta: Option<String>,
    pub external_id: Option<String>,
    /// The balance as last written (the guard spends in memory; `auth::credits`).
    pub credits_remaining: Option<i64>,
    pub credits_refill_interval: Option<String>,
    pub credits_refill_amount: Option<i64>,
    pub credits_refilled_at: Option<NaiveDateTime>,
    /// Grows with every change a person makes to the credits.
    pub credits_version: i32,
    pub allowed_ips: IpAllowlist,
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

    /// The credit limit as stored, if the token has one.
    pub fn credits(&self) -> Result<Option<Credits>, AppError> {
        let Some(remaining) = self.credits_remaining else {
            return Ok(None);
        };
        let refill = match (&self.credits_refill_interval, self.credits_refill_amount) {
            (Some(interval), Some(amount)) => Some(
                RefillInterval::parse(interval)
                    .and_then(|i| Refill::new(i, amount))
                    .map_err(AppError::internal)?,
            ),
            _ => None,
        };
        // A balance spent below zero by several instances at once reads as none left.
        Credits::new(remaining.max(0), refill)
            .map(Some)
            .map_err(AppError::internal)
    }

    /// What the token carries for its verifiers, typed.
    pub fn key_fields(&self) -> Result<KeyFields, AppError> {
        Ok(KeyFields {
            permissions: self.permissions.clone(),
            meta: self
                .meta
                .as_deref()
                .map(KeyMeta::parse)
                .transpose()
                .map_err(AppError::internal)?,
            external_id: self
                .external_id
                .as_deref()
                .map(ExternalId::parse)
                .transpose()
                .map_err(AppError::internal)?,
            credits: self.credits()?,
            allowed_ips: self.allowed_ips.clone(),
        })
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
    scopes: Scopes,
    created_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    form_nonce: Option<&'a str>,
    rolled_from: Option<i32>,
    rate_limit_per_minute: Option<RateLimit>,
    maker_token_id: Option<i32>,
    permissions: &'a Permissions,
    meta: Option<String>,
    external_id: Option<&'a str>,
    credits_remaining: Option<i64>,
    credits_refill_interval: Option<&'static str>,
    credits_refill_amount: Option<i64>,
    credits_refilled_at: Option<NaiveDateTime>,
    allowed_ips: &'a IpAllowlist,
}

/// What a new token needs. The key and secret are generated by [`create`].
pub struct TokenRequest {
    pub name: TokenName,
    pub scopes: Scopes,
    pub expires_at: Option<NaiveDateTime>,
    /// Requests per minute; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Permissions, meta, external id, credits and allowed addresses.
    pub fields: KeyFields,
}

/// Creates a token in the account acted in, made by the acting user (none for the
/// command line), with its audit event. The secret is returned once, here, and only
/// its digest and last four characters are stored.
pub fn create(tx: &mut Tx<'_>, request: TokenRequest) -> Result<(Token, TokenSecret), AppError> {
    tx.require(Action::CreateToken)?;
    insert(tx, request, None)
}

/// What a new-token form made.
pub enum FromForm {
    Created(Box<Token>, TokenSecret),
    /// The form was used before (a double click, a resend): the token it made then.
    AlreadyCreated(TokenId),
}

/// [`create`] for the dashboard's form, whose one-use `nonce` is kept with the token.
/// The check and the insert hold the write lock together, so the same form sent many
/// times at once makes one token, and its secret is shown once. Nonces are the signed-in
/// user's own: another person's nonce finds nothing of theirs.
pub fn create_from_form(
    tx: &mut Tx<'_>,
    request: TokenRequest,
    nonce: &str,
) -> Result<FromForm, AppError> {
    tx.require(Action::CreateToken)?;
    let made_before: Option<i32> = tokens::table
        .filter(tokens::user_id.eq(tx.signed_in_user()?.0))
        .filter(tokens::form_nonce.eq(nonce))
        .select(tokens::id)
        .first(tx.conn)
        .optional()?;
    Ok(match made_before {
        Some(id) => FromForm::AlreadyCreated(TokenId(id)),
        None => {
            let (token, secret) = insert(tx, request, Some(nonce))?;
            FromForm::Created(Box::new(token), secret)
        }
    })
}

fn insert(
    tx: &mut Tx<'_>,
    request: TokenRequest,
    form_nonce: Option<&str>,
) -> Result<(Token, TokenSecret), AppError> {
    let account = tx.account()?;
    // The account's lifetime policy, read under the write lock, so a token made while an
    // owner tightens it can't slip past the new limit.
    if let Some(limit) = super::accounts::find(tx.conn, account)?.max_token_lifetime_days {
        limit
            .check(request.expires_at, super::now())
            .map_err(AppError::invalid)?;
    }
    let mut detail = match request.rate_limit {
        Some(limit) => format!("scopes {}; at most {limit}", request.scopes),
        None => format!("scopes {}", request.scopes),
    };
    let fields = request.fields.describe();
    if !fields.is_empty() {
        detail = format!("{detail}; {fields}");
    }
    let (token, secret) = insert_row(
        tx.conn,
        account,
        tx.user(),
        request,
        Successor {
            form_nonce,
            rolled_from: None,
            maker: tx.acting_token(),
        },
    )?;
    tx.log(Event {
        action: action::TOKEN_CREATED,
        target: &token_target(&token),
        token: Some(token.token_id()),
        detail: &detail,
    })?;
    Ok((token, secret))
}

/// Where a new row comes from: a form (its nonce) or a roll (its predecessor), and the
/// token whose tree it joins, if a token made it.
struct Successor<'a> {
    form_nonce: Option<&'a str>,
    rolled_from: Option<i32>,
    maker: Option<TokenId>,
}

/// The row and its "this key now exists" note; the caller logs the event that says why.
fn insert_row(
    conn: &mut DbConnection,
    account: AccountId,
    creator: Option<UserId>,
    request: TokenRequest,
    from: Successor<'_>,
) -> Result<(Token, TokenSecret), AppError> {
    let key = TokenKey::generate();
    let secret = TokenSecret::generate();
    let now = super::now();
    let fields = &request.fields;
    let refill = fields.credits.and_then(|c| c.refill);
    let token = diesel::insert_into(tokens::table)
        .values(NewToken {
            account_id: account.0,
            user_id: creator.map(|u| u.0),
            name: request.name.as_str(),
            key: key.as_str(),
            secret_digest: secret.digest().as_bytes(),
            secret_hint: &secret.hint(),
            scopes: request.scopes,
            created_at: now,
            expires_at: request.expires_at,
            form_nonce: from.form_nonce,
            rolled_from: from.rolled_from,
            rate_limit_per_minute: request.rate_limit,
            maker_token_id: from.maker.map(|m| m.0),
            permissions: &fields.permissions,
            meta: fields.meta.as_ref().map(KeyMeta::to_stored),
            external_id: fields.external_id.as_ref().map(ExternalId::as_str),
            credits_remaining: fields.credits.map(Credits::remaining),
            credits_refill_interval: refill.map(|r| r.interval.as_str()),
            credits_refill_amount: refill.map(Refill::amount),
            // A refill is due at the first use after the period this one is made in.
            credits_refilled_at: fields.credits.map(|_| now),
            allowed_ips: &fields.allowed_ips,
        })
        .returning(super::columns_of::<Token>())
        .get_result(conn)?;
    super::invalidations::record_token_created(conn, &key)?;
    Ok((token, secret))
}

/// What a roll made: the successor, with its secret (shown once), and the old token
/// with its new, nearer expiry.
pub struct Rolled {
    pub old: Token,
    pub new: Token,
    pub secret: TokenSecret,
}

/// Rolls one of the account's tokens, if the actor may manage it (the rule for
/// revocation): a successor with a new key and secret, the same name, creator and scopes,
/// and the old token's lifetime again, capped by the account's policy. The old token's
/// secret keeps working for `grace` (never past its own expiry), then answers 401 like
/// any expired token. Both get a `token.rolled` event.
///
/// The check that the token has no successor yet and the insert hold the write lock
/// together, and the unique index on `rolled_to` backs it: rolling twice at once makes
/// one successor, and the second attempt is told so.
pub fn roll(tx: &mut Tx<'_>, id: TokenId, grace: chrono::Duration) -> Result<Rolled, AppError> {
    let account = tx.account()?;
    let old: Token = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: old.user_id.map(UserId),
    })?;
    let now = super::now();
    match old.status_at(now) {
        Status::Revoked => {
            return Err(AppError::invalid(
                "This token is revoked, so it can't be rolled. Create a new token instead.",
            ));
        }
        Status::Expired => {
            return Err(AppError::invalid(
                "This token has expired, so it can't be rolled. Create a new token instead.",
            ));
        }
        Status::Active => {}
    }
    if let Some(successor) = old.rolled_to {
        let key: String = tokens::table
            .find(successor)
            .select(tokens::key)
            .first(tx.conn)?;
        return Err(AppError::invalid(format!(
            "This token was already rolled to {key}. Roll that one instead."
        )));
    }

    // The successor lives as long as the old token was made to, within the policy.
    let limit = super::accounts::find(tx.conn, account)?.max_token_lifetime_days;
    let lifetime = old.expires_at.map(|e| e - old.created_at);
    let expires_at = match (lifetime, limit) {
        (Some(life), Some(limit)) => Some(now + life.min(limit.duration())),
        (Some(life), None) => Some(now + life),
        (None, Some(limit)) => Some(now + limit.duration()),
        (None, None) => None,
    };
    let request = TokenRequest {
        name: TokenName::parse(&old.name).map_err(AppError::internal)?,
        scopes: old.scopes,
        expires_at,
        rate_limit: old.rate_limit_per_minute,
        // The successor carries what the old one does, its balance as last written
        // included.
        fields: old.key_fields()?,
    };
    let (new, secret) = insert_row(
        tx.conn,
        account,
        old.user_id.map(UserId),
        request,
        Successor {
            form_nonce: None,
            rolled_from: Some(old.id),
            // Rolled through the API, the successor is the calling token's: revoking that
            // token must take it too. Rolled by a person, it stays in the old one's tree.
            maker: tx.acting_token().or(old.maker_token_id.map(TokenId)),
        },
    )?;

    let ends = old.expires_at.map_or(now + grace, |e| e.min(now + grace));
    let old: Token = diesel::update(tokens::table.find(old.id))
        .set((
            tokens::expires_at.eq(Some(ends)),
            tokens::rolled_to.eq(Some(new.id)),
        ))
        .returning(super::columns_of::<Token>())
        .get_result(tx.conn)?;
    // The old token's cached copy carries its old expiry: drop it, so the next request
    // reads the new one.
    let old_key = TokenKey::parse(&old.key).map_err(AppError::internal)?;
    super::invalidations::record_token(tx.conn, &old_key)?;

    let until = if ends <= now {
        "the old secret stopped working at once".to_string()
    } else {
        format!(
            "the old secret works until {} UTC",
            ends.format("%Y-%m-%d %H:%M:%S")
        )
    };
    tx.log(Event {
        action: action::TOKEN_ROLLED,
        target: &token_target(&old),
        token: Some(old.token_id()),
        detail: &format!("rolled to {}; {until}", new.key),
    })?;
    tx.log(Event {
        action: action::TOKEN_ROLLED,
        target: &token_target(&new),
        token: Some(new.token_id()),
        detail: &format!("rolled from {}", old.key),
    })?;
    Ok(Rolled { old, new, secret })
}

/// Logs a refused attempt of the acting token on the token API, with what it was told.
/// Nothing to allow: it is the token's own attempt, named as it was made.
pub fn log_refused(tx: &mut Tx<'_>, detail: &str) -> Result<(), AppError> {
    let target = tx.actor().label.clone();
    let token = tx.acting_token();
    // The reason may hold the caller's own input (a key, a name): keep the row bounded.
    let detail: String = detail.chars().take(500).collect();
    tx.log(Event {
        action: action::TOKEN_API_REFUSED,
        target: &target,
        token,
        detail: &detail,
    })
}

/// What a token is told when it asks to roll itself.
pub const ROLL_ITSELF: &str = "A token can't roll itself: a leaked token must not be able to make a successor that outlives its revocation. Revoke it with DELETE /token, and roll it from the dashboard or the command line.";

/// What a token is told when it asks to roll a token that holds `tokens`.
pub const ROLL_TOKENS_SCOPE: &str = "This token holds the 'tokens' scope, so only the dashboard or the command line may roll it: its successor would hand that scope on.";

/// [`roll`] for a calling API token, by key. Besides the rules of a roll, a token may not
/// roll itself (a leaked token must not mint a successor that outlives its revocation),
/// nor a token holding `tokens` (which only a person grants), nor one whose successor it
/// couldn't have made itself (`policy::may_mint`): all read inside this write.
pub fn roll_by_token(
    tx: &mut Tx<'_>,
    key: &TokenKey,
    grace: chrono::Duration,
) -> Result<Rolled, AppError> {
    let caller = tx
        .calling_token()
        .ok_or_else(|| AppError::internal("roll_by_token needs a calling token"))?;
    let target: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: target.user_id.map(UserId),
    })?;
    if target.token_id() == caller.id {
        return Err(AppError::forbidden(ROLL_ITSELF));
    }
    if target.scopes.contains(crate::domain::Scope::Tokens) {
        return Err(AppError::forbidden(ROLL_TOKENS_SCOPE));
    }
    let rolled = roll(tx, target.token_id(), grace)?;
    // The error rolls the whole write back: no successor, no audit rows.
    crate::policy::may_mint(&caller, rolled.new.scopes, rolled.new.expires_at)
        .and_then(|()| crate::policy::may_limit(&caller, rolled.new.rate_limit_per_minute))
        .map_err(|e| {
        AppError::forbidden(format!(
            "This token can't roll {}: its successor would carry what this token can't hand on. {e}",
            rolled.old.key
        ))
    })?;
    Ok(rolled)
}

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

/// What a token revoking itself leaves as its reason.
pub const REVOKED_ITSELF: &str = "Revoked by the token itself (DELETE /token).";

/// The acting token revokes itself (`DELETE /token`): no scope needed, only its own key
/// and secret. The audit event names the token as the actor.
pub fn revoke_itself(tx: &mut Tx<'_>) -> Result<Token, AppError> {
    let id = tx.acting_token().ok_or(AppError::NotFound)?;
    tx.require(Action::RevokeItself { token: id })?;
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(tx.conn)?;
    let actor = tx.actor().clone();
    revoke_in_tx(tx.conn, token, &actor, REVOKED_ITSELF)
}

pub(super) fn token_target(token: &Token) -> String {
    format!("token {} ({})", token.name, token.key)
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

pub(super) type ViewRow = (Token, Option<String>, Option<String>);

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
    let now = super::now();
    query = match filter.status {
        None => query,
        Some(Status::Revoked) => query.filter(tokens::revoked_at.is_not_null()),
        Some(Status::Expired) => query
            .filter(tokens::revoked_at.is_null())
            .filter(tokens::expires_at.le(now)),
        Some(Status::Active) => query.filter(super::standing::token_active_at(now)),
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

/// One of the account's tokens, read under the write lock, if the actor may manage it.
pub(super) fn managed(tx: &mut Tx<'_>, id: TokenId) -> Result<Token, AppError> {
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: token.user_id.map(UserId),
    })?;
    Ok(token)
}

/// Revokes one of the account's tokens, if the actor may manage it, with its audit
/// event and a cache invalidation. Revoking a revoked token changes nothing and logs
/// nothing.
pub fn revoke(tx: &mut Tx<'_>, id: TokenId, reason: &Reason) -> Result<Token, AppError> {
    let token = managed(tx, id)?;
    let actor = tx.actor().clone();
    revoke_in_tx(tx.conn, token, &actor, reason.as_str())
}

/// Revokes `token`, as read under the write lock by the caller, and every token below it
/// in its tree ([`revoke_descendants`]). The row is written, not read back: the caller's
/// read is the only one, and the answer is that row as changed.
pub(super) fn revoke_in_tx(
    conn: &mut DbConnection,
    token: Token,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    let revoked = revoke_row(conn, token, actor, reason)?;
    revoke_descendants(conn, &revoked, actor, "")?;
    Ok(revoked)
}

/// Revokes every unrevoked token below `maker` in its tree, each with "revoked with its
/// maker kw_…" (and `why`, when given) and its own audit event and cache note, in the
/// caller's transaction. Returns how many it revoked.
fn revoke_descendants(
    conn: &mut DbConnection,
    maker: &Token,
    actor: &Actor,
    why: &str,
) -> Result<usize, AppError> {
    let tree = super::token_tree::descendants(conn, maker.id)?;
    let mut keys = std::collections::HashMap::from([(maker.id, maker.key.clone())]);
    let mut revoked = 0;
    for link in tree {
        let child: Token = tokens::table
            .find(link.id)
            .select(Token::as_select())
            .first(conn)?;
        keys.insert(child.id, child.key.clone());
        if child.revoked_at.is_some() {
            continue;
        }
        let maker_key = keys.get(&link.maker).map_or("", String::as_str);
        let reason = format!("revoked with its maker {maker_key}{why}");
        revoke_row(conn, child, actor, &reason)?;
        revoked += 1;
    }
    Ok(revoked)
}

/// One token's revocation: the row, its audit event and its cache note.
fn revoke_row(
    conn: &mut DbConnection,
    token: Token,
    actor: &Actor,
    reason: &str,
) -> Result<Token, AppError> {
    let revoked = Token {
        revoked_at: Some(super::now()),
        revoked_by: actor.user_id.map(|u| u.0),
        revoke_reason: Some(reason.to_string()).filter(|r| !r.is_empty()),
        ..token
    };
    diesel::update(tokens::table.find(revoked.id))
        .set((
            tokens::revoked_at.eq(revoked.revoked_at),
            tokens::revoked_by.eq(revoked.revoked_by),
            tokens::revoke_reason.eq(&revoked.revoke_reason),
        ))
        .execute(conn)?;
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

/// Sets or clears one of the account's tokens' rate limit, if the actor may manage the
/// token, with its audit event and a cache note, so every server's guard reloads the
/// token and applies the new limit. A revoked token keeps the limit it had, and setting
/// the limit it already has changes and logs nothing.
pub fn set_rate_limit(
    tx: &mut Tx<'_>,
    id: TokenId,
    limit: Option<RateLimit>,
) -> Result<Token, AppError> {
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::id.eq(id.0))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: token.user_id.map(UserId),
    })?;
    if token.revoked_at.is_some() {
        return Err(AppError::invalid(
            "This token is revoked: its rate limit can no longer change.",
        ));
    }
    if token.rate_limit_per_minute == limit {
        return Ok(token);
    }
    let loosens = match (token.rate_limit_per_minute, limit) {
        (Some(_), None) => true,
        (Some(now), Some(wanted)) => wanted.per_minute() > now.per_minute(),
        (None, _) => false,
    };
    if loosens {
        tx.require(Action::LoosenRateLimit)?;
    }
    let changed = diesel::update(tokens::table.find(token.id))
        .set(tokens::rate_limit_per_minute.eq(limit))
        .returning(super::columns_of::<Token>())
        .get_result(tx.conn)?;
    let describe = |limit: Option<RateLimit>| match limit {
        Some(limit) => format!("at most {limit}"),
        None => "no limit".to_string(),
    };
    tx.log(Event {
        action: action::TOKEN_RATE_LIMIT_CHANGED,
        target: &token_target(&changed),
        token: Some(changed.token_id()),
        detail: &format!(
            "from {} to {}",
            describe(token.rate_limit_per_minute),
            describe(limit)
        ),
    })?;
    let key = TokenKey::parse(&changed.key).map_err(AppError::internal)?;
    super::invalidations::record_token(tx.conn, &key)?;
    Ok(changed)
}

/// Revokes every active token a member created in the account, when they are removed.
/// Part of `members::remove_member`, which holds the write lock and checked the rules.
pub(super) fn revoke_all_of_creator(
    conn: &mut DbConnection,
    account: AccountId,
    creator: UserId,
    actor: &Actor,
    reason: &str,
) -> Result<Vec<Token>, AppError> {
    let active: Vec<i32> = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::user_id.eq(creator.0))
        .filter(tokens::revoked_at.is_null())
        .select(tokens::id)
        .order(tokens::id)
        .load(conn)?;
    let mut revoked = Vec::new();
    for id in active {
        // Read each one now: revoking an earlier one may have taken it with its tree.
        let token: Token = tokens::table
            .find(id)
            .select(Token::as_select())
            .first(conn)?;
        if token.revoked_at.is_none() {
            revoked.push(revoke_in_tx(conn, token, actor, reason)?);
        }
    }
    Ok(revoked)
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

/// Operators and the command line: revoke by key in whatever account holds it.
pub fn revoke_by_key(tx: &mut Tx<'_>, key: &TokenKey, reason: &Reason) -> Result<Token, AppError> {
    tx.require(Action::OperatorConsole)?;
    let token: Token = tokens::table
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(tx.conn)
        .optional()?
        .ok_or_else(|| AppError::invalid(format!("No token has the key {key}.")))?;
    let actor = tx.actor().clone();
    let was_active = token.revoked_at.is_none();
    let revoked = revoke_in_tx(tx.conn, token, &actor, reason.as_str())?;
    if was_active {
        super::notices::token_revoked(tx.conn, revoked.id, "an operator", reason.as_str())?;
    }
    Ok(revoked)
}

/// The guard's one read on a cache miss: the token by key, whatever its state.
pub fn find_for_guard(
    conn: &mut DbConnection,
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

/// Logs `token.expired` once for every unrevoked token past its expiry, and returns how
/// many it logged. The read that finds none takes no write lock.
pub fn log_expired(conn: &mut DbConnection) -> Result<usize, AppError> {
    let unlogged = |conn: &mut DbConnection| {
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
    super::tx::as_system(conn, |tx| {
        // Read again under the write lock: another process may have logged them meanwhile.
        let expired = unlogged(tx.conn)?;
        for token in &expired {
            diesel::update(tokens::table.find(token.id))
                .set(tokens::expiry_logged.eq(true))
                .execute(tx.conn)?;
            let detail = token
                .expires_at
                .map(|e| format!("expired at {e} UTC"))
                .unwrap_or_default();
            tx.log_to(
                token.account(),
                Event {
                    action: action::TOKEN_EXPIRED,
                    target: &token_target(token),
                    token: Some(token.token_id()),
                    detail: &detail,
                },
            )?;
            // A token never outlives its maker: what it made goes when it expires.
            let actor = tx.actor().clone();
            revoke_descendants(tx.conn, token, &actor, ", which expired")?;
        }
        Ok(expired.len())
    })
}

/// The account's active tokens that live longer than `limit` allows (or for ever): made
/// before the limit was set, they keep working until their own expiry.
pub fn outliving(
    conn: &mut DbConnection,
    account: AccountId,
    limit: LifetimeLimit,
) -> Result<Vec<TokenView>, AppError> {
    let now = super::now();
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
    let now = super::now();
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

/// [`create`] for a calling API token: it may hand on only what it holds itself
/// (`policy::may_mint`, and no looser a rate limit, `policy::may_limit`), checked against
/// the caller as read inside this write. The new token joins the caller's tree.
pub fn create_by_token(
    tx: &mut Tx<'_>,
    request: TokenRequest,
) -> Result<(Token, TokenSecret), AppError> {
    tx.require(Action::CreateToken)?;
    let caller = tx
        .calling_token()
        .ok_or_else(|| AppError::internal("create_by_token needs a calling token"))?;
    crate::policy::may_mint(&caller, request.scopes, request.expires_at)
        .map_err(AppError::forbidden)?;
    crate::policy::may_limit(&caller, request.rate_limit).map_err(AppError::invalid)?;
    may_hand_on(tx, &request.fields)?;
    insert(tx, request, None)
}

/// When a token acts: `fields` give no permission it doesn't hold, no address it may not
/// be used from, and no more credits than it has left (as last written: at most one flush behind its spending).
pub(super) fn may_hand_on(tx: &mut Tx<'_>, fields: &KeyFields) -> Result<(), AppError> {
    let Some(caller) = tx.calling_token() else {
        return Ok(());
    };
    let own: Token = tokens::table
        .find(caller.id.0)
        .select(Token::as_select())
        .first(tx.conn)?;
    crate::policy::may_grant_permissions(&own.permissions, &fields.permissions)
        .map_err(AppError::forbidden)?;
    crate::policy::may_grant_addresses(&own.allowed_ips, &fields.allowed_ips)
        .map_err(AppError::forbidden)?;
    crate::policy::may_grant_credits(own.credits()?, fields.credits).map_err(AppError::invalid)
}

/// Revokes one of the account's tokens by its key, if the actor may manage it. Another
/// account's key is `NotFound`; revoking a revoked token changes and logs nothing.
/// One of the account's tokens' id, by its key; another account's key is `NotFound`.
pub fn id_by_key_in_account(tx: &mut Tx<'_>, key: &TokenKey) -> Result<TokenId, AppError> {
    let id: i32 = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::key.eq(key.as_str()))
        .select(tokens::id)
        .first(tx.conn)?;
    Ok(TokenId(id))
}

pub fn revoke_by_key_in_account(
    tx: &mut Tx<'_>,
    key: &TokenKey,
    reason: &Reason,
) -> Result<Token, AppError> {
    let token: Token = tokens::table
        .filter(tokens::account_id.eq(tx.account()?.0))
        .filter(tokens::key.eq(key.as_str()))
        .select(Token::as_select())
        .first(tx.conn)?;
    tx.require(Action::ManageToken {
        creator: token.user_id.map(UserId),
    })?;
    let actor = tx.actor().clone();
    revoke_in_tx(tx.conn, token, &actor, reason.as_str())
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

/// Revokes the token each leaked secret belongs to, in whatever account holds it, with
/// that secret's reason. Secrets of no token, and tokens already revoked, change nothing.
/// Returns how many tokens this revoked.
pub fn revoke_leaked(tx: &mut Tx<'_>, leaks: &[(SecretDigest, Reason)]) -> Result<usize, AppError> {
    tx.require(Action::RevokeLeakedSecret)?;
    let actor = tx.actor().clone();
    let mut revoked = 0;
    for (digest, reason) in leaks {
        let token: Option<Token> = tokens::table
            .filter(tokens::secret_digest.eq(digest.as_bytes()))
            .select(Token::as_select())
            .first(tx.conn)
            .optional()?;
        if let Some(token) = token.filter(|t| t.revoked_at.is_none()) {
            let id = token.id;
            revoke_in_tx(tx.conn, token, &actor, reason.as_str())?;
            super::notices::token_revoked(tx.conn, id, "a leaked-secret report", reason.as_str())?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Every account's slug with its tokens that are neither revoked nor expired at `now`
/// (zero for an account with none), for the metrics' per-account gauge. One grouped read
/// across all accounts: the server's own figure, never shown to a tenant.
pub fn active_per_account(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Vec<(String, i64)>, AppError> {
    use super::schema::accounts;
    let active = tokens::account_id
        .eq(accounts::id)
        .and(super::standing::token_active_at(now));
    Ok(accounts::table
        .left_join(tokens::table.on(active))
        .group_by((accounts::id, accounts::slug))
        .select((accounts::slug, diesel::dsl::count(tokens::id.nullable())))
        .order_by(accounts::id)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};

    use super::*;
    use crate::db::tx::{Principal, transact};
    use crate::domain::AccountName;

    /// Every statement the connection runs, as SQL.
    #[derive(Clone, Default)]
    struct Statements(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Statements {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                self.0.lock().unwrap().push(query.to_string());
            }
        }
    }

    #[test]
    fn a_revoke_reads_the_token_once_and_answers_with_the_row_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::connect(dir.path().join("t.db").to_str().unwrap()).unwrap();
        let mut conn = pool.get().unwrap();
        let (account, token) = transact(&mut conn, &Principal::CommandLine, None, |tx| {
            let name = AccountName::parse("Acme").map_err(AppError::invalid)?;
            Ok(crate::db::accounts::create(tx.conn, &name)?.account_id())
        })
        .and_then(|account| {
            transact(&mut conn, &Principal::CommandLine, Some(account), |tx| {
                let request = TokenRequest {
                    name: TokenName::parse("ci").map_err(AppError::invalid)?,
                    scopes: Scopes::all(),
                    expires_at: None,
                    rate_limit: None,
                    fields: KeyFields::default(),
                };
                Ok((account, create(tx, request)?.0))
            })
        })
        .unwrap();

        let statements = Statements::default();
        conn.set_instrumentation(statements.clone());
        let reason = Reason::parse("leaked").unwrap();
        let revoked = transact(&mut conn, &Principal::CommandLine, Some(account), |tx| {
            revoke(tx, token.token_id(), &reason)
        })
        .unwrap();
        conn.set_instrumentation(diesel::connection::get_default_instrumentation());

        let seen = statements.0.lock().unwrap().clone();
        let token_reads: Vec<&String> = seen
            .iter()
            .filter(|sql| {
                // The walk of its tree (none here) reads ids, not the row.
                (sql.starts_with("SELECT")
                    && sql.contains("FROM `tokens`")
                    && !sql.contains("`maker_token_id` IN"))
                    || sql.contains("RETURNING")
            })
            .collect();
        assert_eq!(
            token_reads.len(),
            1,
            "the token was read by: {token_reads:#?}"
        );
        let stored: Token = tokens::table
            .find(token.id)
            .select(Token::as_select())
            .first(&mut conn)
            .unwrap();
        assert!(stored.revoked_at.is_some());
        assert_eq!(stored.revoked_at, revoked.revoked_at);
        assert_eq!(stored.revoke_reason.as_deref(), Some("leaked"));
        assert_eq!(stored.revoked_by, revoked.revoked_by);
    }
}
