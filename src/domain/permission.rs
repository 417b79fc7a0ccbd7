//! Permissions an account names itself (`documents.read`), held by a token and asked for
//! by the services that verify it (`permission_query`). Keyward gives them no meaning.

use std::fmt;

/// One permission name: `^[a-z][a-z0-9_.:-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(String);

impl Permission {
    pub const RULE: &'static str = "a permission is a lowercase letter followed by up to 63 lowercase letters, digits or the characters _ . : -";

    pub fn parse(raw: &str) -> Result<Self, String> {
        if is_name(raw) {
            Ok(Self(raw.to_string()))
        } else {
            Err(format!(
                "\"{}\" is not a permission: {}.",
                raw.chars().take(80).collect::<String>(),
                Self::RULE
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `raw` is a permission name; the query parser reads names with it too.
pub fn is_name(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    matches!(bytes.first(), Some(b'a'..=b'z'))
        && bytes.len() <= 64
        && bytes.iter().all(|b| is_name_byte(*b))
}

pub(super) fn is_name_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b':' | b'-')
}

/// A token's permissions: at most [`Permissions::MAX`], sorted, without repeats, stored
/// as `a,b,c` (a comma is in no name). Empty for none.
#[derive(Debug, Clone, Default, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Permissions(String);

super::sql::text_column!(Permissions);

impl Permissions {
    pub const MAX: usize = 50;

    pub fn new(names: impl IntoIterator<Item = Permission>) -> Result<Self, String> {
        let mut names: Vec<Permission> = names.into_iter().collect();
        names.sort();
        names.dedup();
        if names.len() > Self::MAX {
            return Err(format!(
                "a token holds at most {} permissions; this list has {}.",
                Self::MAX,
                names.len()
            ));
        }
        Ok(Self(
            names
                .iter()
                .map(Permission::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ))
    }

    /// The stored or typed form: names separated by commas (and spaces, in a form).
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split([',', ' ', '\n', '\r', '\t'])
            .filter(|s| !s.is_empty())
            .map(Permission::parse)
            .collect::<Result<Vec<_>, _>>()
            .and_then(Self::new)
    }

    /// Allocation-free: a token holds at most 50, so a scan is as fast as a set.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|p| p == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(',').filter(|s| !s.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The permissions of `self` that `other` lacks.
    pub fn missing_from<'a>(&'a self, other: &Permissions) -> Vec<&'a str> {
        self.iter().filter(|p| !other.contains(p)).collect()
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "none" } else { &self.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in [
            "a",
            "documents.read",
            "billing:write",
            "x_1-2",
            &"a".repeat(64),
        ] {
            assert!(Permission::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "A",
            "1a",
            ".a",
            "a b",
            "a,b",
            "é",
            &"a".repeat(65),
            "Documents",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_list_is_sorted_unique_and_bounded() {
        let p = Permissions::parse("b.read, a.write,b.read").unwrap();
        assert_eq!(p.as_str(), "a.write,b.read");
        assert!(p.contains("b.read") && !p.contains("b"));
        assert!(Permissions::parse("").unwrap().is_empty());
        let fifty: Vec<String> = (0..50).map(|n| format!("p{n}")).collect();
        assert!(Permissions::parse(&fifty.join(",")).is_ok());
        let fifty_one = format!("{},q", fifty.join(","));
        assert!(
            Permissions::parse(&fifty_one)
                .unwrap_err()
                .contains("at most 50")
        );
    }
}
