//! How much anyone may do, each limit in its own file:
//! - `sign_in`: password guesses, codes and sign-ups, counted in the store so that every
//!   instance shares one count (`db::sign_in_counts`);
//! - `per_address`: calls without credentials (leak reports), per client address, in memory;
//! - `per_token`: a token's own rate limit (`domain::RateLimit`), on the guard's path;
//! - `credits`: a token's spendable credits, on the guard's path, written with the usage batch;
//! - `refusal_audits`: how many of a token's refused API attempts are written to the audit log.

pub mod credits;
pub(crate) mod per_address;
pub mod per_token;
pub mod refusal_audits;
pub(crate) mod sign_in;
