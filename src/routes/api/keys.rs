//! `POST /keys/verify`: a service of the account asks whether a key its own user sent is
//! good, what it may do and whose it is. The caller's token needs the `verify` scope; the
//! answer is always a 200 with a code once the caller may ask.
//!
//! Answered from memory like the guard: a cached key costs a lookup, a SHA-256, a
//! constant-time compare, the rate limiter and the credit ledger, and no database read.
//! An unknown, revoked, malformed or other account's key gets the same bare `NOT_FOUND`.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::token_views::CreditsLeft;
use crate::auth::cache::{CachedToken, Found};
use crate::auth::guard::ApiCaller;
use crate::domain::{PermissionQuery, Scope, Scopes, TokenKey, TokenSecret};
use crate::error::AppError;
use crate::limits::credits::Spend;
use crate::state::AppState;
use crate::usage::Outcome;

/// The body; each field read as any JSON value so a wrong type gets a sentence.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// The key to check, as your user sent it.
    #[schema(value_type = String, required = true)]
    key: Option<Value>,
    /// Its secret, as your user sent it.
    #[schema(value_type = String, required = true)]
    secret: Option<Value>,
    /// A permission query: names, AND, OR and parentheses (AND binds tighter), at most
    /// 1000 characters and 10 levels deep.
    #[schema(value_type = Option<String>, max_length = 1000, example = "documents.read AND (billing.write OR admin)")]
    permissions: Option<Value>,
    /// The address your user called from, which you vouch for; yours if absent.
    #[schema(value_type = Option<String>)]
    ip: Option<Value>,
}

/// What is asked, parsed.
struct Asked {
    key: String,
    secret: String,
    query: Option<PermissionQuery>,
    ip: Option<Option<IpAddr>>,
}

