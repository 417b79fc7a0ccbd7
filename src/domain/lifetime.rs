//! How long tokens live: the grace period an old secret keeps after a roll, and the
//! account's longest allowed token lifetime. Both are a short list of choices, so a value
//! outside the list can't exist past `parse`, and every refusal names the list.

use std::fmt;

use chrono::{Duration, NaiveDateTime};

/// How long a rolled token's old secret keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grace {
    Now,
    OneHour,
    OneDay,
    SevenDays,
}

impl Grace {
    pub const ALL: [Grace; 4] = [Grace::Now, Grace::OneHour, Grace::OneDay, Grace::SevenDays];

    /// The sentence every refusal of a grace period uses.
    pub const CHOICES: &'static str =
        "Choose how long the old secret keeps working: now, 1h, 24h or 7d.";

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "now" => Ok(Grace::Now),
            "1h" => Ok(Grace::OneHour),
            "24h" => Ok(Grace::OneDay),
            "7d" => Ok(Grace::SevenDays),
            _ => Err(Self::CHOICES.to_string()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grace::Now => "now",
            Grace::OneHour => "1h",
            Grace::OneDay => "24h",
            Grace::SevenDays => "7d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Grace::Now => "Stop it now",
            Grace::OneHour => "1 hour",
            Grace::OneDay => "24 hours",
            Grace::SevenDays => "7 days",
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            Grace::Now => Duration::zero(),
            Grace::OneHour => Duration::hours(1),
            Grace::OneDay => Duration::hours(24),
            Grace::SevenDays => Duration::days(7),
        }
    }
}

impl fmt::Display for Grace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account's longest allowed token lifetime. "No limit" is `Option::None` around it.
/// Stored as its number of days; a stored number off the list is an error, never a default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Integer)]
pub enum LifetimeLimit {
    Days7,
    Days30,
    Days90,
    Days365,
}

impl LifetimeLimit {
    pub const ALL: [LifetimeLimit; 4] = [
        LifetimeLimit::Days7,
        LifetimeLimit::Days30,
        LifetimeLimit::Days90,
        LifetimeLimit::Days365,
    ];

    /// The sentence every refusal of a lifetime policy uses.
    pub const CHOICES: &'static str =
        "Choose the longest token lifetime from the list: none, 7, 30, 90 or 365 days.";

    /// A setting as the form sends it: `none` (or nothing) for no limit, else a number of
    /// days from the list.
    pub fn parse_setting(raw: &str) -> Result<Option<Self>, String> {
        match raw.trim() {
            "" | "none" => Ok(None),
            days => days
                .parse::<i32>()
                .ok()
                .and_then(Self::from_days)
                .map(Some)
                .ok_or_else(|| Self::CHOICES.to_string()),
        }
    }

    pub fn from_days(days: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.days() == days)
    }

    pub fn days(self) -> i32 {
        match self {
            LifetimeLimit::Days7 => 7,
            LifetimeLimit::Days30 => 30,
            LifetimeLimit::Days90 => 90,
            LifetimeLimit::Days365 => 365,
        }
    }

    pub fn duration(self) -> Duration {
        Duration::days(i64::from(self.days()))
    }

    /// Refuses a token that would live longer than the limit, or for ever, with a sentence
    /// that names the limit. `now` is when the token is made.
    pub fn check(
        self,
        expires_at: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> Result<(), String> {
        let latest = now + self.duration();
        match expires_at {
            Some(at) if at <= latest => Ok(()),
            _ => Err(self.refusal()),
        }
    }

    /// The sentence that refuses a longer lifetime: it names the limit and what is left.
    pub fn refusal(self) -> String {
        format!(
            "This account's tokens may live at most {self}: choose an expiry of {}.",
            self.allowed_expiries()
        )
    }

    /// The expiries a form may offer under this limit, in words.
    fn allowed_expiries(self) -> String {
        let days: Vec<String> = Self::ALL
            .into_iter()
            .filter(|l| *l <= self)
            .map(|l| l.days().to_string())
            .collect();
        match days.as_slice() {
            [one] => format!("{one} days"),
            [init @ .., last] => format!("{} or {last} days", init.join(", ")),
            [] => String::new(),
        }
    }
}

impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Integer, DB> for LifetimeLimit
where
    DB: diesel::backend::Backend,
    i32: diesel::deserialize::FromSql<diesel::sql_types::Integer, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        let days = i32::from_sql(bytes)?;
        Self::from_days(days)
            .ok_or_else(|| format!("stored token lifetime limit {days} is not a choice").into())
    }
}

impl<DB> diesel::serialize::ToSql<diesel::sql_types::Integer, DB> for LifetimeLimit
where
    DB: diesel::backend::Backend,
    i32: diesel::serialize::ToSql<diesel::sql_types::Integer, DB>,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        // `to_sql` borrows the value for as long as the query lives: lend a constant.
        let days: &'static i32 = match self {
            LifetimeLimit::Days7 => &7,
            LifetimeLimit::Days30 => &30,
            LifetimeLimit::Days90 => &90,
            LifetimeLimit::Days365 => &365,
        };
        days.to_sql(out)
    }
}

impl fmt::Display for LifetimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} days", self.days())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .expect("a valid time")
            .naive_utc()
    }

    #[test]
    fn graces_round_trip_and_strangers_are_refused_by_naming_the_choices() {
        for grace in Grace::ALL {
            assert_eq!(Grace::parse(grace.as_str()), Ok(grace));
        }
        for bad in ["", "0", "1d", "2h", "forever", "-1h", "1H", "24"] {
            let err = Grace::parse(bad).expect_err(bad);
            assert!(err.contains("now, 1h, 24h or 7d"), "{bad}: {err}");
        }
        assert_eq!(Grace::SevenDays.duration(), Duration::days(7));
    }

    #[test]
    fn a_limit_is_one_of_the_offered_choices_or_none() {
        assert_eq!(LifetimeLimit::parse_setting("none"), Ok(None));
        assert_eq!(
            LifetimeLimit::parse_setting("30"),
            Ok(Some(LifetimeLimit::Days30))
        );
        for bad in ["31", "0", "-7", "never", "7.0", "99999999999"] {
            let err = LifetimeLimit::parse_setting(bad).expect_err(bad);
            assert!(err.contains("none, 7, 30, 90 or 365 days"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_limit_refuses_longer_lives_and_never_by_naming_itself() {
        let limit = LifetimeLimit::Days30;
        assert!(limit.check(Some(now() + Duration::days(30)), now()).is_ok());
        assert!(limit.check(Some(now() + Duration::days(7)), now()).is_ok());
        let err = limit
            .check(Some(now() + Duration::days(31)), now())
            .expect_err("31 days is longer than 30");
        assert!(err.contains("at most 30 days"), "{err}");
        assert!(err.contains("7 or 30 days"), "{err}");
        assert!(
            limit.check(None, now()).is_err(),
            "never is longer than any limit"
        );
    }
}
