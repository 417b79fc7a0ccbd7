//! HTTP routes: the JSON API under the token guard, and the server-rendered dashboard.

pub mod api;
pub mod dashboard;

pub(crate) use dashboard::not_found;
