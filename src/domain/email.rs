//! An email address, as the HTML spec's "valid email address" grammar defines it (what a
//! browser's `<input type="email">` accepts), normalised to lower case so that comparisons
//! ignore case.
//!
//! The grammar, from <https://html.spec.whatwg.org/multipage/input.html#valid-e-mail-address>:
//! a local part of one or more of ``a-z A-Z 0-9 . ! # $ % & ' * + / = ? ^ _ ` { | } ~ -``,
//! then `@`, then one or more labels joined by dots, each label 1 to 63 letters, digits
//! and dashes that neither starts nor ends with a dash. It is ASCII only, so no address
//! hides a look-alike letter, a control character or a direction override.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// RFC 5321's limit on a forward path; longer addresses can't receive mail.
const MAX_LEN: usize = 254;
const MAX_LABEL: usize = 63;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        match problem(email) {
            None => Ok(Self(email.to_ascii_lowercase())),
            Some(why) => Err(format!("\"{email}\" is not an email address. {why}")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is wrong with `email`, as a sentence for the person who typed it; `None` if nothing.
fn problem(email: &str) -> Option<&'static str> {
    if email.len() > MAX_LEN {
        return Some("An email address has at most 254 characters.");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Some("It needs an @ and a domain, as in ada@example.com.");
    };
    if local.is_empty() || !local.bytes().all(is_local_byte) {
        return Some(
            "Before the @ may come only letters, digits and . ! # $ % & ' * + / = ? ^ _ ` { | } ~ -",
        );
    }
    if !domain.split('.').all(is_label) {
        return Some(
            "After the @ comes a domain such as example.com: letters, digits and dashes, in parts \
             joined by single dots.",
        );
    }
    None
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// `[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?`
fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_spaces_are_normalised() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn addresses_the_html_grammar_allows_are_accepted() {
        let label63 = "a".repeat(63);
        let long_domain = format!("ada@{label63}.example");
        for raw in [
            "ada@example.com",
            "a@b",
            "ada@localhost",
            "ada.lovelace+keyward@mail.example.co.uk",
            "!#$%&'*+/=?^_`{|}~-@example.com",
            "x@a-b.c-d.example",
            "1234@123.example",
            "ada@xn--zrich-kva.example",
            ".ada.@example.com",
            &long_domain,
        ] {
            assert!(Email::parse(raw).is_ok(), "{raw:?} was refused");
        }
    }

    #[test]
    fn malformed_addresses_are_refused_saying_which_part_is_wrong() {
        let label64 = "a".repeat(64);
        let too_long = format!("{}@example.com", "a".repeat(243));
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", "needs an @"),
            ("no at", "ada", "needs an @"),
            ("no local part", "@example.com", "Before the @"),
            ("no domain", "ada@", "After the @"),
            ("space in local part", "a b@example.com", "Before the @"),
            ("quoted local part", "\"ada\"@example.com", "Before the @"),
            ("parenthesis", "ada(work)@example.com", "Before the @"),
            ("two ats", "a@b@c", "After the @"),
            ("leading dot in domain", "ada@.com", "After the @"),
            ("trailing dot in domain", "ada@example.com.", "After the @"),
            ("two dots in domain", "ada@example..com", "After the @"),
            ("label starts with dash", "ada@-example.com", "After the @"),
            ("label ends with dash", "ada@example-.com", "After the @"),
            ("underscore in domain", "ada@exa_mple.com", "After the @"),
            ("label of 64", &format!("ada@{label64}.com"), "After the @"),
            ("IP literal", "ada@[127.0.0.1]", "After the @"),
            ("non-ASCII local part", "zoë@example.com", "Before the @"),
            ("non-ASCII domain", "ada@zürich.example", "After the @"),
            ("Cyrillic look-alike", "аda@example.com", "Before the @"),
            (
                "zero-width space",
                "ada\u{200B}@example.com",
                "Before the @",
            ),
            (
                "direction override",
                "ada@exa\u{202E}mple.com",
                "After the @",
            ),
            ("control character", "ada@exam\u{7}ple.com", "After the @"),
            ("over 254 characters", &too_long, "at most 254"),
        ];
        for (label, raw, why) in cases {
            let err = Email::parse(raw).expect_err(label);
            assert!(
                err.starts_with(&format!("\"{}\" is not an email address. ", raw.trim()))
                    && err.contains(why),
                "{label}: {err}"
            );
        }
    }
}
