//! `/access-tokens`: the account's tokens, managed by a token with the `tokens` scope. The
//! calling token is the actor of every change; it acts for the member who made it (see
//! `policy::allows`), and may hand on no more than it holds (`policy::may_mint`).

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::schemas::Pagination;
use super::token_views::{
    AccessToken, AccessTokenBody, AccessTokenList, CreatedAccessToken, RolledAccessToken,
};
use crate::auth::guard::ApiCaller;
use crate::db::tokens::TokenRequest;
use crate::db::{self};
use crate::domain::{Grace, RateLimit, Reason, Scope, Scopes, TokenKey, TokenName};
use crate::error::AppError;
use crate::policy::{self, Action};
use crate::state::AppState;

/// The longest lifetime a new token may ask for, as in the dashboard.
const MAX_DAYS: i64 = 3650;

/// A key from the path; one that can't exist is simply not found.
fn path_key(raw: &str) -> Result<TokenKey, AppError> {
    TokenKey::parse(raw).map_err(|_| AppError::NotFound)
}

#[utoipa::path(
    get,
    path = "/access-tokens",
    tag = "tokens",
    security(("basic" = [])),
    params(
        ("page" = Option<i64>, Query, minimum = 1, description = "The page, from 1"),
        ("size" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Entries a page, 20 unless given"),
    ),
    responses(
        (status = 200, description = "A page of the tokens the caller may see", body = AccessTokenList),
        super::schemas::Guarded,
    )
)]
pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Tokens)?;
    let paging = super::clusters::pagination(req.query_string())?;
    let account = caller.account();
    let (views, total) = db::run(&state.pool, move |conn| {
        let standing = db::tx::standing_for_read(conn, &who, Some(account))?;
        // A member's token lists what its maker may see: their own tokens.
        let creator = if policy::allows(&standing, Action::SeeAllTokens) {
            None
        } else if policy::allows(&standing, Action::CreateToken) {
            standing.user
        } else {
            return Err(AppError::forbidden(policy::refusal(
                &standing,
                Action::SeeAllTokens,
            )));
        };
        db::tokens::page_for_account(conn, account, creator, paging)
    })
    .await?;
    Ok(super::answer(
        StatusCode::OK,
        &AccessTokenList {
            access_tokens: views
                .into_iter()
                .map(|v| AccessToken::of(v.token, v.creator_email))
                .collect::<Result<_, _>>()?,
            pagination: Pagination::of(paging, total),
            status: StatusCode::OK.as_u16(),
        },
    ))
}

#[utoipa::path(
    get,
    path = "/access-tokens/{key}",
    tag = "tokens",
    security(("basic" = [])),
    params(("key" = String, Path, description = "The token's key")),
    responses(
        (status = 200, description = "One token", body = AccessTokenBody),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
    )
)]
pub async fn show(
    caller: ApiCaller,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Tokens)?;
    let key = path_key(&key)?;
    let account = caller.account();
    let view = db::run(&state.pool, move |conn| {
        let standing = db::tx::standing_for_read(conn, &who, Some(account))?;
        let view = db::tokens::find_by_key_for_account(conn, account, &key)?;
        let action = Action::ManageToken {
            creator: view.token.user_id.map(crate::domain::UserId),
        };
        // Another account's key was a 404 above; a colleague's token, for a member's
        // token, is a 403, as in the dashboard and as DELETE answers.
        if policy::allows(&standing, action) {
            Ok(view)
        } else {
            Err(AppError::forbidden(policy::refusal(&standing, action)))
        }
    })
    .await?;
    Ok(one(AccessToken::of(view.token, view.creator_email)?))
}

/// One token, as `GET`, `PATCH` and `DELETE` answer it.
fn one(access_token: AccessToken) -> HttpResponse {
    super::answer(
        StatusCode::OK,
        &AccessTokenBody {
            access_token,
            status: StatusCode::OK.as_u16(),
        },
    )
}

/// Each field is read as any JSON value, so a wrong type gets a sentence naming it; the
/// schema says what is accepted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenInput {
    #[schema(schema_with = super::schemas::human_name, required = true)]
    name: Option<Value>,
    #[schema(schema_with = super::schemas::scope_list, required = true)]
    scopes: Option<Value>,
    /// Days from now, 1 to 3650; absent or null for a token that doesn't expire.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3650)]
    expires_in_days: Option<Value>,
    /// Requests per minute; absent or null for no limit.
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100_000_000)]
    rate_limit_per_minute: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::permission_list)]
    permissions: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::key_meta)]
    meta: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::external_id)]
    external_id: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::credits_input)]
    credits: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::cidr_list)]
    allowed_ips: Option<Value>,
}

