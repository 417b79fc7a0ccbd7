//! A PostgreSQL cluster of a test's own, as a real one is set up: TCP connections must give
//! a password (SCRAM), and the test may restart the server under its clients. Started
//! from Debian's binaries on a free loopback port, in a temporary directory, and stopped
//! when dropped. [`PgCluster::start_tls`] makes one that takes TCP connections only over
//! TLS, with a certificate from a CA of the test's own, as managed PostgreSQL services do.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The role Keyward connects as, and its password.
const ROLE: &str = "keyward";
const PASSWORD: &str = "a-scram-password";

pub struct PgCluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// `postgres://keyward:…@127.0.0.1:PORT/keyward`, through SCRAM.
    pub url: String,
    /// The PEM file of the CA that signed the server's certificate, for a TLS cluster.
    pub root_certificate: Option<PathBuf>,
}

/// A CA of a test's own: its certificate, and what signs with it.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let pem = params.self_signed(&key).expect("a CA certificate").pem();
        Self {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for the loopback address and `localhost`, and its key, in PEM.
    fn server_certificate(&self) -> (String, String) {
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        let key = rcgen::KeyPair::generate().expect("a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

impl PgCluster {
    /// A new cluster, or `None` when this machine has no PostgreSQL server binaries.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// A cluster that refuses TCP connections without TLS (`hostssl` only), its
    /// certificate signed by `ca`; [`root_certificate`](Self::root_certificate) is `ca`'s.
    pub fn start_tls(ca: &TestCa) -> Option<Self> {
        Self::start_with(Some(ca))
    }

    fn start_with(ca: Option<&TestCa>) -> Option<Self> {
        let bin = newest_bin()?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        give_to_postgres(dir.path());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, "superuser-password\n").expect("write the password file");
        give_to_postgres(&pwfile);
        let data = dir.path().join("data");
        run_checked(as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                path(&pwfile),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ));
        let root_certificate = ca.map(|ca| enable_tls(dir.path(), &data, ca));
        let port = (0..10)
            .map(|_| free_port())
            .find(|&port| {
                pg_ctl(&bin, dir.path(), port, &["start"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .expect("PostgreSQL should start on one of ten free ports");
        let cluster = Self {
            url: format!("postgres://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{ROLE}"),
            dir,
            bin,
            port,
            root_certificate,
        };
        cluster.psql(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"));
        cluster.psql(&format!("CREATE DATABASE {ROLE} OWNER {ROLE}"));
        Some(cluster)
    }

    /// Restarts the server, dropping every client's connection, and waits until it takes
    /// new ones.
    pub fn restart(&self) {
        run_checked(pg_ctl(
            &self.bin,
            self.dir.path(),
            self.port,
            &["restart", "-m", "fast"],
        ));
    }

    /// Runs SQL as the superuser, over the cluster's own socket.
    fn psql(&self, sql: &str) {
        let port = self.port.to_string();
        run_checked(as_postgres(
            &self.bin.join("psql"),
            &[
                "-h",
                path(self.dir.path()),
                "-p",
                &port,
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        ));
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = pg_ctl(
            &self.bin,
            self.dir.path(),
            self.port,
            &["stop", "-m", "immediate"],
        )
        .output();
    }
}

/// Gives the cluster in `data` a certificate signed by `ca`, turns TLS on and accepts TCP
/// clients only over it. Returns the CA's certificate file, written beside the data.
fn enable_tls(dir: &Path, data: &Path, ca: &TestCa) -> PathBuf {
    let (cert, key) = ca.server_certificate();
    for (name, pem) in [("server.crt", &cert), ("server.key", &key)] {
        let file = data.join(name);
        std::fs::write(&file, pem).expect("write the server's certificate");
        // PostgreSQL refuses a key that others may read.
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod 600");
        give_to_postgres(&file);
    }
    let conf = data.join("postgresql.conf");
    let mut settings = std::fs::read_to_string(&conf).expect("read postgresql.conf");
    settings.push_str("\nssl = on\n");
    std::fs::write(&conf, settings).expect("write postgresql.conf");
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
    let rules: String = rules
        .lines()
        .map(|line| match line.strip_prefix("host ") {
            Some(rest) => format!("hostssl {rest}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&hba, rules).expect("write pg_hba.conf");
    let root = dir.join("root.crt");
    std::fs::write(&root, &ca.pem).expect("write the CA's certificate");
    root
}

/// `pg_ctl ARGS` for the cluster in `dir`, listening on `port` of the loopback address
/// and in `dir` for its socket.
fn pg_ctl(bin: &Path, dir: &Path, port: u16, args: &[&str]) -> Command {
    let (data, log) = (dir.join("data"), dir.join("log"));
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
        path(dir)
    );
    let mut all = vec!["-D", path(&data), "-l", path(&log), "-w", "-t", "60"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", &options]);
    as_postgres(&bin.join("pg_ctl"), &all)
}

/// `/usr/lib/postgresql/N/bin` of the newest N installed.
fn newest_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// PostgreSQL refuses to run as root: as root, its files and processes are the postgres user's.
fn as_postgres(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        run_checked({
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(path);
            chown
        });
    }
}

fn run_checked(mut command: Command) {
    let output = command.output().expect("the command should start");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
