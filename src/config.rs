//! Settings, from flags or `KEYWARD_*` environment variables, checked once at start.

use std::fmt;
use std::net::SocketAddr;

use clap::Args;

use crate::auth::report_keys::ReportKeys;
use crate::domain::{ClientHeader, DEFAULT_TRUSTED_PROXIES, parse_proxies};
use crate::domain::{DatabaseUrl, Email, SignupMode};
use crate::mail::SmtpUrl;

/// The raw settings as given on the command line or in the environment.
#[derive(Args, Clone)]
pub struct RawSettings {
    /// Address to listen on.
    #[arg(
        long,
        env = "KEYWARD_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,

    /// A SQLite file (created if needed), or a postgres:// URL. Migrated at start.
    // Its value may hold a PostgreSQL password: `--help` must not show it.
    #[arg(
        long,
        env = "KEYWARD_DATABASE_URL",
        default_value = "keyward.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// The address named in every 401 and 403 body.
    #[arg(long, env = "KEYWARD_SUPPORT_EMAIL", global = true)]
    pub support_email: Option<String>,

    /// The API documentation that error bodies point to. Default: this server's own
    /// `/docs/api` page.
    #[arg(long, env = "KEYWARD_DOCS_URL", global = true)]
    pub docs_url: Option<String>,

    /// Who may create an account: `open` (anyone), `invite-only` (through an invitation
    /// link) or `closed` (only the command line).
    #[arg(long, env = "KEYWARD_SIGNUP", global = true, default_value = "open")]
    pub signup: String,

    /// Key that signs dashboard session cookies (at least 32 characters). Without it a
    /// random key is generated once and kept in the database.
    #[arg(
        long,
        env = "KEYWARD_SESSION_KEY",
        global = true,
        hide_env_values = true
    )]
    pub session_key: Option<SecretSetting>,

    /// Key that seals two-factor secrets (at least 32 characters). Without it, the key
    /// file (KEYWARD_SECRET_KEY_FILE, or `<database>.key` beside a SQLite file) is used,
    /// made on first start. Never stored in the database: back it up with it.
    #[arg(
        long,
        env = "KEYWARD_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<SecretSetting>,

    /// A file holding the key that seals two-factor secrets, made (mode 0600) if missing.
    /// Needed with PostgreSQL unless KEYWARD_SECRET_KEY is set; without either, two-factor
    /// sign-in is off there.
    #[arg(long, env = "KEYWARD_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<std::path::PathBuf>,

    /// How long a password or second-factor check lets a person make sensitive changes
    /// (sudo mode), in minutes.
    #[arg(
        long,
        env = "KEYWARD_SUDO_MINUTES",
        global = true,
        default_value_t = 60
    )]
    pub sudo_minutes: u32,

    /// The URL people use to reach the dashboard, e.g. https://keys.example.com.
    /// When it is https, session cookies are Secure and use the __Host- prefix.
    #[arg(long, env = "KEYWARD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Take the origin (scheme and host) from `Forwarded`, `X-Forwarded-Host` and
    /// `X-Forwarded-Proto`. Only behind a proxy that sets them: anyone else can send them.
    /// A public URL, when set, wins over them.
    #[arg(
        long,
        env = "KEYWARD_TRUST_FORWARDED_HEADERS",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub trust_forwarded_headers: bool,

    /// With forwarded headers trusted: the proxies (CIDRs or addresses, comma-separated)
    /// whose forwarding headers count. The client is the rightmost hop not among them.
    #[arg(
        long,
        env = "KEYWARD_TRUSTED_PROXIES",
        global = true,
        default_value = DEFAULT_TRUSTED_PROXIES
    )]
    pub trusted_proxies: String,

    /// With forwarded headers trusted: the header the proxies name the client in,
    /// `x-forwarded-for` or `forwarded`. The other is ignored.
    #[arg(
        long,
        env = "KEYWARD_CLIENT_ADDRESS_HEADER",
        global = true,
        default_value = "x-forwarded-for"
    )]
    pub client_address_header: String,

    /// HTTP worker threads (default: one per CPU).
    #[arg(long, env = "KEYWARD_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// Threads that hash and check dashboard passwords (default: one per CPU). Each holds
    /// 19 MiB while it works; four times as many requests may wait, and more get a 503.
    #[arg(long, env = "KEYWARD_PASSWORD_THREADS", global = true)]
    pub password_threads: Option<usize>,

    /// The public keys (P-256) that sign leaked-secret reports: GitHub's key document
    /// (`{"public_keys": [...]}`, each key chosen by `Github-Public-Key-Identifier`) or one
    /// or more PEM blocks, as the text itself or a file holding it. When set,
    /// `/secret-scanning/report` refuses reports without a valid `Github-Public-Key-Signature`.
    #[arg(long, env = "KEYWARD_SECRET_SCANNING_PUBLIC_KEY", global = true)]
    pub secret_scanning_public_key: Option<String>,

    /// Serve Prometheus metrics (`GET /metrics`) on this address, e.g. 127.0.0.1:9464.
    /// Its own listener, never the API's. Unset: no metrics.
    #[arg(long, env = "KEYWARD_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,

    /// Keep `keyward_active_tokens{account}`, one series per account (`off` drops it:
    /// its cardinality grows with the accounts).
    #[arg(
        long,
        env = "KEYWARD_METRICS_PER_ACCOUNT",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new(),
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub metrics_per_account: bool,

    /// Where mail goes: smtp://host:port (a local relay), smtp://user:pass@host:587?tls=starttls
    /// or smtps://user:pass@host:465. Unset: mail is off.
    // Its value may hold the relay's password: `--help` must not show it.
    #[arg(long, env = "KEYWARD_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of every mail, e.g. "Keyward <keys@example.com>". Needed with an SMTP URL.
    #[arg(long, env = "KEYWARD_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,

    /// A PEM file of CA certificates to trust for the SMTP relay's TLS certificate, besides
    /// the usual public ones (for a relay with a private CA or a self-signed certificate).
    #[arg(long, env = "KEYWARD_SMTP_CA_FILE", global = true)]
    pub smtp_ca_file: Option<std::path::PathBuf>,

    /// A JSON file of plans, spaces and releases to serve instead of the compiled-in copy of
    /// Bonsai's public catalogue; checked at start.
    #[arg(long, env = "KEYWARD_CATALOGUE", global = true)]
    pub catalogue: Option<std::path::PathBuf>,
}

