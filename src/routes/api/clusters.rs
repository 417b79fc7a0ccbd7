//! `/clusters`: the account's clusters, in the shape Bonsai's official client decodes.
//! The account always comes from the token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::catalogue::{Catalogue, Link, Links};
use super::schemas::Pagination;
use crate::auth::guard::ApiCaller;
use crate::cluster_pages::PageKey;
use crate::db::reader::WorkerReader;
use crate::db::tx::Principal;
use crate::db::{self, clusters::Cluster, clusters::ClusterChange, clusters::NewCluster};
use crate::domain::{
    AccountId, ClusterCredentials, ClusterName, ClusterState, Paging, Scope, Slug,
};
use crate::error::AppError;
use crate::plans::{self, Placement};
use crate::state::{AppState, Change};

pub const MAX_PAGE_SIZE: i64 = 100;
pub const DEFAULT_PAGE_SIZE: i64 = 20;

/// `page` and `size` from the query string, with a 422 for anything else. A page whose
/// offset wouldn't fit in an `i64` is refused too, not wrapped round to the first page.
pub(super) fn pagination(query: &str) -> Result<Paging, AppError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| AppError::invalid("The query string could not be read."))?;
    // The last value of each wins, as with most query-string readers.
    let raw = |name: &str| pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
    let mut errors = Vec::new();
    let size = match raw("size") {
        None => DEFAULT_PAGE_SIZE,
        Some(value) => match value.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.push(format!(
                    "'size' must be a whole number from 1 to {MAX_PAGE_SIZE}, not \"{value}\"."
                ));
                DEFAULT_PAGE_SIZE
            }
        },
    };
    let paging = match raw("page") {
        None => Some(Paging::first(size)),
        Some(value) => {
            let paging = value.parse::<i64>().ok().and_then(|n| Paging::new(n, size));
            if paging.is_none() {
                errors.push(format!(
                    "'page' must be a whole number from 1 to {}, not \"{value}\".",
                    Paging::last_number(size)
                ));
            }
            paging
        }
    };
    match paging {
        Some(paging) if errors.is_empty() => Ok(paging),
        _ => Err(AppError::Invalid(errors)),
    }
}

/// Where a cluster's search engine would answer. Keyward keeps records of clusters, not
/// the engines, so the host is in the reserved `.invalid` domain: a client that dials it
/// fails at once rather than reaching someone else's server.
const SEARCH_DOMAIN: &str = "search.keyward.invalid";
const SEARCH_PORT: u16 = 443;
const SEARCH_SCHEME: &str = "https";

/// A cluster as the client decodes it. Everything is borrowed and links are formatted as
/// they are written, so a page of clusters is serialised without building a JSON tree.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ClusterView<'a> {
    slug: &'a str,
    name: &'a str,
    #[schema(value_type = String)]
    uri: Link<'a>,
    plan: PlanRef<'a>,
    release: ReleaseRef<'a>,
    space: SpaceRef<'a>,
    stats: Stats,
    access: Access<'a>,
    state: ClusterState,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanRef<'a> {
    slug: &'a str,
    #[schema(value_type = String)]
    uri: Link<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReleaseRef<'a> {
    service_type: &'a str,
    package_name: &'a str,
    version: &'a str,
    slug: &'a str,
    #[schema(value_type = String)]
    uri: Link<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SpaceRef<'a> {
    path: &'a str,
    region: &'a str,
    #[schema(value_type = String)]
    uri: Link<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Stats {
    docs: i64,
    shards_used: i64,
    data_bytes_used: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Access<'a> {
    #[schema(value_type = String)]
    host: SearchHost<'a>,
    port: u16,
    scheme: &'static str,
}

/// `{slug}.{region}.search.keyward.invalid`, as Bonsai's `{slug}.us-east-1.bonsaisearch.net`.
#[derive(Clone, Copy)]
struct SearchHost<'a> {
    slug: &'a str,
    region: &'a str,
}

impl std::fmt::Display for SearchHost<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{SEARCH_DOMAIN}", self.slug, self.region)
    }
}

