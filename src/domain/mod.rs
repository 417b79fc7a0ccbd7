//! Types that can't hold an invalid value. Each `parse` returns a `Result`
//! whose error is a sentence fit to show the user.

mod api_state;
mod audit_action;
mod cluster;
mod credits;
mod database_url;
mod email;
mod forwarding;
mod ids;
mod ip_allowlist;
mod key_fields;
mod lifetime;
mod mail;
mod names;
mod paging;
mod password;
mod permission;
pub mod permission_query;
mod rate_limit;
mod role;
mod scope;
mod signup_mode;
mod sql;
mod token;
mod token_refusal;
mod two_factor;

pub use api_state::ApiState;
pub use audit_action::AuditAction;
pub use cluster::{ClusterCredentials, ClusterState};
pub use credits::{CreditSnapshot, Credits, MAX_CREDITS, Refill, RefillInterval};
pub use database_url::DatabaseUrl;
pub use email::Email;
pub use forwarding::{ClientHeader, DEFAULT_TRUSTED_PROXIES, parse_proxies};
pub use ids::{AccountId, SessionId, TokenId, UserId};
pub use ip_allowlist::IpAllowlist;
pub use key_fields::{
    ExternalId, KeyFields, KeyFieldsChange, KeyFieldsText, KeyMeta, describe_credits,
};
pub use lifetime::{Grace, LifetimeLimit};
pub use mail::{ExpiringToken, Mail};
pub use names::{
    AccountName, ClusterName, NAME_MAX_CHARS, PasskeyName, Reason, Slug, TokenName, TokenNote,
    is_format,
};
pub use paging::Paging;
pub use password::Password;
pub use permission::{Permission, Permissions};
pub use permission_query::Query as PermissionQuery;
pub use rate_limit::RateLimit;
pub use role::Role;
pub use scope::{Scope, Scopes};
pub use signup_mode::SignupMode;
pub use token::{SecretDigest, TokenKey, TokenSecret, random_base62};
pub use token_refusal::TokenRefusal;
pub use two_factor::{
    RECOVERY_CODES, RecoveryCode, SecondFactor, TotpCode, TotpSecret, current_step,
};
