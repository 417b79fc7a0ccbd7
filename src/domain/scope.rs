//! What a token may do. `read` covers every GET; `write` covers changes.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Read, Scope::Write];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            other => Err(format!("\"{other}\" is not a scope: use read or write.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// A non-empty, sorted set of scopes, stored as `read,write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Result<Self, String> {
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err("A token needs at least one scope.".into());
        }
        Ok(Self(scopes))
    }

    pub fn all() -> Self {
        Self(Scope::ALL.to_vec())
    }

    /// Parses the stored or typed form, `read,write`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let scopes = raw
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(scopes)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_sorted() {
        let scopes = Scopes::parse("write, read,read").unwrap();
        assert_eq!(scopes.to_string(), "read,write");
    }

    #[test]
    fn empty_and_unknown_scopes_are_refused() {
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("read,admin").unwrap_err().contains("admin"));
    }
}
