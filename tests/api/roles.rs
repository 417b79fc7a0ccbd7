//! Who may do what: every role (and a stranger, a visitor and an operator) against every
//! dashboard action that the roles tell apart. One table; each cell names the one answer
//! expected and, for actions that change something, whether this account changed.

use std::fmt;

use reqwest::StatusCode;

use crate::support::admin::{
    call_api, join, member_id, member_role, members_page, operator, submit,
};
use crate::support::api::{TestApp, spawn_app};
use crate::support::browser::{Browser, CreatedToken, Page, email_for, signed_up};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Owner,
    Admin,
    Member,
    /// The owner of another account: all rights there, none here.
    Outsider,
    Anonymous,
    /// A platform operator who belongs to no account.
    Operator,
}

const ACTORS: [Actor; 6] = [
    Actor::Owner,
    Actor::Admin,
    Actor::Member,
    Actor::Outsider,
    Actor::Anonymous,
    Actor::Operator,
];

#[derive(Debug, Clone, Copy)]
enum Action {
    ListTokens,
    NewTokenForm,
    CreateToken,
    ShowColleaguesToken,
    RevokeColleaguesToken,
    ListMembers,
    Invite,
    RemoveMember,
    ChangeRole,
    ReadAudit,
    SuspendApi,
    OperatorConsole,
    OperatorRevoke,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::ListTokens => "GET /tokens",
            Action::NewTokenForm => "GET /tokens/new",
            Action::CreateToken => "POST /tokens",
            Action::ShowColleaguesToken => "GET /tokens/{colleague's}",
            Action::RevokeColleaguesToken => "POST /tokens/{colleague's}/revoke",
            Action::ListMembers => "GET /members",
            Action::Invite => "POST /members/invite",
            Action::RemoveMember => "POST /members/{id}/remove",
            Action::ChangeRole => "POST /members/{id}/role",
            Action::ReadAudit => "GET /audit",
            Action::SuspendApi => "POST /account/api-access",
            Action::OperatorConsole => "GET /admin",
            Action::OperatorRevoke => "POST /admin/revoke",
        })
    }
}

/// The one answer a cell expects. `To` may name `{token}` (the cell's token id) or `{key}`.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Page,
    To(&'static str),
    Forbidden,
    NotFound,
    SignIn,
}

use Expect::{Forbidden, NotFound, Page as Ok200, SignIn, To};

/// The table: one row per action, one cell per actor in the order of `ACTORS`.
#[rustfmt::skip]
const MATRIX: [(Action, [Expect; 6]); 13] = [
    //                                 owner                  admin                  member     outsider          anonymous operator
    (Action::ListTokens,            [Ok200,                 Ok200,                 Ok200,     Ok200,            SignIn, Forbidden]),
    (Action::NewTokenForm,          [Ok200,                 Ok200,                 Ok200,     Ok200,            SignIn, Forbidden]),
    (Action::CreateToken,           [Ok200,                 Ok200,                 Ok200,     Ok200,            SignIn, Forbidden]),
    (Action::ShowColleaguesToken,   [Ok200,                 Ok200,                 Forbidden, NotFound,         SignIn, Forbidden]),
    (Action::RevokeColleaguesToken, [To("/tokens/{token}"), To("/tokens/{token}"), Forbidden, NotFound,         SignIn, Forbidden]),
    (Action::ListMembers,           [Ok200,                 Ok200,                 Forbidden, Ok200,            SignIn, Forbidden]),
    (Action::Invite,                [Ok200,                 Ok200,                 Forbidden, Ok200,            SignIn, Forbidden]),
    (Action::RemoveMember,          [To("/members"),        To("/members"),        Forbidden, NotFound,         SignIn, Forbidden]),
    (Action::ChangeRole,            [To("/members"),        Forbidden,             Forbidden, NotFound,         SignIn, Forbidden]),
    (Action::ReadAudit,             [Ok200,                 Ok200,                 Forbidden, Ok200,            SignIn, Forbidden]),
    (Action::SuspendApi,            [To("/members"),        Forbidden,             Forbidden, To("/members"),   SignIn, Forbidden]),
    (Action::OperatorConsole,       [Forbidden,             Forbidden,             Forbidden, Forbidden,        SignIn, Ok200]),
    (Action::OperatorRevoke,        [Forbidden,             Forbidden,             Forbidden, Forbidden,        SignIn, To("/admin?q={key}")]),
];