fn check_input(input: VerifyInput) -> Result<Asked, AppError> {
    let mut errors = Vec::new();
    let mut text = |value: Option<Value>, name: &str| match value {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => {
            errors.push(format!("'{name}' is required: the {name} your user sent."));
            None
        }
        Some(_) => {
            errors.push(format!("'{name}' must be a string."));
            None
        }
    };
    let key = text(input.key, "key");
    let secret = text(input.secret, "secret");
    let query = match input.permissions {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => PermissionQuery::parse(&raw)
            .map_err(|e| errors.push(format!("'permissions': {e}.")))
            .ok(),
        Some(_) => {
            errors.push("'permissions' must be a string such as \"a AND (b OR c)\".".into());
            None
        }
    };
    let ip = match input.ip {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => match raw.parse::<IpAddr>() {
            Ok(ip) => Some(Some(ip)),
            Err(_) => {
                errors.push("'ip' must be an IPv4 or IPv6 address such as 203.0.113.7.".into());
                None
            }
        },
        Some(_) => {
            errors.push("'ip' must be a string: an IPv4 or IPv6 address.".into());
            None
        }
    };
    match (key, secret) {
        (Some(key), Some(secret)) if errors.is_empty() => Ok(Asked {
            key,
            secret,
            query,
            ip,
        }),
        _ => Err(AppError::Invalid(errors)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Valid,
    NotFound,
    Expired,
    Disabled,
    InsufficientPermissions,
    UsageExceeded,
    RateLimited,
    Forbidden,
}

#[utoipa::path(
    post,
    path = "/keys/verify",
    tag = "keys",
    security(("basic" = [])),
    request_body = VerifyInput,
    responses(
        (status = 200, description = "The verdict on the key, with its code", body = Answer),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
/// Verifies a key of the caller's account: always a 200 with `valid` and `code`.
pub async fn verify(
    caller: ApiCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Verify)?;
    let asked = check_input(super::parse_json(&body)?)?;
    let now = chrono::Utc::now().naive_utc();
    let Some(token) = find(&state, &asked, now).await? else {
        return answer(&Answer::not_found());
    };
    if token.account_id != caller.account() || token.revoked {
        return answer(&Answer::not_found());
    }
    let ip = asked
        .ip
        .unwrap_or_else(|| crate::auth::client_addr::client_ip(&req, &state.config));
    let mut details = Verdict::of(&token);
    let code = judge(&state, &token, &asked, ip, now, &mut details);
    let counted = match code {
        Code::Valid => Some(Outcome::Succeeded),
        Code::Disabled | Code::Forbidden | Code::InsufficientPermissions => {
            Some(Outcome::Forbidden)
        }
        Code::RateLimited | Code::UsageExceeded => Some(Outcome::RateLimited),
        Code::Expired | Code::NotFound => None,
    };
    if let Some(outcome) = counted {
        state.usage.record(token.id, outcome, now, ip);
    }
    if details.credits.is_none() {
        details.credits = state
            .credits
            .remaining(&token)
            .map(|remaining| CreditsLeft { remaining });
    }
    details.valid = code == Code::Valid;
    details.code = code;
    answer(&Answer::Known(details))
}

/// The token with the key asked about, if its secret is the one sent; `None` for a key
/// or secret that can't be one, an unknown key, or a wrong secret.
async fn find(
    state: &AppState,
    asked: &Asked,
    now: chrono::NaiveDateTime,
) -> Result<Option<Arc<CachedToken>>, AppError> {
    let (Ok(key), Ok(secret)) = (
        TokenKey::parse(&asked.key),
        TokenSecret::parse(&asked.secret),
    ) else {
        return Ok(None);
    };
    // Hashed before the lookup, as the guard does, so an unknown key isn't faster.
    let digest = secret.digest();
    let token = match state.cache.find(key.as_str()) {
        Found::Token { token, .. } => token,
        Found::NoSuchKey => return Ok(None),
        Found::Unread => match state.cache.load(&state.pool, key).await? {
            Some(token) => token,
            None => return Ok(None),
        },
    };
    if token.digest != digest {
        state
            .usage
            .record(token.id, Outcome::WrongSecret, now, None);
        return Ok(None);
    }
    Ok(Some(token))
}

/// The code for a token of the caller's account whose secret was sent. Only a `VALID`
/// answer spends a credit; the rate limit counts every call that gets that far.
fn judge(
    state: &AppState,
    token: &CachedToken,
    asked: &Asked,
    ip: Option<IpAddr>,
    now: chrono::NaiveDateTime,
    details: &mut Verdict<'_>,
) -> Code {
    if token.is_expired_at(now) {
        return Code::Expired;
    }
    if token.account_suspended {
        return Code::Disabled;
    }
    if !token.allowed_ips.allows(ip) {
        return Code::Forbidden;
    }
    if let Some(query) = &asked.query
        && !query.allows(&token.permissions)
    {
        return Code::InsufficientPermissions;
    }
    if let Some(limit) = token.rate_limit {
        let per_minute = limit.per_minute().get();
        let checked = state.rate_limits.check_remaining(token.rate_bucket, limit);
        let remaining = *checked.as_ref().unwrap_or(&0);
        // Full again once every spent slot has come back, one each 60/limit seconds.
        let refill_ms = 60_000 / u64::from(per_minute);
        let reset = now.and_utc().timestamp_millis()
            + i64::try_from(u64::from(per_minute - remaining) * refill_ms).unwrap_or(i64::MAX);
        details.ratelimit = Some(RateState {
            limit: per_minute,
            remaining,
            reset,
        });
        if checked.is_err() {
            return Code::RateLimited;
        }
    }
    match state.credits.spend(token, now) {
        Spend::Exhausted => {
            details.credits = Some(CreditsLeft { remaining: 0 });
            Code::UsageExceeded
        }
        Spend::Spent { remaining } => {
            details.credits = Some(CreditsLeft { remaining });
            Code::Valid
        }
        Spend::Unlimited => Code::Valid,
    }
}

fn answer(answer: &Answer<'_>) -> Result<HttpResponse, AppError> {
    Ok(super::answer(StatusCode::OK, answer))
}

// Written straight from the cached token: nothing is copied into it.
/// The verdict. A key that is unknown, revoked or another account's gets `valid` and
/// `code` alone.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Verification)]
pub enum Answer<'a> {
    Unknown(Unknown),
    Known(Verdict<'a>),
}

impl Answer<'_> {
    /// No field beyond `valid` and `code` (and the envelope's `status`): nothing about a
    /// key that is unknown, revoked or another account's.
    fn not_found() -> Self {
        Answer::Unknown(Unknown {
            valid: false,
            code: Code::NotFound,
            status: 200,
        })
    }
}

/// `NOT_FOUND`: nothing more.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UnknownKey)]
pub struct Unknown {
    valid: bool,
    code: Code,
    status: u16,
}

/// The verdict on a key of the caller's account, and what the key carries.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KeyVerdict)]
pub struct Verdict<'a> {
    valid: bool,
    code: Code,
    key: &'a str,
    name: &'a str,
    external_id: Option<&'a str>,
    #[schema(value_type = Option<Object>)]
    meta: Option<&'a Value>,
    #[serde(serialize_with = "names")]
    #[schema(value_type = Vec<String>)]
    permissions: &'a crate::domain::Permissions,
    #[serde(serialize_with = "scope_names")]
    #[schema(value_type = Vec<String>)]
    scopes: Scopes,
    #[schema(format = DateTime)]
    expires: Option<String>,
    credits: Option<CreditsLeft>,
    ratelimit: Option<RateState>,
    status: u16,
}

