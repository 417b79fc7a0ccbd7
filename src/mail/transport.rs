//! The SMTP side: a message rendered from its outbox row, put in its envelope with the
//! headers every Keyward mail carries, and handed to the relay through lettre (rustls).

use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::render::render;
use super::smtp_url::Security;
use crate::config::MailSettings;
use crate::db::outbox::OutboxRow;
use crate::domain::Mail;

/// How long one conversation with the relay may take before the try counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// It never will be: the row can't be rendered or addressed, or the relay refused it
    /// for good (a 5xx answer).
    Permanent(String),
    /// It may be later: the relay is down, busy, or answered 4xx.
    Transient(String),
}

/// The relay, the sender and the address links point at. Built once per server.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    base_url: String,
    relay: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings into a transport; a CA file that holds no usable certificate
    /// is an error here, at start.
    pub fn new(settings: &MailSettings, base_url: &str) -> anyhow::Result<Self> {
        let url = &settings.smtp;
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut builder = TlsParameters::builder(url.host.clone());
            if let Some(pem) = &settings.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    anyhow::anyhow!("KEYWARD_SMTP_CA_FILE: not a usable PEM certificate ({e})")
                })?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build_rustls()
                .map_err(|e| anyhow::anyhow!("cannot set up TLS for {url}: {e}"))
        };
        let mut builder = SmtpTransport::builder_dangerous(url.host.clone())
            .port(url.port)
            .timeout(Some(SMTP_TIMEOUT));
        builder = match url.security {
            Security::None => builder.tls(Tls::None),
            Security::StartTls => builder.tls(Tls::Required(tls()?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        if let Some((user, password)) = &url.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("KEYWARD_MAIL_FROM: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
            base_url: base_url.trim_end_matches('/').to_string(),
            relay: url.to_string(),
        })
    }

    /// Where the relay is, without its password: for logs.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// Renders the row's message and sends it. Blocking: call off the async workers.
    pub fn send(&self, row: &OutboxRow) -> Result<(), SendError> {
        let message = self.message(row).map_err(SendError::Permanent)?;
        self.transport.send(&message).map(drop).map_err(|e| {
            let why = format!("the relay {} answered: {e}", self.relay);
            if e.is_permanent() {
                SendError::Permanent(why)
            } else {
                SendError::Transient(why)
            }
        })
    }

    /// The row as a MIME message, or why it can't be one.
    pub fn message(&self, row: &OutboxRow) -> Result<Message, String> {
        let mail = Mail::from_json(&row.payload)?;
        let to = row
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| format!("the address {} can't be mailed ({e})", row.recipient))?;
        let rendered = render(&mail, &row.recipient, &self.base_url)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(row.message_id.clone()))
            .date_now()
            .header(AutoSubmitted);
        if let Some(page) = rendered.unsubscribe {
            builder = builder.header(ListUnsubscribe(format!("<{page}>")));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| format!("the message can't be built ({e})"))
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no out-of-office replies, please.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// `List-Unsubscribe` (RFC 2369), on notices: the page where they are turned off.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}