// By hand: a PostgreSQL URL may carry a password, so it is shown the way `DatabaseUrl`
// shows it (the session key is a `SecretSetting`, already redacted).
impl std::fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSettings")
            .field("bind", &self.bind)
            .field(
                "database_url",
                &DatabaseUrl::parse(&self.database_url)
                    .map_or_else(|_| "<unreadable>".to_string(), |url| url.to_string()),
            )
            .field("support_email", &self.support_email)
            .field("docs_url", &self.docs_url)
            .field("signup", &self.signup)
            .field("session_key", &self.session_key)
            .field("secret_key", &self.secret_key)
            .field("secret_key_file", &self.secret_key_file)
            .field("sudo_minutes", &self.sudo_minutes)
            .field("public_url", &self.public_url)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("client_address_header", &self.client_address_header)
            .field("workers", &self.workers)
            .field("password_threads", &self.password_threads)
            .field(
                "secret_scanning_public_key",
                &self.secret_scanning_public_key,
            )
            .field("metrics_bind", &self.metrics_bind)
            .field("metrics_per_account", &self.metrics_per_account)
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(|url| {
                    SmtpUrl::parse(url)
                        .map_or_else(|_| "<unreadable>".to_string(), |u| u.to_string())
                }),
            )
            .field("mail_from", &self.mail_from)
            .field("smtp_ca_file", &self.smtp_ca_file)
            .field("catalogue", &self.catalogue)
            .finish()
    }
}

/// A setting that must not be printed, such as the session key. `Debug` redacts it.
#[derive(Clone)]
pub struct SecretSetting(String);

