//! Keyward behind a real nginx, configured by the file the documentation shows
//! (`docs/nginx.conf`): TLS with a self-signed certificate made here, the dashboard and API
//! proxied, and `auth_request` to `/verify` protecting an app. A valid token reaches the
//! API and the app, and the app upstream receives the account's slug in
//! `X-Keyward-Account` (seen by a small upstream in this test that echoes the headers it
//! got); a revoked token and no credentials get Keyward's own 401, body and challenge; a
//! token without the required scope gets Keyward's 403; plain HTTP is sent to HTTPS.
//!
//! It needs Debian's `nginx-light` (`.ci/run` installs it). Without nginx it fails, saying
//! so, rather than pass without having checked anything.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::api::{CHALLENGE, SUPPORT_EMAIL, expected_401_body, spawn_app_with};

/// The name the documented configuration serves, which the certificate is made for.
const HOST: &str = "keys.example.com";

/// Where each party listens: nginx (plain and TLS), Keyward, and the app behind nginx.
struct Ports {
    http: u16,
    https: u16,
    keyward: u16,
    upstream: u16,
}

/// The nginx binary: `$NGINX`, or Debian's.
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    assert!(
        path.exists(),
        "nginx is not installed at {}: install Debian's nginx-light \
         (`apt-get install -y nginx-light`, as .ci/run does) or set NGINX to its path",
        path.display()
    );
    path
}

/// A port that was free a moment ago, for a server that can't be told to take port 0.
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// nginx in the foreground, in one process, killed with the test.
struct Nginx {
    child: Child,
    ports: Ports,
    dir: tempfile::TempDir,
    /// The self-signed certificate nginx serves, for the client to trust.
    certificate: reqwest::Certificate,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// An address on nginx's TLS port, under the name its certificate has.
    fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.ports.https)
    }

    /// A client that trusts nginx's certificate and finds `keys.example.com` on the
    /// loopback, so TLS checks the name as it would for a real client.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .add_root_certificate(self.certificate.clone())
            .resolve(HOST, ([127, 0, 0, 1], self.ports.https).into())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .expect("a TLS client")
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    async fn start(keyward: u16, upstream: u16) -> Self {
        let binary = nginx_binary();
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let made = rcgen::generate_simple_self_signed(vec![HOST.to_string()])
            .expect("a self-signed certificate");
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        let certificate = reqwest::Certificate::from_pem(made.cert.pem().as_bytes())
            .expect("the certificate as PEM");
        let http = free_port();
        // Two ports that were free a moment ago, and not the same one twice.
        let https = std::iter::repeat_with(free_port)
            .find(|p| *p != http)
            .expect("a second free port");
        let ports = Ports {
            http,
            https,
            keyward,
            upstream,
        };
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), &ports)).unwrap();
        let child = Command::new(&binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let port = ports.https;
        let mut nginx = Nginx {
            child,
            ports,
            dir,
            certificate,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}) at start:\n{}", nginx.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s:\n{}",
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The server blocks the documentation shows (`docs/nginx.conf`), run as they are: only
/// the listening addresses, Keyward's and the app's addresses and the certificate's paths
/// are replaced, each of which must be there to replace, so the file can't drift from
/// what runs here. Around them, the http {} block a test needs: every path in its
/// directory.
fn config(dir: &Path, ports: &Ports) -> String {
    let documented = include_str!("../../docs/nginx.conf");
    let servers = &documented[documented.find("server {").expect("server blocks")..];
    assert!(
        include_str!("../../docs/deployment.md").contains(servers),
        "docs/deployment.md should show docs/nginx.conf's server blocks as they are"
    );
    let dir = dir.display();
    let replacements = [
        ("listen 80;", format!("listen 127.0.0.1:{};", ports.http)),
        (
            "listen 443 ssl;",
            format!("listen 127.0.0.1:{} ssl;", ports.https),
        ),
        ("127.0.0.1:8080", format!("127.0.0.1:{}", ports.keyward)),
        ("127.0.0.1:3000", format!("127.0.0.1:{}", ports.upstream)),
        (
            "/etc/ssl/certs/keys.example.com.pem",
            format!("{dir}/cert.pem"),
        ),
        (
            "/etc/ssl/private/keys.example.com.key",
            format!("{dir}/key.pem"),
        ),
    ];
    let mut servers = servers.to_string();
    for (documented, tested) in replacements {
        assert!(
            servers.contains(documented),
            "docs/nginx.conf no longer has {documented:?}: update this test with it"
        );
        servers = servers.replace(documented, &tested);
    }
    format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"#
    )
}

