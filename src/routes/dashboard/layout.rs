//! What every page shares: who is signed in, to which account, the header's links,
//! the CSRF token for its forms, and a one-time flash message.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::NaiveDateTime;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use super::HtmlError;
use super::assets;
use crate::auth::csrf;
use crate::auth::session::{ABSOLUTE_LIFETIME_HOURS, keys};
use crate::db::{self, accounts::Account, tx::Principal, users::User};
use crate::domain::{AccountId, Role, SessionId, UserId};
use crate::error::AppError;
use crate::policy::{self, Action, Standing};
use crate::state::AppState;

pub use keys::USER_ID;
pub const ACCOUNT_ID: &str = "account_id";
pub const SIGNED_IN_AT: &str = "signed_in_at";
const FLASH: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// "success" or "error": picks the banner's colour and icon.
    pub kind: String,
    pub text: String,
}

impl Flash {
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            kind: "success".into(),
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error".into(),
            text: text.into(),
        }
    }

    /// Leaves the message for the next page that renders.
    pub fn set(self, session: &Session) {
        let _ = session.insert(FLASH, self);
    }

    fn take(session: &Session) -> Option<Self> {
        let flash = session.get::<Flash>(FLASH).ok().flatten();
        if flash.is_some() {
            session.remove(FLASH);
        }
        flash
    }
}

/// A time as a person reads it ("3 minutes ago") with the exact UTC time for a tooltip.
#[derive(Debug, Clone)]
pub struct TimeView {
    pub relative: String,
    pub exact: String,
    pub iso: String,
}

impl TimeView {
    pub fn new(at: NaiveDateTime) -> Self {
        Self::at(at, db::now())
    }

    pub fn at(at: NaiveDateTime, now: NaiveDateTime) -> Self {
        let secs = (now - at).num_seconds();
        let (divisor, unit) = match secs.abs() {
            s if s < 60 => (0, ""),
            s if s < 3600 => (60, "minute"),
            s if s < 86_400 => (3600, "hour"),
            s if s < 86_400 * 60 => (86_400, "day"),
            s if s < 86_400 * 730 => (86_400 * 30, "month"),
            _ => (86_400 * 365, "year"),
        };
        // The past rounds down ("3 days ago" until the fourth day is over); the future
        // rounds to the nearest, so a 30-day token reads "in 30 days", not "in 29 days".
        let n = match divisor {
            0 => 0,
            d if secs >= 0 => secs / d,
            d => (secs.abs() + d / 2) / d,
        };
        let relative = if n == 0 {
            if secs >= 0 {
                "just now".to_string()
            } else {
                "in under a minute".to_string()
            }
        } else {
            let plural = if n == 1 { "" } else { "s" };
            if secs >= 0 {
                format!("{n} {unit}{plural} ago")
            } else {
                format!("in {n} {unit}{plural}")
            }
        };
        Self {
            relative,
            exact: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            iso: crate::timefmt::rfc3339(&at),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub struct AccountChoice {
    pub id: i32,
    pub name: String,
    pub current: bool,
}

/// The frame of every page, shaped for `base.html`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub user_email: Option<String>,
    pub account_name: Option<String>,
    pub accounts: Vec<AccountChoice>,
    pub nav: Vec<NavLink>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub css_href: String,
    pub js_href: String,
}

impl Layout {
    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_string(),
            user_email: None,
            account_name: None,
            accounts: Vec::new(),
            nav: Vec::new(),
            csrf: String::new(),
            flash: None,
            css_href: assets::css_href(),
            js_href: assets::js_href(),
        }
    }

    /// For pages anyone may open (sign-in, sign-up, an invitation): no header links, but
    /// forms need a CSRF token. For an anonymous visitor that token lives in a cookie, and
    /// nothing is written to the session, so the page costs the server no database row.
    pub fn public(title: &str, req: &HttpRequest) -> Result<Self, AppError> {
        let session = req.get_session();
        let signed_in = matches!(session.get::<i32>(USER_ID), Ok(Some(_)));
        Ok(Self {
            csrf: csrf::form_token(req)?,
            flash: signed_in.then(|| Flash::take(&session)).flatten(),
            ..Self::anonymous(title)
        })
    }
}