impl SecretSetting {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretSetting {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl From<String> for SecretSetting {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The server's own API page, the documentation error bodies point to by default.
pub const DOCS_PATH: &str = "/docs/api";

/// Where 401 and 403 bodies send people when no support address is configured.
pub const DEFAULT_SUPPORT_EMAIL: &str = "support@keyward.invalid";

/// Checked settings. Every field is usable as it is.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub support_email: Email,
    pub support_email_was_set: bool,
    /// Where the API's error bodies send people for documentation.
    pub docs_url: String,
    pub signup: SignupMode,
    pub session_key: Option<SecretSetting>,
    /// The key that seals two-factor secrets, or the file it lives in (`auth::secret_key`).
    pub secret_key: Option<SecretSetting>,
    pub secret_key_file: Option<std::path::PathBuf>,
    /// How long a fresh password or code check opens sudo mode.
    pub sudo_window: chrono::Duration,
    pub public_url: Option<String>,
    /// Whether a proxy's forwarding headers say what origin the browser used.
    pub trust_forwarded_headers: bool,
    /// Whose forwarding headers name the client, and in which header (`auth::client_addr`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub client_address_header: ClientHeader,
    pub workers: Option<usize>,
    /// Threads for argon2 (`None`: one per CPU).
    pub password_threads: Option<usize>,
    /// How often `last_used` figures are written. Tests shorten it.
    pub usage_flush_interval: std::time::Duration,
    /// How often other processes' revocations are picked up.
    pub invalidation_poll_interval: std::time::Duration,
    /// How often tokens that expired unused get their `token.expired` event.
    pub expiry_sweep_interval: std::time::Duration,
    /// Keys a second the guard reads from the store before this process has heard of
    /// them (a token made by another process); past it, such keys are refused unread.
    pub unknown_key_reads_per_second: u32,
    /// The keys one of which must have signed every leaked-secret report; none: unsigned
    /// reports are taken.
    pub secret_scanning_keys: ReportKeys,
    /// Where `GET /metrics` is served; `None`: metrics are off.
    pub metrics_bind: Option<SocketAddr>,
    /// Whether the per-account active-token gauge is kept.
    pub metrics_per_account: bool,
    /// How often gauges read from the database are refreshed.
    pub metrics_refresh_interval: std::time::Duration,
    /// The SMTP relay and sender; `None`: mail is off.
    pub mail: Option<MailSettings>,
    /// How often the outbox is looked at for messages due.
    pub mail_poll_interval: std::time::Duration,
    /// How often notices (expiry digests, new addresses) are looked for.
    pub notice_interval: std::time::Duration,
    /// `KEYWARD_CATALOGUE`'s catalogue, read and checked; `None` serves the compiled-in one.
    pub catalogue: Option<&'static crate::plans::Catalogue>,
}

/// Mail's settings, checked: the relay, the sender, and any extra CA to trust.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub smtp: SmtpUrl,
    /// A mailbox: an address, with or without a display name.
    pub from: String,
    /// PEM certificates read from `KEYWARD_SMTP_CA_FILE`.
    pub ca_pem: Option<Vec<u8>>,
}

impl MailSettings {
    /// Checks the three mail settings together; all unset is `None` (mail off).
    pub fn parse(
        smtp_url: Option<&str>,
        from: Option<&str>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Option<Self>, String> {
        let Some(url) = smtp_url.map(str::trim).filter(|u| !u.is_empty()) else {
            if from.is_some_and(|f| !f.trim().is_empty()) || ca_file.is_some() {
                return Err("KEYWARD_MAIL_FROM and KEYWARD_SMTP_CA_FILE need KEYWARD_SMTP_URL too; without it mail is off".into());
            }
            return Ok(None);
        };
        let smtp =
            SmtpUrl::parse(url).map_err(|e| format!("KEYWARD_SMTP_URL / --smtp-url: {e}"))?;
        let from = from.map(str::trim).filter(|f| !f.is_empty()).ok_or(
            "KEYWARD_MAIL_FROM / --mail-from: set the sender of Keyward's mail, e.g. \"Keyward <keys@example.com>\"",
        )?;
        from.parse::<lettre::message::Mailbox>().map_err(|_| {
            format!("KEYWARD_MAIL_FROM / --mail-from: \"{from}\" is not an address such as keys@example.com or \"Keyward <keys@example.com>\"")
        })?;
        let ca_pem = ca_file
            .map(|path| {
                let pem = std::fs::read(path).map_err(|e| {
                    format!(
                        "KEYWARD_SMTP_CA_FILE / --smtp-ca-file: cannot read {}: {e}",
                        path.display()
                    )
                })?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(format!(
                        "KEYWARD_SMTP_CA_FILE / --smtp-ca-file: {} holds no PEM certificate",
                        path.display()
                    ));
                }
                Ok(pem)
            })
            .transpose()?;
        Ok(Some(Self {
            smtp,
            from: from.to_string(),
            ca_pem,
        }))
    }
}

impl Config {
    /// Settings for a test or a benchmark: a database file or URL, port 0 and fast
    /// background loops. Panics on an empty path or an unknown scheme: tests pass constants.
    #[cfg(any(test, feature = "test-support"))]
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let database_url: String = database_url.into();
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: DatabaseUrl::parse(&database_url).expect("a test's database path or URL"),
            support_email: Email::parse("support@keyward.test").expect("a valid constant"),
            support_email_was_set: true,
            docs_url: DOCS_PATH.to_string(),
            signup: SignupMode::Open,
            session_key: None,
            // A SQLite test's key file goes beside its database; PostgreSQL has no file.
            secret_key: database_url
                .starts_with("postgres")
                .then(|| SecretSetting(crate::domain::random_base62(43))),
            secret_key_file: None,
            sudo_window: chrono::Duration::hours(1),
            public_url: None,
            trust_forwarded_headers: false,
            trusted_proxies: parse_proxies(DEFAULT_TRUSTED_PROXIES)
                .expect("the default proxies parse"),
            client_address_header: ClientHeader::default(),
            workers: Some(2),
            password_threads: Some(2),
            usage_flush_interval: std::time::Duration::from_millis(200),
            invalidation_poll_interval: std::time::Duration::from_millis(100),
            expiry_sweep_interval: std::time::Duration::from_millis(200),
            unknown_key_reads_per_second: crate::auth::cache::UnknownKeyBudget::PER_SECOND,
            secret_scanning_keys: ReportKeys::default(),
            metrics_bind: None,
            metrics_per_account: true,
            metrics_refresh_interval: std::time::Duration::from_millis(200),
            mail: None,
            mail_poll_interval: std::time::Duration::from_millis(100),
            notice_interval: std::time::Duration::from_millis(300),
            catalogue: None,
        }
    }

    /// Whether the dashboard is served over HTTPS, which makes cookies Secure.
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