impl Serialize for SearchHost<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'a> ClusterView<'a> {
    /// A stored plan, space or release the catalogue no longer has still shows its name,
    /// with empty details, rather than failing the whole list.
    fn new(cluster: &'a Cluster, links: &'a Links) -> Self {
        let release = plans::release(&cluster.release);
        let space = plans::space(&cluster.space);
        let short_region = space.map_or("", |s| s.short_region());
        Self {
            slug: &cluster.slug,
            name: &cluster.name,
            uri: links.to("clusters", &cluster.slug),
            plan: PlanRef {
                slug: &cluster.plan,
                uri: links.to("plans", &cluster.plan),
            },
            release: ReleaseRef {
                service_type: release.map_or("", |r| &r.service_type),
                package_name: release.map_or("", |r| &r.package_name),
                version: release.map_or("", |r| &r.version),
                slug: &cluster.release,
                uri: links.to("releases", &cluster.release),
            },
            space: SpaceRef {
                path: &cluster.space,
                region: space.map_or("", |s| &s.cloud.region),
                uri: links.to("spaces", &cluster.space),
            },
            stats: Stats {
                docs: cluster.docs,
                shards_used: cluster.shards_used,
                data_bytes_used: cluster.data_bytes_used,
            },
            access: Access {
                host: SearchHost {
                    slug: &cluster.slug,
                    region: short_region,
                },
                port: SEARCH_PORT,
                scheme: SEARCH_SCHEME,
            },
            state: cluster.state,
        }
    }
}

/// A page of the account's clusters.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ClusterList)]
struct ListBody<'a> {
    clusters: Vec<ClusterView<'a>>,
    pagination: Pagination,
    status: u16,
}

/// One cluster.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ClusterBody)]
struct ShowBody<'a> {
    cluster: ClusterView<'a>,
    status: u16,
}

/// The answer to a create, update or delete: Bonsai works on a cluster after answering,
/// so it says what it has started and where to watch (`monitor`), with a 202.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Accepted<'a> {
    message: &'static str,
    #[schema(value_type = String)]
    monitor: Link<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<NewAccess<'a>>,
    status: u16,
}

/// A new cluster's access, credentials included, shown this once. `host` is the bare
/// slug, as recorded: the Terraform provider takes it as the new cluster's id.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAccess<'a> {
    user: &'a str,
    pass: &'a str,
    host: &'a str,
    port: u16,
    scheme: &'static str,
    url: String,
}

fn accepted(
    message: &'static str,
    monitor: Link<'_>,
    access: Option<NewAccess<'_>>,
) -> HttpResponse {
    super::answer(
        StatusCode::ACCEPTED,
        &Accepted {
            message,
            monitor,
            access,
            status: StatusCode::ACCEPTED.as_u16(),
        },
    )
}

/// A page of the account's clusters. A page kept in memory (`cluster_pages`) is answered
/// as it is; any other is read, rendered, and kept if it is one of the first few.
#[utoipa::path(
    get,
    path = "/clusters",
    tag = "clusters",
    security(("basic" = [])),
    params(
        ("page" = Option<i64>, Query, minimum = 1, description = "The page, from 1"),
        ("size" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Entries a page, 20 unless given"),
    ),
    responses(
        (status = 200, description = "A page of the account's clusters", body = ListBody),
        super::schemas::Guarded,
    )
)]
pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    reader: web::Data<WorkerReader>,
    catalogue: web::Data<Catalogue>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    let paging = pagination(req.query_string())?;
    let account = caller.account();
    let key = PageKey::new(account, paging);
    if let Some(page) = key.and_then(|key| state.cluster_pages.get(&key)) {
        return Ok(super::json_bytes(StatusCode::OK, page));
    }
    // Read before the clusters are: a write that lands in between keeps this page out.
    let generation = state.cluster_pages.generation();
    let (clusters, total) = reader
        .read(&state.pool, move |conn| {
            db::clusters::list(conn, account, paging)
        })
        .await?;
    let links = catalogue.links();
    let body = ListBody {
        clusters: clusters
            .iter()
            .map(|c| ClusterView::new(c, links))
            .collect(),
        pagination: Pagination::of(paging, total),
        status: StatusCode::OK.as_u16(),
    };
    let page = web::Bytes::from(
        serde_json::to_vec(&body)
            .map_err(|e| AppError::internal(format!("serialising clusters: {e}")))?,
    );
    if let Some(key) = key {
        state.cluster_pages.store(key, page.clone(), generation);
    }
    Ok(super::json_bytes(StatusCode::OK, page))
}

