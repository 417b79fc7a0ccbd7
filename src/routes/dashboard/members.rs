//! `/members`: who belongs to the account; invitations; removal (which revokes the
//! member's tokens in the same transaction); role changes; and the owner's switch for
//! the account's API access.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::layout::{Flash, Layout, SignedIn, TimeView};
use super::{HtmlError, page_method_not_allowed, post_only, redirect, render, render_with_status};
use crate::auth::csrf::{CsrfForm, site_origin};
use crate::db::{self, accounts, audit, audit::Actor};
use crate::domain::{AccountId, Email, Reason, Role, UserId};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/members")
            .route(web::get().to(list))
            .default_service(web::to(page_method_not_allowed)),
    )
    .service(post_only("/members/invite", invite))
    .service(post_only("/members/{user_id}/remove", remove))
    .service(post_only("/members/{user_id}/role", change_role))
    .service(post_only("/account/api-access", set_api_access))
    .service(post_only("/account/switch", switch_account));
}

pub struct MemberRow {
    pub user_id: i32,
    pub email: String,
    pub role: &'static str,
    pub joined: TimeView,
    pub last_login: Option<TimeView>,
    pub is_me: bool,
}

pub struct InvitationRow {
    pub email: String,
    pub role: String,
    pub expires: TimeView,
}

#[derive(Template)]
#[template(path = "members/list.html")]
struct MembersPage {
    layout: Layout,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    can_change_roles: bool,
    roles: [&'static str; 3],
    api_suspended: bool,
    invite: InviteOutcome,
}

/// What the invite form shows after a submission: the new link, or what to fix with
/// the email typed kept in the field.
#[derive(Default)]
pub struct InviteOutcome {
    link: Option<String>,
    email: String,
    errors: Vec<String>,
}

async fn list(signed_in: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::ManageMembers)?;
    render(&members_page(&signed_in, &state, InviteOutcome::default()).await?)
}

async fn members_page(
    signed_in: &SignedIn,
    state: &AppState,
    invite: InviteOutcome,
) -> Result<MembersPage, AppError> {
    let (account, _) = signed_in.account()?;
    let account_id = account.account_id();
    let (members, invitations) = db::run(&state.pool, move |conn| {
        Ok((
            db::memberships::list(conn, account_id)?,
            db::invitations::list_open(conn, account_id)?,
        ))
    })
    .await?;
    let me = signed_in.user_id();
    Ok(MembersPage {
        layout: signed_in.layout("Members", "/members")?,
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id.0,
                is_me: m.user_id == me,
                email: m.email,
                role: m.role.as_str(),
                joined: TimeView::new(m.joined_at),
                last_login: m.last_login_at.map(TimeView::new),
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow {
                email: i.email,
                role: i.role,
                expires: TimeView::new(i.expires_at),
            })
            .collect(),
        can_change_roles: signed_in.can(Action::ChangeRoles),
        roles: ["member", "admin", "owner"],
        api_suspended: account.is_suspended(),
        invite,
    })
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn invite(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::ManageMembers)?;
    let created = create_invitation(&signed_in, &state, &form).await;
    let (status, invite, flash) = match created {
        Ok(token) => (
            StatusCode::OK,
            InviteOutcome {
                link: Some(format!("{}/invitations/{token}", site_origin(&req))),
                ..InviteOutcome::default()
            },
            Some(Flash::success(format!(
                "Invitation created for {}. Send them the link below; it works once, for {} days.",
                form.email.trim(),
                db::invitations::VALID_DAYS
            ))),
        ),
        Err(AppError::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            InviteOutcome {
                email: form.email,
                errors,
                ..InviteOutcome::default()
            },
            None,
        ),
        Err(other) => return Err(other.into()),
    };
    let mut page = members_page(&signed_in, &state, invite).await?;
    page.layout.flash = flash.or(page.layout.flash);
    render_with_status(&page, status)
}

