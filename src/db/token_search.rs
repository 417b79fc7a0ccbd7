//! The token list's search: an account's tokens filtered, sorted and paged in SQL, so a
//! list of thousands loads one page. Every query takes the account.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use super::DbConnection;
use super::audit::action;
use super::schema::{audit_events, tokens, users};
use super::tokens::{Token, TokenView, ViewRow};
use crate::domain::{AccountId, ExternalId, Permission, Scope, TokenId, UserId};
use crate::error::AppError;

diesel::define_sql_function! {
    /// SQL's `lower`, on both stores.
    fn lower(x: Nullable<Text>) -> Nullable<Text>;
}

/// Tokens per page of the list.
pub const PAGE_SIZE: i64 = 50;

/// Which tokens by status. The list shows `Active` unless asked otherwise, so revoked and
/// expired tokens don't crowd the ones in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Neither revoked nor expired (rolled tokens in their grace included).
    #[default]
    Active,
    Revoked,
    Expired,
    All,
}

impl StatusFilter {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "revoked" => Some(Self::Revoked),
            "expired" => Some(Self::Expired),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::All => "all",
        }
    }
}

/// The list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Newest first.
    #[default]
    Created,
    /// A to Z.
    Name,
    /// Most recently used first; never used last.
    LastUsed,
    /// Soonest to expire first; never expiring last.
    Expires,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Created, Sort::Name, Sort::LastUsed, Sort::Expires];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Name => "name",
            Self::LastUsed => "last_used",
            Self::Expires => "expires",
        }
    }
}

/// What the list asks for; every field already parsed.
#[derive(Debug, Clone, Default)]
pub struct TokenSearch {
    /// Words to find in the name, key, creator's email or note.
    pub text: Option<String>,
    pub status: StatusFilter,
    pub creator: Option<UserId>,
    pub scope: Option<Scope>,
    /// Only the tokens of this customer (exactly).
    pub external_id: Option<ExternalId>,
    /// Only tokens holding this permission.
    pub permission: Option<Permission>,
    /// Only tokens that expire within this long from now (and haven't yet).
    pub expires_within: Option<chrono::Duration>,
    pub sort: Sort,
    /// From 1.
    pub page: i64,
}

/// One page of the search's answer.
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// How many tokens match, on all pages.
    pub total: i64,
    /// With the default filter: how many revoked or expired tokens it hides.
    pub hidden: i64,
    /// The key each rolled token on the page was rolled to, by the rolled token's id.
    pub successors: HashMap<i32, (i32, String)>,
}

