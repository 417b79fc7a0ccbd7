//! The real binary as a separate process: `keyward serve` started, watched and killed
//! (`kill -9` included), and one-shot runs of the command line, for the stories about
//! processes rather than requests.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::api::{SUPPORT_EMAIL, Token, parse_token_output};

/// How long a server (a debug build, migrating a fresh file) may take to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one run of the binary as a command-line tool may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The key that seals two-factor secrets, for servers on a PostgreSQL test database.
const POSTGRES_SECRET_KEY: &str = "a test key for two-factor secrets on PostgreSQL";

const KEYWARD_ENV: [&str; 13] = [
    "KEYWARD_BIND",
    "KEYWARD_DATABASE_URL",
    "KEYWARD_SUPPORT_EMAIL",
    "KEYWARD_SESSION_KEY",
    "KEYWARD_PUBLIC_URL",
    "KEYWARD_WORKERS",
    "KEYWARD_SMTP_URL",
    "KEYWARD_MAIL_FROM",
    "KEYWARD_SMTP_CA_FILE",
    "KEYWARD_CATALOGUE",
    "KEYWARD_SECRET_KEY",
    "KEYWARD_SECRET_KEY_FILE",
    "KEYWARD_SUDO_MINUTES",
];

fn keyward_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    for name in KEYWARD_ENV {
        command.env_remove(name);
    }
    command
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The first `http://127.0.0.1:PORT` in a line, if any.
pub fn find_local_url(line: &str) -> Option<String> {
    let start = line.find("http://127.0.0.1:")?;
    let rest = &line[start + "http://127.0.0.1:".len()..];
    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let port: u16 = port.parse().ok()?;
    Some(format!("http://127.0.0.1:{port}"))
}

/// `keyward serve` as a child process. Dropping it kills the process.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    stderr: Option<JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts the binary on `database` and waits for it to print where it listens.
    pub async fn start(database: &str) -> Self {
        Self::start_with(database, &[]).await
    }

    /// The same, with extra environment variables.
    pub async fn start_with(database: &str, env: &[(&str, &str)]) -> Self {
        let database = database.to_string();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || Self::start_blocking(&database, &env))
            .await
            .expect("starting the server should not panic")
    }

    fn start_blocking(database: &str, env: &[(String, String)]) -> Self {
        let mut command = keyward_command();
        command
            .arg("serve")
            .env("KEYWARD_BIND", "127.0.0.1:0")
            .env("KEYWARD_DATABASE_URL", database)
            .env("KEYWARD_SUPPORT_EMAIL", SUPPORT_EMAIL)
            .env("KEYWARD_WORKERS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // PostgreSQL has no key file beside it: every process of a test shares one key, as
        // the instances of a deployment would.
        if database.starts_with("postgres") {
            command.env("KEYWARD_SECRET_KEY", POSTGRES_SECRET_KEY);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the keyward binary should start");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = drain(child.stderr.take().expect("stderr is piped"));

        // The reader keeps draining stdout after the address, so the server never blocks on it.
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(address) = find_local_url(&line) {
                        return Self {
                            child,
                            address,
                            stderr: Some(stderr),
                        };
                    }
                    seen.push(line);
                }
                Err(why) => {
                    let _ = child.kill();
                    let status = child.wait();
                    let stderr = stderr.join().unwrap_or_default();
                    panic!(
                        "`keyward serve` printed no http://127.0.0.1:PORT line ({why:?}, exit {status:?}).\nstdout: {seen:?}\nstderr: {stderr}"
                    );
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    pub fn kill(mut self) {
        self.kill_now();
    }

    /// SIGKILL, then everything the server wrote to stderr: its log.
    pub fn kill_and_read_log(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|stderr| stderr.join().ok())
            .unwrap_or_default()
    }

    /// SIGTERM, as systemd or an operator stops a server, then waits for it to exit;
    /// `None` if it didn't within the timeout (it is then killed).
    pub fn terminate(mut self) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// What a run of the binary left behind. `status` is `None` when it had to be killed.
#[derive(Debug)]
pub struct BinaryOutput {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to its end (killing it after a timeout) with only the given KEYWARD_* vars.
pub fn keyward_binary(args: &[&str], env: &[(&str, &str)]) -> BinaryOutput {
    let mut command = keyward_command();
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the keyward binary should start");
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    BinaryOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `keyward --database-url DB ARGS...` as a separate process, off the async thread, and
/// insists that it succeeds. Returns its stdout.
pub async fn keyward_binary_ok(database: &str, args: &[&str]) -> String {
    let mut argv = vec!["--database-url".to_string(), database.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let output = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        keyward_binary(&argv, &[])
    })
    .await
    .expect("running the binary should not panic");
    assert!(
        output.status.is_some_and(|s| s.success()),
        "`keyward {}` failed: {output:?}",
        args.join(" ")
    );
    output.stdout
}

/// A server, account and token made entirely through the binary.
pub async fn binary_account_with_token(
    database: &str,
    account_name: &str,
    token_name: &str,
) -> (String, Token) {
    let slug = keyward_binary_ok(database, &["account", "create", "--name", account_name])
        .await
        .trim()
        .to_string();
    let token = binary_token(database, &slug, token_name).await;
    (slug, token)
}

pub async fn binary_token(database: &str, account: &str, token_name: &str) -> Token {
    parse_token_output(
        &keyward_binary_ok(
            database,
            &[
                "token",
                "create",
                "--account",
                account,
                "--name",
                token_name,
            ],
        )
        .await,
    )
}