impl TryFrom<RawSettings> for Config {
    type Error = String;

    fn try_from(raw: RawSettings) -> Result<Self, String> {
        let bind = raw.bind.trim().parse::<SocketAddr>().map_err(|_| {
            format!(
                "KEYWARD_BIND / --bind: \"{}\" is not an address with a port, such as 127.0.0.1:8080",
                raw.bind
            )
        })?;
        let database_url = DatabaseUrl::parse(&raw.database_url)
            .map_err(|e| format!("KEYWARD_DATABASE_URL / --database-url: {e}"))?;
        let (support_email, support_email_was_set) = match raw.support_email.as_deref() {
            Some(given) if !given.trim().is_empty() => (
                Email::parse(given)
                    .map_err(|e| format!("KEYWARD_SUPPORT_EMAIL / --support-email: {e}"))?,
                true,
            ),
            _ => (
                Email::parse(DEFAULT_SUPPORT_EMAIL).map_err(|e| e.to_string())?,
                false,
            ),
        };
        if let Some(key) = &raw.session_key
            && key.expose().len() < 32
        {
            return Err("KEYWARD_SESSION_KEY / --session-key: use at least 32 characters".into());
        }
        if let Some(key) = &raw.secret_key
            && key.expose().len() < crate::auth::secret_key::MIN_SETTING_CHARS
        {
            return Err("KEYWARD_SECRET_KEY / --secret-key: use at least 32 characters".into());
        }
        if raw.sudo_minutes == 0 {
            return Err("KEYWARD_SUDO_MINUTES / --sudo-minutes: use at least 1".into());
        }
        let public_url = match raw.public_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_string())
            }
            Some(url) => {
                return Err(format!(
                    "KEYWARD_PUBLIC_URL / --public-url: \"{url}\" must start with http:// or https://"
                ));
            }
        };
        let docs_url = match raw.docs_url.as_deref().map(str::trim) {
            None | Some("") => format!("{}{DOCS_PATH}", public_url.as_deref().unwrap_or("")),
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.to_string()
            }
            Some(url) => {
                return Err(format!(
                    "KEYWARD_DOCS_URL / --docs-url: \"{url}\" must start with http:// or https://"
                ));
            }
        };
        let signup = SignupMode::parse(&raw.signup)
            .map_err(|e| format!("KEYWARD_SIGNUP / --signup: {e}"))?;
        if raw.workers == Some(0) {
            return Err("KEYWARD_WORKERS / --workers: use at least 1".into());
        }
        let metrics_bind = metrics_bind(raw.metrics_bind.as_deref(), bind)?;
        let mail = MailSettings::parse(
            raw.smtp_url.as_deref(),
            raw.mail_from.as_deref(),
            raw.smtp_ca_file.as_deref(),
        )?;
        let catalogue = raw
            .catalogue
            .as_deref()
            .map(crate::plans::Catalogue::load)
            .transpose()
            .map_err(|e| format!("KEYWARD_CATALOGUE / --catalogue: {e}"))?;
        if raw.password_threads == Some(0) {
            return Err("KEYWARD_PASSWORD_THREADS / --password-threads: use at least 1".into());
        }
        Ok(Self {
            bind,
            database_url,
            support_email,
            support_email_was_set,
            docs_url,
            signup,
            session_key: raw.session_key,
            secret_key: raw.secret_key,
            secret_key_file: raw.secret_key_file,
            sudo_window: chrono::Duration::minutes(i64::from(raw.sudo_minutes)),
            public_url,
            trust_forwarded_headers: raw.trust_forwarded_headers,
            trusted_proxies: parse_proxies(&raw.trusted_proxies)
                .map_err(|e| format!("KEYWARD_TRUSTED_PROXIES / --trusted-proxies: {e}"))?,
            client_address_header: ClientHeader::parse(&raw.client_address_header).map_err(
                |e| format!("KEYWARD_CLIENT_ADDRESS_HEADER / --client-address-header: {e}"),
            )?,
            workers: raw.workers,
            password_threads: raw.password_threads,
            // At least once a second: a crash loses at most a second of credit spending.
            usage_flush_interval: std::time::Duration::from_secs(1),
            invalidation_poll_interval: std::time::Duration::from_millis(250),
            expiry_sweep_interval: std::time::Duration::from_secs(60),
            unknown_key_reads_per_second: crate::auth::cache::UnknownKeyBudget::PER_SECOND,
            secret_scanning_keys: raw
                .secret_scanning_public_key
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(ReportKeys::parse)
                .transpose()
                .map_err(|e| {
                    format!(
                        "KEYWARD_SECRET_SCANNING_PUBLIC_KEY / --secret-scanning-public-key: {e}"
                    )
                })?
                .unwrap_or_default(),
            metrics_bind,
            metrics_per_account: raw.metrics_per_account,
            metrics_refresh_interval: std::time::Duration::from_secs(15),
            mail,
            mail_poll_interval: std::time::Duration::from_secs(2),
            notice_interval: std::time::Duration::from_secs(300),
            catalogue,
        })
    }
}

