//! `/members`: who belongs to the account; invitations; removal (which revokes the
//! member's tokens in the same transaction); role changes; and the owner's switch for
//! the account's API access.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::forms::ApiAccessForm;
use super::session::{CsrfForm, NoFields, SignedIn};
use super::sudo::{self, SudoForm};
use super::view::{
    Flash, HtmlError, Layout, TimeView, get_only, post_only, redirect, render, render_with_status,
};
use crate::auth::origin::site_origin;
use crate::db;
use crate::domain::{AccountId, ApiState, Email, Role, UserId};
use crate::error::AppError;
use crate::policy::{self, Action, Standing};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/members", list))
        .service(post_only("/members/invite", invite))
        .service(post_only(
            "/members/invitations/{id}/cancel",
            cancel_invitation,
        ))
        .service(post_only("/members/invitations/{id}/link", new_link))
        .service(post_only("/members/{user_id}/remove", remove))
        .service(post_only("/members/{user_id}/role", change_role))
        .service(post_only("/account/api-access", set_api_access))
        .service(post_only("/account/switch", switch_account))
        .service(post_only(
            "/account/two-factor-policy",
            set_two_factor_policy,
        ));
}

struct MemberRow {
    pub user_id: i32,
    pub email: String,
    pub role: &'static str,
    pub joined: TimeView,
    pub last_login: Option<TimeView>,
    pub is_me: bool,
    pub two_factor: bool,
}

struct InvitationRow {
    pub id: i32,
    pub email: String,
    pub role: &'static str,
    pub invited_by: String,
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
    /// The roles this user may invite as, from the policy.
    invite_roles: Vec<&'static str>,
    api_suspended: bool,
    /// The account's longest token lifetime, in words.
    token_lifetime: String,
    /// Whether every member must sign in with a second factor, and whether this person
    /// may change that.
    require_two_factor: bool,
    can_set_two_factor_policy: bool,
    /// The single sign-on provider's name (`None`: SSO is off), and the account's policy.
    sso_name: Option<String>,
    require_sso: bool,
    claimed_domain: String,
    invite: InviteOutcome,
}

/// What the invite form shows after a submission: the new link, or what to fix with
/// the email typed kept in the field.
#[derive(Default)]
struct InviteOutcome {
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
                two_factor: m.two_factor,
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|open| InvitationRow {
                id: open.invitation.id,
                email: open.invitation.email,
                role: open.invitation.role.as_str(),
                invited_by: open
                    .inviter_email
                    .unwrap_or_else(|| "a former member".into()),
                expires: TimeView::new(open.invitation.expires_at),
            })
            .collect(),
        can_change_roles: signed_in.can(Action::ChangeRole {
            from: Role::Member,
            to: Role::Admin,
        }),
        roles: ["member", "admin", "owner"],
        invite_roles: [Role::Member, Role::Admin]
            .into_iter()
            .filter(|role| signed_in.can(Action::Invite { role: *role }))
            .map(|role| role.as_str())
            .collect(),
        api_suspended: account.is_suspended(),
        token_lifetime: super::lifetime::in_words(account.max_token_lifetime_days),
        require_two_factor: account.require_two_factor,
        can_set_two_factor_policy: signed_in.can(Action::SetTwoFactorPolicy),
        sso_name: state.oidc.as_ref().map(|o| o.name().to_string()),
        require_sso: account.require_sso,
        claimed_domain: account.claimed_domain.clone().unwrap_or_default(),
        invite,
    })
}

#[derive(Deserialize)]
struct InviteForm {
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
                "Invitation created for {}. {}; it works once, for {} days.",
                form.email.trim(),
                if state.mail_on() {
                    "We are mailing them the link below"
                } else {
                    "Send them the link below"
                },
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

/// Checks the invite form and creates the invitation; returns the link's token.
async fn create_invitation(
    signed_in: &SignedIn,
    state: &AppState,
    form: &InviteForm,
) -> Result<String, AppError> {
    let email = Email::parse(&form.email).map_err(AppError::invalid)?;
    let role = Role::parse(&form.role).map_err(AppError::invalid)?;
    if role == Role::Owner {
        // Never allowed, whoever asks: a wrong choice in the form, not a missing right.
        return Err(AppError::invalid(policy::refusal(
            &Standing::NOBODY,
            Action::Invite { role },
        )));
    }
    let mail_on = state.mail_on();
    let (_, token) = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| match mail_on {
                true => db::invitations::invite_by_mail(tx, &email, role),
                false => db::invitations::invite(tx, &email, role),
            },
        )
        .await?;
    Ok(token)
}

