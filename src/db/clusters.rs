//! Clusters: the account's records that the API serves. Every query takes the account;
//! every change runs through the write path (`db::tx`), is checked against the policy
//! inside its transaction, is audited, and leaves a note in the invalidation log so every
//! process drops its rendered pages of the account's clusters.

use diesel::prelude::*;
use rand::Rng;

use super::DbConnection;
use super::audit::{Event, action};
use super::schema::clusters;
use super::tx::Tx;
use crate::domain::{AccountId, AuditAction, ClusterName, ClusterState, Paging, Slug};
use crate::error::AppError;
use crate::plans::Placement;
use crate::policy::Action;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clusters)]
pub struct Cluster {
    pub slug: String,
    pub name: String,
    pub plan: String,
    pub space: String,
    pub release: String,
    pub state: ClusterState,
    pub docs: i64,
    pub shards_used: i64,
    pub data_bytes_used: i64,
}

/// A checked request to create a cluster.
pub struct NewCluster {
    pub name: ClusterName,
    pub placement: Placement,
}

/// A checked request to change a cluster; `None` leaves a field as it is.
pub struct ClusterChange {
    pub name: Option<ClusterName>,
    pub plan: Option<&'static crate::plans::Plan>,
}

/// How many characters of the name a slug keeps before its digits.
const SLUG_PREFIX_CHARS: usize = 40;

/// A slug as Bonsai makes them: the start of the name and ten random digits, so two
/// clusters may share a name. A name with nothing to make a slug from starts "cluster".
fn new_slug(name: &ClusterName) -> Slug {
    let prefix = Slug::from_name(name.as_str())
        .map(|s| {
            s.as_str()
                .chars()
                .take(SLUG_PREFIX_CHARS)
                .collect::<String>()
        })
        .unwrap_or_default();
    let prefix = match prefix.trim_end_matches('-') {
        "" => "cluster",
        trimmed => trimmed,
    };
    let digits: u64 = rand::rng().random_range(1_000_000_000..10_000_000_000);
    // A name-made prefix, a dash and digits is always canonical.
    Slug::parse(&format!("{prefix}-{digits}")).unwrap_or_else(|_| {
        Slug::from_name(&format!("cluster {digits}")).expect("letters and digits make a slug")
    })
}

/// Audits a cluster change and tells every process its pages of the account are stale.
fn changed(tx: &mut Tx<'_>, what: AuditAction, cluster: &Cluster) -> Result<(), AppError> {
    let detail = format!(
        "{} (plan {}, space {}, release {})",
        cluster.name, cluster.plan, cluster.space, cluster.release
    );
    tx.log(Event {
        action: what,
        target: &cluster.slug,
        token: None,
        detail: &detail,
    })?;
    super::invalidations::record_clusters(tx.conn, tx.account()?)
}

/// Creates a cluster under a fresh slug. Ten random digits make a clash rare; one is
/// retried with new digits rather than refused.
pub fn create(tx: &mut Tx<'_>, new: NewCluster) -> Result<Cluster, AppError> {
    tx.require(Action::WriteClusters)?;
    let account = tx.account()?;
    let cluster = insert(tx.conn, account, &new)?;
    changed(tx, action::CLUSTER_CREATED, &cluster)?;
    Ok(cluster)
}

fn insert(
    conn: &mut DbConnection,
    account: AccountId,
    new: &NewCluster,
) -> Result<Cluster, AppError> {
    for _ in 0..5 {
        let slug = new_slug(&new.name);
        let taken: i64 = clusters::table
            .filter(clusters::account_id.eq(account.0))
            .filter(clusters::slug.eq(slug.as_str()))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            continue;
        }
        return Ok(diesel::insert_into(clusters::table)
            .values((
                clusters::account_id.eq(account.0),
                clusters::slug.eq(slug.as_str()),
                clusters::name.eq(new.name.as_str()),
                clusters::plan.eq(&new.placement.plan.slug),
                clusters::space.eq(&new.placement.space.path),
                clusters::release.eq(&new.placement.release.slug),
                // Keyward keeps records, not search engines: nothing is left to wait for.
                clusters::state.eq(ClusterState::Provisioned),
                clusters::created_at.eq(super::now()),
            ))
            .returning(super::columns_of::<Cluster>())
            .get_result(conn)?);
    }
    Err(AppError::internal("no free cluster slug after 5 tries"))
}

