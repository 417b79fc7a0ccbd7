//! Keyward's API as its clients see it. One module per route group; every test starts its own
//! server on its own SQLite file, acts as a client would, and asserts on what comes back.

mod admin_helpers;
mod dashboard_helpers;
mod helpers;

mod account_password;
mod account_sessions;
mod anonymous;
mod auth_header;
mod cli;
mod clusters;
mod concurrency;
mod cookies;
mod csrf;
mod fallback;
mod faults;
mod health;
mod json_only;
mod login;
mod logs;
mod origins;
mod persistence;
mod plans;
mod rate_limit;
mod revocation;
mod revocation_scale;
mod sessions;
mod signup;
mod tenancy;
mod token;
mod tokens_pages;
mod unknown_keys;
mod usage;
mod write_path;

// Accounts and admins.
mod admin;
mod audit;
mod invitations;
mod members;
mod roles;
