//! The public keys that sign leaked-secret reports. GitHub rotates its keys and names the
//! one it signed with in `Github-Public-Key-Identifier`, so the setting takes several:
//! GitHub's own key document (`{"public_keys": [{"key_identifier", "key"}...]}`, as
//! `https://api.github.com/meta/public_keys/secret_scanning` serves it), or one or more
//! PEM blocks, given as the text itself or as the path of a file holding it.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// One key, with the identifier a report names it by; a bare PEM key has none, and is
/// tried whatever the report names.
#[derive(Debug, Clone)]
struct ReportKey {
    id: Option<String>,
    key: VerifyingKey,
}

/// The configured keys; none: unsigned reports are taken.
#[derive(Debug, Clone, Default)]
pub struct ReportKeys(Vec<ReportKey>);

#[derive(Deserialize)]
struct Document {
    public_keys: Vec<DocumentKey>,
}

#[derive(Deserialize)]
struct DocumentKey {
    key_identifier: String,
    key: String,
}

impl ReportKeys {
    /// The setting's value: a key document or PEM blocks, or a file holding either.
    pub fn parse(given: &str) -> Result<Self, String> {
        let given = given.trim();
        let text = if given.starts_with('{') || given.starts_with("-----BEGIN") {
            given.to_string()
        } else {
            std::fs::read_to_string(given).map_err(|e| format!("cannot read {given}: {e}"))?
        };
        let text = text.trim();
        let keys = if text.starts_with('{') {
            let document: Document = serde_json::from_str(text)
                .map_err(|e| format!("not a key document {{\"public_keys\": [...]}} ({e})"))?;
            document
                .public_keys
                .into_iter()
                .map(|k| {
                    Ok(ReportKey {
                        key: pem_key(&k.key)?,
                        id: Some(k.key_identifier),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?
        } else {
            pem_blocks(text)
                .into_iter()
                .map(|block| pem_key(&block).map(|key| ReportKey { id: None, key }))
                .collect::<Result<Vec<_>, String>>()?
        };
        if keys.is_empty() {
            return Err("no public key found".into());
        }
        Ok(Self(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `signature` over `body` is one of the key `identifier` names (or of a
    /// key configured without a name).
    pub fn verify(
        &self,
        identifier: &str,
        body: &[u8],
        signature: &Signature,
    ) -> Result<(), &'static str> {
        let mut candidates = self
            .0
            .iter()
            .filter(|k| k.id.as_deref().is_none_or(|id| id == identifier))
            .peekable();
        if candidates.peek().is_none() {
            return Err("its Github-Public-Key-Identifier names no configured key.");
        }
        if candidates.any(|k| k.key.verify(body, signature).is_ok()) {
            Ok(())
        } else {
            Err("the signature does not match the report and the configured key.")
        }
    }
}

fn pem_key(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| format!("not a P-256 public key in PEM form ({e})"))
}

/// Each `-----BEGIN …-----` to `-----END …-----` block in `text`.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with("-----END") {
            blocks.extend(current.take());
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    use super::*;

    fn signing() -> SigningKey {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        SigningKey::from_slice(&seed).unwrap()
    }

    fn pem(key: &SigningKey) -> String {
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    #[test]
    fn a_key_document_chooses_the_key_by_its_identifier() {
        let (old, new) = (signing(), signing());
        let document = serde_json::json!({"public_keys": [
            {"key_identifier": "old-id", "key": pem(&old), "is_current": false},
            {"key_identifier": "new-id", "key": pem(&new), "is_current": true},
        ]})
        .to_string();
        let keys = ReportKeys::parse(&document).unwrap();
        let by_old: Signature = old.sign(b"[]");
        assert_eq!(keys.verify("old-id", b"[]", &by_old), Ok(()));
        assert!(keys.verify("new-id", b"[]", &by_old).is_err());
        assert!(
            keys.verify("other-id", b"[]", &by_old)
                .unwrap_err()
                .contains("names no")
        );
        assert!(keys.verify("old-id", b"[1]", &by_old).is_err());
    }

    #[test]
    fn several_pem_blocks_are_tried_in_turn_from_text_or_a_file() {
        let (a, b) = (signing(), signing());
        let text = format!("{}\n{}", pem(&a), pem(&b));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.pem");
        std::fs::write(&path, &text).unwrap();
        for keys in [
            ReportKeys::parse(&text).unwrap(),
            ReportKeys::parse(path.to_str().unwrap()).unwrap(),
        ] {
            let by_b: Signature = b.sign(b"report");
            assert_eq!(keys.verify("any", b"report", &by_b), Ok(()));
        }
    }

    #[test]
    fn a_setting_with_no_key_is_refused_with_a_reason() {
        for bad in [
            "{\"public_keys\": []}",
            "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----",
            "/no/such/file.pem",
        ] {
            assert!(ReportKeys::parse(bad).is_err(), "{bad}");
        }
    }
}
