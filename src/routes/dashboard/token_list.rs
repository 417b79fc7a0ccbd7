//! `GET /tokens`: the account's tokens, searched, filtered, sorted and paged by the query
//! string (`q`, `status`, `member`, `scope`, `expires`, `sort`, `page`), so a filtered view
//! can be bookmarked. Members see their own tokens; admins see everyone's.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::usage_view;
use super::view::{Choice, HtmlError, Layout, TimeView, TokenRow, render};
use crate::charts::BarChart;
use crate::db::{
    self,
    token_search::{PAGE_SIZE, Sort, StatusFilter, TokenSearch},
};
use crate::domain::{ExternalId, Permission, Scope, UserId};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

/// The "expires within" choices, in days.
const EXPIRY_WINDOWS: [(&str, &str); 4] = [
    ("", "Any time"),
    ("7", "Within 7 days"),
    ("30", "Within 30 days"),
    ("90", "Within 90 days"),
];

/// How far ahead `/tokens` warns of expiring tokens.
const EXPIRY_NOTICE_DAYS: i64 = 7;

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    member: Option<String>,
    scope: Option<String>,
    external_id: Option<String>,
    permission: Option<String>,
    expires: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

/// What the query string asked for, as the form shows it again and as links repeat it.
#[derive(Clone, Default)]
struct Asked {
    q: String,
    status: String,
    member: String,
    scope: String,
    external_id: String,
    permission: String,
    expires: String,
    sort: String,
}

impl Asked {
    /// `/tokens?…` with these filters, on `page` (1 is left out), and `status` replaced
    /// when given.
    fn href(&self, page: i64, status: Option<&str>) -> String {
        let page = page.to_string();
        let pairs: Vec<(&str, &str)> = [
            ("q", self.q.as_str()),
            ("status", status.unwrap_or(&self.status)),
            ("member", &self.member),
            ("scope", &self.scope),
            ("external_id", &self.external_id),
            ("permission", &self.permission),
            ("expires", &self.expires),
            ("sort", &self.sort),
            ("page", if page == "1" { "" } else { &page }),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        match serde_urlencoded::to_string(pairs) {
            Ok(query) if !query.is_empty() => format!("/tokens?{query}"),
            _ => "/tokens".to_string(),
        }
    }
}

fn blank_to_none(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The query string as a search, or the sentence that says which value is wrong.
fn parse(query: &ListQuery) -> Result<(TokenSearch, Asked), AppError> {
    let wrong = |what: &str, value: &str, allowed: &str| {
        AppError::invalid(format!(
            "“{value}” is not {what} the token list knows: use {allowed}."
        ))
    };
    let status = match blank_to_none(&query.status) {
        None => StatusFilter::default(),
        Some(raw) => StatusFilter::parse(raw)
            .ok_or_else(|| wrong("a status", raw, "active, revoked, expired or all"))?,
    };
    let creator = match blank_to_none(&query.member) {
        None => None,
        Some(raw) => {
            Some(UserId(raw.parse::<i32>().map_err(|_| {
                wrong("a member", raw, "a member from the list")
            })?))
        }
    };
    let scope = match blank_to_none(&query.scope) {
        None => None,
        Some(raw) => Some(
            Scope::parse(raw)
                .map_err(|_| wrong("a scope", raw, "read, write, tokens or verify"))?,
        ),
    };
    let external_id = blank_to_none(&query.external_id)
        .map(|raw| {
            ExternalId::parse(raw).map_err(|e| AppError::invalid(format!("External id: {e}")))
        })
        .transpose()?;
    let permission = blank_to_none(&query.permission)
        .map(|raw| Permission::parse(raw).map_err(AppError::invalid))
        .transpose()?;
    let expires = blank_to_none(&query.expires);
    let expires_within = match expires {
        None => None,
        Some(raw) => Some(
            EXPIRY_WINDOWS
                .iter()
                .find(|(days, _)| !days.is_empty() && *days == raw)
                .and_then(|(days, _)| days.parse::<i64>().ok())
                .map(chrono::Duration::days)
                .ok_or_else(|| wrong("an expiry window", raw, "7, 30 or 90 days"))?,
        ),
    };
    let sort = match blank_to_none(&query.sort) {
        None => Sort::default(),
        Some(raw) => Sort::parse(raw)
            .ok_or_else(|| wrong("a sort order", raw, "created, name, last_used or expires"))?,
    };
    let page = match blank_to_none(&query.page) {
        None => 1,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| wrong("a page", raw, "a page number from 1"))?,
    };
    let text = blank_to_none(&query.q).map(str::to_string);
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(AppError::invalid("Search for at most 200 characters."));
    }
    let asked = Asked {
        q: text.clone().unwrap_or_default(),
        status: blank_to_none(&query.status)
            .map(|_| status.as_str().to_string())
            .unwrap_or_default(),
        member: creator.map(|c| c.0.to_string()).unwrap_or_default(),
        scope: scope.map(|s| s.as_str().to_string()).unwrap_or_default(),
        external_id: external_id
            .as_ref()
            .map(|e| e.as_str().to_string())
            .unwrap_or_default(),
        permission: permission
            .as_ref()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        expires: expires.unwrap_or_default().to_string(),
        sort: blank_to_none(&query.sort)
            .map(|_| sort.as_str().to_string())
            .unwrap_or_default(),
    };
    let search = TokenSearch {
        text,
        status,
        creator,
        scope,
        external_id,
        permission,
        expires_within,
        sort,
        page,
    };
    Ok((search, asked))
}

