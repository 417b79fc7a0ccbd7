//! Keyward's API as its clients see it. One module per route group; every test starts its own
//! server on its own SQLite file, acts as a client would, and asserts on what comes back.

mod admin_helpers;
mod dashboard_helpers;
mod helpers;

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
mod concurrency;
mod cookies;
mod csrf;
mod expiry;
mod fallback;
mod faults;
mod health;
mod json_only;
mod lifetime;
mod login;
mod logs;
mod origins;
mod persistence;
mod plans;
mod rate_limit;
mod revocation;
mod revocation_scale;
mod roll;
mod secret_scanning;
mod self_revoke;
mod sessions;
mod signup;
mod tenancy;
mod token;
mod tokens_pages;
mod unknown_keys;
mod usage;
mod verify;
mod verify_nginx;
mod write_path;

// Accounts and admins.
mod admin;
mod audit;
mod invitations;
mod members;
mod roles;
