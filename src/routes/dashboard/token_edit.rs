//! Changing tokens after they are made: a token's name and note (`/tokens/{id}/edit`),
//! and revoking several at once from the list, after a page that lists them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::token_pages::{token_id, visible_token};
use super::view::{Flash, HtmlError, Layout, TokenRow, redirect, render, render_with_status};
use crate::db;
use crate::db::token_search::PAGE_SIZE;
use crate::domain::{Reason, TokenId, TokenName, TokenNote};
use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::view::{get_only, post_only};
    cfg.service(get_only("/tokens/confirm-bulk-revoke", confirm_bulk_revoke))
        .service(post_only("/tokens/bulk-revoke", bulk_revoke))
        .service(
            web::resource("/tokens/{id}/edit")
                .route(web::get().to(edit))
                .route(web::post().to(save))
                .default_service(web::to(super::view::page_method_not_allowed)),
        );
}

#[derive(Template)]
#[template(path = "tokens/edit.html")]
struct EditPage {
    layout: Layout,
    id: i32,
    key: String,
    name: String,
    note: String,
    note_max: usize,
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
        layout: signed_in.layout(&format!("Edit token {}", t.name), "/tokens")?,
        id: t.id,
        key: t.key,
        name: t.name,
        note: t.note,
        note_max: TokenNote::MAX,
        errors: Vec::new(),
    })
}

#[derive(Deserialize)]
struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    note: String,
}

async fn save(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<EditForm>,
) -> Result<HttpResponse, HtmlError> {
    let view = visible_token(&signed_in, &state, token_id(&id)?).await?;
    let mut errors = Vec::new();
    let name = TokenName::parse(&form.name)
        .map_err(|e| errors.push(e))
        .ok();
    let note = TokenNote::parse(&form.note)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(note)) = (name, note) else {
        // What was typed comes back, so nothing is lost.
        let page = EditPage {
            layout: signed_in.layout(&format!("Edit token {}", view.token.name), "/tokens")?,
            id: view.token.id,
            key: view.token.key,
            name: form.name,
            note: form.note,
            note_max: TokenNote::MAX,
            errors,
        };
        return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let id = view.token.token_id();
    let token = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| {
                db::token_edits::rename(tx, id, &name)?;
                db::token_edits::set_note(tx, id, &note)
            },
        )
        .await?;
    signed_in.flash(Flash::success(format!(
        "Saved the name and note of {}.",
        token.key
    )));
    Ok(redirect(&format!("/tokens/{}", token.id)))
}

/// The most tokens one bulk revoke takes: a page of the list.
const BULK_MAX: usize = PAGE_SIZE as usize;

/// Token ids from repeated `id` fields (the list's checkboxes) or one comma-separated
/// `ids` field (the confirmation's hidden field), without repeats. Anything that is not
/// an id is an error rather than skipped: the person must see what will be revoked.
fn ids_of(pairs: &[(String, String)]) -> Result<Vec<TokenId>, AppError> {
    let mut ids: Vec<TokenId> = Vec::new();
    let raw = pairs
        .iter()
        .filter(|(k, _)| k == "id" || k == "ids")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty());
    for value in raw {
        let id = TokenId(
            value
                .parse::<i32>()
                .map_err(|_| AppError::invalid(format!("“{value}” is not a token id.")))?,
        );
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > BULK_MAX {
        return Err(AppError::invalid(format!(
            "Revoke at most {BULK_MAX} tokens at once."
        )));
    }
    Ok(ids)
}

#[derive(Template)]
#[template(path = "tokens/bulk_revoke.html")]
struct BulkConfirmPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    /// Comma-separated ids of the tokens still active, for the form.
    ids: String,
    /// "3 active tokens will be revoked."
    consequence: String,
    reason: String,
    errors: Vec<String>,
}

fn bulk_page(
    signed_in: &SignedIn,
    views: &[db::tokens::TokenView],
    reason: String,
    errors: Vec<String>,
) -> Result<BulkConfirmPage, AppError> {
    let tokens: Vec<TokenRow> = views.iter().map(TokenRow::from).collect();
    let to_revoke: Vec<&TokenRow> = tokens.iter().filter(|t| t.status != "revoked").collect();
    let n = to_revoke.len();
    let ids = to_revoke
        .iter()
        .map(|t| t.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let consequence = format!(
        "{n} {} will be revoked. Programs that use {} get 401 from the next request on; this can't be undone.",
        if n == 1 { "token" } else { "tokens" },
        if n == 1 { "it" } else { "them" },
    );
    Ok(BulkConfirmPage {
        layout: signed_in.layout("Revoke tokens", "/tokens")?,
        tokens,
        ids,
        consequence,
        reason,
        errors,
    })
}

/// The tokens these ids name, among those the person may manage; none is a flash and
/// back to the list.
async fn chosen(
    signed_in: &SignedIn,
    state: &AppState,
    ids: Vec<TokenId>,
) -> Result<Vec<db::tokens::TokenView>, AppError> {
    let account = signed_in.account_id()?;
    let views = db::run(&state.pool, move |conn| {
        db::token_search::by_ids(conn, account, &ids)
    })
    .await?;
    for view in &views {
        signed_in.require(crate::policy::Action::ManageToken {
            creator: view.token.user_id.map(crate::domain::UserId),
        })?;
    }
    Ok(views)
}

async fn confirm_bulk_revoke(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| AppError::invalid("The list of tokens could not be read."))?;
    let views = chosen(&signed_in, &state, ids_of(&pairs)?).await?;
    if views.iter().all(|v| v.token.revoked_at.is_some()) {
        signed_in.flash(Flash::error(
            "Select at least one active token to revoke: tick its box in the list.",
        ));
        return Ok(redirect("/tokens"));
    }
    render(&bulk_page(&signed_in, &views, String::new(), Vec::new())?)
}

async fn bulk_revoke(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, HtmlError> {
    let ids = ids_of(&pairs)?;
    let raw_reason = pairs
        .iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let reason = match Reason::parse(&raw_reason) {
        Ok(reason) => reason,
        Err(e) => {
            let views = chosen(&signed_in, &state, ids).await?;
            let page = bulk_page(&signed_in, &views, raw_reason, vec![e])?;
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    if ids.is_empty() {
        signed_in.flash(Flash::error(
            "No tokens were selected, so none was revoked.",
        ));
        return Ok(redirect("/tokens"));
    }
    let revoked = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::token_edits::revoke_many(tx, &ids, &reason),
        )
        .await?;
    let names: Vec<String> = revoked
        .iter()
        .map(|t| format!("“{}” ({})", t.name, t.key))
        .collect();
    signed_in.flash(Flash::success(match revoked.len() {
        0 => "Those tokens were already revoked; nothing changed.".to_string(),
        1 => format!(
            "Revoked 1 token: {}. Requests that use it now get 401.",
            names.join(", ")
        ),
        n => format!(
            "Revoked {n} tokens: {}. Requests that use them now get 401.",
            names.join(", ")
        ),
    }));
    Ok(redirect("/tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ids_come_from_checkboxes_or_one_field_once_each() {
        let ids = ids_of(&pairs(&[("id", "3"), ("id", "5"), ("ids", "3,7")])).unwrap();
        assert_eq!(ids, [TokenId(3), TokenId(5), TokenId(7)]);
        assert!(ids_of(&pairs(&[("id", "3 OR 1=1")])).is_err());
        let many: Vec<(String, String)> = (0..=BULK_MAX)
            .map(|i| ("id".to_string(), i.to_string()))
            .collect();
        assert!(ids_of(&many).is_err());
    }
}
