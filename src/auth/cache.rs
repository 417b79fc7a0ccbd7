//! The guard's token cache: one map that every worker shares, so a request costs a
//! hash lookup and a SHA-256, not a database read; and a fingerprint of every key that
//! exists, so that a flood of unknown keys can't make every request read the database.
//!
//! Revoked tokens stay cached as revoked (revocation can't be undone, so that is always
//! safe). Unknown keys are not cached. The set of known keys is loaded at start and kept
//! current through the log; a fingerprint is 8 bytes, so a million keys cost about
//! 19 MiB, and one that collides with an unknown key (one chance in 2^64 per known key)
//! only costs that key a database read.
//!
//! The set lags behind other processes by up to one poll of the log: a token made by the
//! command line, or on another instance, is missing from it on its first call. So a key
//! missing from the set is read from the store by itself, under a budget of reads per
//! second shared by all such keys ([`UnknownKeyBudget`]); only past the budget is it
//! refused on the set's word. One indexed read answers exactly the question asked and
//! makes no caller wait for another; catching up with the whole log instead would hold
//! every unknown-key call until the next shared read. A flood of unknown keys then costs
//! at most the budget in reads, and a token made anywhere works on its first call unless
//! such a flood is under way at that moment.
//!
//! A load races with an eviction: a request may read a token as active just before a
//! revocation commits and evicts it, then put its stale copy in afterwards. Every
//! eviction bumps `generation`, and a load only inserts if no eviction happened since
//! it started reading.
//!
//! The cache changes one way only: through the `cache_invalidations` log, which every
//! creation, revocation and suspension writes in its own transaction. The poller applies
//! it for changes made elsewhere; a change made here applies it before answering. Either
//! way the log is read to its end and applied in one step, so a removal that revoked
//! thousands of tokens is seen whole by the next request, never in part.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::db::DbConnection;
use chrono::NaiveDateTime;

use crate::db::{self, Pool, invalidations::Invalidation, invalidations::NoteKind};
use crate::domain::CreditSnapshot;
use crate::domain::{
    AccountId, ExternalId, IpAllowlist, KeyMeta, Permissions, RateLimit, Scopes, SecretDigest,
    TokenId, TokenKey,
};
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
    /// Whether the operator, not the owners, suspended it: the 403 says which.
    pub account_suspended_by_operator: bool,
    /// Requests per minute; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Whose limiter its calls count against: a rolled token's successor's, so the two
    /// share one limit through the grace period instead of having one each.
    pub rate_bucket: TokenId,
    /// What the token carries for its verifiers (`POST /keys/verify`).
    pub permissions: Permissions,
    pub meta: Option<KeyMeta>,
    pub external_id: Option<ExternalId>,
    /// Its credit limit as loaded; `limits::credits` keeps the live balance.
    pub credits: Option<CreditSnapshot>,
    /// Where it may be used from; empty for anywhere.
    pub allowed_ips: IpAllowlist,
}

