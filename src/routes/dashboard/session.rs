//! Who is signed in, from the session: the `SignedIn` extractor, `sign_in`, the typed
//! `UserSession` that is the dashboard's only way into the session's state, and the
//! `CsrfForm` extractor every form post goes through. The CSRF tokens themselves are
//! made and checked in `auth::csrf`.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::assets;
use super::view::{AccountChoice, Flash, HtmlError, Layout, NavLink, Suspension, TimeView};
use crate::auth::client_addr;
use crate::auth::csrf;
use crate::auth::session::{ABSOLUTE_LIFETIME_HOURS, keys};
use crate::db::{self, accounts::Account, tx::Principal, users::User};
use crate::domain::{AccountId, Role, SessionId, UserId};
use crate::error::AppError;
use crate::policy::{self, Action, Standing};
use crate::state::AppState;

// ---------------------------------------------------------------------------------------------
// The typed session
// ---------------------------------------------------------------------------------------------

/// The account the person works in; they may belong to several.
const ACCOUNT_ID: &str = "account_id";
/// When they signed in (Unix seconds), for the absolute lifetime.
const SIGNED_IN_AT: &str = "signed_in_at";
/// A one-time message for the next page.
const FLASH: &str = "flash";
/// When the person last proved it was them (Unix seconds): a password or a second factor,
/// at sign-in or at a sudo check. Sensitive changes need it recent (`sudo`).
const CHECKED_AT: &str = "checked_at";
/// When a single sign-on's ID token expires (Unix seconds): the session ends then, so a
/// person the provider no longer lets in is out by that time at the latest.
const SSO_UNTIL: &str = "sso_until";

/// The dashboard's session, typed: every key it holds is read and written here, and
/// nowhere else in `routes`. The store (`auth::session`) owns the keys it fills in
/// itself (the row id, where a sign-in came from) and `auth::csrf` the CSRF token's.
pub(crate) struct UserSession(Session);

impl UserSession {
    pub fn of(req: &HttpRequest) -> Self {
        Self(req.get_session())
    }

    fn user_id(&self) -> Option<i32> {
        self.0.get::<i32>(keys::USER_ID).ok().flatten()
    }

    fn signed_in_at(&self) -> i64 {
        self.0.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0)
    }

    /// Whether this session began at the provider.
    pub fn via_sso(&self) -> bool {
        self.0
            .get::<bool>(keys::VIA_SSO)
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    fn sso_until(&self) -> Option<i64> {
        self.0.get::<i64>(SSO_UNTIL).ok().flatten()
    }

    fn account_id(&self) -> Option<i32> {
        self.0.get::<i32>(ACCOUNT_ID).ok().flatten()
    }

    /// The account the next pages work in.
    pub fn set_account(&self, account: AccountId) -> Result<(), AppError> {
        self.0.insert(ACCOUNT_ID, account.0).map_err(session_error)
    }

    fn row_id(&self) -> Option<SessionId> {
        self.0
            .get::<i32>(keys::ROW_ID)
            .ok()
            .flatten()
            .map(SessionId)
    }

    /// Leaves the message for the next page that renders.
    pub fn flash(&self, flash: Flash) {
        let _ = self.0.insert(FLASH, flash);
    }

    fn take_flash(&self) -> Option<Flash> {
        let flash = self.0.get::<Flash>(FLASH).ok().flatten();
        if flash.is_some() {
            self.0.remove(FLASH);
        }
        flash
    }

    /// When the person last proved it was them; 0 if never in this session.
    pub fn checked_at(&self) -> i64 {
        self.0.get::<i64>(CHECKED_AT).ok().flatten().unwrap_or(0)
    }

    /// They proved it was them just now.
    pub fn mark_checked(&self) -> Result<(), AppError> {
        self.0
            .insert(CHECKED_AT, db::now().and_utc().timestamp())
            .map_err(session_error)
    }

    /// Ends the session: its row is deleted, so the cookie is worthless even if copied.
    pub fn end(&self) {
        self.0.purge();
    }
}

