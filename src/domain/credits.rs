//! Usage credits: how many more successful calls a token may make, and how they come
//! back. A refill sets the balance to its amount (it doesn't add), at the first use after
//! each UTC day or calendar month begins.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

/// The most credits a token may hold or be refilled with: past this, a number is a typo.
pub const MAX_CREDITS: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefillInterval {
    Daily,
    Monthly,
}

impl RefillInterval {
    pub const CHOICES: &'static str = "a refill interval is \"daily\" or \"monthly\"";

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "daily" => Ok(Self::Daily),
            "monthly" => Ok(Self::Monthly),
            other => Err(format!(
                "\"{}\" is not a refill interval: {}.",
                other.chars().take(40).collect::<String>(),
                Self::CHOICES
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }

    /// When the interval that holds `at` began: the refill due at its first use.
    pub fn period_start(self, at: NaiveDateTime) -> NaiveDateTime {
        let day = at.date();
        let first = match self {
            Self::Daily => day,
            Self::Monthly => NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day),
        };
        first.and_hms_opt(0, 0, 0).unwrap_or(at)
    }
}

/// A refill: back to `amount` credits every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    pub interval: RefillInterval,
    amount: i64,
}

impl Refill {
    pub fn new(interval: RefillInterval, amount: i64) -> Result<Self, String> {
        check_amount(amount, "a refill amount")?;
        Ok(Self { interval, amount })
    }

    pub fn amount(self) -> i64 {
        self.amount
    }

    /// Whether a balance last refilled (or set) at `last` is due a refill at `now`.
    pub fn due(self, last: NaiveDateTime, now: NaiveDateTime) -> bool {
        last < self.interval.period_start(now)
    }
}

/// A token's credit limit as set: what it starts with, and its refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credits {
    remaining: i64,
    pub refill: Option<Refill>,
}

impl Credits {
    pub fn new(remaining: i64, refill: Option<Refill>) -> Result<Self, String> {
        check_amount(remaining, "'remaining'")?;
        Ok(Self { remaining, refill })
    }

    pub fn remaining(self) -> i64 {
        self.remaining
    }
}

fn check_amount(n: i64, what: &str) -> Result<(), String> {
    if (0..=MAX_CREDITS).contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "{what} is a whole number from 0 to {MAX_CREDITS}; {n} is not."
        ))
    }
}

/// A token's credit limit as loaded from the store, with when it was last refilled: what
/// the guard's cache holds and `limits::credits` spends from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditSnapshot {
    pub credits: Credits,
    pub refilled_at: Option<NaiveDateTime>,
    /// Which setting of the credits this balance belongs to: a person's change starts a
    /// new one.
    pub version: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_refill_is_due_once_a_new_period_has_begun() {
        let daily = Refill::new(RefillInterval::Daily, 10).unwrap();
        assert!(!daily.due(at("2026-12-07 00:00:00"), at("2026-12-07 23:59:59")));
        assert!(daily.due(at("2026-12-07 23:59:59"), at("2026-12-08 00:00:00")));
        let monthly = Refill::new(RefillInterval::Monthly, 10).unwrap();
        assert!(!monthly.due(at("2026-12-01 00:00:00"), at("2026-12-31 23:00:00")));
        assert!(monthly.due(at("2026-11-30 23:00:00"), at("2026-12-01 00:00:00")));
    }

    #[test]
    fn negative_or_absurd_amounts_are_refused() {
        assert!(Credits::new(-1, None).is_err());
        assert!(Credits::new(MAX_CREDITS + 1, None).is_err());
        assert!(Credits::new(0, None).is_ok());
        assert!(Refill::new(RefillInterval::Daily, -5).is_err());
        assert!(RefillInterval::parse("weekly").is_err());
    }
}
