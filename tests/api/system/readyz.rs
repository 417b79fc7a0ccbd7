//! `GET /readyz`: ready while the database answers; a 503 envelope when it doesn't, so a
//! load balancer drains the instance; ready again, without a restart, when it returns.
//! Meanwhile tokens already cached keep working, a token not yet read and writes answer 503,
//! and nothing claims a change that wasn't made.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use crate::support::api::{
    assert_error_envelope, eventually, expect_json, spawn_app, spawn_app_at,
};
use crate::support::store::TestDb;

const NOT_READY: &str =
    "The database can't be reached, so this instance can't serve requests right now.";
const UNREACHABLE: &str =
    "The server can't reach its database right now. Please try again in a few seconds.";

#[tokio::test]
async fn readyz_says_ready_while_the_database_answers() {
    let app = spawn_app().await;

    let body = expect_json(app.get_without_auth("/readyz").await, StatusCode::OK).await;

    assert_eq!(body, json!({"ready": true, "status": 200}));
}

#[tokio::test]
async fn readyz_needs_no_token_and_ignores_a_bad_one() {
    let app = spawn_app().await;
    let response = app
        .get_with_header("/readyz", Some(crate::helpers::basic("kw_nope:wrong")))
        .await;
    expect_json(response, StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgres_drains_the_instance_and_it_recovers_when_postgres_returns() {
    crate::postgres_only!("it stops a PostgreSQL server");
    let db = TestDb::new();
    let mut relay = Relay::start(&db.path).await;
    let through_relay = relay.url_for(&db.path);
    let app = spawn_app_at(db, &through_relay, |_| {}).await;
    let (_, token) = app.account_with_token("Drained").await;
    expect_json(app.get_with_auth("/token", &token).await, StatusCode::OK).await;
    // A token this instance knows of but has never read: its first call needs the database.
    let (_, unread) = app.account_with_token("Not Yet Read").await;
    app.pick_up_changes().await;

    relay.stop();

    let response = app.get_without_auth("/readyz").await;
    assert!(
        response.headers().contains_key(RETRY_AFTER),
        "a 503 says when to ask again"
    );
    assert_eq!(
        assert_error_envelope(response, StatusCode::SERVICE_UNAVAILABLE).await,
        [NOT_READY]
    );
    // The guard answers from memory: a token it has seen still works.
    expect_json(app.get_with_auth("/token", &token).await, StatusCode::OK).await;
    // A key it hasn't read can't be checked: a 503, neither a pass nor a 401 that would
    // tell the client its token is gone.
    assert_eq!(
        assert_error_envelope(
            app.get_with_auth("/token", &unread).await,
            StatusCode::SERVICE_UNAVAILABLE
        )
        .await,
        [UNREACHABLE]
    );
    // A write can't be made, and the answer says so rather than claiming it.
    // (The catalogue is served from memory, so asking for a plan and space needs no database.)
    let (plan, space) = app.a_plan_and_space(&token).await;
    let refused = app
        .post_json(
            "/clusters",
            &token,
            &json!({"name": "Lost", "plan": plan, "space": space}),
        )
        .await;
    assert_eq!(
        assert_error_envelope(refused, StatusCode::SERVICE_UNAVAILABLE).await,
        [UNREACHABLE]
    );

    relay.restart().await;

    let ready = eventually(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { app.get_without_auth("/readyz").await.status() == StatusCode::OK },
    )
    .await;
    assert!(
        ready,
        "the instance should be ready again once PostgreSQL is back"
    );
    assert!(
        app.cluster_slugs(&token).await.is_empty(),
        "the refused write left nothing behind"
    );
    let made = app.create_cluster(&token, "Back").await;
    assert_eq!(app.cluster_slugs(&token).await, [made]);
    expect_json(app.get_with_auth("/token", &unread).await, StatusCode::OK).await;
}

/// A loopback TCP relay in front of the suite's PostgreSQL server. Stopping it closes its
/// port and every connection through it, which is what an instance behind it sees when
/// PostgreSQL stops; starting it again is PostgreSQL coming back. The server every other
/// test uses is never touched.
struct Relay {
    upstream: SocketAddr,
    port: u16,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    async fn start(database_url: &str) -> Self {
        let upstream = authority(database_url)
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                panic!(
                    "the relay needs {} as host:port with an IP address, such as postgres://postgres@127.0.0.1:5432/postgres",
                    crate::helpers::POSTGRES_ENV
                )
            });
        let mut relay = Self {
            upstream,
            port: 0,
            accepting: None,
            connections: Arc::default(),
        };
        relay.restart().await;
        relay
    }

    /// `database_url` with its host and port replaced by the relay's.
    fn url_for(&self, database_url: &str) -> String {
        database_url.replacen(
            &authority(database_url),
            &format!("127.0.0.1:{}", self.port),
            1,
        )
    }

    fn stop(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
        for connection in self.connections.lock().expect("not poisoned").drain(..) {
            connection.abort();
        }
    }

    /// Listens again, on the same port once it has had one.
    async fn restart(&mut self) {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .expect("the relay's port is free again");
        let listener = socket.listen(64).expect("listen");
        self.port = listener.local_addr().expect("a local address").port();
        let (upstream, connections) = (self.upstream, self.connections.clone());
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relayed = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections
                    .lock()
                    .expect("not poisoned")
                    .push(relayed.abort_handle());
            }
        }));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `host:port` of a `postgres://user@host:port/db` URL.
fn authority(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?'])
        .next()
        .unwrap_or(after_scheme);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_string()
}

#[test]
fn the_relay_reads_host_and_port() {
    assert_eq!(
        authority("postgres://pg:pw@127.0.0.1:5432/db?x=1"),
        "127.0.0.1:5432"
    );
    assert_eq!(authority("postgresql://[::1]:5433/db"), "[::1]:5433");
}
