//! What a dashboard page shows and how it answers: the page frame (`Layout`), flash
//! messages, times as people read them, the rows more than one page lists, rendering,
//! redirects, and errors as pages. Nothing here reads the session: `session` fills in
//! what a page needs from it.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::assets;
use crate::db::{self, audit::AuditEvent, tokens::TokenView};
use crate::error::AppError;

// ---------------------------------------------------------------------------------------------
// The page frame
// ---------------------------------------------------------------------------------------------

/// A one-time message for the next page: "Token … was revoked."
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// "success" or "error": picks the banner's colour and icon.
    pub kind: String,
    pub text: String,
}

impl Flash {
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            kind: "success".into(),
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error".into(),
            text: text.into(),
        }
    }
}

/// A time as a person reads it ("3 minutes ago") with the exact UTC time for a tooltip.
#[derive(Debug, Clone)]
pub(crate) struct TimeView {
    pub relative: String,
    pub exact: String,
    pub iso: String,
}

impl TimeView {
    pub fn new(at: NaiveDateTime) -> Self {
        Self::at(at, db::now())
    }

    pub fn at(at: NaiveDateTime, now: NaiveDateTime) -> Self {
        let secs = (now - at).num_seconds();
        let (divisor, unit) = match secs.abs() {
            s if s < 60 => (0, ""),
            s if s < 3600 => (60, "minute"),
            s if s < 86_400 => (3600, "hour"),
            s if s < 86_400 * 60 => (86_400, "day"),
            s if s < 86_400 * 730 => (86_400 * 30, "month"),
            _ => (86_400 * 365, "year"),
        };
        // The past rounds down ("3 days ago" until the fourth day is over); the future
        // rounds to the nearest, so a 30-day token reads "in 30 days", not "in 29 days".
        let n = match divisor {
            0 => 0,
            d if secs >= 0 => secs / d,
            d => (secs.abs() + d / 2) / d,
        };
        let relative = if n == 0 {
            if secs >= 0 {
                "just now".to_string()
            } else {
                "in under a minute".to_string()
            }
        } else {
            let plural = if n == 1 { "" } else { "s" };
            if secs >= 0 {
                format!("{n} {unit}{plural} ago")
            } else {
                format!("in {n} {unit}{plural}")
            }
        };
        Self {
            relative,
            exact: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            iso: crate::timefmt::rfc3339(&at),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountChoice {
    pub id: i32,
    pub name: String,
    pub current: bool,
}

/// The frame of every page, shaped for `base.html`.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub title: String,
    pub user_email: Option<String>,
    pub account_name: Option<String>,
    pub accounts: Vec<AccountChoice>,
    pub nav: Vec<NavLink>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub css_href: String,
    pub js_href: String,
    /// Shown on every page of an account whose API access is suspended.
    pub suspension: Option<Suspension>,
}

/// Who suspended the current account's API access, when, and why.
#[derive(Debug, Clone)]
pub(crate) struct Suspension {
    pub by: String,
    pub by_operator: bool,
    pub reason: String,
    pub since: Option<TimeView>,
}

impl Layout {
    /// A frame with no header links and no forms, such as an error page's.
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_string(),
            user_email: None,
            account_name: None,
            accounts: Vec::new(),
            nav: Vec::new(),
            csrf: String::new(),
            flash: None,
            css_href: assets::css_href(),
            js_href: assets::js_href(),
            suspension: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rows that more than one page lists
// ---------------------------------------------------------------------------------------------

/// A token shaped for the pages (its list and page, the operator's search): every value
/// already formatted.
pub(crate) struct TokenRow {
    pub id: i32,
    pub name: String,
    pub key: String,
    pub hint: String,
    pub scopes: String,
    pub status: &'static str,
    pub created: TimeView,
    pub expires: Option<TimeView>,
    pub last_used: Option<TimeView>,
    pub last_used_ip: String,
    pub creator: String,
    pub revoked: Option<TimeView>,
    pub revoked_by: String,
    pub revoke_reason: String,
    /// "60 requests per minute", or "None".
    pub rate_limit: String,
    /// The limit as the form's field holds it: a number, or empty.
    pub rate_limit_value: String,
    /// Filled in for the list only.
    pub usage: Option<RowUsage>,
    pub note: String,
    /// The status as the list's badge says it, in words and as its CSS class.
    pub badge: Badge,
}

/// A token's status in words, with its CSS class: the text carries it, not colour alone.
pub struct Badge {
    pub class: &'static str,
    pub label: &'static str,
}

/// How near an expiry makes a token's badge read "Expires soon".
pub const EXPIRES_SOON_DAYS: i64 = 7;

impl Badge {
    fn of(token: &db::tokens::Token, now: NaiveDateTime) -> Self {
        use db::tokens::Status;
        let (class, label) = match token.status_at(now) {
            Status::Revoked => ("revoked", "Revoked"),
            Status::Expired => ("expired", "Expired"),
            Status::Active if token.rolled_to.is_some() => ("rolled", "Rolled"),
            Status::Active
                if token
                    .expires_at
                    .is_some_and(|e| e <= now + chrono::Duration::days(EXPIRES_SOON_DAYS)) =>
            {
                ("expiring", "Expires soon")
            }
            Status::Active => ("active", "Active"),
        };
        Self { class, label }
    }
}

/// A list row's picture of its token's use.
pub struct RowUsage {
    pub sparkline: crate::charts::Sparkline,
    /// All calls in the sparkline's days, grouped by thousands.
    pub total: String,
}

impl From<&TokenView> for TokenRow {
    fn from(view: &TokenView) -> Self {
        let t = &view.token;
        Self {
            id: t.id,
            name: t.name.clone(),
            key: t.key.clone(),
            hint: t.secret_hint.clone(),
            scopes: t.scopes.names().join(", "),
            status: t.status().as_str(),
            created: TimeView::new(t.created_at),
            expires: t.expires_at.map(TimeView::new),
            last_used: t.last_used_at.map(TimeView::new),
            last_used_ip: t.last_used_ip.clone().unwrap_or_default(),
            creator: view
                .creator_email
                .clone()
                .unwrap_or_else(|| "command line".into()),
            revoked: t.revoked_at.map(TimeView::new),
            // Who acted is the audit log's word for it, never the reason's.
            revoked_by: match &view.revoker {
                Some(label) if *label == db::audit::token_actor_label(&t.key, &t.name) => {
                    "the token itself".into()
                }
                Some(label) => label.clone(),
                None => "an unrecorded actor".into(),
            },
            revoke_reason: t.revoke_reason.clone().unwrap_or_default(),
            rate_limit: t
                .rate_limit_per_minute
                .map(|l| l.to_string())
                .unwrap_or_else(|| "None".into()),
            rate_limit_value: t
                .rate_limit_per_minute
                .map(|l| l.per_minute().to_string())
                .unwrap_or_default(),
            usage: None,
            note: t.note.clone(),
            badge: Badge::of(t, db::now()),
        }
    }
}

/// An audit event shaped for the pages (the audit log, a token's trail).
pub(crate) struct EventRow {
    pub at: TimeView,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub detail: String,
    pub token_id: Option<i32>,
}

impl From<AuditEvent> for EventRow {
    fn from(e: AuditEvent) -> Self {
        Self {
            at: TimeView::new(e.at),
            actor: e.actor_label,
            action: e.action.to_string(),
            target: e.target,
            ip: e.ip.unwrap_or_default(),
            detail: e.detail,
            token_id: e.token_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// 303 See Other: after a POST, the browser follows with a GET.
pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// Renders a page, with no caching: pages show account data.
pub(crate) fn render(template: &impl Template) -> Result<HttpResponse, HtmlError> {
    render_with_status(template, StatusCode::OK)
}

pub(crate) fn render_with_status(
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

/// A resource that only accepts GET; any other method is a 405 page.
pub(crate) fn get_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    only(path, web::get().to(handler))
}

/// A resource that only accepts POST; a GET there is a 405 page, never a state change.
pub(crate) fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    only(path, web::post().to(handler))
}

/// A resource with one route, and the 405 page for every other method.
fn only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path.to_string())
        .route(route)
        .default_service(web::to(page_method_not_allowed))
}

/// One option of a form's choice (a radio button or a select), and whether it is chosen.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The 405 page, for a resource's methods that no route claims.
pub(crate) async fn page_method_not_allowed() -> Result<HttpResponse, HtmlError> {
    Err(HtmlError(AppError::MethodNotAllowed))
}

// ---------------------------------------------------------------------------------------------
// Errors as pages
// ---------------------------------------------------------------------------------------------

/// The dashboard's rendering of `AppError`: the same error, as a page.
#[derive(Debug)]
pub(crate) struct HtmlError(pub AppError);

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
/// Where a person who must set up a second factor is sent.
pub(crate) const SECOND_FACTOR_SETUP: &str = "/account/two-factor/setup";

pub(crate) fn error_page(err: &AppError, layout: Option<Layout>) -> HttpResponse {
    if let AppError::SignInRequired = err {
        return redirect("/login");
    }
    if let AppError::SecondFactorRequired(_) = err {
        return redirect(SECOND_FACTOR_SETUP);
    }
    let heading = match err {
        AppError::Forbidden(_) | AppError::SecondFactorRequired(_) => "Not allowed",
        AppError::Token(refusal) if refusal.is_forbidden() => "Not allowed",
        AppError::Token(crate::domain::TokenRefusal::NoSuchKey { .. }) => {
            "Please check what you entered"
        }
        AppError::Token(_) => "This token can't be changed",
        AppError::NotFound => "Page not found",
        AppError::MethodNotAllowed => "Method not allowed",
        AppError::Invalid(_) | AppError::BadRequest(_) => "Please check what you entered",
        AppError::TooLarge(_) => "Too much at once",
        AppError::TooManyRequests { .. }
        | AppError::TokenRateLimited { .. }
        | AppError::NoCredits { .. } => "Too many attempts",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        let now = db::now();
        let cases = [
            (0, "just now"),
            (59, "just now"),
            (60, "1 minute ago"),
            (7200, "2 hours ago"),
            (86_400 * 3, "3 days ago"),
            (-86_400 * 30, "in 30 days"),
            (-(86_400 * 30 - 5), "in 30 days"),
            (86_400 * 30 - 5, "29 days ago"),
        ];
        for (ago, expected) in cases {
            let at = now - chrono::Duration::seconds(ago);
            assert_eq!(TimeView::at(at, now).relative, expected, "{ago}");
        }
    }
}