impl<'a> Verdict<'a> {
    /// The key's fields, before it is judged.
    fn of(token: &'a CachedToken) -> Self {
        Verdict {
            valid: false,
            code: Code::NotFound,
            key: &token.key,
            name: &token.name,
            external_id: token.external_id.as_ref().map(|e| e.as_str()),
            meta: token.meta.as_ref().map(|m| m.value()),
            permissions: &token.permissions,
            scopes: token.scopes,
            expires: token.expires_at.as_ref().map(crate::timefmt::rfc3339),
            credits: None,
            ratelimit: None,
            status: 200,
        }
    }
}

/// The key's rate limit after this call.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateState {
    limit: u32,
    remaining: u32,
    /// When the limit is whole again, in milliseconds since the Unix epoch.
    reset: i64,
}

fn names<S: Serializer>(p: &&crate::domain::Permissions, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(p.iter())
}

fn scope_names<S: Serializer>(scopes: &Scopes, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        Scope::ALL
            .iter()
            .filter(|scope| scopes.contains(**scope))
            .map(|scope| scope.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(body: Value) -> Vec<String> {
        let input: VerifyInput = serde_json::from_value(body).unwrap();
        check_input(input)
            .err()
            .map(|e| e.messages())
            .unwrap_or_default()
    }

    #[test]
    fn a_bad_body_is_named_and_a_bad_key_is_not_an_error() {
        assert!(errors(json!({"secret": "x"}))[0].contains("'key' is required"));
        assert!(errors(json!({"key": 1, "secret": "x"}))[0].contains("'key' must be"));
        let query = errors(json!({"key": "k", "secret": "s", "permissions": "a AND"}));
        assert!(
            query[0].contains("'permissions'") && query[0].contains("position 5"),
            "{query:?}"
        );
        assert!(errors(json!({"key": "k", "secret": "s", "ip": "nope"}))[0].contains("'ip'"));
        // Whatever a user sent as a key is for the lookup to refuse, not a 422.
        assert!(errors(json!({"key": "not a key", "secret": ""})).is_empty());
    }

    #[test]
    fn not_found_says_nothing_else() {
        let body = serde_json::to_value(Answer::not_found()).unwrap();
        assert_eq!(
            body,
            json!({"valid": false, "code": "NOT_FOUND", "status": 200})
        );
    }
}
