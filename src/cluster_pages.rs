//! Rendered pages of `GET /clusters`, kept in memory per (account, page, size), so a
//! repeated list costs a hash lookup instead of a SQLite read and 14 KB of JSON escaping.
//!
//! **Fresh on this instance at once.** A cluster write drops the account's pages as soon
//! as its transaction has committed (`routes::api::clusters`), before it answers.
//!
//! **Fresh on other instances within one poll.** Every cluster write leaves a `clusters`
//! note in the invalidation log in its own transaction; each process applies the log every
//! `invalidation_poll_interval` (250 ms by default) and drops the named account's pages
//! then. So a list answered by another instance on the same database may show the clusters
//! as they were for up to one poll interval after the write answered. Bonsai's API is
//! asynchronous in the same way: a write answers 202 and the cluster changes afterwards.
//!
//! **A read racing a write.** A request may read the clusters just before a write commits
//! and store its now stale page just after the write dropped the account's pages. Every
//! drop bumps `generation` before removing, and a store re-checks it after inserting: if
//! a drop happened since the request started reading, it removes what it stored.
//!
//! **Bounded.** Only pages 1 to [`MAX_CACHED_PAGE`] are kept (any size from 1 to 100), and
//! all pages together weigh at most [`BUDGET_BYTES`] of JSON; past that the least useful
//! are evicted (quick_cache's CLOCK-Pro). A deep page is rendered on every request.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::web::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::db::invalidations::{Invalidation, NoteKind};
use crate::domain::{AccountId, Paging};

/// The deepest page kept. Clients read from the first page on; Bonsai's client pages
/// through them all, so the first few are the ones asked for again and again.
pub const MAX_CACHED_PAGE: i64 = 10;

/// The most JSON kept, over every account: a page of 100 clusters is about 70 KB, of 20
/// about 14 KB, so this holds some 2,000 pages of the default size.
pub const BUDGET_BYTES: u64 = 32 * 1024 * 1024;

/// What a page is kept under. The account comes from the calling token, never from the
/// request, so one account's page can't be served to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageKey {
    account: AccountId,
    number: i64,
    size: i64,
}

impl PageKey {
    /// The key of a page worth keeping; `None` for a page past [`MAX_CACHED_PAGE`].
    pub fn new(account: AccountId, paging: Paging) -> Option<Self> {
        (paging.number() <= MAX_CACHED_PAGE).then_some(Self {
            account,
            number: paging.number(),
            size: paging.size(),
        })
    }
}

/// A page weighs its bytes, plus what the map spends on an entry.
#[derive(Debug, Clone, Copy)]
struct PageWeight;

const ENTRY_OVERHEAD: u64 = 64;

impl Weighter<PageKey, Bytes> for PageWeight {
    fn weight(&self, _key: &PageKey, page: &Bytes) -> u64 {
        page.len() as u64 + ENTRY_OVERHEAD
    }
}

pub struct ClusterPages {
    pages: Cache<PageKey, Bytes, PageWeight>,
    /// Bumped by every drop, before it removes anything.
    generation: AtomicU64,
}

impl Default for ClusterPages {
    fn default() -> Self {
        Self::with_budget(BUDGET_BYTES)
    }
}

impl ClusterPages {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_budget(bytes: u64) -> Self {
        // quick_cache sizes its table from the expected count: pages of the default size.
        let expected = usize::try_from(bytes / 14_000).unwrap_or(1024).max(16);
        Self {
            pages: Cache::with_weighter(expected, bytes, PageWeight),
            generation: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &PageKey) -> Option<Bytes> {
        self.pages.get(key)
    }

    /// Read before reading the clusters; pass to [`store`](Self::store).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `page` unless the account's pages were dropped since `generation` was read,
    /// when it may already be stale.
    pub fn store(&self, key: PageKey, page: Bytes, generation: u64) {
        if self.generation() != generation {
            return;
        }
        self.pages.insert(key, page);
        // A drop between the check above and the insert has already swept the map, so
        // the page it missed goes now.
        if self.generation() != generation {
            self.pages.remove(&key);
        }
    }

