//! A PostgreSQL cluster of a test's own, as a real one is set up: TCP connections must give
//! a password (SCRAM), and the test may restart the server under its clients. Started
//! from Debian's binaries on a free loopback port, in a temporary directory, and stopped
//! when dropped.

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
}

impl PgCluster {
    /// A new cluster, or `None` when this machine has no PostgreSQL server binaries.
    pub fn start() -> Option<Self> {
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
