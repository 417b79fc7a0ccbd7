//! Keyward's API as its clients see it. One module per route group; every test starts its own
//! server on its own SQLite file, acts as a client would, and asserts on what comes back.

mod helpers;

mod auth_header;
mod cli;
mod clusters;
mod concurrency;
mod fallback;
mod health;
mod persistence;
mod plans;
mod revocation;
mod tenancy;
mod token;
