//! The guard's token cache: one map that every worker shares, so a request costs a
//! hash lookup and a SHA-256, not a database read; and a fingerprint of every key that
//! exists, so a request with an unknown key costs no database read either.
//!
//! Revoked tokens stay cached as revoked (revocation can't be undone, so that is always
//! safe). Unknown keys are not cached; they are refused because their fingerprint is not
//! in the set of known keys, which is loaded at start and kept current through the log.
//! A fingerprint is 8 bytes, so a million keys cost about 19 MiB; one that collides with
//! an unknown key (one chance in 2^64 per known key) only costs that key a database read.
//!
//! A load races with an eviction: a request may read a token as active just before a
//! revocation commits and evicts it, then put its stale copy in afterwards. Every
//! eviction bumps `generation`, and a load only inserts if no eviction happened since
//! it started reading.
//!
//! Each worker thread answers from copies of its own in front of the shared map, valid
//! for as long as `generation` stands still: a request then writes no memory that another
//! core writes too (no lock word, no shared reference count), which on a virtual machine
//! saves the guard microseconds a request. Any eviction bumps `generation`, and each
//! thread drops its copies at its next lookup, so a revocation reaches every worker at
//! once, as it reaches the shared map.
//!
//! Each thread also remembers the SHA-256 of every `Authorization` header it has let in,
//! and the token it named, under the same generation: a client's next call with the same
//! header is then one hash and one lookup, not a decode, a parse and a hash of the
//! secret. Only the digest is kept, never the header, and the token's standing (revoked,
//! expired, suspended) is judged again on every call.
//!
//! The cache changes one way only: through the `cache_invalidations` log, which every
//! creation, revocation and suspension writes in its own transaction. The poller applies
//! it for changes made elsewhere; a change made here applies it before answering. Either
//! way the log is read to its end and applied in one step, so a removal that revoked
//! thousands of tokens is seen whole by the next request, never in part.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::clock::CallTime;
use crate::per_thread;

use crate::db::DbConnection;
use chrono::NaiveDateTime;

use crate::db::{self, Pool, invalidations::Invalidation, invalidations::NoteKind};
use crate::domain::{AccountId, RateLimit, Scopes, SecretDigest, TokenId, TokenKey};
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
}

impl CachedToken {
    pub fn is_expired_at(&self, now: CallTime) -> bool {
        self.expires_at.is_some_and(|e| now.reached(e))
    }

    fn from_rows(
        token: db::tokens::Token,
        account: db::accounts::Account,
    ) -> Result<Self, AppError> {
        let digest = SecretDigest::from_bytes(&token.secret_digest).ok_or_else(|| {
            AppError::internal(format!("token {} has a malformed digest", token.id))
        })?;
        Ok(Self {
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
            account_slug: account.slug,
            account_name: account.name,
            key: token.key,
            name: token.name,
        })
    }
}

/// The most tokens a thread keeps copies of; past it, it starts over.
const THREAD_COPIES: usize = 10_000;

static NEXT_CACHE: AtomicU64 = AtomicU64::new(1);

/// What the cache knows of a key without reading the database.
pub enum Found {
    /// The token, whatever its state, and the generation it was found at.
    Token {
        token: Arc<CachedToken>,
        generation: u64,
    },
    /// Certain: no token has this key.
    NoSuchKey,
    /// A token may have it, and isn't cached yet.
    Unread,
}

/// The SHA-256 of an `Authorization` header exactly as sent. A thread remembers the
/// digests of the headers it has verified, so the next call with the same header skips
/// decoding and parsing it and hashing its secret; it never keeps the header itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Presented([u8; 32]);

impl Presented {
    /// Headers longer than this are not remembered (no client needs one), so a long header
    /// costs no hashing before the parser refuses it.
    const MAX_BYTES: usize = 512;

    pub fn of(header: &[u8]) -> Option<Self> {
        (header.len() <= Self::MAX_BYTES).then(|| Self(Sha256::digest(header).into()))
    }
}

