//! Each worker thread remembers the SHA-256 of every `Authorization` header it has let in,
//! and the token it named, for as long as the token cache's generation stands still. A
//! client's next call with the same header is then one hash and one lookup, not a decode,
//! two checksums and a hash of the secret. Only the digest is kept, never the header, and
//! the token's standing (revoked, expired, suspended) is judged again on every call. Any
//! eviction bumps the generation, and each thread forgets everything at its next lookup.
//! Measured in bench/README.md.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::cache::{CachedToken, TokenCache};

/// The SHA-256 of an `Authorization` header exactly as sent.
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

/// The most headers a thread remembers; past it, it starts over.
const MOST: usize = 10_000;

/// One thread's memory, of one cache at one generation.
#[derive(Default)]
struct Memo {
    cache: u64,
    generation: u64,
    verified: HashMap<Presented, Arc<CachedToken>>,
}

impl Memo {
    /// Starts over when the memory is another cache's or an eviction has happened since.
    fn current(&mut self, cache: u64, generation: u64) -> &mut Self {
        if self.cache != cache || self.generation != generation {
            self.verified.clear();
            self.cache = cache;
            self.generation = generation;
        }
        self
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// The token these exact credentials were verified against on this thread, as long as
/// nothing has been evicted from `cache` since.
pub fn recall(cache: &TokenCache, presented: &Presented) -> Option<Arc<CachedToken>> {
    let generation = cache.generation();
    MEMO.with_borrow_mut(|memo| {
        memo.current(cache.id(), generation)
            .verified
            .get(presented)
            .cloned()
    })
}

/// Remembers that `presented` carries the secret of `token`, as the cache gave it at
/// `generation`; only while that generation still stands, so a revocation that landed in
/// between is not papered over.
pub fn remember(
    cache: &TokenCache,
    presented: Presented,
    token: &Arc<CachedToken>,
    generation: u64,
) {
    if cache.generation() != generation {
        return;
    }
    MEMO.with_borrow_mut(|memo| {
        let memo = memo.current(cache.id(), generation);
        if memo.verified.len() >= MOST {
            memo.verified.clear();
        }
        memo.verified.insert(presented, token.clone());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_header_is_never_hashed_or_remembered() {
        assert!(Presented::of(&[b'a'; Presented::MAX_BYTES]).is_some());
        assert!(Presented::of(&[b'a'; Presented::MAX_BYTES + 1]).is_none());
    }
}
