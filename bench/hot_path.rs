//! What usage counting and rate limits add to the guard's path, timed on its own, since a
//! whole-server run on a shared machine swings by more than these costs: counting a call in
//! the usage map, and a rate-limit check at a limit never reached. Each is timed on one
//! thread, then on two threads using the same token at once (the worst case: one shard, one atomic word).
//!
//!   cargo run --release --example bench_hot_path [CALLS]     # default 5,000,000 per thread

use std::collections::HashMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use keyward::domain::{RateLimit, TokenId};
use keyward::limits::per_token::RateLimits;
use keyward::usage::{Outcome, UsageRecorder};

fn time_per_call(threads: usize, calls: u64, work: impl Fn(u64) + Sync) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| (0..calls).for_each(&work));
        }
    });
    started.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000_000);
    let usage = UsageRecorder::new();
    let limits = RateLimits::new();
    let limit = RateLimit::new(RateLimit::MAX).expect("a valid limit");
    let token = TokenId(1);
    let ip: Option<IpAddr> = Some(IpAddr::from([127, 0, 0, 1]));
    let now = chrono::Utc::now().naive_utc();

    // What recorded a call before: the last use only, in one map behind one mutex.
    let before: Mutex<HashMap<TokenId, (chrono::NaiveDateTime, Option<IpAddr>)>> = Mutex::default();

    println!("{calls} calls per thread; ns per call, wall time over calls of one thread");
    for threads in [1, 2] {
        let mutex = time_per_call(threads, calls, |_| {
            before
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(black_box(token), (now, ip));
        });
        let record = time_per_call(threads, calls, |_| {
            usage.record(black_box(token), Outcome::Succeeded, now, ip)
        });
        let check = time_per_call(threads, calls, |_| {
            let _ = black_box(limits.check(black_box(token), limit));
        });
        let now_cost = time_per_call(threads, calls, |_| {
            black_box(chrono::Utc::now());
        });
        println!(
            "{threads} thread(s): before (mutex map) {mutex:6.1} ns   usage.record {record:6.1} ns   rate_limits.check {check:6.1} ns   (Utc::now {now_cost:5.1} ns, for scale)"
        );
    }
}