/// A signed-in person and the account they are working in. Taking this as a handler
/// argument is what makes a page require sign-in.
pub struct SignedIn {
    pub session: Session,
    pub user: User,
    /// Every account the user belongs to, with their role in it.
    pub memberships: Vec<(Account, Role)>,
    /// Which of `memberships` they are working in; `None` when they belong to none.
    current: Option<usize>,
    pub ip: Option<String>,
    /// This session's row, to tell it apart in the user's list of sessions.
    pub session_id: Option<SessionId>,
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
    }

    pub fn can(&self, action: Action) -> bool {
        policy::allows(&self.standing(), action)
    }

    /// A 403 page unless the user's standing allows `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
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
            csrf: csrf::token(&self.session)?,
            flash: Flash::take(&self.session),
            css_href: assets::css_href(),
            js_href: assets::js_href(),
        })
    }
}

/// The longest User-Agent kept with a session: enough for any real browser's.
const MAX_USER_AGENT: usize = 512;

/// Starts a signed-in session for `user` in `account`, under a new session id. This is
/// the only place a session gets a database row: the store writes it when this request
/// ends, with where the sign-in came from.
pub fn sign_in(
    req: &HttpRequest,
    user: UserId,
    account: Option<AccountId>,
) -> Result<(), AppError> {
    let session = req.get_session();
    let fail = |e: actix_session::SessionInsertError| AppError::internal(format!("session: {e}"));
    // A new id at sign-in, so an id planted before sign-in is worth nothing after.
    session.renew();
    session.insert(USER_ID, user.0).map_err(fail)?;
    if let Some(ip) = req.peer_addr().map(|a| a.ip().to_string()) {
        session.insert(keys::CLIENT_IP, ip).map_err(fail)?;
    }
    if let Some(agent) = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        let agent: String = agent.chars().take(MAX_USER_AGENT).collect();
        session.insert(keys::CLIENT_AGENT, agent).map_err(fail)?;
    }
    if let Some(account) = account {
        session.insert(ACCOUNT_ID, account.0).map_err(fail)?;
    }
    session
        .insert(SIGNED_IN_AT, db::now().and_utc().timestamp())
        .map_err(fail)?;
    csrf::rotate(&session)?;
    Ok(())
}

impl FromRequest for SignedIn {
    type Error = HtmlError;
    type Future = LocalBoxFuture<'static, Result<Self, HtmlError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let ip = req.peer_addr().map(|a| a.ip().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state is missing"))?;
            let user_id = session
                .get::<i32>(USER_ID)
                .ok()
                .flatten()
                .ok_or(AppError::SignInRequired)?;
            let signed_in_at = session.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0);
            if db::now().and_utc().timestamp() - signed_in_at > ABSOLUTE_LIFETIME_HOURS * 3600 {
                session.purge();
                return Err(AppError::SignInRequired.into());
            }
            let wanted = session.get::<i32>(ACCOUNT_ID).ok().flatten();
            let session_id = session
                .get::<i32>(keys::ROW_ID)
                .ok()
                .flatten()
                .map(SessionId);
            let (user, memberships) = db::run(&state.pool, move |conn| {
                let user = db::users::find(conn, UserId(user_id)).map_err(|e| match e {
                    AppError::NotFound => AppError::SignInRequired,
                    other => other,
                })?;
                let memberships = db::memberships::accounts_of(conn, user.user_id())?;
                Ok((user, memberships))
            })
            .await
            // A user that no longer exists ends the session; a database hiccup does not.
            .inspect_err(|e| {
                if matches!(e, AppError::SignInRequired) {
                    session.purge();
                }
            })?;
            // The account asked for, if still a member; else the first one.
            let current = memberships
                .iter()
                .position(|(a, _)| Some(a.id) == wanted)
                .or((!memberships.is_empty()).then_some(0));
            if let Some(i) = current
                && Some(memberships[i].0.id) != wanted
            {
                let _ = session.insert(ACCOUNT_ID, memberships[i].0.id);
            }
            Ok(SignedIn {
                session,
                user,
                memberships,
                current,
                ip,
                session_id,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        let now = db::now();
        let cases = [
            (0, "just now"),
            (59, "just now"),
            (60, "1 minute ago"),
            (7200, "2 hours ago"),
            (86_400 * 3, "3 days ago"),
            (-86_400 * 30, "in 30 days"),
            (-(86_400 * 30 - 5), "in 30 days"),
            (86_400 * 30 - 5, "29 days ago"),
        ];
        for (ago, expected) in cases {
            let at = now - chrono::Duration::seconds(ago);
            assert_eq!(TimeView::at(at, now).relative, expected, "{ago}");
        }
    }
}
