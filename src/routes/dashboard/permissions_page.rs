//! `/account/permissions`: every permission the account's tokens carry, with how many of
//! its active tokens hold each, and a link to those tokens in the list.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::session::SignedIn;
use super::view::{HtmlError, Layout, get_only, render};
use crate::db;
use crate::policy::Action;
use crate::state::AppState;

pub const PATH: &str = "/account/permissions";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only(PATH, show));
}

pub struct PermissionRow {
    pub name: String,
    pub active_tokens: usize,
    /// The token list filtered to this permission, all statuses.
    pub href: String,
}

#[derive(Template)]
#[template(path = "account/permissions.html")]
struct PermissionsPage {
    layout: Layout,
    rows: Vec<PermissionRow>,
}

async fn show(signed_in: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::SeeAllTokens)?;
    let account = signed_in.account_id()?;
    let used = db::run(&state.pool, move |conn| {
        db::token_search::permissions_in_use(conn, account)
    })
    .await?;
    let rows = used
        .into_iter()
        .map(|(name, active_tokens)| PermissionRow {
            // Names are `[a-z0-9_.:-]`: nothing to escape in a query string.
            href: format!("/tokens?permission={name}&status=all"),
            name,
            active_tokens,
        })
        .collect();
    render(&PermissionsPage {
        layout: signed_in.layout("Permissions in use", "/tokens")?,
        rows,
    })
}
