//! How much anyone may do, each limit in its own file:
//! - `sign_in`: password guesses, codes and sign-ups, counted in the store so that every
//!   instance shares one count (`db::sign_in_counts`);
//! - `per_address`: calls without credentials (leak reports), per client address, in memory;
//! - `per_token`: a token's own rate limit (`domain::RateLimit`), on the guard's path;
//! - `credits`: a token's spendable credits, on the guard's path, written with the usage batch.

pub mod credits;
pub(crate) mod per_address;
pub mod per_token;
pub(crate) mod sign_in;
