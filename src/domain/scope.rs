//! What a token may do. `read` covers every GET; `write` covers changes; `tokens` lets a
//! token manage the account's tokens through `/access-tokens`. `tokens` is granted only
//! from the dashboard or the command line: a token can never hand it on (see
//! `policy::may_mint`), so one leaked token can't breed others that outlive its revocation.

use std::fmt;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Tokens,
    /// `POST /keys/verify`: asks whether another key of the account is good.
    Verify,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Tokens, Scope::Verify];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "tokens" => Ok(Scope::Tokens),
            "verify" => Ok(Scope::Verify),
            other => Err(format!(
                "\"{other}\" is not a scope: use read, write, tokens or verify."
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Tokens => "tokens",
            Scope::Verify => "verify",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A non-empty set of scopes, stored as `read,write,tokens` (in [`Scope::ALL`]'s order,
/// comma-separated).
/// A bit set, so the guard's cache holds a byte and the stored text is one of a few
/// static strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Scopes(u8);

super::sql::text_column!(Scopes);

/// The stored form of every possible set, indexed by its bits.
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..1u8 << Scope::ALL.len())
        .map(|bits| {
            Scope::ALL
                .iter()
                .filter(|s| bits & s.bit() != 0)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
});

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Result<Self, String> {
        let bits = scopes.into_iter().fold(0, |bits, s| bits | s.bit());
        if bits == 0 {
            return Err("A token needs at least one scope.".into());
        }
        Ok(Self(bits))
    }

    pub fn all() -> Self {
        Self(Scope::ALL.iter().fold(0, |bits, s| bits | s.bit()))
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
        self.0 & scope.bit() != 0
    }

    /// The scopes of `self` that are not in `other`, if any.
    pub fn missing_from(&self, other: &Scopes) -> Option<Scopes> {
        let missing = self.0 & !other.0;
        (missing != 0).then_some(Self(missing))
    }

    /// True when every scope of `self` is also in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn names(&self) -> Vec<&'static str> {
        Scope::ALL
            .iter()
            .filter(|s| self.contains(**s))
            .map(|s| s.as_str())
            .collect()
    }

    /// The stored form.
    pub fn as_str(&self) -> &'static str {
        NAMES[usize::from(self.0)].as_str()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_sorted() {
        let scopes = Scopes::parse("write, read,read").unwrap();
        assert_eq!(scopes.to_string(), "read,write");
        assert_eq!(Scopes::parse("write").unwrap().as_str(), "write");
        assert_eq!(Scopes::parse(scopes.as_str()), Ok(scopes));
    }

    #[test]
    fn empty_and_unknown_scopes_are_refused() {
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("read,admin").unwrap_err().contains("admin"));
    }

    #[test]
    fn subsets() {
        let read = Scopes::parse("read").unwrap();
        assert!(read.is_subset_of(&Scopes::all()));
        assert!(!Scopes::all().is_subset_of(&read));
        assert_eq!(
            Scopes::all().missing_from(&read),
            Scopes::parse("write,tokens,verify").ok()
        );
        assert_eq!(read.missing_from(&Scopes::all()), None);
    }

    #[test]
    fn tokens_is_a_scope_of_its_own() {
        let scopes = Scopes::parse("tokens,read").unwrap();
        assert_eq!(scopes.as_str(), "read,tokens");
        assert!(scopes.contains(Scope::Tokens));
        assert!(!scopes.contains(Scope::Write));
        assert_eq!(Scopes::all().as_str(), "read,write,tokens,verify");
    }
}