    /// Drops every page of `account`: its clusters changed.
    pub fn forget_account(&self, account: AccountId) {
        self.forget(|key| key.account == account);
    }

    /// Drops the pages of every account a `clusters` note in `notes` names.
    pub fn apply(&self, notes: &[Invalidation]) {
        let mut accounts: Vec<AccountId> = notes
            .iter()
            .filter(|n| n.kind == NoteKind::Clusters)
            .filter_map(|n| n.account_id.map(AccountId))
            .collect();
        if accounts.is_empty() {
            return;
        }
        accounts.sort_unstable();
        accounts.dedup();
        self.forget(|key| accounts.binary_search(&key.account).is_ok());
    }

    fn forget(&self, stale: impl Fn(&PageKey) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.pages.retain(|key, _| !stale(key));
    }

    /// How many pages are kept, and their weight in bytes.
    pub fn usage(&self) -> (usize, u64) {
        (self.pages.len(), self.pages.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(account: i32, number: i64) -> PageKey {
        PageKey::new(AccountId(account), Paging::new(number, 20).unwrap()).unwrap()
    }

    fn note(seq: i32, kind: NoteKind, account: i32) -> Invalidation {
        Invalidation {
            seq,
            kind,
            token_key: None,
            account_id: Some(account),
            at: chrono::Utc::now().naive_utc(),
        }
    }

    #[test]
    fn a_page_is_kept_per_account_and_dropped_with_its_account_only() {
        let pages = ClusterPages::new();
        let generation = pages.generation();
        pages.store(key(1, 1), Bytes::from_static(b"one"), generation);
        pages.store(key(2, 1), Bytes::from_static(b"two"), generation);
        assert_eq!(pages.get(&key(1, 1)).as_deref(), Some(&b"one"[..]));
        assert_eq!(pages.get(&key(2, 1)).as_deref(), Some(&b"two"[..]));

        pages.forget_account(AccountId(1));
        assert_eq!(pages.get(&key(1, 1)), None);
        assert_eq!(pages.get(&key(2, 1)).as_deref(), Some(&b"two"[..]));
    }

    #[test]
    fn a_page_read_before_a_drop_is_not_kept() {
        let pages = ClusterPages::new();
        let generation = pages.generation();
        pages.forget_account(AccountId(9));
        pages.store(key(1, 1), Bytes::from_static(b"stale"), generation);
        assert_eq!(pages.get(&key(1, 1)), None);
    }

    #[test]
    fn only_clusters_notes_drop_pages() {
        let pages = ClusterPages::new();
        let generation = pages.generation();
        pages.store(key(1, 1), Bytes::from_static(b"one"), generation);
        pages.store(key(2, 3), Bytes::from_static(b"two"), generation);
        pages.apply(&[note(1, NoteKind::Forget, 1), note(2, NoteKind::Created, 2)]);
        assert_eq!(pages.usage().0, 2, "token notes leave pages alone");
        pages.apply(&[note(3, NoteKind::Clusters, 2)]);
        assert!(pages.get(&key(1, 1)).is_some());
        assert_eq!(pages.get(&key(2, 3)), None);
    }

    #[test]
    fn deep_pages_are_not_kept_and_the_budget_holds() {
        let deep = Paging::new(MAX_CACHED_PAGE + 1, 20).unwrap();
        assert_eq!(PageKey::new(AccountId(1), deep), None);

        let budget = 64 * 1024;
        let pages = ClusterPages::with_budget(budget);
        let page = Bytes::from(vec![b'x'; 4096]);
        for account in 0..200 {
            pages.store(key(account, 1), page.clone(), pages.generation());
        }
        let (count, weight) = pages.usage();
        assert!(weight <= budget, "{weight} bytes kept, over {budget}");
        assert!(count < 200, "{count} pages of 4 KiB kept in 64 KiB");
    }
}
