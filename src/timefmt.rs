//! Times as the API shows them: RFC 3339 in UTC to the second, e.g. `2026-11-28T04:36:08Z`.

use chrono::{NaiveDateTime, SecondsFormat};

pub fn rfc3339(at: &NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}