/// A token that expires soon, for the notice on `/tokens`.
pub struct ExpiringRow {
    pub id: i32,
    pub name: String,
    pub key: String,
    pub expires: TimeView,
}

/// A list row: the token, and where it was rolled to.
pub struct ListRow {
    pub token: TokenRow,
    pub successor: Option<(i32, String)>,
}

#[derive(Template)]
#[template(path = "tokens/list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<ListRow>,
    sees_all: bool,
    asked: Asked,
    members: Vec<Choice>,
    statuses: Vec<Choice>,
    scopes: Vec<Choice>,
    windows: Vec<Choice>,
    sorts: Vec<Choice>,
    /// Any filter other than the default, so an empty answer says "no tokens match".
    filtered: bool,
    /// "Showing 1–50 of 120 tokens."
    summary: String,
    /// "3 revoked or expired tokens are hidden." with the link that shows them.
    hidden_note: Option<(String, String)>,
    previous_page: Option<String>,
    next_page: Option<String>,
    expiring: Vec<ExpiringRow>,
    /// The account's calls per day, for those who see every token.
    account_chart: Option<BarChart>,
}

fn choices(options: &[(&str, &str)], chosen: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value: value.to_string(),
            label: label.to_string(),
            selected: *value == chosen,
        })
        .collect()
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) async fn list(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, HtmlError> {
    let account = signed_in.account_id()?;
    let sees_all = signed_in.can(Action::SeeAllTokens);
    let (mut search, mut asked) = parse(&query)?;
    // Members see their own tokens; admins see everyone's and may filter by member.
    if !sees_all {
        search.creator = Some(signed_in.user_id());
        asked.member.clear();
    }
    let mine = (!sees_all).then(|| signed_in.user_id());
    let search_in_db = search.clone();
    let (found, members, expiring) = db::run(&state.pool, move |conn| {
        let found = db::token_search::search(conn, account, &search_in_db)?;
        let members = if sees_all {
            db::memberships::list(conn, account)?
        } else {
            Vec::new()
        };
        let within = chrono::Duration::days(EXPIRY_NOTICE_DAYS);
        let expiring = db::tokens::expiring_soon(conn, account, mine, within)?;
        Ok((found, members, expiring))
    })
    .await?;
    let (mut usage, account_chart) = usage_view::for_list(&state, account, sees_all).await?;
    let pages = found.pages();
    let mut successors: HashMap<i32, (i32, String)> = found.successors;
    let first = (search.page - 1) * PAGE_SIZE + 1;
    let shown = found.tokens.len() as i64;
    let summary = if shown == 0 {
        String::new()
    } else if found.total <= PAGE_SIZE && search.page == 1 {
        format!("Showing {}.", plural(found.total, "token", "tokens"))
    } else {
        format!(
            "Showing {first}–{} of {} tokens.",
            first + shown - 1,
            found.total
        )
    };
    let hidden_note = (found.hidden > 0).then(|| {
        (
            format!(
                "{} hidden.",
                plural(
                    found.hidden,
                    "revoked or expired token is",
                    "revoked or expired tokens are"
                )
            ),
            asked.href(1, Some("all")),
        )
    });
    let rows = found
        .tokens
        .iter()
        .map(|view| ListRow {
            successor: successors.remove(&view.token.id),
            token: TokenRow {
                usage: usage.remove(&view.token.token_id()),
                ..TokenRow::from(view)
            },
        })
        .collect();
    let mut member_choices = vec![Choice {
        value: String::new(),
        label: "Everyone".into(),
        selected: asked.member.is_empty(),
    }];
    member_choices.extend(members.into_iter().map(|m| Choice {
        selected: m.user_id.0.to_string() == asked.member,
        value: m.user_id.0.to_string(),
        label: m.email,
    }));
    let status_chosen = search.status.as_str();
    let filtered = asked.q.len()
        + asked.member.len()
        + asked.scope.len()
        + asked.external_id.len()
        + asked.permission.len()
        + asked.expires.len()
        + usize::from(search.status != StatusFilter::Active)
        > 0;
    render(&ListPage {
        layout: signed_in.layout("API tokens", "/tokens")?,
        rows,
        sees_all,
        members: member_choices,
        statuses: choices(
            &[
                ("active", "Active"),
                ("revoked", "Revoked"),
                ("expired", "Expired"),
                ("all", "All, with revoked"),
            ],
            status_chosen,
        ),
        scopes: choices(
            &[
                ("", "Any scope"),
                ("read", "read"),
                ("write", "write"),
                ("tokens", "tokens"),
                ("verify", "verify"),
            ],
            &asked.scope,
        ),
        windows: choices(&EXPIRY_WINDOWS, &asked.expires),
        sorts: choices(
            &[
                ("created", "Newest first"),
                ("name", "Name"),
                ("last_used", "Last used"),
                ("expires", "Expiring first"),
            ],
            search.sort.as_str(),
        ),
        filtered,
        summary,
        hidden_note,
        previous_page: (search.page > 1).then(|| asked.href(search.page - 1, None)),
        next_page: (search.page < pages).then(|| asked.href(search.page + 1, None)),
        asked,
        account_chart,
        expiring: expiring
            .into_iter()
            .filter_map(|view| {
                let t = view.token;
                Some(ExpiringRow {
                    expires: TimeView::new(t.expires_at?),
                    id: t.id,
                    name: t.name,
                    key: t.key,
                })
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_filters_and_leave_out_what_is_default() {
        let asked = Asked {
            q: "ci & deploy".into(),
            scope: "write".into(),
            ..Asked::default()
        };
        assert_eq!(asked.href(1, None), "/tokens?q=ci+%26+deploy&scope=write");
        assert_eq!(
            asked.href(3, Some("all")),
            "/tokens?q=ci+%26+deploy&status=all&scope=write&page=3"
        );
        assert_eq!(Asked::default().href(1, None), "/tokens");
    }

    #[test]
    fn a_wrong_value_is_named_in_the_error() {
        let query = ListQuery {
            status: Some("gone".into()),
            ..ListQuery::default()
        };
        let err = parse(&query)
            .err()
            .map(|e| e.messages())
            .unwrap_or_default();
        assert_eq!(
            err,
            ["“gone” is not a status the token list knows: use active, revoked, expired or all."]
        );
    }
}
