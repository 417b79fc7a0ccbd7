//! The server's log: one line per request, and never a secret, a password or an
//! Authorization header, whatever the request carried.

use crate::support::api::{base64, http_client};
use crate::support::process::{ServerProcess, binary_account_with_token};
use crate::support::store::TestDb;

#[tokio::test]
async fn the_log_has_a_line_per_request_and_no_credentials() {
    let db = TestDb::new();
    let (_, token) = binary_account_with_token(&db.path, "Log Inc", "ci").await;
    let server = ServerProcess::start_with(&db.path, &[("KEYWARD_LOG", "info")]).await;
    let client = http_client();
    let password = "a password nobody should read";
    let header = format!(
        "Basic {}",
        base64(format!("{}:{}", token.key, token.secret).as_bytes())
    );

    let requests = [
        client
            .get(server.url("/clusters/"))
            .header("Authorization", &header),
        client
            .get(server.url("/token"))
            .basic_auth(&token.key, Some("kws_wrong")),
        client
            .get(server.url("/plans"))
            .basic_auth(&token.key, None::<&str>),
        // A client that puts the secret in the query string must not get it logged either.
        client
            .get(server.url(&format!("/clusters/?secret={}", token.secret)))
            .header("Authorization", &header),
        client
            .post(server.url("/login"))
            .form(&[("email", "ada@example.com"), ("password", password)]),
        // An invitation link's token is a one-time secret too.
        client.get(server.url("/invitations/InviteLinkSecretThatMustNotBeLogged")),
    ];
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(
            request
                .send()
                .await
                .expect("the server answers")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [200, 401, 401, 200, 403, 404],
        "the requests did what the test expects"
    );

    let log = server.kill_and_read_log();
    let request_lines = log.lines().filter(|l| l.contains("request")).count();
    assert!(
        request_lines >= 6,
        "expected a line per request, got:\n{log}"
    );
    for needle in [
        token.secret.as_str(),
        password,
        &header[6..],
        "Authorization",
        "authorization",
        "kws_wrong",
        "InviteLinkSecretThatMustNotBeLogged",
    ] {
        assert!(!log.contains(needle), "the log holds {needle:?}:\n{log}");
    }
}
