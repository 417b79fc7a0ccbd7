//! `/account/clusters`: the account's clusters, read-only, so a person can see what their
//! tokens act on. Clusters are made and changed through the API (`/clusters`); any member
//! may look. (`/clusters` itself is the API's, answered with Basic Auth.)

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::view::{HtmlError, Layout, TimeView, get_only, render};
use crate::db::{self, clusters::Cluster};
use crate::domain::{ClusterState, Paging};
use crate::error::AppError;
use crate::state::AppState;

pub const PATH: &str = "/account/clusters";

/// Clusters a page shows.
const PAGE_SIZE: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only(PATH, list));
}

/// A cluster shaped for the page: every value already text.
struct ClusterRow {
    name: String,
    slug: String,
    plan: String,
    space: String,
    release: String,
    state: &'static str,
    /// The badge's tone, one of the stylesheet's badge colours.
    tone: &'static str,
    created: TimeView,
}

/// Green for a cluster at work, grey for one going or gone, amber for anything between.
fn tone(state: ClusterState) -> &'static str {
    match state {
        ClusterState::Provisioned => "active",
        ClusterState::Disabled | ClusterState::Deprovisioning | ClusterState::Deprovisioned => {
            "expired"
        }
        ClusterState::Provisioning
        | ClusterState::UpdatingPlan
        | ClusterState::Maintenance
        | ClusterState::Readonly => "suspended",
    }
}

impl ClusterRow {
    fn new(cluster: Cluster, created_at: chrono::NaiveDateTime) -> Self {
        Self {
            name: cluster.name,
            slug: cluster.slug,
            plan: cluster.plan,
            space: cluster.space,
            release: cluster.release,
            state: cluster.state.as_str(),
            tone: tone(cluster.state),
            created: TimeView::new(created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "clusters/list.html")]
struct ClustersPage {
    layout: Layout,
    clusters: Vec<ClusterRow>,
    page: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
struct PageQuery {
    /// Read as text, so that a bad number gets this page's own sentence.
    page: Option<String>,
}

fn paging(raw: Option<&str>) -> Result<Paging, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(Paging::first(PAGE_SIZE));
    };
    raw.parse::<i64>()
        .ok()
        .and_then(|n| Paging::new(n, PAGE_SIZE))
        .ok_or_else(|| {
            AppError::invalid(format!(
                "\"{raw}\" is not a page of clusters. Pages are numbered from 1 up."
            ))
        })
}

fn href(page: Paging) -> String {
    format!("{PATH}?page={}", page.number())
}

async fn list(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, HtmlError> {
    let page = paging(query.page.as_deref())?;
    // Any member may look; someone in no account gets the page that says so.
    let account = signed_in.account_id()?;
    let (rows, more) = db::run(&state.pool, move |conn| {
        db::clusters::page_with_created(conn, account, page)
    })
    .await?;
    render(&ClustersPage {
        layout: signed_in.layout("Clusters", PATH)?,
        clusters: rows
            .into_iter()
            .map(|(cluster, created)| ClusterRow::new(cluster, created))
            .collect(),
        page: page.number(),
        prev_href: page.previous().map(href),
        next_href: page.next().filter(|_| more).map(href),
    })
}