/// One account with an owner, an admin, two members (the actor and a colleague whose tokens
/// are the targets), a stranger who owns another account, a visitor, and an operator.
struct Fixture {
    app: TestApp,
    owner: Browser,
    admin: Browser,
    member: Browser,
    colleague: Browser,
    colleague_token: CreatedToken,
    outsider: Browser,
    anonymous: Browser,
    operator: Browser,
}

/// What one cell saw: the answer, and for an action that changes things, whether this
/// account changed.
struct Seen {
    page: Page,
    changed: Option<bool>,
    token: Option<CreatedToken>,
}

impl Fixture {
    async fn new() -> Self {
        let app = spawn_app().await;
        let owner = signed_up(&app.address, "Matrix Co").await;
        let admin = join(&owner, &email_for("matrix admin"), "admin").await;
        let member = join(&owner, &email_for("matrix member"), "member").await;
        let colleague = join(&owner, &email_for("matrix colleague"), "member").await;
        let colleague_token = colleague.create_token("colleague's token").await;
        let outsider = signed_up(&app.address, "Elsewhere Inc").await;
        let anonymous = Browser::new(&app.address);
        let operator = operator(&app, &email_for("matrix operator")).await;
        Self {
            app,
            owner,
            admin,
            member,
            colleague,
            colleague_token,
            outsider,
            anonymous,
            operator,
        }
    }

    fn browser(&self, actor: Actor) -> &Browser {
        match actor {
            Actor::Owner => &self.owner,
            Actor::Admin => &self.admin,
            Actor::Member => &self.member,
            Actor::Outsider => &self.outsider,
            Actor::Anonymous => &self.anonymous,
            Actor::Operator => &self.operator,
        }
    }

    /// A page each actor can open, for the CSRF token of their session.
    fn home(actor: Actor) -> &'static str {
        match actor {
            Actor::Anonymous => "/login",
            Actor::Operator => "/admin",
            _ => "/tokens",
        }
    }

    /// Submits `fields` with the actor's own CSRF token, so only their role decides.
    async fn post(&self, actor: Actor, path: &str, fields: &[(&str, &str)]) -> Page {
        submit(self.browser(actor), Self::home(actor), path, fields).await
    }

    /// A member who joins just for this cell, so that one actor's change can't decide another's.
    async fn fresh_member(&self, label: &str) -> (String, i32) {
        let email = email_for(label);
        join(&self.owner, &email, "member").await;
        let id = member_id(&self.owner, &email).await;
        (email, id)
    }

    /// Whether a token of this account now gets a non-200 from the API.
    async fn api_refuses(&self, token: &CreatedToken) -> bool {
        call_api(&self.app, &token.token).await.status() != StatusCode::OK
    }

    async fn perform(&self, action: Action, actor: Actor) -> Seen {
        let browser = self.browser(actor);
        let tag = format!("{actor:?}").to_lowercase();
        let mut token = None;
        let (page, changed) = match action {
            Action::ListTokens => (browser.get("/tokens").await, None),
            Action::NewTokenForm => (browser.get("/tokens/new").await, None),
            Action::CreateToken => {
                // The form's nonce when the actor may open the form; a made-up one otherwise.
                let form = browser.get("/tokens/new").await;
                let nonce = form.field_value("nonce").unwrap_or_else(|| "none".into());
                let name = format!("made by {tag}");
                let fields = [("nonce", nonce.as_str()), ("name", &name), ("read", "1")];
                let page = self.post(actor, "/tokens", &fields).await;
                let listed = self.owner.get("/tokens").await.text().contains(&name);
                (page, Some(listed))
            }
            Action::ShowColleaguesToken => {
                let path = format!("/tokens/{}", self.colleague_token.id);
                (browser.get(&path).await, None)
            }
            Action::RevokeColleaguesToken => {
                let target = self.colleague.create_token(&format!("for {tag}")).await;
                let path = format!("/tokens/{}/revoke", target.id);
                let page = self.post(actor, &path, &[("reason", "matrix")]).await;
                let changed = self.api_refuses(&target).await;
                token = Some(target);
                (page, Some(changed))
            }
            Action::ListMembers => (browser.get("/members").await, None),
            Action::Invite => {
                let email = email_for(&format!("invited by {tag}"));
                let fields = [("email", email.as_str()), ("role", "member")];
                let page = self.post(actor, "/members/invite", &fields).await;
                let open = members_page(&self.owner).await.text();
                (page, Some(open.contains(&format!("{email} as member"))))
            }
            Action::RemoveMember => {
                let (email, id) = self.fresh_member(&format!("removed by {tag}")).await;
                let path = format!("/members/{id}/remove");
                let page = self.post(actor, &path, &[]).await;
                let gone = member_role(&self.owner, &email).await.is_none();
                (page, Some(gone))
            }
            Action::ChangeRole => {
                let (email, id) = self.fresh_member(&format!("promoted by {tag}")).await;
                let path = format!("/members/{id}/role");
                let page = self.post(actor, &path, &[("role", "admin")]).await;
                let role = member_role(&self.owner, &email).await;
                (page, Some(role.as_deref() == Some("admin")))
            }
            Action::ReadAudit => (browser.get("/audit").await, None),
            Action::SuspendApi => {
                let fields = [("state", "suspended")];
                let page = self.post(actor, "/account/api-access", &fields).await;
                let suspended = self.api_refuses(&self.colleague_token).await;
                if suspended {
                    // Back to active, so the next cell starts where this one did.
                    let fields = [("state", "active")];
                    self.post(Actor::Owner, "/account/api-access", &fields)
                        .await
                        .assert_redirect("/members");
                }
                (page, Some(suspended))
            }
            Action::OperatorConsole => (browser.get("/admin").await, None),
            Action::OperatorRevoke => {
                let target = self.colleague.create_token(&format!("leak {tag}")).await;
                let fields = [("key", target.token.key.as_str()), ("reason", "matrix")];
                let page = self.post(actor, "/admin/revoke", &fields).await;
                let changed = self.api_refuses(&target).await;
                token = Some(target);
                (page, Some(changed))
            }
        };
        Seen {
            page,
            changed,
            token,
        }
    }
}

