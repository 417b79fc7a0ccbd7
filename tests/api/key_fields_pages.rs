//! The dashboard's side of what a token carries for its verifiers: set on the new-token
//! form, shown and changed on the token's page, filtered in the list, and listed on the
//! account's permissions page.

use reqwest::StatusCode;

use crate::support::admin::count_rows;
use crate::support::api::spawn_app;
use crate::support::browser::{read_created_page, signed_up};

#[tokio::test]
async fn a_person_sets_the_fields_on_the_form_sees_them_and_changes_them() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Pages Inc").await;
    let form = owner.token_form().await;
    let page = owner
        .post(
            "/tokens",
            &[
                ("csrf_token", form.csrf.as_str()),
                ("nonce", form.nonce.as_str()),
                ("name", "customer"),
                ("expires_in_days", ""),
                ("read", "1"),
                ("verify", "1"),
                ("permissions", "docs.read, docs.write"),
                ("external_id", "cus_page"),
                ("meta", r#"{"plan": "pro"}"#),
                ("credits", "40"),
                ("refill_interval", "monthly"),
                ("refill_amount", "40"),
                ("allowed_ips", "10.0.0.0/8"),
            ],
        )
        .await;
    let created = read_created_page(&page);
    let shown = owner.get(&format!("/tokens/{}", created.id)).await;
    shown.assert_html_page(StatusCode::OK);
    assert_eq!(
        shown.element_text("key-permissions").as_deref(),
        Some("docs.read, docs.write")
    );
    assert_eq!(
        shown.element_text("key-external-id").as_deref(),
        Some("cus_page")
    );
    assert!(shown.element_text("key-meta").unwrap().contains("pro"));
    assert_eq!(
        shown.element_text("key-credits").as_deref(),
        Some("40 credits, refilled to 40 monthly")
    );
    assert_eq!(
        shown.element_text("key-allowed-ips").as_deref(),
        Some("10.0.0.0/8")
    );

    let edit = format!("/tokens/{}/key-fields", created.id);
    let csrf = owner.csrf_from(&edit).await;
    // A bad value is told, naming the field, and what was typed comes back.
    let refused = owner
        .post(
            &edit,
            &[
                ("csrf_token", &csrf),
                ("permissions", "Docs"),
                ("allowed_ips", "nope"),
            ],
        )
        .await;
    refused.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("Permissions: \"Docs\" is not a permission");
    refused.assert_contains("Allowed IPs: \"nope\" is not a CIDR");
    let saved = owner
        .post(
            &edit,
            &[
                ("csrf_token", &csrf),
                ("permissions", "docs.read"),
                ("external_id", "cus_page"),
                ("meta", ""),
                ("credits", "40"),
                ("refill_interval", "monthly"),
                ("refill_amount", "40"),
                ("allowed_ips", ""),
            ],
        )
        .await;
    saved.assert_redirect(&format!("/tokens/{}", created.id));
    let shown = owner.get(&format!("/tokens/{}", created.id)).await;
    assert_eq!(
        shown.element_text("key-permissions").as_deref(),
        Some("docs.read")
    );
    assert_eq!(shown.element_text("key-meta").as_deref(), Some("None"));
    assert_eq!(
        shown.element_text("key-allowed-ips").as_deref(),
        Some("Anywhere")
    );
    // Sent back unchanged, the credits start no new balance.
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM tokens WHERE credits_version = 0 AND external_id = 'cus_page'"
        )
        .await,
        1
    );
    assert_eq!(
        count_rows(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'token.key_fields_changed'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_list_filters_by_external_id_and_permission_and_the_account_lists_its_permissions() {
    let app = spawn_app().await;
    let owner = signed_up(&app.address, "Filters Inc").await;
    for (name, permissions, external_id) in [
        ("alpha", "docs.read", "cus_a"),
        ("beta", "docs.read, billing_x.write", "cus_b"),
        ("gamma", "", ""),
    ] {
        let form = owner.token_form().await;
        let page = owner
            .post(
                "/tokens",
                &[
                    ("csrf_token", form.csrf.as_str()),
                    ("nonce", form.nonce.as_str()),
                    ("name", name),
                    ("expires_in_days", ""),
                    ("read", "1"),
                    ("permissions", permissions),
                    ("external_id", external_id),
                ],
            )
            .await;
        read_created_page(&page);
    }
    let names = |path: &'static str| {
        let owner = &owner;
        async move {
            let page = owner.get(path).await;
            page.assert_html_page(StatusCode::OK);
            ["alpha", "beta", "gamma"]
                .into_iter()
                .filter(|n| page.body.contains(&format!(">{n}<")))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("/tokens?external_id=cus_b").await, ["beta"]);
    assert_eq!(
        names("/tokens?permission=docs.read").await,
        ["alpha", "beta"]
    );
    assert_eq!(names("/tokens?permission=billing_x.write").await, ["beta"]);
    // `_` is a letter here, not LIKE's wildcard.
    assert!(names("/tokens?permission=billingxx.write").await.is_empty());
    let bad = owner.get("/tokens?permission=Nope").await;
    bad.assert_html_page(StatusCode::UNPROCESSABLE_ENTITY);

    let listed = owner.get("/account/permissions").await;
    listed.assert_html_page(StatusCode::OK);
    listed.assert_contains("<code>billing_x.write</code>");
    listed.assert_contains("<code>docs.read</code>");
    listed.assert_contains("/tokens?permission=docs.read&status=all");
}