/// The metrics address: unset or empty is off; it must parse, and must not be the API's
/// own address, where it would be served to every client.
fn metrics_bind(given: Option<&str>, api: SocketAddr) -> Result<Option<SocketAddr>, String> {
    let Some(given) = given.map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(None);
    };
    let address = given.parse::<SocketAddr>().map_err(|_| {
        format!(
            "KEYWARD_METRICS_BIND / --metrics-bind: \"{given}\" is not an address with a port, such as 127.0.0.1:9464"
        )
    })?;
    if address.port() != 0 && address == api {
        return Err(format!(
            "KEYWARD_METRICS_BIND / --metrics-bind: {address} is the API's own address (KEYWARD_BIND); metrics need one of their own"
        ));
    }
    Ok(Some(address))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn trusts(args: &[&str]) -> Result<bool, String> {
        let mut argv = vec!["keyward"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        Ok(Config::try_from(cli.settings)?.trust_forwarded_headers)
    }

    #[test]
    fn forwarded_headers_are_trusted_only_when_asked() {
        assert_eq!(trusts(&[]), Ok(false));
        assert_eq!(trusts(&["--trust-forwarded-headers"]), Ok(true));
        assert_eq!(trusts(&["--trust-forwarded-headers=true"]), Ok(true));
        assert_eq!(trusts(&["--trust-forwarded-headers=false"]), Ok(false));
        assert!(trusts(&["--trust-forwarded-headers=perhaps"]).is_err());
    }

    fn metrics(args: &[&str]) -> Result<(Option<SocketAddr>, bool), String> {
        let mut argv = vec!["keyward"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let config = Config::try_from(cli.settings)?;
        Ok((config.metrics_bind, config.metrics_per_account))
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_given() {
        assert_eq!(metrics(&[]), Ok((None, true)));
        assert_eq!(metrics(&["--metrics-bind", ""]), Ok((None, true)));
        assert_eq!(
            metrics(&[
                "--metrics-bind",
                "127.0.0.1:9464",
                "--metrics-per-account=off"
            ]),
            Ok((Some("127.0.0.1:9464".parse().unwrap()), false))
        );
    }

    #[test]
    fn a_bad_metrics_address_is_refused_with_the_setting_named() {
        for bad in ["9464", "localhost", "127.0.0.1:99999"] {
            let err = metrics(&["--metrics-bind", bad]).expect_err(bad);
            assert!(
                err.starts_with("KEYWARD_METRICS_BIND / --metrics-bind:"),
                "{err}"
            );
            assert!(err.contains(bad), "{err}");
        }
        let err = metrics(&[
            "--bind",
            "127.0.0.1:8080",
            "--metrics-bind",
            "127.0.0.1:8080",
        ])
        .expect_err("the API's own address");
        assert!(err.contains("the API's own address"), "{err}");
    }

    #[test]
    fn mail_is_off_without_an_smtp_url_and_its_password_never_shows() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["keyward"];
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(argv).expect("the arguments parse");
            let shown = format!("{cli:?}");
            (Config::try_from(cli.settings), shown)
        };
        assert!(parse(&[]).0.expect("defaults").mail.is_none());
        let (config, shown) = parse(&[
            "--smtp-url",
            "smtps://keys:hunter2-smtp@mail.example.com",
            "--mail-from",
            "Keyward <keys@example.com>",
        ]);
        let config = config.expect("good mail settings");
        assert!(!shown.contains("hunter2-smtp"), "{shown}");
        assert!(!format!("{config:?}").contains("hunter2-smtp"));
        assert!(config.mail.is_some());
        let (refused, _) = parse(&["--smtp-url", "smtps://keys:hunter2-smtp@mail.example.com"]);
        let err = refused.expect_err("a sender is needed");
        assert!(err.starts_with("KEYWARD_MAIL_FROM"), "{err}");
        let (refused, _) = parse(&[
            "--smtp-url",
            "smtp://mail.example.com",
            "--mail-from",
            "keys@example.com",
            "--smtp-ca-file",
            "/nonexistent/ca.pem",
        ]);
        assert!(
            refused
                .expect_err("a missing CA file")
                .starts_with("KEYWARD_SMTP_CA_FILE")
        );
    }

    #[test]
    fn the_command_line_settings_never_show_a_database_password_in_debug() {
        let cli = Cli::try_parse_from([
            "keyward",
            "--database-url",
            "postgres://keyward:hunter2-db-pass@db.internal/keyward",
        ])
        .expect("the arguments parse");
        let shown = format!("{cli:?}");
        assert!(!shown.contains("hunter2-db-pass"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }

    fn config(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["keyward"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        Config::try_from(cli.settings)
    }

    #[test]
    fn the_docs_url_defaults_to_the_servers_own_page() {
        assert_eq!(config(&[]).map(|c| c.docs_url), Ok("/docs/api".into()));
        let behind = config(&["--public-url", "https://keys.example.com/"]);
        assert_eq!(
            behind.map(|c| c.docs_url),
            Ok("https://keys.example.com/docs/api".into())
        );
        let set = config(&["--docs-url", "https://docs.example.com/api"]);
        assert_eq!(
            set.map(|c| c.docs_url),
            Ok("https://docs.example.com/api".into())
        );
        let err = config(&["--docs-url", "docs.example.com"]).err();
        assert!(err.is_some_and(|e| e.starts_with("KEYWARD_DOCS_URL / --docs-url:")));
    }

    #[test]
    fn sign_up_is_open_unless_the_operator_says_otherwise() {
        assert_eq!(config(&[]).map(|c| c.signup), Ok(SignupMode::Open));
        assert_eq!(
            config(&["--signup", "invite-only"]).map(|c| c.signup),
            Ok(SignupMode::InviteOnly)
        );
        let err = config(&["--signup", "nobody"]).err();
        assert!(err.is_some_and(|e| e.starts_with("KEYWARD_SIGNUP / --signup:")));
    }
}
