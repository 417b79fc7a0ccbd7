//! Keyward in front of a real nginx: `auth_request` to `/verify` protects a static file and
//! a proxied app. A valid token gets through, and the app upstream receives the account's
//! slug in `X-Keyward-Account` (seen by a small upstream in this test that echoes the
//! headers it got); a revoked token and no credentials get Keyward's own 401, body and
//! challenge; a token without the required scope gets Keyward's 403.
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

use crate::support::api::{CHALLENGE, SUPPORT_EMAIL, expected_401_body, http_client, spawn_app};

const FILE_BODY: &str = "quarterly numbers, for token holders only\n";

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
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    async fn start(keyward_port: u16, upstream_port: u16) -> Self {
        let binary = nginx_binary();
        let dir = tempfile::tempdir().expect("a directory for nginx");
        std::fs::create_dir_all(dir.path().join("www/files")).unwrap();
        std::fs::write(dir.path().join("www/files/report.txt"), FILE_BODY).unwrap();
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, keyward_port, upstream_port)).unwrap();
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
        let mut nginx = Nginx { child, port, dir };
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

/// The configuration a user would write (the README has the same locations), with every
/// path in the test's directory and every port on the loopback.
fn config(dir: &Path, port: u16, keyward: u16, upstream: u16) -> String {
    let dir = dir.display();
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

    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;

        # Asks Keyward. The client's Authorization goes along, as every header does.
        location = /_keyward_verify {{
            internal;
            proxy_pass http://127.0.0.1:{keyward}/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Keyward-Required-Scope read;
        }}

        # auth_request keeps only the subrequest's status, so a refusal asks again here
        # and passes on Keyward's own answer: its JSON body and WWW-Authenticate.
        location @keyward_refused {{
            rewrite ^ /verify?scope=read break;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://127.0.0.1:{keyward};
        }}

        location /files/ {{
            auth_request /_keyward_verify;
            auth_request_set $keyward_account $upstream_http_x_keyward_account;
            add_header X-Keyward-Account $keyward_account always;
            error_page 401 403 = @keyward_refused;
        }}

        location /app/ {{
            auth_request /_keyward_verify;
            auth_request_set $keyward_account $upstream_http_x_keyward_account;
            auth_request_set $keyward_scopes $upstream_http_x_keyward_scopes;
            proxy_set_header X-Keyward-Account $keyward_account;
            proxy_set_header X-Keyward-Scopes $keyward_scopes;
            proxy_set_header Authorization "";
            proxy_pass http://127.0.0.1:{upstream};
            error_page 401 403 = @keyward_refused;
        }}
    }}
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
async fn nginx_lets_a_valid_token_through_and_passes_on_keywards_refusals() {
    let app = spawn_app().await;
    let keyward_port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the test server's port");
    let upstream = echo_upstream().await;
    let nginx = Nginx::start(keyward_port, upstream).await;
    let client = http_client();
    let (slug, token) = app.account_with_token("Behind Nginx Inc").await;

    // A valid token gets the file, and nginx had the account from Keyward.
    let response = client
        .get(nginx.url("/files/report.txt"))
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", nginx.error_log());
    assert_eq!(
        response
            .headers()
            .get("x-keyward-account")
            .and_then(|v| v.to_str().ok()),
        Some(slug.as_str())
    );
    assert_eq!(response.text().await.unwrap(), FILE_BODY);

    // The app upstream receives the account from Keyward, not the one the client claims.
    let response = client
        .get(nginx.url("/app/orders"))
        .basic_auth(&token.key, Some(&token.secret))
        .header("X-Keyward-Account", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
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
    for path in ["/files/report.txt", "/app/orders"] {
        expect_keyward_401(client.get(nginx.url(path)).send().await.unwrap()).await;
    }

    // A token without the scope nginx asks for: Keyward's 403.
    let tokens_only = app.create_token(&slug, "manager", "tokens").await;
    let response = client
        .get(nginx.url("/files/report.txt"))
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
        .get(nginx.url("/files/report.txt"))
        .basic_auth(&token.key, Some(&token.secret))
        .send()
        .await
        .unwrap();
    expect_keyward_401(response).await;
}
