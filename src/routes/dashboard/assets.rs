//! The stylesheet and script, compiled into the binary so the server runs from any
//! directory. Their URLs carry a content hash, so browsers may cache them for a year
//! and still never see a stale copy after an upgrade.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../../../static/app.css");
const JS: &str = include_str!("../../../static/app.js");
/// Only the pages that offer passkeys load this one.
const PASSKEYS_JS: &str = include_str!("../../../static/passkeys.js");

fn short_hash(body: &str) -> String {
    Sha256::digest(body.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

static CSS_HREF: LazyLock<String> =
    LazyLock::new(|| format!("/static/app.css?v={}", short_hash(CSS)));
static JS_HREF: LazyLock<String> = LazyLock::new(|| format!("/static/app.js?v={}", short_hash(JS)));
static PASSKEYS_JS_HREF: LazyLock<String> =
    LazyLock::new(|| format!("/static/passkeys.js?v={}", short_hash(PASSKEYS_JS)));

pub fn css_href() -> String {
    CSS_HREF.clone()
}

pub fn js_href() -> String {
    JS_HREF.clone()
}

pub fn passkeys_js_href() -> String {
    PASSKEYS_JS_HREF.clone()
}

fn serve(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}

pub fn scope() -> actix_web::Scope {
    web::scope("/static")
        .route(
            "/app.css",
            web::get().to(|| async { serve(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/app.js",
            web::get().to(|| async { serve(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/passkeys.js",
            web::get().to(|| async { serve(PASSKEYS_JS, "text/javascript; charset=utf-8") }),
        )
}