/// Checks every field and reports every problem at once, each sentence naming its field.
fn check_new_token(input: NewTokenInput) -> Result<TokenRequest, AppError> {
    let mut errors = Vec::new();
    let fields = super::key_fields::Sent {
        permissions: input.permissions,
        meta: input.meta,
        external_id: input.external_id,
        credits: input.credits,
        allowed_ips: input.allowed_ips,
    }
    .fields(&mut errors);
    let name = match input.name {
        Some(Value::String(raw)) => TokenName::parse(&raw)
            .map_err(|e| errors.push(format!("'name': {e}")))
            .ok(),
        None | Some(Value::Null) => {
            errors.push("'name' is required.".to_string());
            None
        }
        Some(_) => {
            errors.push("'name' must be a string.".to_string());
            None
        }
    };
    let scopes = match input.scopes {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Scope::parse(s),
                _ => Err("each scope must be a string.".into()),
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(Scopes::new)
            .map_err(|e| errors.push(format!("'scopes': {e}")))
            .ok(),
        None | Some(Value::Null) => {
            errors.push("'scopes' is required: a list such as [\"read\"].".to_string());
            None
        }
        Some(_) => {
            errors.push("'scopes' must be a list of strings, such as [\"read\"].".to_string());
            None
        }
    };
    let expires_at = match input.expires_in_days {
        None | Some(Value::Null) => Some(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(days @ 1..=MAX_DAYS) => Some(Some(db::now() + chrono::Duration::days(days))),
            _ => None,
        },
        Some(_) => None,
    };
    if expires_at.is_none() {
        errors.push(format!(
            "'expires_in_days' must be a whole number from 1 to {MAX_DAYS}, or null for a token that doesn't expire."
        ));
    }
    let rate_limit = match input.rate_limit_per_minute {
        None | Some(Value::Null) => Some(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .and_then(|n| RateLimit::new(n).ok())
            .map(Some),
        Some(_) => None,
    };
    if rate_limit.is_none() {
        errors.push(format!(
            "'rate_limit_per_minute' must be a whole number from 1 to {}, or null for no limit.",
            RateLimit::MAX
        ));
    }
    match (name, scopes, expires_at, rate_limit) {
        (Some(name), Some(scopes), Some(expires_at), Some(rate_limit)) if errors.is_empty() => {
            Ok(TokenRequest {
                name,
                scopes,
                expires_at,
                rate_limit,
                fields,
            })
        }
        _ => Err(AppError::Invalid(errors)),
    }
}

#[utoipa::path(
    post,
    path = "/access-tokens",
    tag = "tokens",
    security(("basic" = [])),
    request_body = NewTokenInput,
    responses(
        (status = 201, description = "The new token, with its secret, shown this once", body = CreatedAccessToken, headers(("Cache-Control" = String, description = "no-store"))),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn create(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Tokens)?;
    let request = check_new_token(super::parse_json(&body)?)?;
    let account = caller.account();
    let (token, secret) = state
        .write(who, Some(account), move |tx| {
            db::tokens::create_by_token(tx, request)
        })
        .showing_once()
        .await?;
    Ok(with_secret(super::answer(
        StatusCode::CREATED,
        &CreatedAccessToken {
            access_token: AccessToken::with_secret(token, &secret)?,
            message: "Store the secret now: it will not be shown again.",
            status: StatusCode::CREATED.as_u16(),
        },
    )))
}

/// What `PATCH` may change: each field absent is left as it is, and `null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeTokenInput {
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::permission_list)]
    permissions: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::key_meta)]
    meta: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::external_id)]
    external_id: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::credits_input)]
    credits: Option<Value>,
    #[serde(default, deserialize_with = "super::key_fields::present")]
    #[schema(schema_with = super::schemas::cidr_list)]
    allowed_ips: Option<Value>,
}