impl FromRequest for UserSession {
    type Error = HtmlError;
    type Future = std::future::Ready<Result<Self, HtmlError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

fn session_error(e: actix_session::SessionInsertError) -> AppError {
    AppError::internal(format!("session: {e}"))
}

/// The longest User-Agent kept with a session: enough for any real browser's.
const MAX_USER_AGENT: usize = 512;

/// Starts a signed-in session for `user` in `account`, under a new session id. This is
/// the only place a session gets a database row: the store writes it when this request
/// ends, with where the sign-in came from.
pub(crate) fn sign_in(
    req: &HttpRequest,
    user: UserId,
    account: Option<AccountId>,
) -> Result<UserSession, AppError> {
    let session = UserSession::of(req);
    let raw = &session.0;
    raw.insert(keys::USER_ID, user.0).map_err(session_error)?;
    if let Some(account) = account {
        session.set_account(account)?;
    }
    raw.insert(SIGNED_IN_AT, db::now().and_utc().timestamp())
        .map_err(session_error)?;
    // Signing in is proving it: sudo mode is open from the start.
    session.mark_checked()?;
    renew_id(req)?;
    csrf::rotate_anonymous(req)?;
    Ok(session)
}

/// Starts a session for a person the provider vouched for. It needs no second Keyward
/// factor (the provider owns that), and ends when the provider's ID token expires.
pub(crate) fn sign_in_via_sso(
    req: &HttpRequest,
    user: UserId,
    account: Option<AccountId>,
    id_token_expires_at: i64,
) -> Result<UserSession, AppError> {
    let session = sign_in(req, user, account)?;
    session
        .0
        .insert(keys::VIA_SSO, true)
        .map_err(session_error)?;
    session
        .0
        .insert(SSO_UNTIL, id_token_expires_at)
        .map_err(session_error)?;
    Ok(session)
}

/// Where a fresh sign-in lands: an operator who belongs to no account on the console;
/// anyone else on the token list, which says when they belong to no account yet.
pub(crate) fn landing(operator: bool, account: Option<AccountId>) -> &'static str {
    if account.is_none() && operator {
        "/admin"
    } else {
        "/tokens"
    }
}

/// Moves the session to a new id (and a new row, written when this request ends), with a
/// new CSRF token: at sign-in, so an id planted before is worth nothing after, and at a
/// password change, so a stolen copy of the cookie is signed out with the old password.
pub(crate) fn renew_id(req: &HttpRequest) -> Result<(), AppError> {
    let raw = req.get_session();
    raw.renew();
    // The store keeps where a sign-in came from in columns, not in the state it loads:
    // the new row is told again.
    if let Some(ip) = client_addr::text_of(req) {
        raw.insert(keys::CLIENT_IP, ip).map_err(session_error)?;
    }
    if let Some(agent) = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        let agent: String = agent.chars().take(MAX_USER_AGENT).collect();
        raw.insert(keys::CLIENT_AGENT, agent)
            .map_err(session_error)?;
    }
    csrf::rotate(&raw)?;
    Ok(())
}

/// The frame for pages anyone may open (sign-in, sign-up, an invitation): no header
/// links, but forms need a CSRF token. For an anonymous visitor that token lives in a
/// cookie, and nothing is written to the session, so the page costs the server no
/// database row.
pub(crate) fn public_layout(title: &str, req: &HttpRequest) -> Result<Layout, AppError> {
    let session = UserSession::of(req);
    let signed_in = session.user_id().is_some();
    Ok(Layout {
        csrf: csrf::form_token(req)?,
        flash: signed_in.then(|| session.take_flash()).flatten(),
        ..Layout::anonymous(title)
    })
}

// ---------------------------------------------------------------------------------------------
// The signed-in person
// ---------------------------------------------------------------------------------------------

/// A signed-in person and the account they are working in. Taking this as a handler
/// argument is what makes a page require sign-in.
pub(crate) struct SignedIn {
    pub session: UserSession,
    pub user: User,
    /// Every account the user belongs to, with their role in it.
    pub memberships: Vec<(Account, Role)>,
    /// Which of `memberships` they are working in; `None` when they belong to none.
    current: Option<usize>,
    pub ip: Option<String>,
    /// This session's row, to tell it apart in the user's list of sessions.
    pub session_id: Option<SessionId>,
    /// When the current account's API access is suspended: by whom and why.
    suspension: Option<Suspension>,
    /// Whether the person has a second factor; read only for an operator or in an account
    /// that requires one, the two places that ask (false elsewhere).
    two_factor: bool,
}

impl SignedIn {
    pub fn user_id(&self) -> UserId {
        self.user.user_id()
    }

    /// The signed-in user, as the write path knows them.
    pub fn principal(&self) -> Principal {
        Principal::User {
            id: self.user_id(),
            ip: self.ip.clone(),
        }
    }