/// Runs a cluster change through the write path, then drops this process's kept pages of
/// the account, whatever the outcome: the write's own sync of the log drops them too, but
/// a failure after the commit must not leave a stale page here until the next poll.
async fn write_clusters<T: Send + 'static>(
    state: &AppState,
    who: Principal,
    account: AccountId,
    change: impl Change<T>,
) -> Result<T, AppError> {
    let outcome = state.write(who, Some(account), change).await;
    state.cluster_pages.forget_account(account);
    outcome
}

/// A create's body: what Bonsai's client sends. Anything else is refused, by name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClusterInput {
    #[schema(schema_with = super::schemas::human_name, required = true)]
    name: Option<String>,
    /// The plan's slug; the catalogue's first plan when absent.
    #[schema(schema_with = super::schemas::plan_slug)]
    plan: Option<String>,
    /// The space's path; the plan's first space when absent.
    #[schema(schema_with = super::schemas::space_path)]
    space: Option<String>,
    /// The release's slug; the plan's first release when absent.
    #[schema(schema_with = super::schemas::release_slug)]
    release: Option<String>,
}

/// An update's body: a new name, a new plan, or both. A space or a release stays.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterChangeInput {
    #[schema(schema_with = super::schemas::human_name)]
    name: Option<String>,
    #[schema(schema_with = super::schemas::plan_slug)]
    plan: Option<String>,
}

fn check_new_cluster(input: NewClusterInput) -> Result<NewCluster, AppError> {
    let mut errors = Vec::new();
    let name = match input.name.as_deref() {
        None => {
            errors.push("'name' is required.".to_string());
            None
        }
        Some(raw) => ClusterName::parse(raw).map_err(|e| errors.push(e)).ok(),
    };
    let placement = Placement::choose(
        input.plan.as_deref(),
        input.space.as_deref(),
        input.release.as_deref(),
    )
    .map_err(|e| errors.extend(e))
    .ok();
    match (name, placement) {
        (Some(name), Some(placement)) if errors.is_empty() => Ok(NewCluster { name, placement }),
        _ => Err(AppError::Invalid(errors)),
    }
}

#[utoipa::path(
    post,
    path = "/clusters",
    tag = "clusters",
    security(("basic" = [])),
    request_body = NewClusterInput,
    responses(
        (status = 202, description = "The cluster is being provisioned; its credentials, shown once", body = Accepted),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn create(
    caller: ApiCaller,
    state: web::Data<AppState>,
    catalogue: web::Data<Catalogue>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Write)?;
    let new = check_new_cluster(super::parse_json(&body)?)?;
    let account = caller.account();
    let cluster = write_clusters(&state, who, account, move |tx| {
        db::clusters::create(tx, new)
    })
    .await?;
    let credentials = ClusterCredentials::generate();
    let view = ClusterView::new(&cluster, catalogue.links());
    let host = view.access.host;
    Ok(accepted(
        "Your cluster is being provisioned.",
        view.uri,
        Some(NewAccess {
            user: &credentials.user,
            pass: &credentials.pass,
            host: &cluster.slug,
            port: SEARCH_PORT,
            scheme: SEARCH_SCHEME,
            url: format!(
                "{SEARCH_SCHEME}://{}:{}@{host}:{SEARCH_PORT}",
                credentials.user, credentials.pass
            ),
        }),
    ))
}

