//! Who is calling: Basic-Auth for the API, sessions and CSRF for the dashboard.

pub mod basic;
pub mod cache;
pub mod csrf;
pub mod guard;
pub mod origin;
pub mod password;
pub mod ratelimit;
pub mod session;
pub mod throttle;
pub mod usage;