    /// The signed-in user acting through the operator console.
    pub fn operator(&self) -> Principal {
        Principal::Operator {
            id: self.user_id(),
            ip: self.ip.clone(),
        }
    }

    /// Leaves a message for the next page.
    pub fn flash(&self, flash: Flash) {
        self.session.flash(flash);
    }

    /// The current account and the user's role in it.
    fn membership(&self) -> Option<&(Account, Role)> {
        self.current.map(|i| &self.memberships[i])
    }

    /// The current account, or a page saying there is none.
    pub fn account(&self) -> Result<(&Account, Role), AppError> {
        self.membership().map(|(a, r)| (a, *r)).ok_or_else(|| {
            AppError::forbidden(
                "You don't belong to an account yet. Ask an admin for an invitation.",
            )
        })
    }

    pub fn account_id(&self) -> Result<AccountId, AppError> {
        Ok(self.account()?.0.account_id())
    }

    /// Where the user stood when this request began. Good for drawing the page; every
    /// change is checked again inside its own transaction.
    fn standing(&self) -> Standing {
        Standing::member(
            self.user_id(),
            self.membership().map(|(_, role)| *role),
            self.user.operator,
        )
        .unverified(self.user.email_verified_at.is_none())
    }

    pub fn can(&self, action: Action) -> bool {
        policy::allows(&self.standing(), action)
    }

    /// A 403 page unless the user's standing allows `action`. The operator console also
    /// needs a second factor: an operator without one is sent to set it up.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if action == Action::OperatorConsole && self.can(action) && !self.two_factor {
            return Err(AppError::SecondFactorRequired(
                "The operator console needs two-factor sign-in. Set it up first.".into(),
            ));
        }
        if self.can(action) {
            return Ok(());
        }
        if action != Action::OperatorConsole {
            self.account()?;
        }
        Err(AppError::forbidden(policy::refusal(
            &self.standing(),
            action,
        )))
    }

    pub fn layout(&self, title: &str, current: &str) -> Result<Layout, AppError> {
        let mut nav = Vec::new();
        if self.current.is_some() {
            nav.push(("/tokens", "Tokens"));
            nav.push(("/account/clusters", "Clusters"));
        }
        if self.can(Action::ManageMembers) {
            nav.push(("/members", "Members"));
        }
        if self.can(Action::ReadAudit) {
            nav.push(("/audit", "Audit log"));
        }
        if self.can(Action::OperatorConsole) {
            nav.push(("/admin", "Operator"));
        }
        Ok(Layout {
            title: title.to_string(),
            user_email: Some(self.user.email.clone()),
            account_name: self.membership().map(|(a, _)| a.name.clone()),
            accounts: self
                .memberships
                .iter()
                .enumerate()
                .map(|(i, (a, _))| AccountChoice {
                    id: a.id,
                    name: a.name.clone(),
                    current: Some(i) == self.current,
                })
                .collect(),
            nav: nav
                .into_iter()
                .map(|(href, label)| NavLink {
                    href,
                    label,
                    current: href == current,
                })
                .collect(),
            suspension: self.suspension.clone(),
            csrf: csrf::token(&self.session.0)?,
            flash: self.session.take_flash(),
            css_href: assets::css_href(),
            js_href: assets::js_href(),
        })
    }
}

