//! Concurrent writers, from HTTP and from the command line on the same file, never see
//! "database is locked" or a 5xx, and every write lands.

use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

use crate::support::api::{create_token, expect_json, keyward_cli, revoke, spawn_app};

const WRITERS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_writers_never_see_a_locked_database() {
    let app = spawn_app().await;
    let (account, token) = app.account_with_token("Busy").await;
    let (plan, space) = app.a_plan_and_space(&token).await;

    let mut writers = JoinSet::new();
    for i in 0..WRITERS {
        if i % 2 == 0 {
            // An API client creating a cluster.
            let client = app.client.clone();
            let url = app.url("/clusters");
            let token = token.clone();
            let body = json!({"name": format!("Cluster {i:02}"), "plan": plan, "space": space});
            writers.spawn(async move {
                let response = client
                    .post(url)
                    .basic_auth(&token.key, Some(&token.secret))
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| format!("writer {i}: request failed: {e}"))?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status != StatusCode::ACCEPTED
                    || text.to_lowercase().contains("database is locked")
                {
                    return Err(format!(
                        "writer {i}: POST /clusters answered {status}: {text}"
                    ));
                }
                Ok(())
            });
        } else {
            // An operator at the command line creating and revoking a token.
            let database = app.db.path.clone();
            let account = account.clone();
            writers.spawn(async move {
                tokio::task::spawn_blocking(move || {
                    let out = keyward_cli(
                        &database,
                        &[
                            "token",
                            "create",
                            "--account",
                            &account,
                            "--name",
                            &format!("tool {i:02}"),
                        ],
                        "",
                    )
                    .map_err(|e| format!("writer {i}: token create failed: {e}"))?;
                    let key = out
                        .lines()
                        .find_map(|l| l.strip_prefix("key: "))
                        .ok_or_else(|| format!("writer {i}: no key in {out:?}"))?
                        .to_string();
                    keyward_cli(
                        &database,
                        &["token", "revoke", &key, "--reason", "load test"],
                        "",
                    )
                    .map_err(|e| format!("writer {i}: token revoke failed: {e}"))?;
                    Ok(())
                })
                .await
                .map_err(|e| format!("writer {i} panicked: {e}"))?
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(result) = writers.join_next().await {
        if let Err(failure) = result.expect("writer task") {
            failures.push(failure);
        }
    }
    let locked = failures
        .iter()
        .filter(|f| f.to_lowercase().contains("database is locked"))
        .count();
    assert!(
        failures.is_empty(),
        "{} of {WRITERS} writers failed ({locked} with \"database is locked\"):\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every cluster landed.
    let list = expect_json(
        app.get_with_auth("/clusters?size=100", &token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["pagination"]["total_records"], WRITERS / 2, "{list}");
    let mut names: Vec<String> = list["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort_unstable();
    let expected: Vec<String> = (0..WRITERS)
        .step_by(2)
        .map(|i| format!("Cluster {i:02}"))
        .collect();
    assert_eq!(names, expected);

    // Every command-line token landed, and is revoked.
    let listed = app
        .cli(&["token", "list", "--account", &account])
        .await
        .expect("token list");
    for i in (1..WRITERS).step_by(2) {
        let name = format!("tool {i:02}");
        let line = listed
            .lines()
            .find(|l| l.contains(&name))
            .unwrap_or_else(|| panic!("token {name:?} is missing from the list:\n{listed}"));
        assert!(
            line.contains("revoked"),
            "token {name:?} should be revoked: {line}"
        );
    }
    // The API token used throughout still works.
    assert_eq!(
        app.get_with_auth("/token", &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_writes_alone_do_not_lock_each_other() {
    let app = spawn_app().await;
    let account = app.create_account("Scripted").await;

    let mut writers = JoinSet::new();
    for i in 0..20 {
        let database = app.db.path.clone();
        let account = account.clone();
        writers.spawn_blocking(move || {
            let token = create_token(&database, &account, &format!("batch {i}"), "read", &[]);
            revoke(&database, &token.key);
        });
    }
    while let Some(result) = writers.join_next().await {
        if let Err(panic) = result {
            std::panic::resume_unwind(panic.into_panic());
        }
    }

    let listed = app
        .cli(&["token", "list", "--account", &account])
        .await
        .expect("token list");
    assert_eq!(
        listed.lines().filter(|l| l.contains("revoked")).count(),
        20,
        "{listed}"
    );
}
