//! `KEYWARD_SMTP_URL`: where mail goes, how it is protected on the way, and the relay's
//! sign-in. The password is kept out of `Debug` and `Display`.

use std::fmt;

use crate::config::SecretSetting;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text: only for a relay on the same machine or network.
    None,
    /// Plain, then upgraded with STARTTLS, which must succeed.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
}

/// A checked SMTP URL.
#[derive(Clone)]
pub struct SmtpUrl {
    pub security: Security,
    pub host: String,
    pub port: u16,
    /// User name and password, if the relay wants a sign-in.
    pub credentials: Option<(String, SecretSetting)>,
}

impl SmtpUrl {
    /// Reads `smtp://host:port`, `smtp://user:pass@host:587?tls=starttls` or
    /// `smtps://user:pass@host:465`. The error never repeats the password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            format!("not a URL ({e}); use smtp://host:port, smtp://user:pass@host:587?tls=starttls or smtps://user:pass@host:465")
        })?;
        let mut security = match url.scheme() {
            "smtp" => Security::None,
            "smtps" => Security::Tls,
            other => return Err(format!("\"{other}://\" is not smtp:// or smtps://")),
        };
        for (name, value) in url.query_pairs() {
            match (name.as_ref(), value.as_ref(), security) {
                ("tls", "starttls", Security::None) => security = Security::StartTls,
                ("tls", "none", Security::None) => {}
                ("tls", other, _) => {
                    return Err(format!(
                        "tls={other} is not understood; smtp:// takes tls=starttls or tls=none, and smtps:// is TLS already"
                    ));
                }
                (other, _, _) => {
                    return Err(format!("the parameter \"{other}\" is not understood"));
                }
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("it names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(match security {
            Security::Tls => 465,
            Security::StartTls => 587,
            Security::None => 25,
        });
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "its user name or password is not UTF-8".to_string())
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((
                decode(user)?,
                SecretSetting::from(decode(password.unwrap_or(""))?),
            )),
        };
        if credentials.is_some() && security == Security::None {
            return Err(
                "a password would cross the network in clear text; add ?tls=starttls or use smtps://"
                    .into(),
            );
        }
        Ok(Self {
            security,
            host,
            port,
            credentials,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The URL without its password: what logs and `Debug` show.
impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.security == Security::Tls {
            "smtps"
        } else {
            "smtp"
        };
        write!(f, "{scheme}://")?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:<redacted>@")?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        if self.security == Security::StartTls {
            f.write_str("?tls=starttls")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse() {
        let plain = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (plain.security, plain.host.as_str(), plain.port),
            (Security::None, "127.0.0.1", 2525)
        );
        assert!(plain.credentials.is_none());

        let starttls =
            SmtpUrl::parse("smtp://ada:p%40ss+word@mail.example.com:587?tls=starttls").unwrap();
        assert_eq!(starttls.security, Security::StartTls);
        let (user, password) = starttls.credentials.clone().unwrap();
        assert_eq!((user.as_str(), password.expose()), ("ada", "p@ss+word"));

        let smtps = SmtpUrl::parse("smtps://ada:pw@mail.example.com").unwrap();
        assert_eq!((smtps.security, smtps.port), (Security::Tls, 465));
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason_and_never_the_password() {
        for bad in [
            "mail.example.com",
            "http://mail.example.com",
            "smtp://",
            "smtp://host?tls=sometimes",
            "smtps://host?tls=starttls",
            "smtp://host?colour=blue",
            "smtp://ada:hunter2-smtp@host:25",
        ] {
            let err = SmtpUrl::parse(bad).expect_err(bad);
            assert!(!err.is_empty());
            assert!(!err.contains("hunter2-smtp"), "{err}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_password() {
        let url = SmtpUrl::parse("smtps://ada:hunter2-smtp@mail.example.com:465").unwrap();
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("hunter2-smtp"), "{shown}");
            assert!(
                shown.contains("ada") && shown.contains("mail.example.com"),
                "{shown}"
            );
        }
    }
}
