//! Slots that each thread writes alone, for what the guard counts on every request.
//!
//! A value every worker writes (a shared counter, a reference count, a lock word) makes
//! its cache line travel between cores on each write; on a virtual machine whose cores
//! sit far apart that costs the guard microseconds a request. Each thread gets a slot
//! number once, and everything kept per thread is an array indexed by it, each element on
//! a cache line of its own. Readers (a flush, a scrape) add the slots up.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// More slots than a server has workers, so threads rarely share one; threads that do (a
/// test process runs many servers) still get the right sums, only slower.
pub const SLOTS: usize = 16;

static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
}

/// This thread's slot: the same every time it asks.
pub fn slot() -> usize {
    SLOT.with(|slot| *slot)
}

/// A count that many threads add to and few read.
pub struct Counter([CachePadded<std::sync::atomic::AtomicU64>; SLOTS]);

impl Default for Counter {
    fn default() -> Self {
        Self(std::array::from_fn(|_| CachePadded::default()))
    }
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.0[slot()].fetch_add(n, Ordering::Relaxed);
    }

    pub fn sum(&self) -> u64 {
        self.0.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_slot_and_the_counts_of_all_threads_add_up() {
        let counter = Counter::default();
        std::thread::scope(|scope| {
            for _ in 0..SLOTS + 3 {
                scope.spawn(|| {
                    let mine = slot();
                    for _ in 0..1000 {
                        counter.add(1);
                        assert_eq!(slot(), mine);
                    }
                });
            }
        });
        assert_eq!(counter.sum(), (SLOTS as u64 + 3) * 1000);
    }
}