/// How a cell's answer reads in the table.
fn describe(page: &Page) -> String {
    let html = page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html"));
    let text = page.text();
    match page.status {
        StatusCode::OK if html => "200 page".into(),
        StatusCode::SEE_OTHER => format!("303 → {}", page.header("location").unwrap_or("?")),
        StatusCode::FORBIDDEN if html && text.contains("Not allowed") => "403 page".into(),
        StatusCode::NOT_FOUND if html && text.contains("Page not found") => "404 page".into(),
        status => {
            let start: String = text.chars().take(80).collect();
            format!("{status} {start:?}")
        }
    }
}

fn expected(expect: Expect, token: Option<&CreatedToken>) -> String {
    match expect {
        Ok200 => "200 page".into(),
        Forbidden => "403 page".into(),
        NotFound => "404 page".into(),
        SignIn => "303 → /login".into(),
        To(location) => {
            let (id, key) = token.map_or((String::new(), ""), |t| {
                (t.id.to_string(), t.token.key.as_str())
            });
            format!(
                "303 → {}",
                location.replace("{token}", &id).replace("{key}", key)
            )
        }
    }
}

/// A change to this account is expected exactly when a member of it (or the operator) is
/// allowed the action; the outsider's allowed actions change only their own account.
fn expected_change(expect: Expect, actor: Actor) -> bool {
    let allowed = match expect {
        Ok200 => true,
        To(location) => location != "/login",
        Forbidden | NotFound | SignIn => false,
    };
    allowed && actor != Actor::Outsider
}

fn change_word(changed: bool) -> &'static str {
    if changed { "; changed" } else { "; unchanged" }
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_policy_allows() {
    let fx = Fixture::new().await;

    let mut mismatches = Vec::new();
    for (action, row) in MATRIX {
        for (actor, expect) in ACTORS.into_iter().zip(row) {
            let seen = fx.perform(action, actor).await;
            let mut got = describe(&seen.page);
            let mut want = expected(expect, seen.token.as_ref());
            if let Some(changed) = seen.changed {
                got.push_str(change_word(changed));
                want.push_str(change_word(expected_change(expect, actor)));
            }
            if got != want {
                mismatches.push((action.to_string(), format!("{actor:?}"), want, got));
            }
        }
    }

    if !mismatches.is_empty() {
        let width = |pick: fn(&(String, String, String, String)) -> &String| {
            mismatches
                .iter()
                .map(|m| pick(m).chars().count())
                .max()
                .unwrap_or(0)
        };
        let (wa, wb, wc) = (width(|m| &m.0), width(|m| &m.1), width(|m| &m.2));
        let mut table = format!(
            "{:wa$} | {:wb$} | {:wc$} | got\n",
            "action", "actor", "expected"
        );
        for (action, actor, want, got) in &mismatches {
            table.push_str(&format!(
                "{action:wa$} | {actor:wb$} | {want:wc$} | {got}\n"
            ));
        }
        panic!(
            "{} of {} cells differ from the policy:\n{table}",
            mismatches.len(),
            MATRIX.len() * ACTORS.len()
        );
    }
}
