//! Keyward's API as its clients see it. One module per route group; every test starts its own
//! server on its own store (a SQLite file; or a PostgreSQL database of its own when
//! `KEYWARD_TEST_POSTGRES_URL` is set), acts as a client would, and asserts on what comes back.
//!
//! `support/` holds what the stories stand on, by role; `system/` the stories about
//! processes (restarts, `kill -9`, races, faults, backups) rather than one route group.

mod support;
mod system;

/// The helpers' names from before `support/` was split by role, for the qualified paths
/// inside test bodies (which a move leaves as they were) and for branches written
/// against them. New code names the `support` module it means.
mod helpers {
    pub use crate::support::api::*;
    pub use crate::support::store::*;
}
mod dashboard_helpers {
    pub use crate::support::browser::*;
}
mod admin_helpers {
    pub use crate::support::admin::*;
}

mod access_tokens;
mod account_password;
mod account_sessions;
mod anonymous;
mod auth_header;
mod bonsai_contract;
mod cli;
mod cluster_writes;
mod clusters;
mod clusters_cache;
mod clusters_page;
mod confirmations;
mod cookies;
mod csrf;
mod docs;
mod expiry;
mod fallback;
mod health;
mod json_only;
mod key_fields;
mod key_fields_pages;
mod keys_verify;
mod lifetime;
mod login;
mod login_two_factor;
mod mail_outbox;
mod metrics;
mod notices;
mod openapi;
mod origins;
mod passkeys;
mod password_reset;
mod plans;
mod rate_limit;
mod revocation;
mod roll;
mod secret_scanning;
mod self_revoke;
mod sessions;
mod signup;
mod sso;
mod sudo;
mod tenancy;
mod token;
mod token_list;
mod token_tree;
mod tokens_pages;
mod two_factor;
mod two_factor_policy;
mod unknown_keys;
mod usage;
mod verification;
mod verify;
mod verify_nginx;

// Accounts and admins.
mod admin;
mod audit;
mod invitations;
mod members;
mod roles;