async fn cancel_invitation(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.parse::<i32>().map_err(|_| AppError::NotFound)?;
    let cancelled = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::invitations::cancel(tx, id),
        )
        .await?;
    signed_in.flash(Flash::success(format!(
        "The invitation for {} was cancelled; its link no longer works.",
        cancelled.email
    )));
    Ok(redirect("/members"))
}

/// A new link for an open invitation, shown on the members page as a new invitation's is.
async fn new_link(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.parse::<i32>().map_err(|_| AppError::NotFound)?;
    let (invitation, token) = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::invitations::renew_link(tx, id),
        )
        .await?;
    let invite = InviteOutcome {
        link: Some(format!("{}/invitations/{token}", site_origin(&req))),
        ..InviteOutcome::default()
    };
    let mut page = members_page(&signed_in, &state, invite).await?;
    page.layout.flash = Some(Flash::success(format!(
        "A new link for {}'s invitation is below; the old link no longer works.",
        invitation.email
    )));
    render(&page)
}

fn member_id(raw: &str) -> Result<UserId, AppError> {
    raw.parse::<i32>()
        .map(UserId)
        .map_err(|_| AppError::NotFound)
}

async fn remove(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SudoForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    let target = member_id(&path)?;
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let removed = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::members::remove_member(tx, target),
        )
        .await?;
    signed_in.flash(Flash::success(format!(
        "{} was removed, {} of their tokens revoked and {} of their invitations cancelled.",
        removed.email, removed.tokens_revoked, removed.invitations_cancelled
    )));
    Ok(redirect("/members"))
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn change_role(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SudoForm<RoleForm>,
) -> Result<HttpResponse, HtmlError> {
    let target = member_id(&path)?;
    let role = Role::parse(&form.form.role).map_err(AppError::invalid)?;
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let email = state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::members::change_role(tx, target, role),
        )
        .await?;
    signed_in.flash(Flash::success(format!(
        "{email} is now {}.",
        role.with_article()
    )));
    Ok(redirect("/members"))
}

async fn set_api_access(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ApiAccessForm>,
) -> Result<HttpResponse, HtmlError> {
    let (api_state, reason) = form.parse()?;
    state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::accounts::set_api_access(tx, api_state, &reason),
        )
        .await?;
    signed_in.flash(Flash::success(match api_state {
        ApiState::Suspended => "API access is suspended: every token of this account now gets 403.",
        ApiState::Active => "API access is restored.",
    }));
    Ok(redirect("/members"))
}

#[derive(Deserialize)]
struct SwitchForm {
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
    signed_in.session.set_account(AccountId(account.id))?;
    signed_in.flash(Flash::success(format!(
        "You are now working in {}.",
        account.name
    )));
    Ok(redirect("/tokens"))
}

#[derive(Deserialize)]
struct PolicyForm {
    /// `required` or `optional`.
    #[serde(default)]
    two_factor: String,
}

/// An owner requires a second factor of every member, or stops requiring it: a change to
/// the account's settings, so it needs sudo mode.
async fn set_two_factor_policy(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    form: SudoForm<PolicyForm>,
) -> Result<HttpResponse, HtmlError> {
    let required = match form.form.two_factor.as_str() {
        "required" => true,
        "optional" => false,
        _ => {
            return Err(AppError::invalid(
                "Choose whether two-factor sign-in is required or up to each member.",
            )
            .into());
        }
    };
    signed_in.require(Action::SetTwoFactorPolicy)?;
    if let Some(check) = sudo::check(&req, &signed_in, &state, &form).await? {
        return Ok(check);
    }
    let mail_on = state.mail_on();
    state
        .write(
            signed_in.principal(),
            Some(signed_in.account_id()?),
            move |tx| db::accounts::set_two_factor_policy(tx, required, mail_on),
        )
        .await?;
    signed_in.flash(Flash::success(if required {
        "Every member must now sign in with a second factor. Members without one are sent to set it up; their tokens keep working."
    } else {
        "Two-factor sign-in is now up to each member."
    }));
    Ok(redirect("/members"))
}
