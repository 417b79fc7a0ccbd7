//! Dashboard passwords: argon2id at m=19456 KiB, t=2, p=1 (OWASP's minimum), in PHC form.
//! Both functions are slow on purpose; call them off the async workers.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::AppError;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &Password) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("could not hash a password: {e}")))
}

/// A hash of nothing anyone knows, verified against when the email is unknown, so that
/// "no such user" takes as long as "wrong password".
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash(&Password::for_sign_in(crate::domain::random_base62(32)))
        .unwrap_or_else(|_| String::from("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$invalid"))
});

/// True when `password` matches `stored`. With no stored hash, spends the same time and says no.
pub fn verify(stored: Option<&str>, password: &Password) -> bool {
    let known = stored.is_some();
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(DUMMY_HASH.as_str())) else {
        return false;
    };
    // Verify with the parameters recorded in the hash, so stronger future settings still check old hashes.
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
        && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_the_required_cost_and_verify() {
        let password = Password::parse("correct horse battery staple".into()).unwrap();
        let stored = hash(&password).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(Some(&stored), &password));
        assert!(!verify(
            Some(&stored),
            &Password::for_sign_in("wrong horse battery".into())
        ));
    }

    #[test]
    fn unknown_users_never_verify() {
        let password = Password::for_sign_in("anything at all".into());
        assert!(!verify(None, &password));
    }
}
