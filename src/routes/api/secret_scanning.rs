//! `POST /secret-scanning/report`: leaked-secret reports, in the format of GitHub's
//! secret-scanning partner program. Every reported string that is a live Keyward secret
//! has its token revoked, by the system, with a reason naming where it was found.
//!
//! It takes no credentials (only someone holding a secret can report it), so everything
//! it does is bounded before it costs anything:
//! * the size (64 KiB, 100 items), then the signature when the operator configured keys,
//!   then a per-client-address rate: a small one for unsigned reports (and for refused
//!   ones), a much larger one for signed reports, so junk can't starve them; all before
//!   the body is parsed;
//! * the CRC32 checksum in every secret drops strings that aren't ours without touching
//!   the database; the rest cost one indexed read for the whole report;
//! * a write happens only for a secret of an unrevoked token, and revokes it (and the
//!   tokens it made), so each secret
//!   can cause one write ever.
//!
//! The answer says, per string, whether it was one of our secrets, and never whose.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use p256::ecdsa::Signature;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::client_addr;
use crate::auth::report_keys::ReportKeys;
use crate::db::{self, tx::Principal};
use crate::domain::{Reason, SecretDigest, TokenSecret};
use crate::error::AppError;
use crate::state::AppState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_ITEMS: usize = 100;

pub const KEY_IDENTIFIER_HEADER: &str = "github-public-key-identifier";
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// The most of a reported URL or source that goes into the revocation's reason.
const SHOWN_CHARS: usize = 200;

// Its `Debug` hides the string: a true positive is a live secret.
/// One reported string, as GitHub sends it. Only `token` is required.
#[derive(Deserialize, ToSchema)]
#[schema(as = ReportedSecret)]
struct Reported {
    /// The string found.
    token: String,
    #[serde(rename = "type", default)]
    token_type: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    source: String,
}

impl std::fmt::Debug for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reported")
            .field("token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("url", &self.url)
            .field("source", &self.source)
            .finish()
    }
}

/// Per reported string: whether it was one of Keyward's secrets, never whose.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReportVerdict)]
struct Verdict {
    /// SHA-256 of the reported string, in hex.
    token_hash: String,
    token_type: String,
    label: Label,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportLabel)]
enum Label {
    TruePositive,
    FalsePositive,
}

/// Reports leaked strings; every live Keyward secret among them is revoked.
#[utoipa::path(
    post,
    path = "/secret-scanning/report",
    tag = "integrations",
    params(
        ("Github-Public-Key-Identifier" = Option<String>, Header, description = "Required when the server checks signatures"),
        ("Github-Public-Key-Signature" = Option<String>, Header, description = "Required when the server checks signatures"),
    ),
    request_body(content = Vec<Reported>, description = "At most 100 items and 64 KiB"),
    responses(
        (status = 200, description = "A verdict for every reported string", body = Vec<Verdict>),
        (status = 403, response = super::schemas::Forbidden),
        (status = 422, response = super::schemas::Unprocessable),
        (status = 429, response = super::schemas::TooManyRequests),
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn report(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let ip = client_addr::client_ip(&req, &state.config);
    // Read (at most 64 KiB) before any budget is spent, so the signature decides which
    // budget a report draws on: junk can't use up what a signed report needs.
    let body = read_limited(payload).await?;
    let keys = &state.config.secret_scanning_keys;
    if keys.is_empty() {
        state.secret_reports.check(ip)?;
    } else {
        match check_signature(keys, &req, &body) {
            Ok(()) => state.signed_reports.check(ip)?,
            Err(refused) => {
                state.secret_reports.check(ip)?;
                return Err(refused);
            }
        }
    }
    let reports = parse(&body)?;

    // Strings that aren't secrets are dropped here, by their checksum, for nothing.
    let candidates: Vec<SecretDigest> = reports
        .iter()
        .filter_map(|r| TokenSecret::parse(&r.token).ok())
        .map(|s| s.digest())
        .collect();
    let known = if candidates.is_empty() {
        Vec::new()
    } else {
        db::run(&state.pool, move |conn| {
            db::tokens::digests_known(conn, &candidates)
        })
        .await?
    };

    let leaks: Vec<(SecretDigest, Reason)> = reports
        .iter()
        .filter_map(|r| {
            let digest = SecretDigest::of(&r.token);
            let unrevoked = known
                .iter()
                .any(|(d, unrevoked)| *d == digest && *unrevoked);
            unrevoked.then(|| (digest, reason_for(r)))
        })
        .collect();
    if !leaks.is_empty() {
        let revoked = state
            .write(Principal::System, None, move |tx| {
                db::tokens::revoke_leaked(tx, &leaks)
            })
            .await?;
        tracing::warn!(revoked, "revoked tokens whose secrets were reported leaked");
    }

    let verdicts: Vec<Verdict> = reports
        .iter()
        .map(|r| {
            let digest = SecretDigest::of(&r.token);
            let ours = known.iter().any(|(d, _)| *d == digest);
            Verdict {
                token_hash: hex(digest.as_bytes()),
                token_type: r.token_type.clone(),
                label: if ours {
                    Label::TruePositive
                } else {
                    Label::FalsePositive
                },
            }
        })
        .collect();
    Ok(HttpResponse::build(StatusCode::OK)
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(verdicts))
}

async fn read_limited(payload: web::Payload) -> Result<web::Bytes, AppError> {
    match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(AppError::invalid("The report could not be read.")),
        Err(_) => Err(AppError::invalid(format!(
            "The report is larger than {} KiB; send at most {MAX_ITEMS} items at a time.",
            MAX_BODY_BYTES / 1024
        ))),
    }
}