impl CachedToken {
    pub fn is_expired_at(&self, now: NaiveDateTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    fn from_rows(
        token: db::tokens::Token,
        account: db::accounts::Account,
    ) -> Result<Self, AppError> {
        let digest = SecretDigest::from_bytes(&token.secret_digest).ok_or_else(|| {
            AppError::internal(format!("token {} has a malformed digest", token.id))
        })?;
        let fields = token.key_fields()?;
        let credits = fields.credits.map(|credits| CreditSnapshot {
            credits,
            refilled_at: token.credits_refilled_at,
            version: token.credits_version,
        });
        Ok(Self {
            permissions: fields.permissions,
            meta: fields.meta,
            external_id: fields.external_id,
            credits,
            allowed_ips: fields.allowed_ips,
            id: token.token_id(),
            scopes: token.scopes,
            digest,
            revoked: token.revoked_at.is_some(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            account_id: account.account_id(),
            account_suspended: account.is_suspended(),
            account_suspended_by_operator: account.suspended_by_operator,
            rate_limit: token.rate_limit_per_minute,
            rate_bucket: token.rolled_to.map_or(token.token_id(), TokenId),
            account_slug: account.slug,
            account_name: account.name,
            key: token.key,
            name: token.name,
        })
    }
}

/// What the cache knows of a key without reading the database.
pub enum Found {
    /// The token, whatever its state, and the generation it was found at.
    Token {
        token: Arc<CachedToken>,
        generation: u64,
    },
    /// Not in the set of known keys, and the budget for reading such keys is spent.
    NoSuchKey,
    /// A token may have it, and isn't cached yet: read it from the store.
    Unread,
}

/// How many keys missing from the known set may be read from the store each second.
pub struct UnknownKeyBudget {
    /// `None`: no such key is read.
    limiter: Option<DefaultDirectRateLimiter>,
    /// Reads the budget allowed, and keys it refused unread: the metrics show both.
    spent: AtomicU64,
    refused: AtomicU64,
}

impl UnknownKeyBudget {
    /// The default: far more new tokens a second than any team makes, and a bound on
    /// what a flood of made-up keys costs the store.
    pub const PER_SECOND: u32 = 200;

    /// `per_second` reads, at most a tenth of a second's worth at once; `0` reads none.
    pub fn new(per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(per_second / 10).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            spent: AtomicU64::default(),
            refused: AtomicU64::default(),
        }
    }

    fn take(&self) -> bool {
        let allowed = self.limiter.as_ref().is_some_and(|l| l.check().is_ok());
        let count = if allowed { &self.spent } else { &self.refused };
        count.fetch_add(1, Ordering::Relaxed);
        allowed
    }

    /// Reads made for keys missing from the known set, since start.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }

    /// Keys missing from the known set that were refused without a read, since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Tells one cache from another on a thread that serves several servers (a test process).
static NEXT_CACHE: AtomicU64 = AtomicU64::new(1);

pub struct TokenCache {
    id: u64,
    entries: RwLock<HashMap<String, Arc<CachedToken>>>,
    generation: AtomicU64,
    /// The last `cache_invalidations.seq` applied.
    applied: AtomicI32,
    /// A fingerprint of every key in the database.
    known: RwLock<HashSet<u64>>,
    /// Keyed with this process's own random keys, so no one can aim a key at a collision.
    fingerprints: RandomState,
    /// How many lookups went to the database: the one cost the guard can't avoid.
    database_reads: AtomicU64,
    /// Lookups answered from the cache, for the metrics' hit ratio.
    hits: AtomicU64,
    /// Reads of keys missing from `known`.
    unknown: UnknownKeyBudget,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_budget(UnknownKeyBudget::PER_SECOND)
    }
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache that reads at most `per_second` keys a second that it doesn't know of.
    pub fn with_budget(per_second: u32) -> Self {
        Self {
            id: NEXT_CACHE.fetch_add(1, Ordering::Relaxed),
            entries: RwLock::default(),
            generation: AtomicU64::default(),
            applied: AtomicI32::default(),
            known: RwLock::default(),
            fingerprints: RandomState::default(),
            database_reads: AtomicU64::default(),
            hits: AtomicU64::default(),
            unknown: UnknownKeyBudget::new(per_second),
        }
    }

    /// Loads the fingerprint of every existing key and starts from the log's current end.
    /// The end is read first: a key created while the keys are read is then in both, and
    /// adding it twice is harmless. Blocking: call off the async workers.
    pub fn start(&self, conn: &mut DbConnection) -> Result<usize, AppError> {
        let seq = db::invalidations::latest_seq(conn)?;
        // Fingerprints first (8 bytes a key), then one pass into the set: writing the
        // set's scattered slots in between reads of the database runs twice as slow.
        let mut fingerprints = Vec::with_capacity(db::invalidations::token_count(conn)?);
        db::invalidations::each_token_key(conn, |key| {
            fingerprints.push(self.fingerprint(key));
        })?;
        let loaded = fingerprints.len();
        let mut known = self.known_write();
        known.reserve(loaded);
        known.extend(fingerprints);
        drop(known);
        self.applied.fetch_max(seq, Ordering::AcqRel);
        Ok(loaded)
    }

    /// This cache's number in the process, for memories kept per thread (`memo`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The cached token with this key, whatever its state.
    pub fn get(&self, key: &str) -> Option<Arc<CachedToken>> {
        self.read().get(key).cloned()
    }

    /// Whether a token with this key may exist. `false` is certain; `true` is certain but
    /// for a fingerprint collision.
    pub fn may_exist(&self, key: &str) -> bool {
        let fingerprint = self.fingerprint(key);
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&fingerprint)
    }

