//! Keyward: a self-hosted, multi-tenant API token service.

pub mod auth;
pub mod background;
pub mod charts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod plans;
pub mod policy;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod timefmt;
