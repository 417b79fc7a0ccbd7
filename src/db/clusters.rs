//! Clusters: the account's records that the API serves. Every query takes the account.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use serde::Serialize;

use super::schema::clusters;
use crate::domain::{AccountId, ClusterName, Paging, Slug};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = clusters)]
pub struct Cluster {
    #[serde(skip)]
    pub id: i32,
    #[serde(skip)]
    pub account_id: i32,
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub region: String,
    pub state: String,
    #[serde(with = "crate::timefmt")]
    pub created_at: NaiveDateTime,
}

/// A checked request to create a cluster.
pub struct NewCluster {
    pub name: ClusterName,
    pub plan: String,
    pub region: String,
}

/// A checked request to change a cluster; `None` leaves a field as it is.
pub struct ClusterChange {
    pub name: Option<ClusterName>,
    pub plan: Option<String>,
}

pub const STATE_PROVISIONED: &str = "provisioned";

/// Creates a cluster whose slug comes from its name; a taken slug is a 422.
pub fn create(
    conn: &mut DbConnection,
    account: AccountId,
    new: NewCluster,
) -> Result<Cluster, AppError> {
    let slug = Slug::from_name(new.name.as_str()).map_err(AppError::invalid)?;
    super::write(conn, |conn| {
        let taken: i64 = clusters::table
            .filter(clusters::account_id.eq(account.0))
            .filter(clusters::slug.eq(slug.as_str()))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AppError::invalid(format!(
                "A cluster with the slug \"{slug}\" already exists. Choose another name."
            )));
        }
        Ok(diesel::insert_into(clusters::table)
            .values((
                clusters::account_id.eq(account.0),
                clusters::slug.eq(slug.as_str()),
                clusters::name.eq(new.name.as_str()),
                clusters::plan.eq(&new.plan),
                clusters::region.eq(&new.region),
                clusters::state.eq(STATE_PROVISIONED),
                clusters::created_at.eq(super::now()),
            ))
            .returning(super::columns_of::<Cluster>())
            .get_result(conn)?)
    })
}

/// A page of the account's clusters, oldest first, and the total count.
pub fn list(
    conn: &mut DbConnection,
    account: AccountId,
    paging: Paging,
) -> Result<(Vec<Cluster>, i64), AppError> {
    let total = clusters::table
        .filter(clusters::account_id.eq(account.0))
        .count()
        .get_result(conn)?;
    let rows = clusters::table
        .filter(clusters::account_id.eq(account.0))
        .order(clusters::id.asc())
        .offset(paging.offset())
        .limit(paging.size())
        .select(Cluster::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn find(conn: &mut DbConnection, account: AccountId, slug: &Slug) -> Result<Cluster, AppError> {
    Ok(clusters::table
        .filter(clusters::account_id.eq(account.0))
        .filter(clusters::slug.eq(slug.as_str()))
        .select(Cluster::as_select())
        .first(conn)?)
}

pub fn update(
    conn: &mut DbConnection,
    account: AccountId,
    slug: &Slug,
    change: ClusterChange,
) -> Result<Cluster, AppError> {
    super::write(conn, |conn| {
        let cluster = find(conn, account, slug)?;
        Ok(diesel::update(clusters::table.find(cluster.id))
            .set((
                clusters::name.eq(change.name.map(|n| n.to_string()).unwrap_or(cluster.name)),
                clusters::plan.eq(change.plan.unwrap_or(cluster.plan)),
            ))
            .returning(super::columns_of::<Cluster>())
            .get_result(conn)?)
    })
}

pub fn delete(
    conn: &mut DbConnection,
    account: AccountId,
    slug: &Slug,
) -> Result<Cluster, AppError> {
    super::write(conn, |conn| {
        let cluster = find(conn, account, slug)?;
        diesel::delete(clusters::table.find(cluster.id)).execute(conn)?;
        Ok(cluster)
    })
}
