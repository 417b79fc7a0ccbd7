//! A token's permissions, meta, external id, credits and allowed IPs on the dashboard:
//! shown on its page, changed at `/tokens/{id}/key-fields` through the same store
//! function as `PATCH /access-tokens/{key}`, so the change is audited the same way.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::session::{CsrfForm, SignedIn};
use super::token_pages::{token_id, visible_token};
use super::view::{Flash, HtmlError, Layout, redirect, render, render_with_status};
use crate::db;
use crate::db::tokens::Token;
use crate::domain::{KeyFieldsChange, KeyFieldsText, describe_credits};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tokens/{id}/key-fields")
            .route(web::get().to(edit))
            .route(web::post().to(save))
            .default_service(web::to(super::view::page_method_not_allowed)),
    );
}

/// What the token's page shows of its fields, in words.
pub struct KeyFieldsShown {
    pub permissions: String,
    pub external_id: String,
    pub meta: String,
    pub credits: String,
    pub allowed_ips: String,
}

impl KeyFieldsShown {
    /// An unreadable stored field is an internal error: "No limit" for unreadable credits
    /// would be a lie.
    pub fn of(token: &Token) -> Result<Self, AppError> {
        let fields = token.key_fields()?;
        let or = |text: String, none: &str| {
            if text.is_empty() {
                none.to_string()
            } else {
                text
            }
        };
        Ok(KeyFieldsShown {
            permissions: or(
                fields.permissions.iter().collect::<Vec<_>>().join(", "),
                "None",
            ),
            external_id: or(
                fields
                    .external_id
                    .map(|e| e.as_str().to_string())
                    .unwrap_or_default(),
                "None",
            ),
            meta: or(
                fields
                    .meta
                    .map(|m| m.value().to_string())
                    .unwrap_or_default(),
                "None",
            ),
            credits: fields
                .credits
                .map_or("No limit".to_string(), |c| describe_credits(&c)),
            allowed_ips: or(fields.allowed_ips.names().join(", "), "Anywhere"),
        })
    }
}

#[derive(Template)]
#[template(path = "tokens/key_fields_edit.html")]
struct EditPage {
    layout: Layout,
    id: i32,
    key: String,
    fields: KeyFieldsText,
    errors: Vec<String>,
}

async fn edit(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    let t = view.token;
    render(&EditPage {
        layout: signed_in.layout(&format!("Verification of {}", t.name), "/tokens")?,
        fields: KeyFieldsText::of(&t.key_fields()?),
        id: t.id,
        key: t.key,
        errors: Vec::new(),
    })
}

async fn save(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<KeyFieldsText>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    let before = view.token.key_fields()?;
    let after = match form.parse() {
        Ok(after) => after,
        Err(errors) => {
            // What was typed comes back, so nothing is lost.
            let page = EditPage {
                layout: signed_in
                    .layout(&format!("Verification of {}", view.token.name), "/tokens")?,
                id: view.token.id,
                key: view.token.key,
                fields: form,
                errors,
            };
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    // The form shows the balance as last written; sent back unchanged, it must not
    // reset the live balance.
    let change = KeyFieldsChange {
        permissions: Some(after.permissions),
        meta: Some(after.meta),
        external_id: Some(after.external_id),
        credits: (after.credits != before.credits).then_some(after.credits),
        allowed_ips: Some(after.allowed_ips),
    };
    let id = view.token.token_id();
    let token = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::token_edits::set_key_fields(tx, id, &change),
        )
        .await?;
    signed_in.flash(Flash::success(format!(
        "Saved what {} carries for its verifiers.",
        token.key
    )));
    Ok(redirect(&format!("/tokens/{}", token.id)))
}