#[utoipa::path(
    patch,
    path = "/access-tokens/{key}",
    tag = "tokens",
    security(("basic" = [])),
    params(("key" = String, Path, description = "The token's key")),
    request_body = ChangeTokenInput,
    responses(
        (status = 200, description = "The token, changed", body = AccessTokenBody),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
/// Changes what one of the account's tokens carries for its verifiers: its permissions,
/// meta, external id, credits and allowed IPs.
pub async fn change(
    caller: ApiCaller,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Tokens)?;
    let key = path_key(&key)?;
    let input: ChangeTokenInput = super::parse_json(&body)?;
    let mut errors = Vec::new();
    let change = super::key_fields::Sent {
        permissions: input.permissions,
        meta: input.meta,
        external_id: input.external_id,
        credits: input.credits,
        allowed_ips: input.allowed_ips,
    }
    .change(&mut errors);
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let account = caller.account();
    let token = state
        .write(who, Some(account), move |tx| {
            let id = db::tokens::id_by_key_in_account(tx, &key)?;
            db::token_edits::set_key_fields(tx, id, &change)
        })
        .await?;
    Ok(one(AccessToken::of(token, None)?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeInput {
    reason: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/access-tokens/{key}",
    tag = "tokens",
    security(("basic" = [])),
    params(("key" = String, Path, description = "The token's key")),
    request_body(content = Option<RevokeInput>, description = "Optional: why"),
    responses(
        (status = 200, description = "The token, revoked", body = AccessTokenBody),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn revoke(
    caller: ApiCaller,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Tokens)?;
    let key = path_key(&key)?;
    // The body is optional: none, or `{"reason": "..."}`.
    let input: RevokeInput = if body.iter().all(u8::is_ascii_whitespace) {
        RevokeInput::default()
    } else {
        super::parse_json(&body)?
    };
    let reason = Reason::parse(input.reason.as_deref().unwrap_or(""))
        .map_err(|e| AppError::invalid(format!("'reason': {e}")))?;
    let account = caller.account();
    let token = state
        .write(who, Some(account), move |tx| {
            db::tokens::revoke_by_key_in_account(tx, &key, &reason)
        })
        .await?;
    Ok(one(AccessToken::of(token, None)?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollInput {
    /// How long the old secret keeps working.
    #[schema(value_type = String, required = true, pattern = "^(now|1h|24h|7d)$")]
    grace: Option<Value>,
}

/// The grace period a roll's body asks for, or a 422 naming the allowed values.
fn check_grace(input: RollInput) -> Result<Grace, AppError> {
    match input.grace {
        Some(Value::String(raw)) => Grace::parse(&raw),
        _ => Err(Grace::CHOICES.to_string()),
    }
    .map_err(|e| AppError::invalid(format!("'grace': {e}")))
}

#[utoipa::path(
    post,
    path = "/access-tokens/{key}/roll",
    tag = "tokens",
    security(("basic" = [])),
    params(("key" = String, Path, description = "The token's key")),
    request_body = RollInput,
    responses(
        (status = 201, description = "The successor, with its secret, shown this once; and the old token with its new expiry", body = RolledAccessToken, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
/// Rolls one of the account's tokens: a successor with a new key and secret, shown this
/// once, and the old token's expiry brought to the end of the grace period.
pub async fn roll(
    caller: ApiCaller,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Tokens)?;
    let key = path_key(&key)?;
    let grace = check_grace(super::parse_json(&body)?)?;
    let period = grace.duration();
    let account = caller.account();
    let rolled = state
        .write(who, Some(account), move |tx| {
            db::tokens::roll_by_token(tx, &key, period)
        })
        .showing_once()
        .await?;
    Ok(with_secret(super::answer(
        StatusCode::CREATED,
        &RolledAccessToken {
            access_token: AccessToken::with_secret(rolled.new, &rolled.secret)?,
            rolled_from: AccessToken::of(rolled.old, None)?,
            message: "Store the secret now: it will not be shown again. The old secret works until the old token's expires_at.",
            status: StatusCode::CREATED.as_u16(),
        },
    )))
}

/// An answer that holds a secret: no cache keeps it.
fn with_secret(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(body: Value) -> Result<TokenRequest, Vec<String>> {
        let parsed: NewTokenInput =
            serde_json::from_value(body).map_err(|e| vec![e.to_string()])?;
        check_new_token(parsed).map_err(|e| e.messages())
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!({"scopes": ["read"]}), "'name' is required"),
            (json!({"name": 7, "scopes": ["read"]}), "'name' must be"),
            (json!({"name": " ", "scopes": ["read"]}), "'name': "),
            (json!({"name": "ci"}), "'scopes' is required"),
            (json!({"name": "ci", "scopes": "read"}), "'scopes' must be"),
            (json!({"name": "ci", "scopes": []}), "'scopes': "),
            (
                json!({"name": "ci", "scopes": ["admin"]}),
                "'scopes': \"admin\"",
            ),
            (json!({"name": "ci", "scopes": [1]}), "'scopes': "),
            (
                json!({"name": "ci", "scopes": ["read"], "expires_in_days": 0}),
                "'expires_in_days'",
            ),
            (
                json!({"name": "ci", "scopes": ["read"], "expires_in_days": 3651}),
                "'expires_in_days'",
            ),
            (
                json!({"name": "ci", "scopes": ["read"], "expires_in_days": "30"}),
                "'expires_in_days'",
            ),
            (
                json!({"name": "ci", "scopes": ["read"], "expires_in_days": 1.5}),
                "'expires_in_days'",
            ),
        ];
        for (body, expected) in cases {
            let errors = input(body.clone()).err().unwrap_or_default();
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{body}: {errors:?} should mention {expected}"
            );
        }
    }

    #[test]
    fn a_good_body_is_a_request() {
        let request =
            input(json!({"name": "ci", "scopes": ["write", "read"], "expires_in_days": 30}))
                .expect("a good body");
        assert_eq!(request.name.as_str(), "ci");
        assert_eq!(request.scopes.as_str(), "read,write");
        assert!(request.expires_at.is_some());
        let forever = input(json!({"name": "ci", "scopes": ["read"], "expires_in_days": null}));
        assert!(forever.expect("null is allowed").expires_at.is_none());
    }
}
