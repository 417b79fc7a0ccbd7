//! TLS to PostgreSQL, as managed services require it: `sslmode` and `sslrootcert` in
//! `KEYWARD_DATABASE_URL` reach libpq (built into the binary, OpenSSL and all). Against a
//! cluster that takes TCP clients only over TLS, `verify-full` with the right root serves,
//! and a wrong root or no TLS at all stops the program with one clear line.

use crate::support::api::http_client;
use crate::support::pg_cluster::{PgCluster, TestCa};
use crate::support::process::{ServerProcess, keyward_binary};

fn tls_cluster(ca: &TestCa) -> PgCluster {
    PgCluster::start_tls(ca).expect("the PostgreSQL run of the suite has PostgreSQL's binaries")
}

/// The cluster's URL with libpq's TLS parameters added.
fn with_tls(cluster: &PgCluster, params: &str) -> String {
    format!("{}?{params}", cluster.url)
}

/// `keyward serve` on `url`, to its end.
fn serve(url: &str) -> crate::support::process::BinaryOutput {
    keyward_binary(
        &["serve"],
        &[
            ("KEYWARD_DATABASE_URL", url),
            ("KEYWARD_BIND", "127.0.0.1:0"),
            ("KEYWARD_SUPPORT_EMAIL", "support@keyward.test"),
        ],
    )
}

/// The one line a refused start printed, checked for what every such line must be.
fn the_one_line(output: &crate::support::process::BinaryOutput) -> String {
    assert_eq!(output.status.and_then(|s| s.code()), Some(1), "{output:?}");
    let lines: Vec<&str> = output.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {output:?}");
    assert!(
        !output.stderr.contains("a-scram-password"),
        "the password was printed: {output:?}"
    );
    lines[0].to_string()
}

#[tokio::test]
async fn verify_full_with_the_servers_root_certificate_serves() {
    crate::postgres_only!("starts a PostgreSQL cluster of its own that requires TLS");
    let ca = TestCa::new("Keyward test CA");
    let cluster = tls_cluster(&ca);
    let root = cluster
        .root_certificate
        .as_ref()
        .expect("a TLS cluster's root");
    let url = with_tls(
        &cluster,
        &format!("sslmode=verify-full&sslrootcert={}", root.display()),
    );

    let migrated = keyward_binary(&["--database-url", &url, "migrate"], &[]);
    assert!(migrated.status.is_some_and(|s| s.success()), "{migrated:?}");
    // The server's pool opens its own connections, over TLS too: it answers ready.
    let server = ServerProcess::start(&url).await;
    let ready = http_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("the server should answer");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn sslmode_require_encrypts_without_checking_the_certificate() {
    crate::postgres_only!("starts a PostgreSQL cluster of its own that requires TLS");
    let cluster = tls_cluster(&TestCa::new("Keyward test CA"));
    let output = keyward_binary(
        &[
            "--database-url",
            &with_tls(&cluster, "sslmode=require"),
            "migrate",
        ],
        &[],
    );
    assert!(output.status.is_some_and(|s| s.success()), "{output:?}");
}

#[tokio::test]
async fn a_wrong_root_certificate_is_refused_with_one_line_that_says_so() {
    crate::postgres_only!("starts a PostgreSQL cluster of its own that requires TLS");
    let cluster = tls_cluster(&TestCa::new("Keyward test CA"));
    let stranger = tempfile::NamedTempFile::new().expect("a file for another CA");
    std::fs::write(stranger.path(), TestCa::new("Someone else's CA").pem).expect("write it");
    let url = with_tls(
        &cluster,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            stranger.path().display()
        ),
    );

    let line = the_one_line(&serve(&url));
    assert!(line.starts_with("keyward: cannot open database"), "{line}");
    assert!(line.contains("certificate verify failed"), "{line}");
}

#[tokio::test]
async fn a_cluster_that_requires_tls_refuses_a_plain_connection() {
    crate::postgres_only!("starts a PostgreSQL cluster of its own that requires TLS");
    let cluster = tls_cluster(&TestCa::new("Keyward test CA"));
    let url = with_tls(&cluster, "sslmode=disable");

    let line = the_one_line(&serve(&url));
    assert!(line.contains("no encryption"), "{line}");
}
