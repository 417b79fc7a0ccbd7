//! Human-given names (of accounts, tokens and clusters) and the URL slugs made from them.

use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Trims, then insists on 1..=max characters with no control characters and no
/// invisible format characters.
fn parse_name(raw: &str, what: &str, max: usize) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(format!("The {what} can't be blank."));
    }
    if name.chars().count() > max {
        return Err(format!("The {what} must have at most {max} characters."));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("The {what} can't contain control characters."));
    }
    no_format(name, what)?;
    Ok(name.to_string())
}

/// Refuses Unicode's format characters (see [`is_format`]), naming the first one.
fn no_format(text: &str, what: &str) -> Result<(), String> {
    match text.chars().find(|c| is_format(*c)) {
        Some(c) => Err(format!(
            "The {what} can't contain invisible formatting characters such as \
             zero-width spaces or direction overrides (it has U+{:04X}).",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// Unicode's "format" characters (general category Cf): zero-width spaces and joiners,
/// the byte-order mark, the soft hyphen, and the bidirectional overrides and isolates.
/// They draw nothing, or reorder what follows, so two names that look the same on a page
/// can differ, and a revoke dialog can show "ci-deploy" for a token whose name reads
/// otherwise. This also refuses the joiner inside emoji sequences: a name is a label to
/// tell tokens apart, and the cost of losing family emoji is small.
pub fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

macro_rules! name_type {
    ($name:ident, $what:literal, $max:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                parse_name(raw, $what, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// The most characters a person's name for something may have, after trimming.
pub const NAME_MAX_CHARS: usize = 100;

name_type!(AccountName, "account name", NAME_MAX_CHARS);
name_type!(TokenName, "token name", NAME_MAX_CHARS);
name_type!(ClusterName, "cluster name", NAME_MAX_CHARS);
name_type!(PasskeyName, "passkey name", NAME_MAX_CHARS);

/// Why something was revoked or suspended: optional, trimmed, at most 500 characters,
/// line breaks allowed. Too long is an error, never a silent cut.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason(String);

impl Reason {
    const MAX: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, String> {
        free_text(raw, "reason", Self::MAX).map(Self)
    }

    /// Like `parse`, but a blank reason is an error: for revocations whose readers
    /// weren't there, such as an operator's.
    pub fn required(raw: &str, why: &str) -> Result<Self, String> {
        let reason = Self::parse(raw)?;
        if reason.0.is_empty() {
            return Err(why.to_string());
        }
        Ok(reason)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trims, then allows at most `max` characters with line breaks and tabs but no other
/// control characters. Too long is an error, never a silent cut.
fn free_text(raw: &str, what: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(format!("The {what} must have at most {max} characters."));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(format!("The {what} can't contain control characters."));
    }
    // Quoted on pages beside who acted: a direction override could make it read as part
    // of the sentence around it.
    no_format(text, what)?;
    Ok(text.to_string())
}

/// A token's free-text note (its purpose, owner, a ticket): optional, at most 500
/// characters, searchable in the token list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenNote(String);

impl TokenNote {
    pub const MAX: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, String> {
        free_text(raw, "note", Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lower-case ASCII letters, digits and single dashes: "Acme Inc" becomes `acme-inc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    const MAX: usize = 60;

    /// Makes a slug from any name. Fails only when nothing usable is left.
    pub fn from_name(name: &str) -> Result<Self, String> {
        let mut slug = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug: String = slug.trim_end_matches('-').chars().take(Self::MAX).collect();
        let slug = slug.trim_end_matches('-').to_string();
        if slug.is_empty() {
            return Err(format!(
                "\"{}\" has no letters or digits to make a slug from.",
                name.trim()
            ));
        }
        Ok(Self(slug))
    }

    /// Accepts only a slug already in canonical form, as found in a URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match Self::from_name(raw) {
            Ok(slug) if slug.0 == raw => Ok(slug),
            _ => Err(format!("\"{raw}\" is not a slug.")),
        }
    }

    /// The same slug with a numeric suffix, for when the plain one is taken.
    pub fn with_suffix(&self, n: u32) -> Self {
        Self(format!("{}-{n}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_from_names() {
        for (name, slug) in [
            ("Acme Inc", "acme-inc"),
            ("  Acme,  Inc. ", "acme-inc"),
            ("Zürich Search", "z-rich-search"),
            ("42", "42"),
        ] {
            assert_eq!(Slug::from_name(name).unwrap().as_str(), slug, "{name}");
        }
        assert!(Slug::from_name("!!!").is_err());
    }

    #[test]
    fn only_canonical_slugs_parse() {
        assert!(Slug::parse("acme-inc").is_ok());
        assert!(Slug::parse("Acme").is_err());
        assert!(Slug::parse("acme--inc").is_err());
    }

    #[test]
    fn reasons_are_trimmed_and_long_ones_refused_not_cut() {
        assert_eq!(
            Reason::parse("  leaked\nin CI  ").unwrap().as_str(),
            "leaked\nin CI"
        );
        assert_eq!(Reason::parse("").unwrap().as_str(), "");
        assert!(Reason::parse(&"x".repeat(501)).unwrap_err().contains("500"));
        assert!(Reason::parse("a\u{1}b").is_err());
        assert_eq!(Reason::required(" ", "Say why.").unwrap_err(), "Say why.");
    }

    #[test]
    fn names_with_invisible_format_characters_are_refused_naming_the_character() {
        let refused = [
            ("zero-width space", "ci\u{200B}deploy", "U+200B"),
            ("zero-width non-joiner", "ci\u{200C}deploy", "U+200C"),
            ("zero-width joiner", "ci\u{200D}deploy", "U+200D"),
            ("left-to-right mark", "ci\u{200E}deploy", "U+200E"),
            ("right-to-left mark", "ci\u{200F}deploy", "U+200F"),
            ("left-to-right embedding", "\u{202A}ci", "U+202A"),
            ("right-to-left override", "ci\u{202E}yolped", "U+202E"),
            ("word joiner", "ci\u{2060}deploy", "U+2060"),
            ("left-to-right isolate", "\u{2066}ci\u{2069}", "U+2066"),
            ("pop directional isolate", "ci\u{2069}", "U+2069"),
            ("byte-order mark", "\u{FEFF}ci", "U+FEFF"),
            ("soft hyphen", "de\u{AD}ploy", "U+00AD"),
            ("Arabic letter mark", "ci\u{61C}", "U+061C"),
            ("language tag", "ci\u{E0001}", "U+E0001"),
        ];
        for (label, raw, code) in refused {
            for parse in [
                |s: &str| TokenName::parse(s).map(|n| n.0),
                |s: &str| AccountName::parse(s).map(|n| n.0),
                |s: &str| ClusterName::parse(s).map(|n| n.0),
            ] {
                let err = parse(raw).expect_err(label);
                assert!(
                    err.contains("invisible formatting characters") && err.contains(code),
                    "{label}: {err}"
                );
            }
        }
    }

    #[test]
    fn names_in_any_script_are_kept_as_typed() {
        for raw in [
            "ci-deploy",
            "Zürich Search",
            "東京 production",
            "بحث الإنتاج",
            "Ünïcödé 🚀",
            "a.b_c (staging) #2",
        ] {
            assert_eq!(TokenName::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn control_characters_are_still_refused() {
        for raw in ["ci\u{0}", "ci\tdeploy", "ci\u{7F}", "ci\u{85}deploy"] {
            assert!(
                TokenName::parse(raw)
                    .unwrap_err()
                    .contains("control characters"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn blank_and_long_names_are_refused() {
        assert!(TokenName::parse("   ").unwrap_err().contains("blank"));
        assert!(
            TokenName::parse(&"x".repeat(101))
                .unwrap_err()
                .contains("100")
        );
        assert_eq!(TokenName::parse(" ci ").unwrap().as_str(), "ci");
    }
}
