//! What the API answers about tokens: `/access-tokens` and `/token`. Each answer is a type
//! the handler returns and `/openapi.json` describes, so the two can't drift.

use serde::Serialize;
use utoipa::ToSchema;

use super::schemas::Pagination;
use crate::auth::cache::CachedToken;
use crate::db::tokens::Token;
use crate::domain::{Credits, RateLimit};
use crate::error::AppError;
use crate::timefmt::rfc3339;

/// A token as `/access-tokens` shows it: never its secret's digest or hint.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AccessToken)]
pub struct AccessToken {
    key: String,
    name: String,
    scopes: Vec<&'static str>,
    /// The email of the member it acts for, when known.
    creator: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    #[schema(schema_with = super::schemas::token_status)]
    status: &'static str,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    revoke_reason: Option<String>,
    rate_limit: Option<RateLimitView>,
    /// Names the account chooses, such as `documents.read`.
    permissions: Vec<String>,
    /// A JSON object returned on verification.
    #[schema(value_type = Option<Object>)]
    meta: Option<serde_json::Value>,
    /// The customer this key belongs to in the caller's own system.
    external_id: Option<String>,
    /// Its credit limit, if it has one.
    credits: Option<CreditsView>,
    /// CIDRs it may be used from; empty for anywhere.
    allowed_ips: Vec<String>,
    /// The secret, in the answer that made the token and never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    secret: Option<String>,
}

impl AccessToken {
    /// A stored token; `creator` is its maker's email where the query joined it. A stored
    /// field that can't be read is an internal error, not a default: `credits: null` would
    /// tell a client the token has no limit.
    pub fn of(token: Token, creator: Option<String>) -> Result<Self, AppError> {
        let fields = token.key_fields()?;
        Ok(Self {
            status: token.status().as_str(),
            scopes: token.scopes.names(),
            created_at: rfc3339(&token.created_at),
            expires_at: token.expires_at.as_ref().map(rfc3339),
            last_used_at: token.last_used_at.as_ref().map(rfc3339),
            revoked_at: token.revoked_at.as_ref().map(rfc3339),
            rate_limit: token.rate_limit_per_minute.map(RateLimitView::of),
            key: token.key,
            name: token.name,
            creator,
            revoke_reason: token.revoke_reason,
            permissions: fields.permissions.iter().map(str::to_string).collect(),
            meta: fields.meta.map(|m| m.value().clone()),
            external_id: fields.external_id.map(|e| e.as_str().to_string()),
            credits: fields.credits.map(CreditsView::of),
            allowed_ips: fields.allowed_ips.names(),
            secret: None,
        })
    }

    /// A token just made, with its secret: shown in this answer only. Its fields were
    /// written from checked input by the same request, so reading them back can't fail but
    /// through a bug.
    pub fn with_secret(
        token: Token,
        secret: &crate::domain::TokenSecret,
    ) -> Result<Self, AppError> {
        Ok(Self {
            secret: Some(secret.expose().to_string()),
            ..Self::of(token, None)?
        })
    }
}

/// A token's rate limit.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitView {
    requests_per_minute: u32,
}

impl RateLimitView {
    fn of(limit: RateLimit) -> Self {
        Self {
            requests_per_minute: limit.per_minute().get(),
        }
    }
}

/// A token's credits: what is left, and its refill.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsView {
    #[schema(minimum = 0)]
    remaining: i64,
    refill: Option<RefillView>,
}

/// Back to `amount` credits at the first use after each UTC day or calendar month begins.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefillView {
    #[schema(pattern = "^(daily|monthly)$")]
    interval: &'static str,
    #[schema(minimum = 0)]
    amount: i64,
}

impl CreditsView {
    fn of(credits: Credits) -> Self {
        Self {
            remaining: credits.remaining(),
            refill: credits.refill.map(|r| RefillView {
                interval: r.interval.as_str(),
                amount: r.amount(),
            }),
        }
    }
}

/// `GET /access-tokens`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenList {
    pub access_tokens: Vec<AccessToken>,
    pub pagination: Pagination,
    pub status: u16,
}

/// One token: `GET`, `PATCH` and `DELETE /access-tokens/{key}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenBody {
    pub access_token: AccessToken,
    pub status: u16,
}

/// `POST /access-tokens`: the new token with its secret.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatedAccessToken {
    pub access_token: AccessToken,
    pub message: &'static str,
    pub status: u16,
}

/// A roll's answer: the successor with its secret, and the old token with its new expiry.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolledAccessToken {
    pub access_token: AccessToken,
    pub rolled_from: AccessToken,
    pub message: &'static str,
    pub status: u16,
}

/// The calling token, as `GET /token` describes it.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CallingToken)]
pub struct CallingTokenView<'a> {
    key: &'a str,
    name: &'a str,
    scopes: Vec<&'static str>,
    account: AccountRef<'a>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    rate_limit: Option<RateLimitView>,
    /// The permissions it carries for its verifiers.
    permissions: Vec<&'a str>,
    /// CIDRs it may be used from; empty for anywhere.
    allowed_ips: Vec<String>,
    /// Its credits left after this call, if it has a credit limit.
    credits: Option<CreditsLeft>,
}

/// What a token with a credit limit has left: `GET /token` and `POST /keys/verify` say it.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsLeft {
    pub remaining: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRef<'a> {
    slug: &'a str,
    name: &'a str,
}

impl<'a> CallingTokenView<'a> {
    /// `remaining`: the live balance of its credits, from the ledger.
    pub fn of(token: &'a CachedToken, remaining: Option<i64>) -> Self {
        Self {
            key: &token.key,
            name: &token.name,
            scopes: token.scopes.names(),
            account: AccountRef {
                slug: &token.account_slug,
                name: &token.account_name,
            },
            created_at: rfc3339(&token.created_at),
            expires_at: token.expires_at.as_ref().map(rfc3339),
            rate_limit: token.rate_limit.map(RateLimitView::of),
            permissions: token.permissions.iter().collect(),
            allowed_ips: token.allowed_ips.names(),
            credits: remaining.map(|remaining| CreditsLeft { remaining }),
        }
    }
}

/// `GET /token`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallingTokenBody<'a> {
    pub token: CallingTokenView<'a>,
    pub status: u16,
}

/// An answer that is a sentence: `DELETE /token`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub message: String,
    pub status: u16,
}