impl TokenPage {
    pub fn pages(&self) -> i64 {
        ((self.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
    }
}

/// Every permission the account's tokens hold (revoked ones included), sorted, with how
/// many of its active tokens hold each: for the account's permissions page.
pub fn permissions_in_use(
    conn: &mut DbConnection,
    account: AccountId,
) -> Result<Vec<(String, usize)>, AppError> {
    let now = super::now();
    let rows: Vec<(
        crate::domain::Permissions,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    )> = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::permissions.ne(""))
        .select((tokens::permissions, tokens::revoked_at, tokens::expires_at))
        .load(conn)?;
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (permissions, revoked_at, expires_at) in rows {
        let active = revoked_at.is_none() && expires_at.is_none_or(|e| e > now);
        for name in permissions.iter() {
            *counts.entry(name.to_string()).or_default() += usize::from(active);
        }
    }
    Ok(counts.into_iter().collect())
}

/// `%text%` for LIKE, lower-cased, with LIKE's own characters taken literally.
pub(super) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The account's tokens joined to their creator and revocation event, with every filter
/// of `$search` applied and tokens of `$status`. Boxed, so the caller picks what to select.
macro_rules! matching {
    ($creators:ident, $account:expr, $search:expr, $status:expr, $now:expr) => {{
        let creators = $creators;
        let search: &TokenSearch = $search;
        let now: NaiveDateTime = $now;
        let mut query = tokens::table
            .left_join(creators.on(tokens::user_id.eq(creators.field(users::id).nullable())))
            .left_join(
                audit_events::table.on(audit_events::token_id
                    .eq(tokens::id.nullable())
                    .and(audit_events::action.eq(action::TOKEN_REVOKED))),
            )
            .filter(tokens::account_id.eq($account.0))
            .into_boxed();
        if let Some(creator) = search.creator {
            query = query.filter(tokens::user_id.eq(creator.0));
        }
        if let Some(text) = search.text.as_deref() {
            let pattern = contains_pattern(text);
            query = query.filter(
                lower(tokens::name.nullable())
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(tokens::key.nullable())
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(lower(creators.field(users::email).nullable())
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(lower(tokens::note.nullable()).like(pattern).escape('\\')),
            );
        }
        if let Some(scope) = search.scope {
            // Scopes are stored comma-joined: match the name as a whole item.
            let name = scope.as_str();
            query = query.filter(
                tokens::scopes
                    .eq(name.to_string())
                    .or(tokens::scopes.like(format!("{name},%")))
                    .or(tokens::scopes.like(format!("%,{name}")))
                    .or(tokens::scopes.like(format!("%,{name},%"))),
            );
        }
        if let Some(id) = &search.external_id {
            query = query.filter(tokens::external_id.eq(id.as_str().to_string()));
        }
        if let Some(permission) = &search.permission {
            // Stored comma-joined, like scopes; a name has no LIKE characters but `_`.
            let name = permission.as_str().replace('_', "\\_");
            query = query.filter(
                tokens::permissions
                    .eq(permission.as_str().to_string())
                    .or(tokens::permissions.like(format!("{name},%")).escape('\\'))
                    .or(tokens::permissions.like(format!("%,{name}")).escape('\\'))
                    .or(tokens::permissions.like(format!("%,{name},%")).escape('\\')),
            );
        }
        if let Some(within) = search.expires_within {
            query = query
                .filter(tokens::expires_at.gt(now))
                .filter(tokens::expires_at.le(now + within));
        }
        match $status {
            Some(StatusFilter::Active) => {
                query = query.filter(super::standing::token_active_at(now));
            }
            Some(StatusFilter::Revoked) => {
                query = query.filter(tokens::revoked_at.is_not_null());
            }
            Some(StatusFilter::Expired) => {
                query = query
                    .filter(tokens::revoked_at.is_null())
                    .filter(tokens::expires_at.le(now));
            }
            // Revoked or expired: what the default filter hides.
            None => {
                query = query.filter(
                    tokens::revoked_at
                        .is_not_null()
                        .or(tokens::expires_at.le(now)),
                );
            }
            Some(StatusFilter::All) => {}
        }
        query
    }};
}

/// What a `TokenView` is loaded from.
macro_rules! view_columns {
    ($creators:ident) => {
        (
            Token::as_select(),
            $creators.field(users::email).nullable(),
            audit_events::actor_label.nullable(),
        )
    };
}

/// One page of the account's tokens that match `search`, with the counts the list shows.
pub fn search(
    conn: &mut DbConnection,
    account: AccountId,
    search: &TokenSearch,
) -> Result<TokenPage, AppError> {
    let now = super::now();
    let creators = diesel::alias!(users as creators);
    let status = Some(search.status);
    let total: i64 = matching!(creators, account, search, status, now)
        .count()
        .get_result(conn)?;
    let hidden: i64 = if search.status == StatusFilter::Active {
        matching!(creators, account, search, None, now)
            .count()
            .get_result(conn)?
    } else {
        0
    };
    let query = matching!(creators, account, search, status, now).select(view_columns!(creators));
    let query = match search.sort {
        Sort::Created => query.order((tokens::created_at.desc(), tokens::id.desc())),
        Sort::Name => query.order((tokens::name.asc(), tokens::id.desc())),
        Sort::LastUsed => query.order((
            tokens::last_used_at.is_null(),
            tokens::last_used_at.desc(),
            tokens::id.desc(),
        )),
        Sort::Expires => query.order((
            tokens::expires_at.is_null(),
            tokens::expires_at.asc(),
            tokens::id.desc(),
        )),
    };
    let rows: Vec<ViewRow> = query
        .offset((search.page.max(1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
        .load(conn)?;
    let tokens: Vec<TokenView> = rows.into_iter().map(TokenView::from).collect();
    let successors = successors(conn, account, &tokens)?;
    Ok(TokenPage {
        tokens,
        total,
        hidden,
        successors,
    })
}

/// The successor's id and key of each rolled token in `views`, in one read.
fn successors(
    conn: &mut DbConnection,
    account: AccountId,
    views: &[TokenView],
) -> Result<HashMap<i32, (i32, String)>, AppError> {
    let wanted: Vec<(i32, i32)> = views
        .iter()
        .filter_map(|v| Some((v.token.id, v.token.rolled_to?)))
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: HashMap<i32, String> = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq_any(wanted.iter().map(|(_, to)| *to)))
        .select((tokens::id, tokens::key))
        .load::<(i32, String)>(conn)?
        .into_iter()
        .collect();
    Ok(wanted
        .into_iter()
        .filter_map(|(from, to)| Some((from, (to, keys.get(&to)?.clone()))))
        .collect())
}

/// The account's tokens with these ids, newest first, for a bulk action's confirmation;
/// ids of another account find nothing.
pub fn by_ids(
    conn: &mut DbConnection,
    account: AccountId,
    ids: &[TokenId],
) -> Result<Vec<TokenView>, AppError> {
    let creators = diesel::alias!(users as creators);
    let all = TokenSearch::default();
    let rows: Vec<ViewRow> = matching!(
        creators,
        account,
        &all,
        Some(StatusFilter::All),
        super::now()
    )
    .filter(tokens::id.eq_any(ids.iter().map(|id| id.0)))
    .select(view_columns!(creators))
    .order((tokens::created_at.desc(), tokens::id.desc()))
    .load(conn)?;
    Ok(rows.into_iter().map(TokenView::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("CI"), "%ci%");
        assert_eq!(contains_pattern("100%_\\"), "%100\\%\\_\\\\%");
    }
}
