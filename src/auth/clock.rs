//! The time a guarded call is judged at.
//!
//! Reading the exact clock and turning it into a date costs about 80 ns here, on every
//! guarded call. The guard reads the kernel's coarse clock instead: the time of its last
//! tick, at most one tick (1 to 4 ms) behind and never ahead, which the vDSO answers
//! without reading the timer. Each worker turns it into a date once per tick.
//!
//! Only expiry needs the exact time. A coarse reading is never ahead of the real time, so
//! a deadline it has reached has passed. A deadline up to a second after it reads the
//! exact clock: a token is never let in after its expiry, and only a token that expires
//! within the coming second pays for the exact read. The usage history's days and
//! last-used times take the coarse reading as it is.

use std::cell::Cell;

use chrono::{NaiveDateTime, TimeDelta, Utc};

/// How far after a coarse reading a deadline is checked against the exact clock: far
/// more than a tick, so that a late tick can't let an expired token in.
const SLACK: TimeDelta = TimeDelta::seconds(1);

/// When a call is judged, and whether that time came from the coarse clock.
#[derive(Debug, Clone, Copy)]
pub struct CallTime {
    at: NaiveDateTime,
    coarse: bool,
}

impl CallTime {
    /// Now, from the coarse clock.
    pub fn now() -> Self {
        Self {
            at: coarse_now(),
            coarse: true,
        }
    }

    /// Exactly `at`: for a caller that judges at a chosen time, as tests do.
    pub fn exact(at: NaiveDateTime) -> Self {
        Self { at, coarse: false }
    }

    /// The time, for the usage history.
    pub fn at(self) -> NaiveDateTime {
        self.at
    }

    /// The time once a wait is over: a coarse time is read again, so that a call that
    /// waited (for the database, say) is judged when it is judged, not when it arrived;
    /// an exact time is the caller's choice and stays.
    pub fn after_wait(self) -> Self {
        if self.coarse { Self::now() } else { self }
    }

    /// Whether `deadline` has passed.
    pub fn reached(self, deadline: NaiveDateTime) -> bool {
        if deadline <= self.at {
            return true;
        }
        self.coarse && deadline - self.at <= SLACK && deadline <= Utc::now().naive_utc()
    }
}

#[cfg(target_os = "linux")]
thread_local! {
    /// The last coarse reading on this thread (seconds, nanoseconds) and its date.
    static LAST: Cell<(libc::time_t, libc::c_long, NaiveDateTime)> = const {
        Cell::new((0, 0, NaiveDateTime::MIN))
    };
}

#[cfg(target_os = "linux")]
fn coarse_now() -> NaiveDateTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live one.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return Utc::now().naive_utc();
    }
    let (sec, nsec) = (ts.tv_sec, ts.tv_nsec);
    LAST.with(|last| {
        let (last_sec, last_nsec, date) = last.get();
        if (last_sec, last_nsec) == (sec, nsec) {
            return date;
        }
        let Some(date) = u32::try_from(nsec)
            .ok()
            .and_then(|nsec| chrono::DateTime::from_timestamp(sec, nsec))
            .map(|d| d.naive_utc())
        else {
            return Utc::now().naive_utc();
        };
        last.set((sec, nsec, date));
        date
    })
}

/// Elsewhere, the exact clock.
#[cfg(not(target_os = "linux"))]
fn coarse_now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_now() -> NaiveDateTime {
        Utc::now().naive_utc()
    }

    #[test]
    fn the_coarse_clock_is_never_ahead_and_at_most_a_few_ticks_behind() {
        for _ in 0..1000 {
            let before = exact_now();
            let coarse = CallTime::now().at();
            let after = exact_now();
            assert!(coarse <= after, "{coarse} is ahead of {after}");
            assert!(
                before - coarse < TimeDelta::milliseconds(50),
                "{coarse} is {} behind",
                before - coarse
            );
        }
    }

    #[test]
    fn a_deadline_just_passed_is_reached_even_when_the_coarse_reading_is_before_it() {
        let real = exact_now();
        let deadline = real - TimeDelta::milliseconds(1);
        let late_tick = real - TimeDelta::milliseconds(3);
        assert!(
            CallTime {
                at: late_tick,
                coarse: true
            }
            .reached(deadline),
            "a coarse reading must check a near deadline against the exact clock"
        );
        // An exact time is taken at its word: it is a chosen time, not a late reading.
        assert!(!CallTime::exact(late_tick).reached(deadline));
    }

    #[test]
    fn a_coarse_time_is_read_again_after_a_wait_and_an_exact_one_is_kept() {
        let long_ago = exact_now() - TimeDelta::minutes(5);
        let waited = CallTime {
            at: long_ago,
            coarse: true,
        }
        .after_wait();
        assert!(
            waited.at() > long_ago + TimeDelta::minutes(4),
            "{}",
            waited.at()
        );
        assert!(waited.coarse);
        assert_eq!(CallTime::exact(long_ago).after_wait().at(), long_ago);
    }

    #[test]
    fn a_deadline_still_ahead_is_not_reached() {
        let now = CallTime::now();
        // Within the slack, so the exact clock is read: still ahead unless the test stalls
        // for most of a second in between.
        assert!(!now.reached(exact_now() + TimeDelta::milliseconds(900)));
        assert!(!now.reached(exact_now() + TimeDelta::seconds(5)));
        assert!(now.reached(now.at()));
        assert!(now.reached(now.at() - TimeDelta::seconds(5)));
    }
}