/// Checks the invite form and creates the invitation with its audit event; returns the
/// link's token.
async fn create_invitation(
    signed_in: &SignedIn,
    state: &AppState,
    form: &InviteForm,
) -> Result<String, AppError> {
    let email = Email::parse(&form.email).map_err(AppError::invalid)?;
    let role = match Role::parse(&form.role).map_err(AppError::invalid)? {
        Role::Owner => {
            return Err(AppError::invalid(
                "Invite as admin or member; an owner can promote them after they join.",
            ));
        }
        role => role,
    };
    let account = signed_in.account_id()?;
    let inviter = signed_in.user_id();
    let actor = signed_in.actor();
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let existing = db::users::find_by_email(conn, &email)?;
            if let Some(user) = existing
                && db::memberships::role_of(conn, user.user_id(), account)?.is_some()
            {
                return Err(AppError::invalid(format!(
                    "{email} is already a member of this account."
                )));
            }
            let (_, token) = db::invitations::create(conn, account, &email, role, inviter)?;
            audit::record(
                conn,
                account,
                &actor,
                audit::Event {
                    action: audit::action::MEMBER_INVITED,
                    target: &format!("user {email}"),
                    token: None,
                    detail: &format!("as {role}"),
                },
            )?;
            Ok(token)
        })
    })
    .await
}

fn member_id(raw: &str) -> Result<UserId, AppError> {
    raw.parse::<i32>()
        .map(UserId)
        .map_err(|_| AppError::NotFound)
}

/// The member's current role, or 404 if they are not in this account.
fn role_in(
    conn: &mut diesel::SqliteConnection,
    account: AccountId,
    user: UserId,
) -> Result<Role, AppError> {
    db::memberships::role_of(conn, user, account)?.ok_or(AppError::NotFound)
}

fn last_owner_guard(
    conn: &mut diesel::SqliteConnection,
    account: AccountId,
    current: Role,
) -> Result<(), AppError> {
    if current == Role::Owner && db::memberships::count_owners(conn, account)? <= 1 {
        return Err(AppError::invalid(
            "An account needs at least one owner. Make someone else an owner first.",
        ));
    }
    Ok(())
}

async fn remove(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    _form: CsrfForm<crate::auth::csrf::NoFields>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::ManageMembers)?;
    let target = member_id(&path)?;
    let account = signed_in.account_id()?;
    let my_role = signed_in.account()?.1;
    let actor = signed_in.actor();
    let (email, revoked) = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let role = role_in(conn, account, target)?;
            if role == Role::Owner && my_role != Role::Owner {
                return Err(AppError::forbidden("Only an owner can remove an owner."));
            }
            last_owner_guard(conn, account, role)?;
            let user = db::users::find(conn, target)?;
            let revoked = db::tokens::revoke_all_of_creator(
                conn,
                account,
                target,
                &actor,
                "member removed from the account",
            )?;
            db::memberships::remove(conn, account, target)?;
            audit::record(
                conn,
                account,
                &actor,
                audit::Event {
                    action: audit::action::MEMBER_REMOVED,
                    target: &format!("user {}", user.email),
                    token: None,
                    detail: &format!("{} token(s) revoked", revoked.len()),
                },
            )?;
            Ok((user.email, revoked))
        })
    })
    .await?;
    state.sync_cache().await?;
    Flash::success(format!(
        "{email} was removed, and {} of their tokens revoked.",
        revoked.len()
    ))
    .set(&signed_in.session);
    Ok(redirect("/members"))
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn change_role(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::ChangeRoles)?;
    let target = member_id(&path)?;
    let role = Role::parse(&form.role).map_err(AppError::invalid)?;
    let account = signed_in.account_id()?;
    let actor = signed_in.actor();
    let email = db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let current = role_in(conn, account, target)?;
            if current == role {
                return db::users::find(conn, target).map(|u| u.email);
            }
            if role != Role::Owner {
                last_owner_guard(conn, account, current)?;
            }
            db::memberships::set_role(conn, account, target, role)?;
            let user = db::users::find(conn, target)?;
            audit::record(
                conn,
                account,
                &actor,
                audit::Event {
                    action: audit::action::MEMBER_ROLE_CHANGED,
                    target: &format!("user {}", user.email),
                    token: None,
                    detail: &format!("{current} → {role}"),
                },
            )?;
            Ok(user.email)
        })
    })
    .await?;
    Flash::success(format!(
        "{email} is now {} {role}.",
        if role == Role::Admin || role == Role::Owner {
            "an"
        } else {
            "a"
        }
    ))
    .set(&signed_in.session);
    Ok(redirect("/members"))
}

