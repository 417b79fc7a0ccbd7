//! The pages that ask before a destructive action and say what it will do, with counts:
//! removing a member, lowering a role, suspending API access (by the owners or the
//! operator) and ending every other session. Each is a GET that changes nothing; its form
//! posts to the action's own route, which checks everything again inside its write.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::view::{HtmlError, Layout, get_only, render};
use crate::db::{self, token_search::TokenSearch};
use crate::domain::{AccountId, Role, UserId};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only(
        "/members/{user_id}/confirm-remove",
        confirm_remove,
    ))
    .service(get_only("/members/{user_id}/confirm-role", confirm_role))
    .service(get_only("/account/confirm-suspend", confirm_suspend))
    .service(get_only(
        "/admin/accounts/{id}/confirm-suspend",
        confirm_operator_suspend,
    ))
    .service(get_only(
        "/account/sessions/confirm-end-others",
        confirm_end_others,
    ));
}

/// A hidden field the confirming form sends on.
pub struct Field {
    pub name: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    heading: String,
    /// What will happen, one sentence each, counts first.
    consequences: Vec<String>,
    action: String,
    fields: Vec<Field>,
    /// A reason box: `Some(required)` when the action takes one.
    reason: Option<bool>,
    button: String,
    cancel: String,
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many of the account's tokens are active, only `creator`'s when given.
fn active_tokens(
    conn: &mut db::DbConnection,
    account: AccountId,
    creator: Option<UserId>,
) -> Result<i64, AppError> {
    let search = TokenSearch {
        creator,
        ..TokenSearch::default()
    };
    Ok(db::token_search::search(conn, account, &search)?.total)
}

/// The member's email in the account, or 404.
fn member_email(
    conn: &mut db::DbConnection,
    account: AccountId,
    user: UserId,
) -> Result<(String, Role), AppError> {
    db::memberships::list(conn, account)?
        .into_iter()
        .find(|m| m.user_id == user)
        .map(|m| (m.email, m.role))
        .ok_or(AppError::NotFound)
}

fn user_id(raw: &str) -> Result<UserId, AppError> {
    raw.parse::<i32>()
        .map(UserId)
        .map_err(|_| AppError::NotFound)
}

async fn confirm_remove(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::ManageMembers)?;
    let account = signed_in.account_id()?;
    let target = user_id(&path)?;
    let (email, tokens, invitations) = db::run(&state.pool, move |conn| {
        let (email, _) = member_email(conn, account, target)?;
        let tokens = active_tokens(conn, account, Some(target))?;
        let invitations = db::invitations::list_open(conn, account)?
            .into_iter()
            .filter(|open| open.invitation.invited_by == Some(target.0))
            .count() as i64;
        Ok((email, tokens, invitations))
    })
    .await?;
    render(&ConfirmPage {
        layout: signed_in.layout("Remove member", "/members")?,
        heading: format!("Remove {email}?"),
        consequences: vec![
            format!(
                "{} will be revoked: programs that use {} get 401 from the next request on.",
                plural(tokens, "active token of theirs", "active tokens of theirs"),
                if tokens == 1 { "it" } else { "them" }
            ),
            format!(
                "{} they sent will be cancelled.",
                plural(invitations, "open invitation", "open invitations")
            ),
            format!(
                "{email} will no longer see this account. This can't be undone; invite them again to bring them back."
            ),
        ],
        action: format!("/members/{}/remove", target.0),
        fields: Vec::new(),
        reason: None,
        button: "Remove and revoke their tokens".into(),
        cancel: "/members".into(),
    })
}

#[derive(Deserialize)]
struct RoleQuery {
    #[serde(default)]
    role: String,
}

/// What a role may do that the one below it may not.
fn powers(role: Role) -> &'static str {
    match role {
        Role::Owner => "change roles, suspend API access and set the token lifetime",
        Role::Admin => "see and revoke everyone's tokens, invite members and read the audit log",
        Role::Member => "manage their own tokens",
    }
}

