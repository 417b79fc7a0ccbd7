//! The server-rendered dashboard: sign-up, sign-in, tokens, members, audit and the
//! operator console. Pages work without JavaScript.

mod admin;
mod assets;
pub mod audit;
mod invitations;
mod layout;
mod login;
mod members;
mod security;
mod signup;
mod token_usage;
mod tokens;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

pub use layout::{Flash, Layout, SignedIn, TimeView};

use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .service(assets::scope())
        .service(
            web::resource("/signup")
                .route(web::get().to(signup::form))
                .route(web::post().to(signup::submit))
                .default_service(web::to(page_method_not_allowed)),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(login::form))
                .route(web::post().to(login::submit))
                .default_service(web::to(page_method_not_allowed)),
        )
        .service(post_only("/logout", login::logout))
        .configure(tokens::configure)
        .configure(token_usage::configure)
        .configure(members::configure)
        .configure(invitations::configure)
        .configure(security::configure)
        .configure(audit::configure)
        .configure(admin::configure);
}

async fn home(signed_in: Option<SignedIn>) -> HttpResponse {
    redirect(if signed_in.is_some() {
        "/tokens"
    } else {
        "/login"
    })
}

/// 303 See Other: after a POST, the browser follows with a GET.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// Renders a page, with no caching: pages show account data.
pub fn render(template: &impl Template) -> Result<HttpResponse, HtmlError> {
    render_with_status(template, StatusCode::OK)
}

pub fn render_with_status(
    template: &impl Template,
    status: StatusCode,
) -> Result<HttpResponse, HtmlError> {
    let body = template
        .render()
        .map_err(|e| AppError::internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A resource that only accepts POST; a GET there is a 405 page, never a state change.
pub fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path.to_string())
        .route(web::post().to(handler))
        .default_service(web::to(page_method_not_allowed))
}

pub async fn page_method_not_allowed() -> Result<HttpResponse, HtmlError> {
    Err(HtmlError(AppError::MethodNotAllowed))
}

/// Any path no route claims: a page for browsers, the JSON envelope for programs.
pub async fn not_found(
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

/// The dashboard's rendering of `AppError`: the same error, as a page.
#[derive(Debug)]
pub struct HtmlError(pub AppError);

impl From<AppError> for HtmlError {
    fn from(err: AppError) -> Self {
        HtmlError(err)
    }
}

impl std::fmt::Display for HtmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    messages: Vec<String>,
}

impl ResponseError for HtmlError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        error_page(&self.0, None)
    }
}

/// The page for an error, with the status and headers the API would send. With the
/// signed-in person's layout when there is one, so the header and its links stay; an
/// error raised inside a handler has none to hand.
fn error_page(err: &AppError, layout: Option<Layout>) -> HttpResponse {
    if let AppError::SignInRequired = err {
        return redirect("/login");
    }
    let heading = match err {
        AppError::Forbidden(_) => "Not allowed",
        AppError::NotFound => "Page not found",
        AppError::MethodNotAllowed => "Method not allowed",
        AppError::Invalid(_) => "Please check what you entered",
        AppError::TooManyRequests { .. } | AppError::TokenRateLimited { .. } => "Too many attempts",
        AppError::Unavailable { .. } => "Please try again shortly",
        AppError::Internal(_) => "Something went wrong",
        AppError::Unauthorized { .. } | AppError::SignInRequired => "Please sign in",
    };
    let messages = match err {
        AppError::NotFound => vec![
            "There is nothing at this address. Check the link, or go back to the dashboard."
                .to_string(),
        ],
        other => other.messages(),
    };
    let page = ErrorPage {
        layout: layout.unwrap_or_else(|| Layout::anonymous(heading)),
        status: err.status_code().as_u16(),
        heading,
        messages,
    };
    let body = page.render().unwrap_or_else(|_| heading.to_string());
    err.response_builder()
        .content_type("text/html; charset=utf-8")
        .body(body)
}
