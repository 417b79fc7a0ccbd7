//! How many refused token-API attempts each token may have audited
//! (`routes::api::refusals`): enough to show a leaked token probing, too few to fill the
//! disk or hold the write lock with it.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::domain::TokenId;

/// Refused attempts one token may have audited at once, then one a minute.
pub struct RefusalBudget(DefaultKeyedRateLimiter<TokenId>);

impl RefusalBudget {
    pub const BURST: u32 = 20;

    /// Tokens tracked before those whose budget has refilled are forgotten: only tokens
    /// that exist get here, so this bounds memory, not what is counted.
    const MAX_TOKENS: usize = 100_000;

    pub fn new() -> Self {
        let quota = Quota::with_period(Duration::from_secs(60))
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(Self::BURST).unwrap_or(NonZeroU32::MIN));
        Self(DefaultKeyedRateLimiter::keyed(quota))
    }

    /// Whether `token` may have one more refusal audited now.
    pub fn take(&self, token: TokenId) -> bool {
        if self.0.len() > Self::MAX_TOKENS {
            self.0.retain_recent();
        }
        self.0.check_key(&token).is_ok()
    }
}

impl Default for RefusalBudget {
    fn default() -> Self {
        Self::new()
    }
}
