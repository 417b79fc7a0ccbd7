//! The second factor's values: an authenticator's TOTP secret (RFC 6238: SHA-1, 6 digits,
//! 30-second steps), a code typed at sign-in, and the recovery codes shown once.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// 160 bits, as RFC 4226 recommends for the shared secret.
const SECRET_BYTES: usize = 20;
const DIGITS: usize = 6;
const STEP_SECS: u64 = 30;
/// Steps either side of now a code is still taken for: a phone's clock a little off.
const SKEW_STEPS: i64 = 1;

/// What the label of an `otpauth://` URI escapes: what a path segment can't hold, and `+`,
/// which some apps read as a space. `@` and `.` stay as they are.
const LABEL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A TOTP secret, in the clear only between opening its row and checking a code. `Debug`
/// shows nothing of it.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(rand::random::<[u8; SECRET_BYTES]>().to_vec())
    }

    /// A secret read back from its sealed row; too short a one is refused.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < SECRET_BYTES {
            return Err("a TOTP secret shorter than 160 bits".into());
        }
        Ok(Self(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding, as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        totp_rs::Secret::Raw(self.0.clone())
            .to_encoded()
            .to_string()
    }

    /// `otpauth://totp/Keyward:<email>?secret=…&issuer=Keyward`, for the QR code.
    pub fn uri(&self, email: &str) -> String {
        format!(
            "otpauth://totp/Keyward:{}?secret={}&issuer=Keyward",
            utf8_percent_encode(email, LABEL),
            self.base32()
        )
    }

    fn totp(&self) -> TOTP {
        TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECS, self.0.clone())
    }

    /// The code for the step `step` (Unix time / 30).
    pub fn code_at_step(&self, step: i64) -> String {
        self.totp()
            .generate(u64::try_from(step).unwrap_or(0) * STEP_SECS)
    }

    /// The step `code` is right for, within one step of `unix_now`; compared in constant
    /// time. The caller refuses a step already used.
    pub fn matching_step(&self, code: &TotpCode, unix_now: i64) -> Option<i64> {
        let now = current_step(unix_now);
        let totp = self.totp();
        (now - SKEW_STEPS..=now + SKEW_STEPS)
            .filter(|step| *step >= 0)
            .find(|step| {
                let expected = totp.generate(u64::try_from(*step).unwrap_or(0) * STEP_SECS);
                bool::from(expected.as_bytes().ct_eq(code.0.as_bytes()))
            })
    }
}

/// The 30-second step `unix` falls in.
pub fn current_step(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECS as i64)
}

/// Six digits as typed: spaces between them are allowed (apps show "123 456").
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

impl TotpCode {
    pub fn parse(raw: &str) -> Option<Self> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Self(digits))
    }
}

/// Crockford's base32, lower case: no i, l, o or u to misread.
const CODE_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const CODE_HALF: usize = 5;
/// How many recovery codes a person gets at once.
pub const RECOVERY_CODES: usize = 10;

/// A recovery code, `xxxxx-xxxxx` (50 bits). `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl RecoveryCode {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut half = || -> String {
            (0..CODE_HALF)
                .map(|_| {
                    char::from(
                        CODE_ALPHABET[rand::Rng::random_range(&mut rng, 0..CODE_ALPHABET.len())],
                    )
                })
                .collect()
        };
        let first = half();
        Self(format!("{first}-{}", half()))
    }

    /// A code as typed: any case, with or without its dash or spaces; Crockford's
    /// look-alikes (o for 0, i and l for 1) read as the digits.
    pub fn parse(raw: &str) -> Option<Self> {
        let chars: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_lowercase() {
                'o' => '0',
                'i' | 'l' => '1',
                other => other,
            })
            .collect();
        if chars.len() != 2 * CODE_HALF || !chars.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
            return None;
        }
        Some(Self(format!(
            "{}-{}",
            &chars[..CODE_HALF],
            &chars[CODE_HALF..]
        )))
    }

    /// The code, for the page that shows it once and for its digest.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What the sign-in's second step (or a sudo check) takes in its one `code` field.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(TotpCode),
    Recovery(RecoveryCode),
}

impl SecondFactor {
    /// `None` for anything that is neither: refused the same way as a wrong code.
    pub fn parse(raw: &str) -> Option<Self> {
        TotpCode::parse(raw)
            .map(Self::Totp)
            .or_else(|| RecoveryCode::parse(raw).map(Self::Recovery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_6238_vectors_hold_for_sha1() {
        // RFC 6238, appendix B, truncated to 6 digits.
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(secret.code_at_step(current_step(time)), code, "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_ones_beside_it_only() {
        let secret = TotpSecret::generate();
        assert_eq!(secret.expose().len(), 20);
        let now = 1_800_000_000;
        let step = current_step(now);
        let code = TotpCode::parse(&secret.code_at_step(step)).unwrap();
        assert_eq!(secret.matching_step(&code, now), Some(step));
        assert_eq!(secret.matching_step(&code, now + 30), Some(step));
        assert_eq!(secret.matching_step(&code, now - 30), Some(step));
        assert_eq!(secret.matching_step(&code, now + 90), None);
    }

    #[test]
    fn codes_are_parsed_strictly() {
        assert!(TotpCode::parse("123 456").is_some());
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            assert!(TotpCode::parse(bad).is_none(), "{bad:?}");
        }
        let code = RecoveryCode::generate();
        assert_eq!(code.expose().len(), 11);
        assert_eq!(
            RecoveryCode::parse(&code.expose().to_uppercase()),
            Some(code.clone())
        );
        assert_eq!(
            RecoveryCode::parse(&code.expose().replace('-', "")),
            Some(code)
        );
        assert_eq!(
            RecoveryCode::parse("OIL23-45678").map(|c| c.expose().to_string()),
            Some("01123-45678".into())
        );
        for bad in ["abcde-fghj", "abcde-fghjku", "abcde-fghj!", "uuuuu-uuuuu"] {
            assert!(RecoveryCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_email() {
        let secret = TotpSecret::from_bytes(vec![0; 20]).unwrap();
        assert_eq!(
            secret.uri("a+b@example.com"),
            "otpauth://totp/Keyward:a%2Bb@example.com?secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&issuer=Keyward"
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
    }
}
