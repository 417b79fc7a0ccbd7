//! Who is calling: Basic-Auth for the API, sessions and CSRF for the dashboard. What a caller
//! may spend is in `limits`, and what they used in `usage`.

pub(crate) mod basic;
pub mod cache;
pub mod client_addr;
pub(crate) mod csrf;
pub mod guard;
pub mod memo;
pub mod oidc;
pub(crate) mod origin;
pub mod password;
pub(crate) mod pending;
pub mod report_keys;
pub mod require_token;
pub mod secret_key;
pub(crate) mod session;
pub(crate) mod step_cookie;
pub(crate) mod webauthn;