/// The report must carry the ECDSA P-256 signature (base64 of its DER form) over the body
/// exactly as sent of the configured key it names.
fn check_signature(keys: &ReportKeys, req: &HttpRequest, body: &[u8]) -> Result<(), AppError> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let refuse = |why: &str| AppError::forbidden(format!("The report is not signed: {why}"));
    let identifier = header(KEY_IDENTIFIER_HEADER)
        .ok_or_else(|| refuse("it has no Github-Public-Key-Identifier header."))?;
    let signature = header(SIGNATURE_HEADER)
        .ok_or_else(|| refuse("it has no Github-Public-Key-Signature header."))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| refuse("the signature is not base64."))?;
    let signature = Signature::from_der(&der)
        .map_err(|_| refuse("the signature is not an ECDSA signature."))?;
    keys.verify(identifier, body, &signature).map_err(refuse)
}

fn parse(body: &[u8]) -> Result<Vec<Reported>, AppError> {
    let reports: Vec<Reported> = serde_json::from_slice(body).map_err(|e| {
        AppError::invalid(format!(
            "The report must be a JSON array of {{\"token\", \"type\", \"url\", \"source\"}}: {e}."
        ))
    })?;
    if reports.len() > MAX_ITEMS {
        return Err(AppError::invalid(format!(
            "The report has {} items; send at most {MAX_ITEMS} at a time.",
            reports.len()
        )));
    }
    Ok(reports)
}

/// "Leaked: reported by a secret scanner at URL (source: SOURCE)", with what the reporter
/// wrote cut short and stripped of control and format characters, so it always makes a
/// valid reason.
fn reason_for(report: &Reported) -> Reason {
    let clean = |raw: &str| -> String {
        let text: String = raw
            .chars()
            .map(|c| {
                if c.is_control() || crate::domain::is_format(c) {
                    ' '
                } else {
                    c
                }
            })
            .take(SHOWN_CHARS)
            .collect();
        match text.trim() {
            "" => "unknown".to_string(),
            t => t.to_string(),
        }
    };
    let text = format!(
        "Leaked: reported by a secret scanner at {} (source: {}).",
        clean(&report.url),
        clean(&report.source)
    );
    Reason::parse(&text).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The hash the answer gives for a reported string, computed the plain way (the handler
    /// reuses the secret's digest instead).
    fn token_hash(reported: &str) -> String {
        hex(&Sha256::digest(reported.as_bytes()))
    }

    #[test]
    fn the_hash_is_the_sha256_hex_of_the_string_as_reported() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(SecretDigest::of("abc").as_bytes()), token_hash("abc"));
    }

    #[test]
    fn a_reported_string_never_shows_in_debug() {
        let reported = Reported {
            token: "kws_reported_secret_text".into(),
            token_type: "keyward_secret".into(),
            url: "https://example.com/leak".into(),
            source: "content".into(),
        };
        let shown = format!("{reported:?}");
        assert!(!shown.contains("kws_reported_secret_text"), "{shown}");
        assert!(shown.contains("https://example.com/leak"), "{shown}");
    }

    #[test]
    fn a_reason_is_always_valid_whatever_was_reported() {
        let hostile = Reported {
            token: String::new(),
            token_type: String::new(),
            url: format!("https://example.com/{}\u{1}\n", "x".repeat(5000)),
            source: "commit\u{7}\u{202e}".into(),
        };
        let reason = reason_for(&hostile);
        assert!(
            reason
                .as_str()
                .starts_with("Leaked: reported by a secret scanner at https://example.com/x")
        );
        assert!(reason.as_str().ends_with("(source: commit)."));
        assert!(!reason.as_str().chars().any(char::is_control));
        assert!(!reason.as_str().chars().any(crate::domain::is_format));
        let blank = Reported {
            token: String::new(),
            token_type: String::new(),
            url: String::new(),
            source: String::new(),
        };
        assert!(
            reason_for(&blank)
                .as_str()
                .contains("at unknown (source: unknown)")
        );
    }

    #[test]
    fn more_than_a_hundred_items_are_refused() {
        let item = r#"{"token":"x","type":"t","url":"u","source":"s"}"#;
        let body = format!("[{}]", vec![item; MAX_ITEMS + 1].join(","));
        let err = parse(body.as_bytes()).expect_err("too many");
        assert!(err.messages()[0].contains("at most 100"));
        let body = format!("[{}]", vec![item; MAX_ITEMS].join(","));
        assert_eq!(
            parse(body.as_bytes()).expect("a hundred is fine").len(),
            MAX_ITEMS
        );
    }
}
