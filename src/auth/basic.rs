//! The `Authorization: Basic` header, parsed by hand per RFC 7617 so that every odd
//! input has a defined answer: the scheme matches without regard to case, the
//! credentials split at the first colon, and they must be UTF-8 without control
//! characters. Nothing here panics and nothing here allocates more than 8 KiB. It runs
//! on every API request, so it allocates once: the decoded credentials, split in place.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Headers longer than this are refused unread.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The user name and password as sent. The password is not yet known to be a secret,
/// and is redacted from `Debug` all the same.
pub struct Credentials {
    /// `user:password`, decoded; `colon` is where they split.
    decoded: String,
    colon: usize,
}

impl Credentials {
    pub fn user(&self) -> &str {
        &self.decoded[..self.colon]
    }

    pub fn password(&self) -> &str {
        &self.decoded[self.colon + 1..]
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user())
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicError {
    Missing,
    /// Any header we can't read as Basic credentials.
    Malformed,
    /// A user name with an empty password, or with no colon at all.
    EmptyPassword,
    /// A token scheme other clients use (`Bearer`, `Token`): the answer says to use Basic.
    OtherScheme,
}

pub fn parse(header: Option<&[u8]>) -> Result<Credentials, BasicError> {
    let header = header.ok_or(BasicError::Missing)?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(BasicError::Malformed);
    }
    let header = std::str::from_utf8(header).map_err(|_| BasicError::Malformed)?;
    let header = header.trim_matches(' ');
    if header.is_empty() {
        return Err(BasicError::Missing);
    }
    let (scheme, encoded) = header.split_once(' ').unwrap_or((header, ""));
    if ["bearer", "token"]
        .iter()
        .any(|other| scheme.eq_ignore_ascii_case(other))
    {
        return Err(BasicError::OtherScheme);
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::Malformed);
    }
    let encoded = encoded.trim_matches(' ');
    if encoded.is_empty() {
        return Err(BasicError::Malformed);
    }
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| BasicError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicError::Malformed)?;
    if has_control(&decoded) {
        return Err(BasicError::Malformed);
    }
    let colon = match decoded.find(':') {
        Some(colon) => colon,
        None if decoded.is_empty() => return Err(BasicError::Malformed),
        // `curl -u KEY` with an empty password at the prompt, or a client that only
        // sends the key: both are a missing password, and the body says so.
        None => return Err(BasicError::EmptyPassword),
    };
    if colon == 0 {
        return Err(BasicError::Malformed);
    }
    if colon + 1 == decoded.len() {
        return Err(BasicError::EmptyPassword);
    }
    Ok(Credentials { decoded, colon })
}

/// Whether the text holds a control character (Unicode's `Cc`: U+0000–U+001F and
/// U+007F–U+009F), read byte by byte: in UTF-8 the first range and U+007F are single
/// bytes, and U+0080–U+009F are `C2 80` to `C2 9F`.
fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b < 0x20 || b == 0x7f || (b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &[u8]) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(raw)).into_bytes()
    }

    #[test]
    fn splits_at_the_first_colon() {
        let creds = parse(Some(&basic(b"kw_abc:pa:ss"))).unwrap();
        assert_eq!(creds.user(), "kw_abc");
        assert_eq!(creds.password(), "pa:ss");
    }

    #[test]
    fn scheme_ignores_case() {
        let header = format!("bAsIc {}", STANDARD.encode("k:s"));
        assert!(parse(Some(header.as_bytes())).is_ok());
    }

    #[test]
    fn every_odd_header_has_an_answer() {
        let long = format!("Basic {}", "A".repeat(MAX_HEADER_BYTES));
        let cases: Vec<(&str, Option<Vec<u8>>, BasicError)> = vec![
            ("absent", None, BasicError::Missing),
            ("empty", Some(b"".to_vec()), BasicError::Missing),
            (
                "scheme only",
                Some(b"Basic".to_vec()),
                BasicError::Malformed,
            ),
            (
                "scheme and space",
                Some(b"Basic ".to_vec()),
                BasicError::Malformed,
            ),
            (
                "bearer",
                Some(b"Bearer x".to_vec()),
                BasicError::OtherScheme,
            ),
            (
                "bad base64",
                Some(b"Basic !!!".to_vec()),
                BasicError::Malformed,
            ),
            (
                "not utf-8 header",
                Some(b"Basic \xff".to_vec()),
                BasicError::Malformed,
            ),
            (
                "not utf-8 credentials",
                Some(basic(b"\xff\xfe:A")),
                BasicError::Malformed,
            ),
            (
                "control character",
                Some(basic(b"kw_a:b\x01c")),
                BasicError::Malformed,
            ),
            ("tab", Some(basic(b"kw_a\t:bc")), BasicError::Malformed),
            ("no user", Some(basic(b":secret")), BasicError::Malformed),
            (
                "no colon",
                Some(basic(b"kw_abc")),
                BasicError::EmptyPassword,
            ),
            (
                "empty password",
                Some(basic(b"kw_abc:")),
                BasicError::EmptyPassword,
            ),
            ("too long", Some(long.into_bytes()), BasicError::Malformed),
        ];
        for (name, header, expected) in cases {
            assert_eq!(parse(header.as_deref()).unwrap_err(), expected, "{name}");
        }
    }

    #[test]
    fn a_control_character_is_found_byte_by_byte_as_char_is_control_finds_it() {
        for c in (0u32..0x250).filter_map(char::from_u32) {
            let text = format!("kw_a{c}b:secret");
            assert_eq!(has_control(&text), c.is_control(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let creds = parse(Some(&basic(b"kw_abc:hunter2hunter2"))).unwrap();
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
