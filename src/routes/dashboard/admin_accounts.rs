//! The operator console's account pages: accounts found by name, slug or a member's
//! email; one account with its members, token counts, suspension and recent audit; and
//! the list of operators.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::view::{EventRow, HtmlError, Layout, TimeView, get_only, render};
use crate::db;
use crate::domain::AccountId;
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/admin/accounts", search))
        .service(get_only("/admin/accounts/{id}", account))
        .service(get_only("/admin/operators", operators));
}

/// One account in a list of them.
pub struct AccountRow {
    pub id: i32,
    pub name: String,
    pub slug: String,
    pub suspended: bool,
    pub members: i64,
    pub active_tokens: i64,
    pub clusters: i64,
}

impl From<db::accounts::AccountSummary> for AccountRow {
    fn from(s: db::accounts::AccountSummary) -> Self {
        Self {
            id: s.account.id,
            suspended: s.account.is_suspended(),
            name: s.account.name,
            slug: s.account.slug,
            members: s.members,
            active_tokens: s.active_tokens,
            clusters: s.clusters,
        }
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    accounts: Vec<AccountRow>,
    limit: usize,
}

async fn search(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let q = query.into_inner().q.trim().to_string();
    if q.chars().count() > 200 {
        return Err(AppError::invalid("Search for at most 200 characters.").into());
    }
    let text = q.clone();
    let found = db::run(&state.pool, move |conn| {
        db::operator_views::search_accounts(conn, &text)
    })
    .await?;
    render(&SearchPage {
        layout: signed_in.layout("Accounts", "/admin")?,
        q,
        accounts: found.into_iter().map(AccountRow::from).collect(),
        limit: db::operator_views::SEARCH_LIMIT,
    })
}

struct MemberLine {
    pub email: String,
    pub role: &'static str,
    pub last_login: Option<TimeView>,
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    layout: Layout,
    /// Where the API-access switch posts, and its confirmation page.
    access_action: String,
    confirm_suspend: String,
    name: String,
    slug: String,
    created: TimeView,
    suspended: bool,
    /// "by the operator", "by its owners".
    suspended_by: &'static str,
    members: Vec<MemberLine>,
    active: i64,
    revoked: i64,
    expired: i64,
    events: Vec<EventRow>,
    show_target: bool,
}

/// How many of the account's latest events its page shows.
const RECENT_EVENTS: usize = 20;

async fn account(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let id = path
        .parse::<i32>()
        .map(AccountId)
        .map_err(|_| AppError::NotFound)?;
    let (found, members, counts, events) = db::run(&state.pool, move |conn| {
        let found = db::accounts::find(conn, id)?;
        let members = db::memberships::list(conn, id)?;
        let counts = db::operator_views::token_counts(conn, id)?;
        let (events, _) = db::audit::list_for_account(conn, id, &Default::default(), 1)?;
        Ok((found, members, counts, events))
    })
    .await?;
    let (active, revoked, expired) = counts;
    render(&AccountPage {
        layout: signed_in.layout(&format!("Account {}", found.name), "/admin")?,
        access_action: format!("/admin/accounts/{}/api-access", found.id),
        confirm_suspend: format!("/admin/accounts/{}/confirm-suspend", found.id),
        suspended: found.is_suspended(),
        suspended_by: if found.suspended_by_operator {
            "by the operator"
        } else {
            "by its owners"
        },
        created: TimeView::new(found.created_at),
        name: found.name,
        slug: found.slug,
        members: members
            .into_iter()
            .map(|m| MemberLine {
                email: m.email,
                role: m.role.as_str(),
                last_login: m.last_login_at.map(TimeView::new),
            })
            .collect(),
        active,
        revoked,
        expired,
        events: events
            .into_iter()
            .take(RECENT_EVENTS)
            // A token's page is the account's own, closed to an operator: no link to it.
            .map(|event| EventRow {
                token_id: None,
                ..EventRow::from(event)
            })
            .collect(),
        show_target: true,
    })
}

struct OperatorLine {
    pub email: String,
    pub last_login: Option<TimeView>,
}

#[derive(Template)]
#[template(path = "admin/operators.html")]
struct OperatorsPage {
    layout: Layout,
    operators: Vec<OperatorLine>,
}

async fn operators(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let found = db::run(&state.pool, |conn| db::operator_views::operators(conn)).await?;
    render(&OperatorsPage {
        layout: signed_in.layout("Operators", "/admin")?,
        operators: found
            .into_iter()
            .map(|(email, last)| OperatorLine {
                email,
                last_login: last.map(TimeView::new),
            })
            .collect(),
    })
}
