//! Who is calling: Basic-Auth for the API, sessions and CSRF for the dashboard.

pub(crate) mod basic;
pub mod cache;
pub mod client_addr;
pub mod credits;
pub(crate) mod csrf;
pub mod guard;
pub(crate) mod ip_limit;
pub mod memo;
pub(crate) mod origin;
pub mod password;
pub(crate) mod pending;
pub mod ratelimit;
pub mod report_keys;
pub mod require_token;
pub mod secret_key;
pub(crate) mod session;
pub(crate) mod throttle;
pub mod usage;
pub(crate) mod webauthn;
