//! Keyward: a self-hosted, multi-tenant API token service.

pub mod auth;
pub(crate) mod background;
pub(crate) mod charts;
pub mod cli;
pub mod cluster_pages;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod limits;
pub mod mail;
pub mod metrics;
pub(crate) mod plans;
pub(crate) mod policy;
pub(crate) mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub(crate) mod timefmt;
pub mod usage;

/// The JSON API's routes and the per-worker catalogue they serve, for an in-process
/// benchmark that builds an `App` of its own (bench/app_path.rs).
#[cfg(feature = "test-support")]
pub use routes::api::{Catalogue, Links, configure as configure_api};
