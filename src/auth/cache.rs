//! The guard's token cache: one map that every worker shares, so a request costs a
//! hash lookup and a SHA-256, not a database read.
//!
//! Revoked tokens stay cached as revoked (revocation can't be undone, so that is always
//! safe); unknown keys are not cached, because another process may create them.
//!
//! A load races with an eviction: a request may read a token as active just before a
//! revocation commits and evicts it, then put its stale copy in afterwards. Every
//! eviction bumps `generation`, and a load only inserts if no eviction happened since
//! it started reading.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDateTime;

use crate::domain::{AccountId, Scopes, SecretDigest, TokenId};

/// What the guard needs to know about a token, and what `GET /token` shows.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub id: TokenId,
    pub key: String,
    pub name: String,
    pub digest: SecretDigest,
    pub scopes: Scopes,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked: bool,
    pub account_id: AccountId,
    pub account_slug: String,
    pub account_name: String,
    pub account_suspended: bool,
}

impl CachedToken {
    pub fn is_expired_at(&self, now: NaiveDateTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Arc<CachedToken>>>,
    generation: AtomicU64,
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedToken>> {
        self.read().get(key).cloned()
    }

    /// Read before loading from the database; pass to [`insert_if_unchanged`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `token` unless something was evicted since `generation` was read.
    pub fn insert_if_unchanged(&self, token: Arc<CachedToken>, generation: u64) -> bool {
        let mut entries = self.write();
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        entries.insert(token.key.clone(), token);
        true
    }

    pub fn evict(&self, key: &str) {
        let mut entries = self.write();
        entries.remove(key);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn evict_account(&self, account: AccountId) {
        let mut entries = self.write();
        entries.retain(|_, t| t.account_id != account);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock can't leave the map half-written (every write is
    // a single insert or remove), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<CachedToken>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<CachedToken>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenSecret;

    fn token(key: &str, account: i32) -> Arc<CachedToken> {
        Arc::new(CachedToken {
            id: TokenId(1),
            key: key.into(),
            name: "ci".into(),
            digest: TokenSecret::generate().digest(),
            scopes: Scopes::all(),
            created_at: chrono::Utc::now().naive_utc(),
            expires_at: None,
            revoked: false,
            account_id: AccountId(account),
            account_slug: "acme".into(),
            account_name: "Acme".into(),
            account_suspended: false,
        })
    }

    #[test]
    fn a_load_that_raced_an_eviction_is_dropped() {
        let cache = TokenCache::new();
        let seen = cache.generation();
        cache.evict("kw_a");
        assert!(!cache.insert_if_unchanged(token("kw_a", 1), seen));
        assert!(cache.get("kw_a").is_none());
        assert!(cache.insert_if_unchanged(token("kw_a", 1), cache.generation()));
        assert!(cache.get("kw_a").is_some());
    }

    #[test]
    fn evicting_an_account_drops_only_its_tokens() {
        let cache = TokenCache::new();
        cache.insert_if_unchanged(token("kw_a", 1), cache.generation());
        cache.insert_if_unchanged(token("kw_b", 2), cache.generation());
        cache.evict_account(AccountId(1));
        assert!(cache.get("kw_a").is_none());
        assert!(cache.get("kw_b").is_some());
    }
}
