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
//!
//! Entries leave the cache one way only: through the `cache_invalidations` log, which
//! every revocation and suspension writes in its own transaction. The poller applies it
//! for changes made elsewhere; a change made here applies it before answering.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use chrono::NaiveDateTime;
use diesel::SqliteConnection;

use crate::db;
use crate::domain::{AccountId, Scopes, SecretDigest, TokenId};
use crate::error::AppError;

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
    /// The last `cache_invalidations.seq` applied.
    applied: AtomicI32,
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

    /// Starts from the log's current end: a fresh cache has nothing older to forget.
    pub fn skip_to(&self, seq: i32) {
        self.applied.fetch_max(seq, Ordering::AcqRel);
    }

    /// Evicts everything the invalidation log names after the last entry applied.
    /// Blocking: call off the async workers.
    pub fn apply_invalidations(&self, conn: &mut SqliteConnection) -> Result<usize, AppError> {
        let notes = db::invalidations::since(conn, self.applied.load(Ordering::Acquire))?;
        for note in &notes {
            if let Some(key) = &note.token_key {
                self.evict(key);
            }
            if let Some(account) = note.account_id {
                self.evict_account(AccountId(account));
            }
        }
        if let Some(last) = notes.last() {
            self.applied.fetch_max(last.seq, Ordering::AcqRel);
        }
        Ok(notes.len())
    }

    fn evict(&self, key: &str) {
        let mut entries = self.write();
        entries.remove(key);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn evict_account(&self, account: AccountId) {
        let mut entries = self.write();
        entries.retain(|_, t| t.account_id != account);
        self.generation.fetch_add(1, Ordering::AcqRel);
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