/// One thread's copies, of one cache at one generation. Hashed with foldhash rather than
/// SipHash: these maps sit on every guarded call, and neither can be grown by a caller, since
/// only existing tokens and verified headers are put in (a digest is random already).
#[derive(Default)]
struct ThreadCopies {
    cache: u64,
    generation: u64,
    tokens: HashMap<String, Arc<CachedToken>, foldhash::fast::RandomState>,
    /// Headers verified on this thread, and the token each one names.
    verified: HashMap<Presented, Arc<CachedToken>, foldhash::fast::RandomState>,
}

impl ThreadCopies {
    /// Starts over when the copies are another cache's or an eviction has happened since.
    fn current(&mut self, cache: u64, generation: u64) -> &mut Self {
        if self.cache != cache || self.generation != generation {
            self.tokens.clear();
            self.verified.clear();
            self.cache = cache;
            self.generation = generation;
        }
        self
    }
}

thread_local! {
    static COPIES: RefCell<ThreadCopies> = RefCell::default();
}

pub struct TokenCache {
    /// Tells this cache's copies from another's on a thread that serves several servers
    /// (as a test process does).
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
    hits: per_thread::Counter,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self {
            id: NEXT_CACHE.fetch_add(1, Ordering::Relaxed),
            entries: RwLock::default(),
            generation: AtomicU64::default(),
            applied: AtomicI32::default(),
            known: RwLock::default(),
            fingerprints: RandomState::default(),
            database_reads: AtomicU64::default(),
            hits: per_thread::Counter::default(),
        }
    }
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
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

    /// The cached token with this key: this thread's copy, or a copy made now of the
    /// shared map's.
    pub fn get(&self, key: &str) -> Option<Arc<CachedToken>> {
        self.get_at(key, self.generation())
    }

    /// [`get`](Self::get) with the generation read before it: read before the copies
    /// are, so an eviction that lands in between is caught by the next lookup, as a
    /// lookup that read the map just before it would be.
    fn get_at(&self, key: &str, generation: u64) -> Option<Arc<CachedToken>> {
        COPIES.with_borrow_mut(|copies| {
            let copies = copies.current(self.id, generation);
            if let Some(token) = copies.tokens.get(key) {
                return Some(token.clone());
            }
            let shared = self.read().get(key).cloned()?;
            if copies.tokens.len() >= THREAD_COPIES {
                copies.tokens.clear();
            }
            let copy = Arc::new(CachedToken::clone(&shared));
            copies.tokens.insert(key.to_string(), copy.clone());
            Some(copy)
        })
    }

    /// The token these exact credentials were verified against on this thread, as long as
    /// nothing has been evicted since. The caller still judges its state (revoked,
    /// expired, suspended): only the secret's check is skipped.
    pub fn verified(&self, presented: &Presented) -> Option<Arc<CachedToken>> {
        let generation = self.generation();
        let token = COPIES.with_borrow_mut(|copies| {
            copies
                .current(self.id, generation)
                .verified
                .get(presented)
                .cloned()
        })?;
        self.hits.add(1);
        Some(token)
    }

    /// Remembers that `presented` carries the secret of `token`, as [`find`](Self::find)
    /// gave it at `generation`. Only while that generation still stands: a revocation
    /// that landed in between must not be papered over.
    pub fn remember_verified(
        &self,
        presented: Presented,
        token: &Arc<CachedToken>,
        generation: u64,
    ) {
        if self.generation() != generation {
            return;
        }
        COPIES.with_borrow_mut(|copies| {
            let copies = copies.current(self.id, generation);
            if copies.verified.len() >= THREAD_COPIES {
                copies.verified.clear();
            }
            copies.verified.insert(presented, token.clone());
        });
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

    /// How many lookups the map answered, and how many tokens it holds.
    pub fn hits_and_len(&self) -> (u64, usize) {
        (self.hits.sum(), self.read().len())
    }

    /// What memory alone says of this key. A cached token and an unknown key cost nothing;
    /// any other key is [`Found::Unread`], for [`load`](Self::load) to read once.
    pub fn find(&self, key: &str) -> Found {
        let generation = self.generation();
        if let Some(token) = self.get_at(key, generation) {
            self.hits.add(1);
            return Found::Token { token, generation };
        }
        if !self.may_exist(key) {
            return Found::NoSuchKey;
        }
        Found::Unread
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
            account_suspended_by_operator: false,
            rate_limit: None,
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
    fn a_threads_copy_goes_with_the_eviction_and_copies_of_two_caches_never_mix() {
        let (cache, other) = (TokenCache::new(), TokenCache::new());
        cached(&cache, "kw_a", 1);
        cached(&other, "kw_a", 2);
        // Served once: this thread now answers from its own copy.
        assert_eq!(cache.get("kw_a").map(|t| t.account_id), Some(AccountId(1)));
        assert_eq!(other.get("kw_a").map(|t| t.account_id), Some(AccountId(2)));
        assert_eq!(cache.get("kw_a").map(|t| t.account_id), Some(AccountId(1)));

        cache.apply(&[note(1, NoteKind::Forget, Some("kw_a"), None)]);
        assert!(
            cache.get("kw_a").is_none(),
            "the copy went with the eviction"
        );
        assert!(
            other.get("kw_a").is_some(),
            "the other cache forgot nothing"
        );

        // Another thread's copy goes too.
        cached(&cache, "kw_b", 1);
        std::thread::scope(|scope| {
            scope.spawn(|| assert!(cache.get("kw_b").is_some()));
        });
        cache.apply(&[note(2, NoteKind::Forget, None, Some(1))]);
        std::thread::scope(|scope| {
            scope.spawn(|| assert!(cache.get("kw_b").is_none()));
        });
    }

    const HEADER: &[u8] = b"Basic a3dfYTprd3Nfc2VjcmV0";

    #[test]
    fn a_verified_header_is_remembered_until_any_eviction() {
        let cache = TokenCache::new();
        cached(&cache, "kw_a", 1);
        let header = Presented::of(HEADER).unwrap();
        let Found::Token { token, generation } = cache.find("kw_a") else {
            panic!("kw_a is cached");
        };
        cache.remember_verified(header, &token, generation);
        assert_eq!(
            cache.verified(&header).map(|t| t.key.clone()),
            Some("kw_a".into())
        );
        let other = Presented::of(b"Basic a3dfYTprd3Nfb3RoZXI=").unwrap();
        assert!(
            cache.verified(&other).is_none(),
            "only the very header verified"
        );

        // An eviction of any token, here another one, starts the thread over.
        cache.apply(&[note(1, NoteKind::Forget, Some("kw_b"), None)]);
        assert!(cache.verified(&header).is_none());
    }

    #[test]
    fn a_token_found_before_an_eviction_is_not_remembered_after_it() {
        let cache = TokenCache::new();
        cached(&cache, "kw_a", 1);
        let Found::Token { token, generation } = cache.find("kw_a") else {
            panic!("kw_a is cached");
        };
        // Revoked on the poller's thread between the lookup and the verdict, and this
        // thread's copies have moved on since (another token was looked up).
        std::thread::scope(|scope| {
            scope.spawn(|| cache.apply(&[note(1, NoteKind::Forget, Some("kw_a"), None)]));
        });
        assert!(cache.get("kw_other").is_none());
        let header = Presented::of(HEADER).unwrap();
        cache.remember_verified(header, &token, generation);
        assert!(cache.verified(&header).is_none());
    }

    #[test]
    fn a_long_header_is_never_hashed_or_remembered() {
        assert!(Presented::of(&[b'a'; Presented::MAX_BYTES]).is_some());
        assert!(Presented::of(&[b'a'; Presented::MAX_BYTES + 1]).is_none());
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
        use diesel::Connection;
        use diesel_migrations::MigrationHarness;
        let mut sqlite =
            diesel::SqliteConnection::establish(":memory:").expect("an in-memory database");
        sqlite
            .run_pending_migrations(db::SQLITE_MIGRATIONS)
            .expect("the migrations run");
        let mut conn = DbConnection::Sqlite(sqlite);
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