/// The switch for an account's API access, from the owner's page or the operator's.
#[derive(Deserialize)]
pub struct ApiAccessForm {
    #[serde(default)]
    state: String,
    #[serde(default)]
    reason: String,
}

impl ApiAccessForm {
    /// `true` to suspend, `false` to restore, and the reason given.
    pub fn parse(&self) -> Result<(bool, Reason), AppError> {
        let suspend = match self.state.as_str() {
            "suspended" => true,
            "active" => false,
            _ => {
                return Err(AppError::invalid(
                    "Choose to suspend or restore API access.",
                ));
            }
        };
        Ok((
            suspend,
            Reason::parse(&self.reason).map_err(AppError::invalid)?,
        ))
    }
}

/// Suspends or restores an account's API access, with its audit event, and drops the
/// account's tokens from every process's cache. Shared by owners and operators.
pub async fn apply_api_access(
    state: &AppState,
    account: AccountId,
    suspend: bool,
    actor: Actor,
    reason: Reason,
) -> Result<(), AppError> {
    db::run(&state.pool, move |conn| {
        db::write(conn, |conn| {
            let target = db::accounts::find(conn, account)?;
            let new_state = if suspend {
                accounts::SUSPENDED
            } else {
                accounts::ACTIVE
            };
            if target.api_state == new_state {
                return Ok(());
            }
            db::accounts::set_api_state(conn, account, new_state)?;
            audit::record(
                conn,
                account,
                &actor,
                audit::Event {
                    action: if suspend {
                        audit::action::API_SUSPENDED
                    } else {
                        audit::action::API_RESTORED
                    },
                    target: &format!("account {} ({})", target.name, target.slug),
                    token: None,
                    detail: reason.as_str(),
                },
            )
        })
    })
    .await?;
    state.sync_cache().await?;
    Ok(())
}

async fn set_api_access(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ApiAccessForm>,
) -> Result<HttpResponse, HtmlError> {
    signed_in.require(Action::SuspendApi)?;
    let (suspend, reason) = form.parse()?;
    let account = signed_in.account_id()?;
    apply_api_access(&state, account, suspend, signed_in.actor(), reason).await?;
    Flash::success(if suspend {
        "API access is suspended: every token of this account now gets 403."
    } else {
        "API access is restored."
    })
    .set(&signed_in.session);
    Ok(redirect("/members"))
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    account_id: String,
}

async fn switch_account(
    signed_in: SignedIn,
    CsrfForm(form): CsrfForm<SwitchForm>,
) -> Result<HttpResponse, HtmlError> {
    let wanted = form
        .account_id
        .parse::<i32>()
        .map_err(|_| AppError::NotFound)?;
    let (account, _) = signed_in
        .memberships
        .iter()
        .find(|(a, _)| a.id == wanted)
        .ok_or(AppError::NotFound)?;
    signed_in
        .session
        .insert(super::layout::ACCOUNT_ID, account.id)
        .map_err(|e| AppError::internal(format!("session: {e}")))?;
    Flash::success(format!("You are now working in {}.", account.name)).set(&signed_in.session);
    Ok(redirect("/tokens"))
}