async fn confirm_role(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<RoleQuery>,
) -> Result<HttpResponse, HtmlError> {
    let account = signed_in.account_id()?;
    let target = user_id(&path)?;
    let role = Role::parse(&query.role).map_err(AppError::invalid)?;
    let (email, current) =
        db::run(&state.pool, move |conn| member_email(conn, account, target)).await?;
    signed_in.require(Action::ChangeRole {
        from: current,
        to: role,
    })?;
    let lost: Vec<String> = Role::ALL
        .into_iter()
        .filter(|r| *r > role && *r <= current)
        .map(|r| format!("{email} will no longer be able to {}.", powers(r)))
        .collect();
    let consequences = if role == current {
        vec![format!("{email} is already {}.", role.with_article())]
    } else if lost.is_empty() {
        vec![format!("{email} will be able to {}.", powers(role))]
    } else {
        lost
    };
    render(&ConfirmPage {
        layout: signed_in.layout("Change role", "/members")?,
        heading: format!("Make {email} {}?", role.with_article()),
        consequences,
        action: format!("/members/{}/role", target.0),
        fields: vec![Field {
            name: "role",
            value: role.as_str().to_string(),
        }],
        reason: None,
        button: format!("Make them {}", role.with_article()),
        cancel: "/members".into(),
    })
}

/// The suspension's consequences for an account with `tokens` active tokens.
fn suspension_consequences(tokens: i64) -> Vec<String> {
    vec![
        format!(
            "{} will get 403 on every API call until access is restored.",
            plural(tokens, "active token", "active tokens")
        ),
        "Nothing is revoked: restoring access makes them work again.".into(),
    ]
}

async fn confirm_suspend(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::SetApiAccess)?;
    let account = signed_in.account_id()?;
    let tokens = db::run(&state.pool, move |conn| active_tokens(conn, account, None)).await?;
    render(&ConfirmPage {
        layout: signed_in.layout("Suspend API access", "/members")?,
        heading: "Suspend this account's API access?".into(),
        consequences: suspension_consequences(tokens),
        action: "/account/api-access".into(),
        fields: vec![Field {
            name: "state",
            value: "suspended".into(),
        }],
        reason: Some(false),
        button: "Suspend API access".into(),
        cancel: "/members".into(),
    })
}

async fn confirm_operator_suspend(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::OperatorConsole)?;
    let account = path
        .parse::<i32>()
        .map(AccountId)
        .map_err(|_| AppError::NotFound)?;
    let (name, tokens) = db::run(&state.pool, move |conn| {
        let found = db::accounts::find(conn, account)?;
        Ok((found.name, active_tokens(conn, account, None)?))
    })
    .await?;
    render(&ConfirmPage {
        layout: signed_in.layout("Suspend API access", "/admin")?,
        heading: format!("Suspend the API access of {name}?"),
        consequences: suspension_consequences(tokens),
        action: format!("/admin/accounts/{}/api-access", account.0),
        fields: vec![Field {
            name: "state",
            value: "suspended".into(),
        }],
        reason: Some(true),
        button: "Suspend API access".into(),
        cancel: "/admin".into(),
    })
}

async fn confirm_end_others(
    signed_in: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    let user = signed_in.user_id();
    let current = signed_in.session_id;
    let others = db::run(&state.pool, move |conn| {
        db::sessions::list_for_user(conn, user, db::now())
    })
    .await?
    .into_iter()
    .filter(|s| Some(crate::domain::SessionId(s.id)) != current)
    .count() as i64;
    render(&ConfirmPage {
        layout: signed_in.layout("End other sessions", "")?,
        heading: "End all your other sessions?".into(),
        consequences: vec![format!(
            "{} will be signed out at once; this browser stays signed in.",
            plural(others, "other session", "other sessions")
        )],
        action: "/account/sessions/end-others".into(),
        fields: Vec::new(),
        reason: None,
        button: "End other sessions".into(),
        cancel: "/account/sessions".into(),
    })
}
