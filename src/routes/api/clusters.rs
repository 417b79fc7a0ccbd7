//! `/clusters`: the account's clusters. The account always comes from the token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::auth::guard::ApiCaller;
use crate::db::{self, clusters::ClusterChange, clusters::NewCluster};
use crate::domain::{ClusterName, Paging, Scope, Slug};
use crate::error::AppError;
use crate::plans;
use crate::state::AppState;

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

pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    let paging = pagination(req.query_string())?;
    let account = caller.account();
    let (clusters, total) = db::run(&state.pool, move |conn| {
        db::clusters::list(conn, account, paging)
    })
    .await?;
    Ok(super::ok(
        StatusCode::OK,
        json!({
            "clusters": clusters,
            "pagination": {
                "page_number": paging.number(),
                "page_size": paging.size(),
                "total_records": total,
                "total_pages": paging.pages_for(total),
            },
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterInput {
    name: Option<String>,
    plan: Option<String>,
    region: Option<String>,
}

fn parse_plan(raw: &str, errors: &mut Vec<String>) -> Option<&'static plans::Plan> {
    let plan = plans::find(raw);
    if plan.is_none() {
        let known: Vec<&str> = plans::PLANS.iter().map(|p| p.slug).collect();
        errors.push(format!(
            "\"{raw}\" is not a plan. Use one of: {}.",
            known.join(", ")
        ));
    }
    plan
}

fn check_new_cluster(input: ClusterInput) -> Result<NewCluster, AppError> {
    let mut errors = Vec::new();
    let name = match input.name.as_deref() {
        None => {
            errors.push("'name' is required.".to_string());
            None
        }
        Some(raw) => ClusterName::parse(raw).map_err(|e| errors.push(e)).ok(),
    };
    let plan = match input.plan.as_deref() {
        None => Some(plans::default_plan()),
        Some(raw) => parse_plan(raw, &mut errors),
    };
    let region = match (plan, input.region) {
        (Some(plan), None) => Some(plan.available_regions[0].to_string()),
        (Some(plan), Some(region)) if plan.available_regions.contains(&region.as_str()) => {
            Some(region)
        }
        (Some(plan), Some(region)) => {
            errors.push(format!(
                "\"{region}\" is not a region of the {} plan. Use one of: {}.",
                plan.slug,
                plan.available_regions.join(", ")
            ));
            None
        }
        (None, _) => None,
    };
    match (name, plan, region) {
        (Some(name), Some(plan), Some(region)) if errors.is_empty() => Ok(NewCluster {
            name,
            plan: plan.slug.to_string(),
            region,
        }),
        _ => Err(AppError::Invalid(errors)),
    }
}

pub async fn create(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Write)?;
    let new = check_new_cluster(super::parse_json(&body)?)?;
    let account = caller.account();
    let cluster = db::run(&state.pool, move |conn| {
        db::clusters::create(conn, account, new)
    })
    .await?;
    Ok(super::ok(
        StatusCode::CREATED,
        json!({ "cluster": cluster }),
    ))
}

/// A slug from the path; one that can't exist is simply not found.
fn path_slug(raw: &str) -> Result<Slug, AppError> {
    Slug::parse(raw).map_err(|_| AppError::NotFound)
}

pub async fn show(
    caller: ApiCaller,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Read)?;
    let slug = path_slug(&slug)?;
    let account = caller.account();
    let cluster = db::run(&state.pool, move |conn| {
        db::clusters::find(conn, account, &slug)
    })
    .await?;
    Ok(super::ok(StatusCode::OK, json!({ "cluster": cluster })))
}

pub async fn update(
    caller: ApiCaller,
    state: web::Data<AppState>,
    slug: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Write)?;
    let slug = path_slug(&slug)?;
    let input: ClusterInput = super::parse_json(&body)?;
    let mut errors = Vec::new();
    if input.region.is_some() {
        errors.push("'region' can't be changed; create a new cluster instead.".to_string());
    }
    let change = ClusterChange {
        name: input
            .name
            .as_deref()
            .and_then(|raw| ClusterName::parse(raw).map_err(|e| errors.push(e)).ok()),
        plan: input
            .plan
            .as_deref()
            .and_then(|raw| parse_plan(raw, &mut errors))
            .map(|p| p.slug.to_string()),
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let account = caller.account();
    let cluster = db::run(&state.pool, move |conn| {
        db::clusters::update(conn, account, &slug, change)
    })
    .await?;
    Ok(super::ok(StatusCode::OK, json!({ "cluster": cluster })))
}

pub async fn delete(
    caller: ApiCaller,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.require(Scope::Write)?;
    let slug = path_slug(&slug)?;
    let account = caller.account();
    let cluster = db::run(&state.pool, move |conn| {
        db::clusters::delete(conn, account, &slug)
    })
    .await?;
    Ok(super::ok(
        StatusCode::OK,
        json!({ "message": format!("Cluster {} was deleted.", cluster.slug) }),
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
