//! Cluster writes go through the write path: the calling token is read again inside the
//! transaction, and every create, update and delete is in the audit log with the token
//! as its actor.

use keyward::db;
use keyward::db::tx::{Principal, transact};
use keyward::domain::{Slug, TokenKey};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_error_envelope, expect_json, spawn_app};

/// The account's audit log, newest first, as (action, actor, target).
async fn audit_log(app: &TestApp, slug: &str) -> Vec<(String, String, String)> {
    let pool = app.state.pool.clone();
    let slug = slug.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("a connection");
        let account = db::accounts::find_by_slug(&mut conn, &slug).expect("the account");
        let (events, _) =
            db::audit::list_for_account(&mut conn, account.account_id(), &Default::default(), 1)
                .expect("the log");
        events
            .into_iter()
            .map(|e| (e.action.to_string(), e.actor_label, e.target))
            .collect()
    })
    .await
    .expect("the audit read")
}

#[tokio::test]
async fn every_cluster_write_is_audited_with_the_calling_token_as_its_actor() {
    let app = spawn_app().await;
    let account = app.create_account("Audited Search").await;
    let token = app.create_token(&account, "deployer", "read,write").await;

    let slug = app.create_cluster(&token, "Logs").await;
    let renamed = app
        .put_json(
            &format!("/clusters/{slug}"),
            &token,
            &json!({"name": "Old logs"}),
        )
        .await;
    expect_json(renamed, StatusCode::ACCEPTED).await;
    let deleted = app.delete(&format!("/clusters/{slug}"), &token).await;
    expect_json(deleted, StatusCode::ACCEPTED).await;

    let actor = format!("API token {} (deployer)", token.key);
    let clusters: Vec<(String, String, String)> = audit_log(&app, &account)
        .await
        .into_iter()
        .filter(|(action, _, _)| action.starts_with("cluster."))
        .collect();
    assert_eq!(
        clusters,
        vec![
            ("cluster.deleted".to_string(), actor.clone(), slug.clone()),
            ("cluster.updated".to_string(), actor.clone(), slug.clone()),
            ("cluster.created".to_string(), actor, slug),
        ]
    );
}

#[tokio::test]
async fn a_refused_cluster_write_leaves_no_audit_row() {
    let app = spawn_app().await;
    let account = app.create_account("Read Only Co").await;
    let writer = app.create_token(&account, "writer", "read,write").await;
    let reader = app.create_token(&account, "reader", "read").await;
    let slug = app.create_cluster(&writer, "Kept").await;

    let refused = app.delete(&format!("/clusters/{slug}"), &reader).await;
    assert_error_envelope(refused, StatusCode::FORBIDDEN).await;

    assert_eq!(app.cluster_slugs(&writer).await, vec![slug]);
    let log = audit_log(&app, &account).await;
    assert!(
        !log.iter().any(|(_, actor, _)| actor.contains(&reader.key)),
        "the read-only token did nothing: {log:?}"
    );
}

/// The guard let the request in, then the token was revoked before the write began. (The
/// write path is called directly, as the handler would after the guard, since no client
/// can time that gap.)
#[tokio::test]
async fn a_token_revoked_after_the_guard_let_it_in_deletes_nothing() {
    let app = spawn_app().await;
    let account = app.create_account("Raced Search").await;
    let token = app.create_token(&account, "ci", "read,write").await;
    let slug = app.create_cluster(&token, "Precious").await;
    app.revoke(&token.key).await;

    let pool = app.state.pool.clone();
    let (key, account_slug, cluster) = (token.key.clone(), account.clone(), slug.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("a connection");
        let account = db::accounts::find_by_slug(&mut conn, &account_slug).unwrap();
        let key = TokenKey::parse(&key).unwrap();
        let row = db::tokens::find_by_key_any_account(&mut conn, &key)
            .unwrap()
            .expect("the token's row");
        let who = Principal::Token {
            id: row.token.token_id(),
            key,
            account: account.account_id(),
            ip: None,
        };
        let slug = Slug::parse(&cluster).unwrap();
        let outcome = transact(&mut conn, &who, Some(account.account_id()), |tx| {
            db::clusters::delete(tx, &slug)
        })
        .map(|_| ())
        .map_err(|e| e.messages());
        let still_there = db::clusters::find(&mut conn, account.account_id(), &slug).is_ok();
        (outcome, still_there)
    })
    .await
    .unwrap();

    assert_eq!(
        outcome,
        (
            Err(vec!["This API token is no longer active.".to_string()]),
            true
        )
    );
    let log = audit_log(&app, &account).await;
    assert!(
        !log.iter().any(|(action, _, _)| action == "cluster.deleted"),
        "the revoked token deleted nothing: {log:?}"
    );
}
