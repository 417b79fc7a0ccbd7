//! `/plans`, `/spaces` and `/releases`: the catalogue, in Bonsai's shapes, with links built
//! from the server's public address. It never changes while the server runs, so every
//! answer is serialised once at start and each request sends the same bytes.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::auth::guard::ApiCaller;
use crate::domain::Scope;
use crate::error::AppError;
use crate::plans::{self, Plan, Release, Space};

/// Where the API's links point: `KEYWARD_PUBLIC_URL`, or else the address the server
/// listens on. An unspecified bind address (`0.0.0.0`, `[::]`) can't be dialled, so its
/// links name the loopback address instead.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

impl Links {
    pub fn new(public_url: Option<&str>, listening: SocketAddr) -> Self {
        let base = match public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let mut addr = listening;
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{addr}")
            }
        };
        Self { base }
    }

    /// `{base}/{collection}/{id}`, written straight into the output when serialised.
    pub fn to<'a>(&'a self, collection: &'static str, id: &'a str) -> Link<'a> {
        Link {
            base: &self.base,
            collection,
            id,
        }
    }
}

/// A link that is formatted where it is written, so a page of clusters allocates no
/// string per link.
#[derive(Clone, Copy)]
pub struct Link<'a> {
    base: &'a str,
    collection: &'static str,
    id: &'a str,
}

impl fmt::Display for Link<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.base, self.collection, self.id)
    }
}

impl Serialize for Link<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A plan as `/plans` shows it: the catalogue entry and its link.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Plan)]
struct PlanView<'a> {
    slug: &'a str,
    name: &'a str,
    price_in_cents: u32,
    billing_interval_in_months: u32,
    single_tenant: bool,
    private_network: bool,
    available_releases: &'a [String],
    available_spaces: &'a [String],
    #[schema(value_type = String)]
    uri: Link<'a>,
}

impl<'a> PlanView<'a> {
    fn new(plan: &'a Plan, links: &'a Links) -> Self {
        Self {
            slug: &plan.slug,
            name: &plan.name,
            price_in_cents: plan.price_in_cents,
            billing_interval_in_months: plan.billing_interval_in_months,
            single_tenant: plan.single_tenant,
            private_network: plan.private_network,
            available_releases: &plan.available_releases,
            available_spaces: &plan.available_spaces,
            uri: links.to("plans", &plan.slug),
        }
    }
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Space)]
struct SpaceView<'a> {
    path: &'a str,
    private_network: bool,
    cloud: CloudView<'a>,
    region: &'a str,
    #[schema(value_type = String)]
    uri: Link<'a>,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Cloud)]
struct CloudView<'a> {
    provider: &'a str,
    region: &'a str,
}

impl<'a> SpaceView<'a> {
    fn new(space: &'a Space, links: &'a Links) -> Self {
        Self {
            path: &space.path,
            private_network: space.private_network,
            cloud: CloudView {
                provider: &space.cloud.provider,
                region: &space.cloud.region,
            },
            region: &space.cloud.region,
            uri: links.to("spaces", &space.path),
        }
    }
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Release)]
struct ReleaseView<'a> {
    name: &'a str,
    slug: &'a str,
    service_type: &'a str,
    version: &'a str,
    package_name: &'a str,
    multitenant: bool,
    #[schema(value_type = String)]
    uri: Link<'a>,
}

impl<'a> ReleaseView<'a> {
    fn new(release: &'a Release, links: &'a Links) -> Self {
        Self {
            name: &release.name,
            slug: &release.slug,
            service_type: &release.service_type,
            version: &release.version,
            package_name: &release.package_name,
            multitenant: release.multitenant,
            uri: links.to("releases", &release.slug),
        }
    }
}

/// `GET /plans`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanList<'a> {
    plans: Vec<PlanView<'a>>,
    status: u16,
}

/// `GET /spaces`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SpaceList<'a> {
    spaces: Vec<SpaceView<'a>>,
    status: u16,
}

/// `GET /releases`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReleaseList<'a> {
    releases: Vec<ReleaseView<'a>>,
    status: u16,
}

/// One collection of the catalogue: the list's body and each entry's bare body.
struct Collection {
    list: Bytes,
    entries: HashMap<&'static str, Bytes>,
}

impl Collection {
    /// `list` is the whole list's answer; `entries` each entry's bare body, by its id.
    fn new<T: Serialize>(list: &impl Serialize, entries: &[(&'static str, T)]) -> Self {
        Self {
            list: to_bytes(list),
            entries: entries
                .iter()
                .map(|(id, item)| (*id, to_bytes(item)))
                .collect(),
        }
    }
}

/// The catalogue is serialised once, at start: a body that can't be is a bug to stop on.
fn to_bytes(body: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(body).expect("the catalogue serialises"))
}

/// The catalogue's answers, rendered once for this server's links.
pub struct Catalogue {
    links: Links,
    plans: Collection,
    spaces: Collection,
    releases: Collection,
}

impl Catalogue {
    pub fn new(links: Links) -> Self {
        let catalogue = plans::catalogue();
        let ok = StatusCode::OK.as_u16();
        let plans: Vec<_> = catalogue
            .plans
            .iter()
            .map(|p| (p.slug.as_str(), PlanView::new(p, &links)))
            .collect();
        let spaces: Vec<_> = catalogue
            .spaces
            .iter()
            .map(|s| (s.path.as_str(), SpaceView::new(s, &links)))
            .collect();
        let releases: Vec<_> = catalogue
            .releases
            .iter()
            .map(|r| (r.slug.as_str(), ReleaseView::new(r, &links)))
            .collect();
        let plans = Collection::new(
            &PlanList {
                plans: plans.iter().map(|(_, p)| *p).collect(),
                status: ok,
            },
            &plans,
        );
        let spaces = Collection::new(
            &SpaceList {
                spaces: spaces.iter().map(|(_, s)| *s).collect(),
                status: ok,
            },
            &spaces,
        );
        let releases = Collection::new(
            &ReleaseList {
                releases: releases.iter().map(|(_, r)| *r).collect(),
                status: ok,
            },
            &releases,
        );
        Self {
            links,
            plans,
            spaces,
            releases,
        }
    }

