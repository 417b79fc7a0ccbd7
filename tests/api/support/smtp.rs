//! A real SMTP server for the mail stories: Debian's aiosmtpd (`tests/smtp/server.py`, run
//! by `/usr/bin/python3`) on a free loopback port, writing each message it accepts to a
//! folder of its own; the messages read back and parsed as a mail program would. It can be
//! stopped and started again on the same port, for an outage.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyward::config::MailSettings;
use tempfile::TempDir;

/// Debian's Python, which has python3-aiosmtpd; the first python3 on PATH may not.
const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/server.py");
/// How long a message may take to arrive: the sender polls every 100 ms in tests, and a
/// retry after an outage waits its backoff (5 s, then 10 s...).
pub const ARRIVAL: Duration = Duration::from_secs(60);

/// How the server protects its connections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Plain,
    StartTls,
    Smtps,
}

/// A self-signed certificate for 127.0.0.1 and localhost, written to files.
struct Certificate {
    cert: PathBuf,
    key: PathBuf,
}

pub struct SmtpServer {
    child: Option<Child>,
    pub port: u16,
    folder: TempDir,
    tls: Protection,
    login: Option<(String, String)>,
    certificate: Option<Certificate>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SmtpServer {
    /// A plain server, as a local relay would be.
    pub fn start() -> Self {
        Self::start_with(Protection::Plain, None)
    }

    /// A server with `tls`, asking for `login` (user, password) if given.
    pub fn start_with(tls: Protection, login: Option<(&str, &str)>) -> Self {
        let folder = tempfile::tempdir().expect("a folder for received mail");
        let certificate = (tls != Protection::Plain).then(|| {
            let made = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_string(),
                "localhost".to_string(),
            ])
            .expect("a self-signed certificate");
            let cert = folder.path().join("cert.pem");
            let key = folder.path().join("key.pem");
            std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
            std::fs::write(&key, made.signing_key.serialize_pem()).expect("write the key");
            Certificate { cert, key }
        });
        let mut server = Self {
            child: None,
            port: 0,
            folder,
            tls,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
            certificate,
        };
        // A port free now may be taken before the server binds it: try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn().is_ok() {
                return server;
            }
        }
        panic!(
            "the test SMTP server would not start (is python3-aiosmtpd installed? apt-get install python3-aiosmtpd)"
        );
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mail = self.folder.path().join("mail");
        std::fs::create_dir_all(&mail).map_err(|e| e.to_string())?;
        let mut command = Command::new(PYTHON);
        command
            .arg(SCRIPT)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--folder")
            .arg(&mail)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(certificate) = &self.certificate {
            let mode = if self.tls == Protection::Smtps {
                "smtps"
            } else {
                "starttls"
            };
            command
                .args(["--tls", mode, "--cert"])
                .arg(&certificate.cert)
                .arg("--key")
                .arg(&certificate.key);
        }
        if let Some((user, password)) = &self.login {
            command.arg("--login").arg(format!("{user}:{password}"));
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines.next().and_then(Result::ok);
            let _ = tx.send(ready);
            // Keep draining, so the server never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(line)) if line.trim() == "READY" => {
                self.child = Some(child);
                Ok(())
            }
            other => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("the SMTP server did not say READY: {other:?}"))
            }
        }
    }

    /// Kills the server: the relay is down until [`SmtpServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same folder.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(why) = self.spawn() {
            assert!(
                Instant::now() < deadline,
                "could not restart the SMTP server: {why}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `KEYWARD_SMTP_URL` that reaches this server.
    pub fn url(&self) -> String {
        let login = self
            .login
            .as_ref()
            .map(|(u, p)| format!("{u}:{p}@"))
            .unwrap_or_default();
        match self.tls {
            Protection::Plain => format!("smtp://{login}127.0.0.1:{}", self.port),
            Protection::StartTls => format!("smtp://{login}127.0.0.1:{}?tls=starttls", self.port),
            Protection::Smtps => format!("smtps://{login}127.0.0.1:{}", self.port),
        }
    }

    /// The self-signed certificate, for `KEYWARD_SMTP_CA_FILE`.
    pub fn ca_file(&self) -> Option<&Path> {
        self.certificate.as_ref().map(|c| c.cert.as_path())
    }

    /// Mail settings for a Keyward server that mails through this one.
    pub fn settings(&self) -> MailSettings {
        MailSettings::parse(
            Some(&self.url()),
            Some("Keyward <keys@keyward.test>"),
            self.ca_file(),
        )
        .expect("the test server's mail settings")
        .expect("mail is on")
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.folder.path().join("mail"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .map(|path| Received::parse(&std::fs::read(path).expect("read a received mail")))
            .collect()
    }

    /// The messages received so far for `to`.
    pub fn messages_to(&self, to: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.envelope_to.eq_ignore_ascii_case(to))
            .collect()
    }

    /// Waits until `count` messages for `to` have arrived, and returns them.
    pub async fn wait_for_count(&self, to: &str, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + ARRIVAL;
        loop {
            let got = self.messages_to(to);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{count} mail(s) to {to} should arrive; got {}: {:?}",
                got.len(),
                got.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the first message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Received {
        let deadline = Instant::now() + ARRIVAL;
        loop {
            if let Some(found) = self
                .messages_to(to)
                .into_iter()
                .find(|m| m.subject.contains(subject))
            {
                return found;
            }
            let seen: Vec<String> = self
                .messages()
                .iter()
                .map(|m| format!("{} to {}", m.subject, m.envelope_to))
                .collect();
            assert!(
                Instant::now() < deadline,
                "a mail to {to} about {subject:?} should arrive; received: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A message as the server received it, parsed.
#[derive(Debug, Clone)]
pub struct Received {
    /// Who the envelope named (the server's own header).
    pub envelope_to: String,
    /// The user the relay's sign-in named; empty without one.
    pub login: String,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
}

impl Received {
    fn parse(raw: &[u8]) -> Self {
        let parsed = mailparse::parse_mail(raw).expect("a received mail parses");
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect();
        let mut text = String::new();
        let mut html = String::new();
        let mut parts = vec![&parsed];
        while let Some(part) = parts.pop() {
            match part.ctype.mimetype.as_str() {
                "text/plain" => text = part.get_body().expect("a text part"),
                "text/html" => html = part.get_body().expect("an HTML part"),
                _ => parts.extend(part.subparts.iter()),
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Self {
            envelope_to: header("X-Test-Envelope-To"),
            login: header("X-Test-Login"),
            subject: header("Subject"),
            text,
            html,
            headers,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path of the first link in the text part that goes to `prefix` (such as
    /// `/password-reset/`), as a browser would open it: `/password-reset/TOKEN`.
    pub fn link_path(&self, prefix: &str) -> String {
        let at = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("the mail should link to {prefix}; text:\n{}", self.text));
        let end = self.text[at..]
            .find(char::is_whitespace)
            .map_or(self.text.len(), |n| at + n);
        self.text[at..end].to_string()
    }
}
