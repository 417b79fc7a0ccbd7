//! A per-address rate limit for routes anyone may call without credentials, such as
//! `/secret-scanning/report`: a burst, then a steady rate, and a 429 with `Retry-After`
//! beyond it. Counted in memory, per process (governor's GCRA: one timestamp per address).
//!
//! An IPv6 /64 counts as one address, and its /48 as at most [`NETWORK_SHARE`] of them: a
//! /48 (which a tunnel broker hands out for free) holds 65,536 /64s, and must not be worth
//! 65,536 limits.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::AppError;

/// Beyond this many tracked addresses, those whose limit has fully replenished are
/// forgotten, so a flood from many addresses can't grow the map without end. An
/// address costs a few dozen bytes.
const MAX_ADDRESSES: usize = 100_000;

/// How many addresses' worth an IPv6 /48 may spend, all its /64s together.
pub const NETWORK_SHARE: u32 = 4;

pub struct IpLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// The same limit, [`NETWORK_SHARE`] times over, for each IPv6 /48.
    networks: DefaultKeyedRateLimiter<IpAddr>,
    what: &'static str,
}

impl IpLimit {
    /// `burst` requests at once from one address, then one every `every`.
    pub fn new(what: &'static str, burst: NonZeroU32, every: Duration) -> Self {
        let quota = |burst: NonZeroU32, every: Duration| {
            Quota::with_period(every)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst)
        };
        let share = NonZeroU32::new(NETWORK_SHARE).expect("a share above zero");
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota(burst, every)),
            networks: DefaultKeyedRateLimiter::keyed(quota(
                burst.saturating_mul(share),
                every / NETWORK_SHARE,
            )),
            what,
        }
    }

    /// Counts one request from `ip`, or refuses it with a 429 saying when to try again.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        let key = ip.map(bucket).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        for limiter in [&self.limiter, &self.networks] {
            if limiter.len() > MAX_ADDRESSES {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        let checked = self
            .limiter
            .check_key(&key)
            .and_then(|()| match network(key) {
                Some(network) => self.networks.check_key(&network),
                None => Ok(()),
            });
        checked.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Round up, so that a client that waits as told is let in.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            AppError::TooManyRequests {
                retry_after_secs: secs.max(1),
                message: format!(
                    "Too many {} from this address. Try again in {} s.",
                    self.what,
                    secs.max(1)
                ),
            }
        })
    }
}

/// The IPv6 /48 a /64 bucket lies in; none for IPv4, where an address is the scarce thing.
fn network(bucket: IpAddr) -> Option<IpAddr> {
    match bucket {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[6..].fill(0);
            Some(IpAddr::from(octets))
        }
    }
}

/// The unit one client holds: an IPv4 address, or an IPv6 /64 (a single host is usually
/// given a whole /64, so counting its addresses one by one would count nothing).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_429_with_retry_after_for_that_address_only() {
        let limit = IpLimit::new(
            "reports",
            NonZeroU32::new(3).unwrap(),
            Duration::from_secs(60),
        );
        let one = Some(IpAddr::from([192, 0, 2, 1]));
        for _ in 0..3 {
            limit.check(one).expect("within the burst");
        }
        match limit.check(one) {
            Err(AppError::TooManyRequests {
                retry_after_secs, ..
            }) => assert!((1..=60).contains(&retry_after_secs)),
            other => panic!("expected a 429, got {other:?}"),
        }
        limit
            .check(Some(IpAddr::from([192, 0, 2, 2])))
            .expect("another address has its own limit");
    }

    #[test]
    fn one_ipv6_host_is_one_bucket() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(bucket(mapped), IpAddr::from([192, 0, 2, 1]));
    }

    #[test]
    fn the_64s_of_one_48_share_a_few_addresses_worth() {
        let limit = IpLimit::new(
            "starts",
            NonZeroU32::new(2).unwrap(),
            Duration::from_secs(3600),
        );
        let in_one_48 = |n: u16| Some(IpAddr::from([0x2001, 0xdb8, 1, n, 0, 0, 0, 1]));
        // Each /64 gets its own burst, until the /48 has spent NETWORK_SHARE of them.
        for n in 0..NETWORK_SHARE as u16 {
            limit
                .check(in_one_48(n))
                .expect("a fresh /64, within its burst");
            limit
                .check(in_one_48(n))
                .expect("a fresh /64, within its burst");
        }
        assert!(
            limit.check(in_one_48(1000)).is_err(),
            "a fresh /64 of a spent /48 is refused"
        );
        limit
            .check(Some(IpAddr::from([0x2001, 0xdb8, 2, 0, 0, 0, 0, 1])))
            .expect("another /48 has its own share");
        for last in 1..=20 {
            limit
                .check(Some(IpAddr::from([192, 0, 2, last])))
                .expect("IPv4 addresses have no network share");
        }
    }
}
