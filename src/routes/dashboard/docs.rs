//! `/docs/api`: the server's own API page, where error bodies point by default
//! (`KEYWARD_DOCS_URL` points them elsewhere).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::session::public_layout;
use super::view::{HtmlError, Layout, get_only, render};
use crate::auth::origin::site_origin;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only(crate::config::DOCS_PATH, api));
}

#[derive(Template)]
#[template(path = "docs/api.html")]
struct ApiPage {
    layout: Layout,
    origin: String,
    support: String,
}

async fn api(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    render(&ApiPage {
        layout: public_layout("API", &req)?,
        origin: site_origin(&req),
        support: state.config.support_email.as_str().to_string(),
    })
}