    /// How many lookups have read the database since start.
    pub fn database_reads(&self) -> u64 {
        self.database_reads.load(Ordering::Relaxed)
    }

    /// The budget for reading keys missing from the known set, and its counts.
    pub fn unknown_keys(&self) -> &UnknownKeyBudget {
        &self.unknown
    }

    /// How many lookups the map answered, and how many tokens it holds.
    pub fn hits_and_len(&self) -> (u64, usize) {
        (self.hits.load(Ordering::Relaxed), self.read().len())
    }

    /// What memory says of this key. A cached token costs nothing; a known key, or an
    /// unknown one within the budget, is [`Found::Unread`], for [`load`](Self::load) to
    /// read once; past the budget, an unknown key is [`Found::NoSuchKey`].
    pub fn find(&self, key: &str) -> Found {
        let generation = self.generation();
        if let Some(token) = self.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Found::Token { token, generation };
        }
        if self.may_exist(key) || self.unknown.take() {
            Found::Unread
        } else {
            Found::NoSuchKey
        }
    }

    /// The token with a key [`find`](Self::find) couldn't answer for, whatever its state,
    /// read from the database and cached unless something was evicted meanwhile; `None`
    /// when no token has it.
    pub async fn load(
        &self,
        pool: &Pool,
        key: TokenKey,
    ) -> Result<Option<Arc<CachedToken>>, AppError> {
        let generation = self.generation();
        self.database_reads.fetch_add(1, Ordering::Relaxed);
        let found = db::run(pool, move |conn| db::tokens::find_for_guard(conn, &key)).await?;
        let Some((token, account)) = found else {
            return Ok(None);
        };
        // Known from now on, whether or not the log has announced it here yet.
        self.known_write().insert(self.fingerprint(&token.key));
        let cached = Arc::new(CachedToken::from_rows(token, account)?);
        self.insert_if_unchanged(cached.clone(), generation);
        Ok(Some(cached))
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

    /// Applies everything the log holds after the last note applied: drains it batch by
    /// batch, then applies it all at once. Returns how many notes it applied.
    /// Blocking: call off the async workers.
    pub fn apply_invalidations(&self, conn: &mut DbConnection) -> Result<usize, AppError> {
        self.apply_invalidations_and(conn, |_| {})
    }

    /// [`apply_invalidations`](Self::apply_invalidations), handing the notes applied to
    /// `also` for the process's other caches (the rendered cluster pages), before this
    /// cache moves past them.
    pub fn apply_invalidations_and(
        &self,
        conn: &mut DbConnection,
        also: impl FnOnce(&[Invalidation]),
    ) -> Result<usize, AppError> {
        let mut last = self.applied.load(Ordering::Acquire);
        let mut notes = Vec::new();
        loop {
            let batch = db::invalidations::since(conn, last)?;
            let Some(end) = batch.last().map(|n| n.seq) else {
                break;
            };
            last = end;
            let drained = batch.len() < db::invalidations::BATCH;
            notes.extend(batch);
            if drained {
                break;
            }
        }
        self.apply(&notes);
        also(&notes);
        self.applied.fetch_max(last, Ordering::AcqRel);
        Ok(notes.len())
    }

    /// New keys become known before anything is forgotten; the evictions happen under one
    /// lock, so a request sees all of them or none.
    fn apply(&self, notes: &[Invalidation]) {
        let key_of = |kind: NoteKind| {
            notes
                .iter()
                .filter(move |n| n.kind == kind)
                .filter_map(|n| n.token_key.as_deref())
        };
        let mut created = key_of(NoteKind::Created).peekable();
        if created.peek().is_some() {
            let mut known = self.known_write();
            for key in created {
                known.insert(self.fingerprint(key));
            }
        }
        let accounts: HashSet<AccountId> = notes
            .iter()
            .filter(|n| n.kind == NoteKind::Forget)
            .filter_map(|n| n.account_id.map(AccountId))
            .collect();
        let mut forgotten = key_of(NoteKind::Forget).peekable();
        if forgotten.peek().is_none() && accounts.is_empty() {
            return;
        }
        let mut entries = self.write();
        for key in forgotten {
            entries.remove(key);
        }
        if !accounts.is_empty() {
            entries.retain(|_, t| !accounts.contains(&t.account_id));
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn fingerprint(&self, key: &str) -> u64 {
        self.fingerprints.hash_one(key)
    }

    // A panic while holding a lock can't leave a map half-written (every write is a
    // single insert or remove), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<CachedToken>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<CachedToken>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn known_write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<u64>> {
        self.known.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::TokenSecret;

    pub(crate) fn token(key: &str, account: i32) -> Arc<CachedToken> {
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
            account_suspended_by_operator: false,
            rate_limit: None,
            rate_bucket: TokenId(1),
            permissions: Permissions::default(),
            meta: None,
            external_id: None,
            credits: None,
            allowed_ips: IpAllowlist::default(),
        })
    }

    fn note(seq: i32, kind: NoteKind, key: Option<&str>, account: Option<i32>) -> Invalidation {
        Invalidation {
            seq,
            kind,
            token_key: key.map(str::to_string),
            account_id: account,
            at: chrono::Utc::now().naive_utc(),
        }
    }

    fn cached(cache: &TokenCache, key: &str, account: i32) {
        assert!(cache.insert_if_unchanged(token(key, account), cache.generation()));
    }

    #[test]
    fn a_load_that_raced_an_eviction_is_dropped() {
        let cache = TokenCache::new();
        let seen = cache.generation();
        cache.apply(&[note(1, NoteKind::Forget, Some("kw_a"), None)]);
        assert!(!cache.insert_if_unchanged(token("kw_a", 1), seen));
        assert!(cache.get("kw_a").is_none());
        assert!(cache.insert_if_unchanged(token("kw_a", 1), cache.generation()));
        assert!(cache.get("kw_a").is_some());
    }

    #[test]
    fn forgetting_an_account_drops_only_its_tokens() {
        let cache = TokenCache::new();
        cached(&cache, "kw_a", 1);
        cached(&cache, "kw_b", 2);
        cache.apply(&[note(1, NoteKind::Forget, None, Some(1))]);
        assert!(cache.get("kw_a").is_none());
        assert!(cache.get("kw_b").is_some());
    }

    #[test]
    fn a_created_key_becomes_known_and_no_other() {
        let cache = TokenCache::new();
        assert!(!cache.may_exist("kw_new"));
        cache.apply(&[note(1, NoteKind::Created, Some("kw_new"), None)]);
        assert!(cache.may_exist("kw_new"));
        assert!(!cache.may_exist("kw_other"));
        // A creation forgets nothing, so a load in flight may still cache what it read.
        let seen = cache.generation();
        cache.apply(&[note(2, NoteKind::Created, Some("kw_newer"), None)]);
        assert!(cache.insert_if_unchanged(token("kw_new", 1), seen));
    }

    #[test]
    fn every_note_of_a_backlog_is_applied_together() {
        let cache = TokenCache::new();
        let keys: Vec<String> = (0..2500).map(|n| format!("kw_{n:016}")).collect();
        for key in &keys {
            cached(&cache, key, 1);
        }
        cached(&cache, "kw_kept", 1);
        let notes: Vec<Invalidation> = keys
            .iter()
            .zip(1..)
            .map(|(key, seq)| note(seq, NoteKind::Forget, Some(key), None))
            .collect();
        cache.apply(&notes);
        assert!(keys.iter().all(|k| cache.get(k).is_none()));
        assert!(cache.get("kw_kept").is_some());
    }

    #[test]
    fn the_log_is_read_to_its_end_however_long_it_is() {
        let mut conn = DbConnection::Sqlite(db::migrated_sqlite_in_memory());
        let cache = TokenCache::new();
        let count = db::invalidations::BATCH * 2 + 500;
        let keys: Vec<TokenKey> = (0..count).map(|_| TokenKey::generate()).collect();
        for key in &keys {
            cached(&cache, key.as_str(), 1);
            db::invalidations::record_token(&mut conn, key).expect("a note");
        }

        assert_eq!(
            cache.apply_invalidations(&mut conn).expect("applied"),
            count
        );

        assert!(keys.iter().all(|k| cache.get(k.as_str()).is_none()));
        assert_eq!(cache.apply_invalidations(&mut conn).expect("applied"), 0);
    }
}