    pub fn links(&self) -> &Links {
        &self.links
    }
}

fn answer(caller: &ApiCaller, body: Option<&Bytes>) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    let body = body.ok_or(AppError::NotFound)?;
    Ok(super::json_bytes(StatusCode::OK, body.clone()))
}

#[utoipa::path(
    get,
    path = "/plans",
    tag = "catalogue",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The plans", body = PlanList),
        super::schemas::Guarded,
    )
)]
pub async fn plans(
    caller: ApiCaller,
    catalogue: web::Data<Catalogue>,
) -> Result<HttpResponse, AppError> {
    answer(&caller, Some(&catalogue.plans.list))
}

#[utoipa::path(
    get,
    path = "/plans/{slug}",
    tag = "catalogue",
    security(("basic" = [])),
    params(("slug" = String, Path, description = "The plan's slug")),
    responses(
        (status = 200, description = "One plan", body = PlanView),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
    )
)]
pub async fn plan(
    caller: ApiCaller,
    catalogue: web::Data<Catalogue>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    answer(&caller, catalogue.plans.entries.get(slug.as_str()))
}

#[utoipa::path(
    get,
    path = "/spaces",
    tag = "catalogue",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The spaces", body = SpaceList),
        super::schemas::Guarded,
    )
)]
pub async fn spaces(
    caller: ApiCaller,
    catalogue: web::Data<Catalogue>,
) -> Result<HttpResponse, AppError> {
    answer(&caller, Some(&catalogue.spaces.list))
}

#[utoipa::path(
    get,
    path = "/spaces/{path}",
    tag = "catalogue",
    security(("basic" = [])),
    params(("path" = String, Path, description = "The space's path, slashes and all, as listed")),
    responses(
        (status = 200, description = "One space", body = SpaceView),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
    )
)]
/// `/spaces/{path}`, where the path has slashes. It is looked up exactly as the request
/// wrote it, undecoded: a space path has only letters, digits, dashes and single slashes,
/// so `..`, an empty segment or an encoded slash can never match one, and is a 404.
pub async fn space(
    caller: ApiCaller,
    catalogue: web::Data<Catalogue>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let path = req
        .uri()
        .path()
        .strip_prefix("/spaces/")
        .unwrap_or_default();
    answer(&caller, catalogue.spaces.entries.get(path))
}

#[utoipa::path(
    get,
    path = "/releases",
    tag = "catalogue",
    security(("basic" = [])),
    responses(
        (status = 200, description = "The releases", body = ReleaseList),
        super::schemas::Guarded,
    )
)]
pub async fn releases(
    caller: ApiCaller,
    catalogue: web::Data<Catalogue>,
) -> Result<HttpResponse, AppError> {
    answer(&caller, Some(&catalogue.releases.list))
}

#[utoipa::path(
    get,
    path = "/releases/{slug}",
    tag = "catalogue",
    security(("basic" = [])),
    params(("slug" = String, Path, description = "The release's slug")),
    responses(
        (status = 200, description = "One release", body = ReleaseView),
        (status = 404, response = super::schemas::NotFound),
        super::schemas::Guarded,
    )
)]
pub async fn release(
    caller: ApiCaller,
    catalogue: web::Data<Catalogue>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    answer(&caller, catalogue.releases.entries.get(slug.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_come_from_the_public_url_or_a_dialable_listening_address() {
        let listening: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let links = Links::new(None, listening);
        assert_eq!(
            links.to("clusters", "a-1").to_string(),
            "http://127.0.0.1:8080/clusters/a-1"
        );
        let links = Links::new(Some("https://keys.example.com/"), listening);
        assert_eq!(
            links
                .to("spaces", "omc/bonsai/us-east-1/common")
                .to_string(),
            "https://keys.example.com/spaces/omc/bonsai/us-east-1/common"
        );
        let links = Links::new(None, "[::]:9000".parse().unwrap());
        assert_eq!(
            links.to("plans", "x").to_string(),
            "http://[::1]:9000/plans/x"
        );
    }

    #[test]
    fn every_catalogue_entry_has_a_bare_body() {
        let catalogue = Catalogue::new(Links::new(None, "127.0.0.1:1".parse().unwrap()));
        let data = plans::catalogue();
        for plan in &data.plans {
            let body: serde_json::Value =
                serde_json::from_slice(&catalogue.plans.entries[plan.slug.as_str()]).unwrap();
            assert_eq!(body["slug"], plan.slug.as_str());
            assert!(body.get("status").is_none(), "{body}");
        }
        assert_eq!(catalogue.spaces.entries.len(), data.spaces.len());
        assert_eq!(catalogue.releases.entries.len(), data.releases.len());
    }
}
