//! API token credentials.
//!
//! * `TokenKey` is public: `kw_` and 16 base62 characters. It is the Basic-Auth user name.
//! * `TokenSecret` is shown once: `kws_`, 43 base62 characters drawn from the operating
//!   system's generator (256 bits), then a 6-character CRC32 checksum of everything before
//!   it, so a secret scanner can tell a real secret from a look-alike without asking us.
//! * Only `SecretDigest` (SHA-256 of the secret) and the secret's last 4 characters are stored.

use std::fmt;

use rand::TryRngCore;
use rand::distr::{Alphanumeric, Distribution};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

const KEY_PREFIX: &str = "kw_";
const KEY_RANDOM_CHARS: usize = 16;
const SECRET_PREFIX: &str = "kws_";
/// 43 × log2(62) ≈ 256 bits.
const SECRET_RANDOM_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` base62 characters straight from the operating system's generator.
pub fn random_base62(len: usize) -> String {
    let mut rng = OsRng.unwrap_err();
    Alphanumeric
        .sample_iter(&mut rng)
        .take(len)
        .map(char::from)
        .collect()
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey(String);

impl TokenKey {
    pub fn generate() -> Self {
        Self(format!("{KEY_PREFIX}{}", random_base62(KEY_RANDOM_CHARS)))
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.strip_prefix(KEY_PREFIX) {
            Some(rest) if rest.len() >= KEY_RANDOM_CHARS && rest.len() <= 64 && is_base62(rest) => {
                Ok(Self(raw.to_string()))
            }
            _ => Err(format!("\"{raw}\" is not a token key.")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The base62 CRC-32 of `body`; an array, so checking a secret on every request
/// allocates nothing for it.
fn checksum(body: &str) -> [u8; CHECKSUM_CHARS] {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A token's secret in plain text. It exists only between generation and the one
/// page or command that shows it, and while a request is being checked.
#[derive(Clone)]
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn generate() -> Self {
        let body = format!("{SECRET_PREFIX}{}", random_base62(SECRET_RANDOM_CHARS));
        let sum = checksum(&body);
        // Base62 digits: ASCII, so this is never lossy.
        Self(body + &String::from_utf8_lossy(&sum))
    }

    /// Accepts only a well-formed secret whose checksum matches.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let well_formed = raw.strip_prefix(SECRET_PREFIX).is_some_and(|rest| {
            rest.len() > CHECKSUM_CHARS + 40 - 1 && rest.len() <= 128 && is_base62(rest)
        });
        if !well_formed {
            return Err("That is not a Keyward token secret.".into());
        }
        let (body, sum) = raw.split_at(raw.len() - CHECKSUM_CHARS);
        if checksum(body) != sum.as_bytes() {
            return Err(
                "That secret's checksum does not match: it was mistyped or cut short.".into(),
            );
        }
        Ok(Self(raw.to_string()))
    }

    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(&self.0)
    }

    /// The last four characters, stored so a person can match a secret to its row.
    pub fn hint(&self) -> String {
        self.0[self.0.len() - 4..].to_string()
    }

    /// The secret itself, for the one place that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// SHA-256 of a secret. Equality runs in constant time.
#[derive(Clone, Copy)]
pub struct SecretDigest(pub [u8; 32]);

impl SecretDigest {
    /// SHA-256 of a random secret: an API token's, an invitation link's, a session id.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for SecretDigest {
    fn eq(&self, other: &Self) -> bool {
        // Word by word, where `subtle` fences every byte: every API request compares one,
        // and neither takes a branch that depends on the data.
        constant_time_eq::constant_time_eq_32(&self.0, &other.0)
    }
}

impl Eq for SecretDigest {}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_match_the_published_pattern() {
        let key = TokenKey::generate();
        let rest = key.as_str().strip_prefix("kw_").unwrap();
        assert_eq!(rest.len(), 16);
        assert!(is_base62(rest));
        assert!(!key.as_str().contains(':'));
        assert_eq!(TokenKey::parse(key.as_str()).unwrap(), key);
    }

    #[test]
    fn generated_secrets_are_long_and_carry_a_checksum() {
        let secret = TokenSecret::generate();
        let rest = secret.expose().strip_prefix("kws_").unwrap();
        assert_eq!(rest.len(), 49);
        assert!(is_base62(rest));
        assert!(TokenSecret::parse(secret.expose()).is_ok());
        assert_ne!(secret.expose(), TokenSecret::generate().expose());
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let secret = TokenSecret::generate();
        let mut chars: Vec<char> = secret.expose().chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(TokenSecret::parse(&typo).unwrap_err().contains("checksum"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = TokenSecret::generate();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(secret.expose()));
        assert!(!shown.contains(&secret.hint()));
    }

    #[test]
    fn digests_compare_by_value() {
        let secret = TokenSecret::generate();
        assert_eq!(
            secret.digest(),
            TokenSecret::parse(secret.expose()).unwrap().digest()
        );
        assert_ne!(secret.digest(), TokenSecret::generate().digest());
    }

    #[test]
    fn keys_with_colons_or_wrong_prefixes_are_refused() {
        for raw in [
            "kw_short",
            "kx_0123456789abcdef",
            "kw_0123456789abcdef:",
            "kw_0123456789abcde!",
        ] {
            assert!(TokenKey::parse(raw).is_err(), "{raw}");
        }
    }
}
