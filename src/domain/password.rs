//! A dashboard password as typed. Its `Debug` never shows it.

use std::fmt;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// argon2 hashes whatever it is given; a cap keeps a megabyte "password" from costing more.
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(format!(
                "The password must have at least {MIN_PASSWORD_CHARS} characters."
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!(
                "The password must have at most {MAX_PASSWORD_CHARS} characters."
            ));
        }
        Ok(Self(raw))
    }

    /// For sign-in, where any length is checked against the stored hash and
    /// the rules for new passwords do not apply.
    pub fn for_sign_in(raw: String) -> Self {
        Self(raw.chars().take(MAX_PASSWORD_CHARS).collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused_with_the_rule() {
        let err = Password::parse("short".into()).unwrap_err();
        assert!(err.contains("at least 12"), "{err}");
    }

    #[test]
    fn debug_is_redacted() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