/// A page of the account's clusters, oldest first, and how many the account has.
///
/// One statement answers both: the count is an uncorrelated subquery, which SQLite runs
/// once per statement from the `clusters_by_account` index. (`COUNT(*) OVER ()` would copy
/// every row of the account into a temporary table first.) Only a page past the end, which
/// has no row to carry the count, asks again. The SQL is the same for every page, so the
/// connection's statement cache prepares it once.
pub fn list(
    conn: &mut DbConnection,
    account: AccountId,
    paging: Paging,
) -> Result<(Vec<Cluster>, i64), AppError> {
    let counted = diesel::alias!(clusters as counted);
    let total = counted
        .filter(counted.field(clusters::account_id).eq(account.0))
        .count()
        .single_value();
    let rows: Vec<(Cluster, Option<i64>)> = clusters::table
        .filter(clusters::account_id.eq(account.0))
        .order(clusters::id.asc())
        .offset(paging.offset())
        .limit(paging.size())
        .select((Cluster::as_select(), total))
        .load(conn)?;
    let total = match rows.first() {
        Some((_, total)) => total.unwrap_or_default(),
        None => count(conn, account)?,
    };
    Ok((rows.into_iter().map(|(c, _)| c).collect(), total))
}

pub fn count(conn: &mut DbConnection, account: AccountId) -> Result<i64, AppError> {
    Ok(clusters::table
        .filter(clusters::account_id.eq(account.0))
        .count()
        .get_result(conn)?)
}

pub fn find(conn: &mut DbConnection, account: AccountId, slug: &Slug) -> Result<Cluster, AppError> {
    Ok(clusters::table
        .filter(clusters::account_id.eq(account.0))
        .filter(clusters::slug.eq(slug.as_str()))
        .select(Cluster::as_select())
        .first(conn)?)
}

/// Renames the cluster and/or moves it to another plan. A plan that doesn't offer the
/// cluster's space or release is refused, inside the write, so it is checked against the
/// cluster as it is when the change commits.
pub fn update(tx: &mut Tx<'_>, slug: &Slug, change: ClusterChange) -> Result<Cluster, AppError> {
    tx.require(Action::WriteClusters)?;
    let account = tx.account()?;
    let conn = &mut *tx.conn;
    let updated = {
        let cluster = find(conn, account, slug)?;
        if let Some(plan) = change.plan {
            let mut errors = Vec::new();
            if !plan.offers_space(&cluster.space) {
                errors.push(format!(
                    "The plan '{}' is not available in this cluster's space '{}'.",
                    plan.slug, cluster.space
                ));
            }
            if !plan.offers_release(&cluster.release) {
                errors.push(format!(
                    "The plan '{}' does not offer this cluster's release '{}'.",
                    plan.slug, cluster.release
                ));
            }
            if !errors.is_empty() {
                return Err(AppError::Invalid(errors));
            }
        }
        diesel::update(
            clusters::table
                .filter(clusters::account_id.eq(account.0))
                .filter(clusters::slug.eq(slug.as_str())),
        )
        .set((
            clusters::name.eq(change.name.map(|n| n.to_string()).unwrap_or(cluster.name)),
            clusters::plan.eq(change
                .plan
                .map(|p| p.slug.to_string())
                .unwrap_or(cluster.plan)),
        ))
        .returning(super::columns_of::<Cluster>())
        .get_result::<Cluster>(conn)?
    };
    changed(tx, action::CLUSTER_UPDATED, &updated)?;
    Ok(updated)
}

pub fn delete(tx: &mut Tx<'_>, slug: &Slug) -> Result<Cluster, AppError> {
    tx.require(Action::WriteClusters)?;
    let account = tx.account()?;
    let deleted = diesel::delete(
        clusters::table
            .filter(clusters::account_id.eq(account.0))
            .filter(clusters::slug.eq(slug.as_str())),
    )
    .returning(super::columns_of::<Cluster>())
    .get_result::<Cluster>(tx.conn)?;
    changed(tx, action::CLUSTER_DELETED, &deleted)?;
    Ok(deleted)
}

/// A page of the account's clusters for the dashboard, oldest first, each with when it
/// was made, and whether another page follows.
pub fn page_with_created(
    conn: &mut DbConnection,
    account: AccountId,
    paging: Paging,
) -> Result<(Vec<(Cluster, chrono::NaiveDateTime)>, bool), AppError> {
    let mut rows: Vec<(Cluster, chrono::NaiveDateTime)> = clusters::table
        .filter(clusters::account_id.eq(account.0))
        .order(clusters::id.asc())
        .offset(paging.offset())
        .limit(paging.size() + 1)
        .select((Cluster::as_select(), clusters::created_at))
        .load(conn)?;
    let more = rows.len() as i64 > paging.size();
    rows.truncate(usize::try_from(paging.size()).unwrap_or(0));
    Ok((rows, more))
}
