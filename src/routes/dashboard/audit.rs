//! `/audit`: the account's audit log, newest first, filterable by action and actor.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::view::{EventRow, HtmlError, Layout, get_only, render};
use crate::db::{self, audit::AuditFilter, audit::PAGE_SIZE};
use crate::domain::{AuditAction, Paging};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/audit", list));
}

struct Choice {
    pub value: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "audit/list.html")]
struct AuditPage {
    layout: Layout,
    events: Vec<EventRow>,
    show_target: bool,
    actions: Vec<Choice>,
    actors: Vec<Choice>,
    page: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
    filtered: bool,
}

#[derive(Deserialize)]
struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    /// Read as text, so that a bad number gets this page's own sentence.
    page: Option<String>,
}

/// The page asked for; none (or an empty one) is the first. A number that is not a page,
/// or whose rows would start past what an `i64` counts, is an error, never another page.
fn paging(raw: Option<&str>) -> Result<Paging, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(Paging::first(PAGE_SIZE));
    };
    raw.parse::<i64>()
        .ok()
        .and_then(|n| Paging::new(n, PAGE_SIZE))
        .ok_or_else(|| {
            AppError::invalid(format!(
                "\"{raw}\" is not a page of the audit log. Pages are numbered from 1 up."
            ))
        })
}

fn href(filter: &AuditFilter, page: Paging) -> String {
    let mut pairs = vec![("page", page.number().to_string())];
    if let Some(action) = &filter.action {
        pairs.push(("action", action.to_string()));
    }
    if let Some(actor) = &filter.actor {
        pairs.push(("actor", actor.clone()));
    }
    format!(
        "/audit?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

async fn list(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::ReadAudit)?;
    let query = query.into_inner();
    let filter = AuditFilter {
        action: query
            .action
            .as_deref()
            .and_then(|a| AuditAction::parse(a).ok()),
        actor: query.actor.filter(|a| !a.is_empty()),
    };
    let page = paging(query.page.as_deref())?;
    let account = signed_in.account_id()?;
    let lookup = filter.clone();
    let ((events, more), actors) = db::run(&state.pool, move |conn| {
        Ok((
            db::audit::list_for_account(conn, account, &lookup, page.number())?,
            db::audit::actors_for_account(conn, account)?,
        ))
    })
    .await?;
    render(&AuditPage {
        layout: signed_in.layout("Audit log", "/audit")?,
        events: events.into_iter().map(EventRow::from).collect(),
        show_target: true,
        actions: AuditAction::ALL
            .iter()
            .map(|a| Choice {
                value: a.to_string(),
                selected: filter.action == Some(*a),
            })
            .collect(),
        actors: actors
            .into_iter()
            .map(|a| Choice {
                selected: filter.actor.as_deref() == Some(a.as_str()),
                value: a,
            })
            .collect(),
        page: page.number(),
        prev_href: page.previous().map(|p| href(&filter, p)),
        next_href: page.next().filter(|_| more).map(|p| href(&filter, p)),
        filtered: filter.action.is_some() || filter.actor.is_some(),
    })
}
