//! The server's secret key, which seals TOTP secrets (XChaCha20-Poly1305) and keys the
//! recovery codes' HMACs. It is never in the database, so a copy of the database alone
//! opens no TOTP secret and tests no recovery code.
//!
//! Where it comes from, first found wins: `KEYWARD_SECRET_KEY`; the file named by
//! `KEYWARD_SECRET_KEY_FILE` (made if missing); a SQLite database's own key file beside it,
//! `<database>.key` (made on first start). PostgreSQL has no file beside it: without a
//! setting, two-factor sign-in is off and the server says so at start.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::DatabaseUrl;
use crate::error::AppError;

type HmacSha256 = Hmac<Sha256>;

const NONCE_LEN: usize = 24;
/// The shortest `KEYWARD_SECRET_KEY` taken: at least 32 characters, as the session key.
pub const MIN_SETTING_CHARS: usize = 32;

/// The key, as two subkeys with labels of their own, so neither use can stand in for the
/// other. `Debug` shows nothing of it.
pub struct SecretKey {
    seal: [u8; 32],
    codes: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

fn derive(material: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(material).expect("HMAC takes a key of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl SecretKey {
    pub fn from_material(material: &[u8]) -> Self {
        Self {
            seal: derive(material, b"keyward: sealed TOTP secrets, v1"),
            codes: derive(material, b"keyward: recovery code digests, v1"),
        }
    }

    /// Seals `plain` for `owner` (bound in as associated data: a sealed secret copied to
    /// another user's row doesn't open). Output: nonce, then ciphertext with its tag.
    pub fn seal(&self, plain: &[u8], owner: &[u8]) -> Result<Vec<u8>, AppError> {
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: owner,
                },
            )
            .map_err(|_| AppError::internal("a two-factor secret could not be sealed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`SecretKey::seal`] sealed for `owner`; another key or owner fails.
    pub fn open(&self, sealed: &[u8], owner: &[u8]) -> Result<Vec<u8>, AppError> {
        let refused = || {
            AppError::internal(
                "a two-factor secret does not open with this server's secret key (was KEYWARD_SECRET_KEY or the key file changed?)",
            )
        };
        if sealed.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.seal).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: owner,
                },
            )
            .map_err(|_| refused())
    }

    /// The stored form of a recovery code: an HMAC under the key, so a copy of the
    /// database can't be searched for the codes' 50 bits offline.
    pub fn code_digest(&self, code: &str) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.codes)
            .expect("HMAC takes a key of any length");
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// Where the key comes from, as the settings say.
pub enum KeySource<'a> {
    Setting(&'a str),
    File(PathBuf),
    /// PostgreSQL with no setting: two-factor sign-in is off.
    None,
}

impl<'a> KeySource<'a> {
    pub fn of(setting: Option<&'a str>, file: Option<&Path>, database: &DatabaseUrl) -> Self {
        if let Some(key) = setting {
            return Self::Setting(key);
        }
        if let Some(file) = file {
            return Self::File(file.to_path_buf());
        }
        match database {
            DatabaseUrl::Sqlite(path) => Self::File(PathBuf::from(format!("{path}.key"))),
            DatabaseUrl::Postgres(_) => Self::None,
        }
    }

    /// The key, reading or first making its file. `None` for [`KeySource::None`].
    pub fn load(&self) -> anyhow::Result<Option<SecretKey>> {
        Ok(match self {
            Self::Setting(key) => Some(SecretKey::from_material(key.as_bytes())),
            Self::File(path) => Some(SecretKey::from_material(&read_or_create(path)?)),
            Self::None => None,
        })
    }
}

/// The file's 32 random bytes, made on first start with mode 0600. Made whole under a
/// temporary name and then linked into place, so two instances starting at once agree on
/// one key, and a crash mid-write leaves no half key behind.
fn read_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    if !path.exists() {
        let tmp = path.with_extension(format!("key-{}.tmp", crate::domain::random_base62(8)));
        let key: [u8; 32] = rand::random();
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            writeln!(file, "{}", STANDARD.encode(key))?;
            file.sync_all()?;
            match fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = fs::remove_file(&tmp);
        written.map_err(|e| {
            anyhow::anyhow!("cannot create the secret key file {}: {e}", path.display())
        })?;
        tracing::info!(path = %path.display(), "made the secret key file: back it up with the database");
    }
    let mode = fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read the secret key file {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the secret key file can be read by others: chmod 600 it");
    }
    let text = fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the secret key file {}: {e}", path.display()))?;
    let key = STANDARD.decode(text.trim()).ok().filter(|k| k.len() >= 32);
    key.ok_or_else(|| {
        anyhow::anyhow!(
            "the secret key file {} does not hold a key (base64 of 32 bytes)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_owner() {
        let key = SecretKey::from_material(b"one key, at least thirty-two characters");
        let sealed = key.seal(b"JBSWY3DPEHPK3PXP", b"7").unwrap();
        assert!(!sealed.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
        assert_eq!(key.open(&sealed, b"7").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(key.open(&sealed, b"8").is_err(), "another user's row");
        let other = SecretKey::from_material(b"another key, at least thirty-two chars");
        assert!(other.open(&sealed, b"7").is_err(), "another key");
        assert!(key.open(&sealed[..10], b"7").is_err(), "a truncated value");
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let db = DatabaseUrl::parse(dir.path().join("k.db").to_str().unwrap()).unwrap();
        let source = KeySource::of(None, None, &db);
        let first = source.load().unwrap().unwrap();
        let path = dir.path().join("k.db.key");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = source.load().unwrap().unwrap();
        let sealed = first.seal(b"secret", b"1").unwrap();
        assert_eq!(again.open(&sealed, b"1").unwrap(), b"secret");
        // Nothing but the key file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_key_file_stops_the_start_with_its_path_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        fs::write(&path, "not a key\n").unwrap();
        let err = KeySource::File(path.clone())
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains(path.to_str().unwrap()), "{err}");
    }

    #[test]
    fn postgres_without_a_setting_has_no_key_and_a_setting_always_wins() {
        let pg = DatabaseUrl::parse("postgres://k@db/keyward").unwrap();
        assert!(KeySource::of(None, None, &pg).load().unwrap().is_none());
        let set = KeySource::of(Some("a setting of thirty-two characters!!"), None, &pg);
        assert!(set.load().unwrap().is_some());
    }
}