impl FromRequest for SignedIn {
    type Error = HtmlError;
    type Future = LocalBoxFuture<'static, Result<Self, HtmlError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = UserSession::of(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let ip = client_addr::text_of(req);
        let path = req.path().to_string();
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state is missing"))?;
            let user_id = session.user_id().ok_or(AppError::SignInRequired)?;
            let signed_in_at = session.signed_in_at();
            let now = db::now().and_utc().timestamp();
            if now - signed_in_at > ABSOLUTE_LIFETIME_HOURS * 3600
                || session.sso_until().is_some_and(|until| now >= until)
            {
                session.end();
                return Err(AppError::SignInRequired.into());
            }
            let wanted = session.account_id();
            let session_id = session.row_id();
            let (user, memberships, suspension, two_factor) = db::run(&state.pool, move |conn| {
                let user = db::users::find(conn, UserId(user_id)).map_err(|e| match e {
                    AppError::NotFound => AppError::SignInRequired,
                    other => other,
                })?;
                let memberships = db::accounts::of_user(conn, user.user_id())?;
                // Read only where it is asked (the console, an account that requires one),
                // not on every signed-in request.
                let asked = user.operator
                    || current_of(&memberships, wanted)
                        .is_some_and(|i| memberships[i].0.require_two_factor);
                let two_factor = asked && db::two_factor::has_second_factor(conn, user.user_id())?;
                let suspension = current_of(&memberships, wanted)
                    .map(|i| &memberships[i].0)
                    .filter(|a| a.is_suspended())
                    .map(|a| suspension_of(conn, a))
                    .transpose()?;
                Ok((user, memberships, suspension, two_factor))
            })
            .await
            // A user that no longer exists ends the session; a database hiccup does not.
            .inspect_err(|e| {
                if matches!(e, AppError::SignInRequired) {
                    session.end();
                }
            })?;
            let current = current_of(&memberships, wanted);
            if let Some(i) = current
                && Some(memberships[i].0.id) != wanted
            {
                let _ = session.set_account(memberships[i].0.account_id());
            }
            // An account that requires a second factor shows a member without one none of
            // its pages: only their own, where they set it up.
            if let Some(i) = current
                && memberships[i].0.require_two_factor
                && !two_factor
                && !session.via_sso()
                && !PERSONAL_PAGES
                    .iter()
                    .any(|p| path == *p || path.starts_with(&format!("{p}/")))
            {
                return Err(AppError::SecondFactorRequired(format!(
                    "{} requires two-factor sign-in of its members. Set it up first.",
                    memberships[i].0.name
                ))
                .into());
            }
            Ok(SignedIn {
                session,
                user,
                memberships,
                current,
                ip,
                session_id,
                suspension,
                two_factor,
            })
        })
    }
}

/// A person's own pages, which an account that requires a second factor doesn't block:
/// where they set it up, and their sign-in's other settings.
const PERSONAL_PAGES: [&str; 8] = [
    "/account/two-factor",
    "/account/passkeys",
    "/account/sessions",
    "/account/password",
    "/account/email",
    "/account/notices",
    "/account/switch",
    "/logout",
];

/// The account asked for, if still a member; else the first one.
fn current_of(memberships: &[(Account, Role)], wanted: Option<i32>) -> Option<usize> {
    memberships
        .iter()
        .position(|(a, _)| Some(a.id) == wanted)
        .or((!memberships.is_empty()).then_some(0))
}

/// Who suspended a suspended account's API access, and why, from its latest suspension
/// event. The operator is named by role, not by address.
fn suspension_of(conn: &mut db::DbConnection, account: &Account) -> Result<Suspension, AppError> {
    let filter = db::audit::AuditFilter {
        action: Some(db::audit::action::API_SUSPENDED),
        actor: None,
    };
    let (events, _) = db::audit::list_for_account(conn, account.account_id(), &filter, 1)?;
    let event = events.into_iter().next();
    Ok(Suspension {
        by: if account.suspended_by_operator {
            "the operator".to_string()
        } else {
            event
                .as_ref()
                .map_or_else(|| "its owners".to_string(), |e| e.actor_label.clone())
        },
        reason: event.as_ref().map(|e| e.detail.clone()).unwrap_or_default(),
        since: event.map(|e| TimeView::new(e.at)),
        by_operator: account.suspended_by_operator,
    })
}

// ---------------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf_token: String,
}

/// A dashboard form's body, as its extractor reads it: one too large to read is a 422
/// that says so.
pub(crate) async fn form_body(
    body: <web::Bytes as FromRequest>::Future,
) -> Result<web::Bytes, AppError> {
    body.await
        .map_err(|_| AppError::invalid("The form could not be read; it may be too large."))
}

/// A urlencoded form that passed the CSRF checks. Every dashboard POST takes one.
pub(crate) struct CsrfForm<T>(pub T);

/// A form with nothing but its CSRF token, such as logout.
#[derive(Deserialize)]
pub(crate) struct NoFields {}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = HtmlError;
    type Future = LocalBoxFuture<'static, Result<Self, HtmlError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = form_body(body).await?;
            Ok(CsrfForm(checked_form(&req, &body)?))
        })
    }
}

/// A urlencoded body read into `T`, once its origin and CSRF token pass.
pub(crate) fn checked_form<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, AppError> {
    csrf::check_origin(req)?;
    let field: TokenField = serde_urlencoded::from_bytes(body).map_err(|_| csrf::rejected())?;
    csrf::check_token(req, &field.csrf_token)?;
    serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::invalid(format!("The form could not be read: {e}.")))
}
