//! The server-rendered dashboard: sign-up, sign-in, tokens, members, audit and the
//! operator console. Pages work without JavaScript.
//!
//! Each page module takes what it needs from `session` (who is signed in, forms) and
//! `view` (the frame, rendering, errors), and from `policy`, `db` and `domain`; no page
//! module imports another, but for `verification`, which shows its answers on
//! `recovery`'s message page.

mod admin;
mod admin_accounts;
mod assets;
mod audit;
mod ceremony;
mod clusters;
mod confirm;
mod docs;
mod forms;
mod invitations;
mod key_fields_page;
mod lifetime;
mod login;
mod members;
mod passkeys;
mod permissions_page;
mod rate_limit;
mod recovery;
mod roll;
mod second_step;
mod security;
mod session;
mod signup;
mod sso;
mod sudo;
mod token_edit;
mod token_list;
mod token_pages;
mod tokens;
mod two_factor;
mod usage_view;
mod verification;
mod view;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::AppError;
use session::SignedIn;
use view::{error_page, redirect};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .service(assets::scope())
        .configure(docs::configure)
        .configure(signup::configure)
        .configure(login::configure)
        .configure(second_step::configure)
        .configure(sudo::configure)
        .configure(sso::configure)
        .configure(recovery::configure)
        .configure(verification::configure)
        .configure(tokens::configure)
        .configure(roll::configure)
        .configure(lifetime::configure)
        .configure(rate_limit::configure)
        .configure(key_fields_page::configure)
        .configure(permissions_page::configure)
        .configure(confirm::configure)
        .configure(members::configure)
        .configure(invitations::configure)
        .configure(security::configure)
        .configure(two_factor::configure)
        .configure(passkeys::configure)
        .configure(audit::configure)
        .configure(clusters::configure)
        .configure(admin_accounts::configure)
        .configure(admin::configure);
}

async fn home(signed_in: Option<SignedIn>) -> HttpResponse {
    redirect(if signed_in.is_some() {
        "/tokens"
    } else {
        "/login"
    })
}

/// Any path no route claims: a page for browsers, the JSON envelope for programs.
pub(crate) async fn not_found(
    req: HttpRequest,
    signed_in: Option<SignedIn>,
) -> Result<HttpResponse, AppError> {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        let layout = signed_in.and_then(|s| s.layout("Page not found", "").ok());
        Ok(error_page(&AppError::NotFound, layout))
    } else {
        Err(AppError::NotFound)
    }
}