/// An upstream app that answers every request with the request head it received.
async fn echo_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    head.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.write_all(&head).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn nginx_as_documented_serves_keyward_over_tls_and_guards_an_app_with_it() {
    // Keyward as docs/nginx.conf says to run it: its public URL is the proxy's.
    let app = spawn_app_with(|config| {
        config.public_url = Some(format!("https://{HOST}"));
        config.trust_forwarded_headers = true;
    })
    .await;
    let keyward_port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the test server's port");
    let upstream = echo_upstream().await;
    let nginx = Nginx::start(keyward_port, upstream).await;
    let client = nginx.client();
    let (slug, token) = app.account_with_token("Behind Nginx Inc").await;

    // The API through TLS: a cluster's links are the public URL's.
    let response = client
        .post(nginx.url("/clusters"))
        .basic_auth(&token.key, Some(&token.secret))
        .json(&serde_json::json!({"name": "Search"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the API through nginx: {e}\n{}", nginx.error_log()));
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "{}",
        nginx.error_log()
    );
    let body: serde_json::Value = response.json().await.expect("Keyward's JSON body");
    let monitor = body["monitor"].as_str().expect("a monitor link");
    assert!(
        monitor.starts_with(&format!("https://{HOST}/clusters/search-")),
        "{body}"
    );

    // Plain HTTP is sent to HTTPS.
    let plain = format!("http://127.0.0.1:{}/clusters", nginx.ports.http);
    let response = client
        .get(&plain)
        .header("Host", HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(format!("https://{HOST}/clusters").as_str())
    );

    // The app upstream receives the account from Keyward, not the one the client claims,
    // and never the secret.
    let response = client
        .get(nginx.url("/app/orders"))
        .basic_auth(&token.key, Some(&token.secret))
        .header("X-Keyward-Account", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", nginx.error_log());
    let upstream_saw = response.text().await.unwrap().to_lowercase();
    assert!(
        upstream_saw.contains(&format!("x-keyward-account: {slug}\r\n")),
        "the upstream should get the slug: {upstream_saw}"
    );
    assert!(
        upstream_saw.contains("x-keyward-scopes: read,write\r\n"),
        "{upstream_saw}"
    );
    assert!(!upstream_saw.contains("someone-else"), "{upstream_saw}");
    assert!(
        !upstream_saw.contains(&token.secret.to_lowercase()),
        "{upstream_saw}"
    );

    // No credentials: Keyward's 401, body and challenge, through nginx.
    let expect_keyward_401 = |response: reqwest::Response| async move {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(CHALLENGE)
        );
        let body: serde_json::Value = response.json().await.expect("Keyward's JSON body");
        assert_eq!(body, expected_401_body(false, SUPPORT_EMAIL));
    };
    for path in ["/app/orders", "/clusters"] {
        expect_keyward_401(client.get(nginx.url(path)).send().await.unwrap()).await;
    }

    // A token without the scope nginx asks for: Keyward's 403.
    let tokens_only = app.create_token(&slug, "manager", "tokens").await;
    let response = client
        .get(nginx.url("/app/orders"))
        .basic_auth(&tokens_only.key, Some(&tokens_only.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = response.json().await.expect("Keyward's JSON body");
    assert!(
        body["errors"][0].as_str().unwrap().contains("'read' scope"),
        "{body}"
    );

    // Revoked: refused from the next request on, with Keyward's 401.
    app.revoke(&token.key).await;
    app.pick_up_changes().await;
    let response = client
        .get(nginx.url("/app/orders"))
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .unwrap();
    expect_keyward_401(response).await;
}