/// A slug from the path; one that can't exist is simply not found.
fn path_slug(raw: &str) -> Result<Slug, AppError> {
    Slug::parse(raw).map_err(|_| AppError::NotFound)
}

#[utoipa::path(
    get,
    path = "/clusters/{slug}",
    tag = "clusters",
    security(("basic" = [])),
    params(("slug" = String, Path, description = "The cluster's slug")),
    responses(
        (status = 200, description = "One cluster", body = ShowBody),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
    )
)]
pub async fn show(
    caller: ApiCaller,
    state: web::Data<AppState>,
    reader: web::Data<WorkerReader>,
    catalogue: web::Data<Catalogue>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    let slug = path_slug(&slug)?;
    let account = caller.account();
    let cluster = reader
        .read(&state.pool, move |conn| {
            db::clusters::find(conn, account, &slug)
        })
        .await?;
    Ok(super::answer(
        StatusCode::OK,
        &ShowBody {
            cluster: ClusterView::new(&cluster, catalogue.links()),
            status: StatusCode::OK.as_u16(),
        },
    ))
}

#[utoipa::path(
    put,
    path = "/clusters/{slug}",
    tag = "clusters",
    security(("basic" = [])),
    params(("slug" = String, Path, description = "The cluster's slug")),
    request_body = ClusterChangeInput,
    responses(
        (status = 202, description = "The cluster is being updated", body = Accepted),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn update(
    caller: ApiCaller,
    state: web::Data<AppState>,
    catalogue: web::Data<Catalogue>,
    slug: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Write)?;
    let slug = path_slug(&slug)?;
    let input: ClusterChangeInput = super::parse_json(&body)?;
    let mut errors = Vec::new();
    let change = ClusterChange {
        name: input
            .name
            .as_deref()
            .and_then(|raw| ClusterName::parse(raw).map_err(|e| errors.push(e)).ok()),
        plan: input.plan.as_deref().and_then(|raw| {
            plans::find(raw).or_else(|| {
                errors.push(plans::plan_not_found(raw));
                None
            })
        }),
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let account = caller.account();
    let cluster = write_clusters(&state, who, account, move |tx| {
        db::clusters::update(tx, &slug, change)
    })
    .await?;
    let links = catalogue.links();
    Ok(accepted(
        "Your cluster is being updated.",
        links.to("clusters", &cluster.slug),
        None,
    ))
}

#[utoipa::path(
    delete,
    path = "/clusters/{slug}",
    tag = "clusters",
    security(("basic" = [])),
    params(("slug" = String, Path, description = "The cluster's slug")),
    responses(
        (status = 202, description = "The cluster is being deprovisioned", body = Accepted),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
        (status = 503, response = super::schemas::Unavailable),
    )
)]
pub async fn delete(
    caller: ApiCaller,
    state: web::Data<AppState>,
    catalogue: web::Data<Catalogue>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let who = caller.acting_with(Scope::Write)?;
    let slug = path_slug(&slug)?;
    let account = caller.account();
    let cluster = write_clusters(&state, who, account, move |tx| {
        db::clusters::delete(tx, &slug)
    })
    .await?;
    let links = catalogue.links();
    Ok(accepted(
        "Your cluster is being deprovisioned.",
        links.to("clusters", &cluster.slug),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_defaults_and_limits() {
        assert_eq!(pagination("").unwrap(), Paging::first(DEFAULT_PAGE_SIZE));
        assert_eq!(
            pagination("page=3&size=100").unwrap(),
            Paging::new(3, 100).unwrap()
        );
        for bad in [
            "page=0",
            "size=101",
            "size=0",
            "page=abc",
            "size=-1",
            "page=9223372036854775807",
            "page=99999999999999999999",
        ] {
            assert!(pagination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_largest_page_depends_on_the_size() {
        let last = Paging::last_number(DEFAULT_PAGE_SIZE);
        assert!(pagination(&format!("page={last}")).is_ok());
        assert!(pagination(&format!("page={}", last + 1)).is_err());
        assert!(pagination(&format!("page={}&size=1", last + 1)).is_ok());
    }
}
