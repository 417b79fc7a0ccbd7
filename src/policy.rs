//! Who may do what in an account, and who may use the operator console: the one gate for
//! those. Every change to an account's tokens, members, invitations and API access is
//! checked here inside the transaction that makes it (see `db::tx`), and the dashboard
//! draws its navigation and those pages from the same answers, so a link is shown exactly
//! when its action would be allowed.
//!
//! It does not cover what a person does to their own sign-in (their sessions, their
//! password, which of their accounts they work in), nor signing up, signing in or
//! accepting an invitation: those belong to whoever holds the session, the password or
//! the invitation link, and their store functions check that themselves.

use chrono::NaiveDateTime;

use crate::domain::{RateLimit, Role, Scope, Scopes, TokenId, UserId};

/// What someone wants to do, with the facts about its target that the answer depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateToken,
    /// See, revoke or roll a token; `creator` is who made it.
    ManageToken {
        creator: Option<UserId>,
    },
    SeeAllTokens,
    /// Raise or clear a token's rate limit: a member may tighten their own token's limit,
    /// never undo one an admin set.
    LoosenRateLimit,
    /// See the members page and cancel open invitations.
    ManageMembers,
    /// Invite someone to join as `role`.
    Invite {
        role: Role,
    },
    /// Remove a member whose role is `role`.
    RemoveMember {
        role: Role,
    },
    ChangeRole {
        from: Role,
        to: Role,
    },
    ReadAudit,
    /// Suspend or restore the account's API access.
    SetApiAccess,
    /// The operator console: any account's tokens, found and revoked by key or secret.
    OperatorConsole,
    /// Revoke, in whatever account holds it, a token whose secret a scanner found leaked.
    /// Only the system does this, for `/secret-scanning/report`.
    RevokeLeakedSecret,
    /// Set the account's longest allowed token lifetime.
    SetTokenLifetime,
    /// Require (or stop requiring) a second factor of every member.
    SetTwoFactorPolicy,
    /// A token revoking itself (`DELETE /token`), with nothing but its own credentials.
    RevokeItself {
        token: TokenId,
    },
    /// Create, change or delete one of the account's clusters (`POST`, `PUT`, `DELETE
    /// /clusters`).
    WriteClusters,
}

/// Who is acting, as far as the rules care. Read inside the write's transaction by
/// `db::tx`; read at the start of a request by the dashboard, for drawing pages only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The signed-in user; `None` for the command line, the system and visitors.
    pub user: Option<UserId>,
    /// Their role in the account acted on; `None` when they are not a member.
    pub role: Option<Role>,
    /// A platform operator acting as one (through the console).
    pub operator: bool,
    /// The command line and the system's own jobs: whoever runs them already holds the
    /// database file, so no rule could stop them.
    pub trusted: bool,
    /// An API token acting through `/access-tokens`: it acts for the member who made it
    /// (`user` and `role` are theirs, read inside the write), never beyond them, and only
    /// on tokens. A token made at the command line has no maker and acts for the account.
    pub token: Option<TokenStanding>,
    /// A user whose address is not verified yet: they may look, not create tokens or invite.
    pub unverified: bool,
}

/// What an acting token holds, as read inside the write: the most it can hand on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStanding {
    pub id: TokenId,
    pub scopes: Scopes,
    pub expires_at: Option<NaiveDateTime>,
    /// Its rate limit: the most a token it makes may have.
    pub rate_limit: Option<RateLimit>,
    /// Its account's API access is suspended: it may only revoke itself.
    pub suspended: bool,
}

impl Standing {
    pub const TRUSTED: Standing = Standing {
        user: None,
        role: None,
        operator: false,
        trusted: true,
        token: None,
        unverified: false,
    };

    pub const NOBODY: Standing = Standing {
        user: None,
        role: None,
        operator: false,
        trusted: false,
        token: None,
        unverified: false,
    };

    pub fn member(user: UserId, role: Option<Role>, operator: bool) -> Self {
        Standing {
            user: Some(user),
            role,
            operator,
            trusted: false,
            token: None,
            unverified: false,
        }
    }

    /// The same standing, for a user whose address is not verified yet (`true`).
    pub fn unverified(self, unverified: bool) -> Self {
        Standing { unverified, ..self }
    }

    /// An API token made by `maker` (whose role in the account is `role`), or at the
    /// command line (`None`).
    pub fn token(maker: Option<UserId>, role: Option<Role>, token: TokenStanding) -> Self {
        Standing {
            user: maker,
            role,
            operator: false,
            trusted: false,
            token: Some(token),
            unverified: false,
        }
    }
}

/// Whether `standing` allows `action`.
pub fn allows(standing: &Standing, action: Action) -> bool {
    if standing.trusted {
        return true;
    }
    if standing.unverified && matches!(action, Action::CreateToken | Action::Invite { .. }) {
        return false;
    }
    let role = standing.role;
    let at_least = |needed: Role| role.is_some_and(|r| r >= needed);
    if let Some(token) = standing.token {
        // Holding its own key and secret is enough for a token to stop itself, whatever
        // else it may do.
        if let Action::RevokeItself { token: target } = action {
            return token.id == target;
        }
        if token.suspended {
            return false;
        }
        // A token made at the command line has no maker: whoever made it holds the
        // database, so it acts for the whole account, but still only on tokens.
        let for_account = standing.user.is_none();
        // Its scopes were checked once, where it called (`require_scope`, through
        // `ApiCaller::acting_with`): they never change. What can change is read here: its
        // maker's role. A token whose maker has left the account acts for nobody.
        return match action {
            Action::WriteClusters | Action::CreateToken => for_account || role.is_some(),
            Action::SeeAllTokens => for_account || at_least(Role::Admin),
            Action::ManageToken { creator } => {
                for_account
                    || at_least(Role::Admin)
                    || (role.is_some() && creator.is_some() && creator == standing.user)
            }
            _ => false,
        };
    }
    match action {
        Action::OperatorConsole => standing.operator,
        Action::SetApiAccess => standing.operator || at_least(Role::Owner),
        Action::SetTokenLifetime | Action::SetTwoFactorPolicy => at_least(Role::Owner),
        Action::RevokeItself { .. } => false,
        Action::CreateToken | Action::WriteClusters => role.is_some(),
        Action::ManageToken { creator } => {
            at_least(Role::Admin)
                || (role.is_some() && creator.is_some() && creator == standing.user)
        }
        Action::SeeAllTokens
        | Action::ManageMembers
        | Action::ReadAudit
        | Action::LoosenRateLimit => at_least(Role::Admin),
        // Owners are made by promotion, never by invitation; admins only by an owner.
        Action::Invite { role: invited } => match invited {
            Role::Owner => false,
            Role::Admin => at_least(Role::Owner),
            Role::Member => at_least(Role::Admin),
        },
        Action::RemoveMember { role: target } => {
            at_least(Role::Admin) && (target != Role::Owner || at_least(Role::Owner))
        }
        Action::ChangeRole { .. } => at_least(Role::Owner),
        Action::RevokeLeakedSecret => false,
    }
}

/// Whether a token holding `caller` may make a token with `scopes` that expires at
/// `expires_at`: never with a scope it lacks, never with `tokens` (granted only in the
/// dashboard or at the command line), never outliving itself. The error names the field.
pub fn may_mint(
    caller: &TokenStanding,
    scopes: Scopes,
    expires_at: Option<NaiveDateTime>,
) -> Result<(), String> {
    if scopes.contains(Scope::Tokens) {
        return Err(
            "'scopes': a token can't grant the 'tokens' scope; grant it from the \
                    dashboard or the command line."
                .into(),
        );
    }
    if let Some(missing) = scopes.missing_from(&caller.scopes) {
        return Err(format!(
            "'scopes': this token can't grant {}, which it doesn't have itself.",
            missing.names().join(", ")
        ));
    }
    match (caller.expires_at, expires_at) {
        (Some(own), None) => Err(format!(
            "'expires_in_days': this token expires at {}, so a token it makes must expire \
             too, no later.",
            crate::timefmt::rfc3339(&own)
        )),
        (Some(own), Some(wanted)) if wanted > own => Err(format!(
            "'expires_in_days': a token this token makes can't outlive it; this one expires \
             at {}.",
            crate::timefmt::rfc3339(&own)
        )),
        _ => Ok(()),
    }
}

/// Whether a token holding `caller` may make a token limited to `wanted`: never more
/// than its own limit, and never none when it has one. The error names the field and the
/// caller's limit.
pub fn may_limit(caller: &TokenStanding, wanted: Option<RateLimit>) -> Result<(), String> {
    match (caller.rate_limit, wanted) {
        (Some(own), None) => Err(format!(
            "'rate_limit_per_minute': this token is limited to {own}, so a token it makes \
             must have a limit too, no higher."
        )),
        (Some(own), Some(wanted)) if wanted.per_minute() > own.per_minute() => Err(format!(
            "'rate_limit_per_minute': a token this token makes can't be allowed more than \
             it is; this one is limited to {own}."
        )),
        _ => Ok(()),
    }
}
/// A token may give another only permissions it holds itself, as with scopes.
pub fn may_grant_permissions(
    caller: &crate::domain::Permissions,
    wanted: &crate::domain::Permissions,
) -> Result<(), String> {
    let missing = wanted.missing_from(caller);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "'permissions': this token can't grant {}, which it doesn't hold itself.",
            missing.join(", ")
        ))
    }
}

/// A token kept to some addresses may give another no wider an allowlist.
pub fn may_grant_addresses(
    caller: &crate::domain::IpAllowlist,
    wanted: &crate::domain::IpAllowlist,
) -> Result<(), String> {
    if wanted.within(caller) {
        Ok(())
    } else {
        Err(format!(
            "'allowed_ips': this token may be used only from {}, so a token it makes must be kept within them too.",
            caller.as_str()
        ))
    }
}

/// A token with a credit limit may give another no more credits than it has left, and
/// no refill it doesn't get itself; one without a limit may give any.
pub fn may_grant_credits(
    caller: Option<crate::domain::Credits>,
    wanted: Option<crate::domain::Credits>,
) -> Result<(), String> {
    let Some(own) = caller else {
        return Ok(());
    };
    let Some(wanted) = wanted else {
        return Err(format!(
            "'credits': this token has {} credits left, so a token it makes must have a credit limit too, no higher.",
            own.remaining()
        ));
    };
    if wanted.remaining() > own.remaining() {
        return Err(format!(
            "'credits': a token this token makes can't have more credits than it has left ({}).",
            own.remaining()
        ));
    }
    match (own.refill, wanted.refill) {
        (_, None) => Ok(()),
        (Some(mine), Some(theirs))
            if mine.interval == theirs.interval && theirs.amount() <= mine.amount() =>
        {
            Ok(())
        }
        _ => Err(
            "'credits': a token this token makes can't be refilled more often or with more than this token is."
                .into(),
        ),
    }
}

/// The one check of an API token's scopes, and its one sentence. A token's scopes never
/// change, so the check runs once, where the token calls (`ApiCaller::require`).
pub fn require_scope(scopes: Scopes, needed: Scope) -> Result<(), String> {
    if scopes.contains(needed) {
        Ok(())
    } else {
        Err(format!(
            "This API token does not have the '{}' scope that this request needs.",
            needed.as_str()
        ))
    }
}

/// Why an unverified user may not create tokens or invite.
pub const UNVERIFIED: &str = "Confirm your email address first: follow the link we mailed you. \
     Your account's email page can send it again.";

/// The sentence for a refusal: what a person sees on the 403 page.
pub fn refusal(standing: &Standing, action: Action) -> &'static str {
    if standing.unverified && matches!(action, Action::CreateToken | Action::Invite { .. }) {
        return UNVERIFIED;
    }
    if let Some(token) = standing.token {
        if token.suspended {
            return "This account's API access is suspended: a token may only revoke itself.";
        }
        return if action == Action::WriteClusters {
            "This API token acts for the member who made it, and they are no longer a member."
        } else {
            "This API token acts for the member who made it, and their role does not allow that."
        };
    }
    match action {
        Action::Invite { role: Role::Owner } => {
            "Invite as admin or member; an owner can promote them after they join."
        }
        _ if standing.role.is_none()
            && standing.user.is_some()
            && action != Action::OperatorConsole =>
        {
            "You are not a member of this account (any more). Ask an owner or admin for an invitation."
        }
        Action::OperatorConsole => "The operator console is for platform operators.",
        Action::SetTokenLifetime => "Only an owner can set the account's token lifetime.",
        Action::SetTwoFactorPolicy => {
            "Only an owner can require two-factor sign-in of the account's members."
        }
        Action::LoosenRateLimit => {
            "Only an owner or admin can raise or clear a token's rate limit; you may lower it."
        }
        Action::RevokeItself { .. } => "A token can only revoke itself.",
        Action::Invite { role: Role::Admin } => "Only an owner can invite someone as an admin.",
        Action::RemoveMember { role: Role::Owner } => "Only an owner can remove an owner.",
        _ => "Your role in this account does not allow that. Ask an owner or admin.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: UserId = UserId(1);

    fn as_role(role: Role) -> Standing {
        Standing::member(ME, Some(role), false)
    }

    #[test]
    fn members_manage_only_their_own_tokens() {
        let member = as_role(Role::Member);
        assert!(allows(&member, Action::ManageToken { creator: Some(ME) }));
        assert!(!allows(
            &member,
            Action::ManageToken {
                creator: Some(UserId(2))
            }
        ));
        assert!(!allows(&member, Action::ManageToken { creator: None }));
        assert!(allows(
            &as_role(Role::Admin),
            Action::ManageToken { creator: None }
        ));
    }

    #[test]
    fn someone_who_is_no_longer_a_member_may_do_nothing_in_the_account() {
        let gone = Standing::member(ME, None, false);
        for action in [
            Action::CreateToken,
            Action::ManageToken { creator: Some(ME) },
            Action::ManageMembers,
            Action::Invite { role: Role::Member },
            Action::ChangeRole {
                from: Role::Member,
                to: Role::Owner,
            },
            Action::SetApiAccess,
        ] {
            assert!(!allows(&gone, action), "{action:?}");
        }
    }

    #[test]
    fn only_owners_change_roles_suspend_and_invite_admins() {
        let owner_only = [
            Action::ChangeRole {
                from: Role::Member,
                to: Role::Admin,
            },
            Action::SetApiAccess,
            Action::Invite { role: Role::Admin },
            Action::RemoveMember { role: Role::Owner },
        ];
        for action in owner_only {
            assert!(allows(&as_role(Role::Owner), action), "{action:?}");
            assert!(!allows(&as_role(Role::Admin), action), "{action:?}");
            assert!(!allows(&as_role(Role::Member), action), "{action:?}");
        }
        assert!(allows(
            &as_role(Role::Admin),
            Action::Invite { role: Role::Member }
        ));
        assert!(allows(
            &as_role(Role::Admin),
            Action::RemoveMember { role: Role::Admin }
        ));
        assert!(!allows(
            &as_role(Role::Owner),
            Action::Invite { role: Role::Owner }
        ));
    }

    #[test]
    fn the_console_is_for_operators_acting_as_operators() {
        let operator = Standing::member(ME, None, true);
        assert!(allows(&operator, Action::OperatorConsole));
        assert!(allows(&operator, Action::SetApiAccess));
        assert!(!allows(&operator, Action::CreateToken));
        assert!(!allows(&as_role(Role::Owner), Action::OperatorConsole));
        assert!(!allows(&Standing::NOBODY, Action::OperatorConsole));
        assert!(allows(&Standing::TRUSTED, Action::OperatorConsole));
    }

    fn token_with(scopes: &str, expires_at: Option<NaiveDateTime>) -> TokenStanding {
        TokenStanding {
            id: TokenId(7),
            scopes: Scopes::parse(scopes).unwrap(),
            expires_at,
            rate_limit: None,
            suspended: false,
        }
    }

    #[test]
    fn a_token_acts_for_its_maker_and_only_on_tokens() {
        let managing = token_with("read,tokens", None);
        let members = Standing::token(Some(ME), Some(Role::Member), managing);
        assert!(allows(&members, Action::CreateToken));
        assert!(allows(&members, Action::ManageToken { creator: Some(ME) }));
        assert!(!allows(
            &members,
            Action::ManageToken {
                creator: Some(UserId(2))
            }
        ));
        assert!(!allows(&members, Action::SeeAllTokens));
        let admins = Standing::token(Some(ME), Some(Role::Owner), managing);
        assert!(allows(&admins, Action::SeeAllTokens));
        assert!(!allows(&admins, Action::ManageMembers));
        assert!(!allows(&admins, Action::SetApiAccess));
        let from_cli = Standing::token(None, None, managing);
        assert!(allows(&from_cli, Action::ManageToken { creator: None }));
        assert!(!allows(&from_cli, Action::ReadAudit));
        let gone = Standing::token(Some(ME), None, managing);
        assert!(!allows(&gone, Action::CreateToken));
    }

    #[test]
    fn a_scope_is_checked_once_with_one_sentence() {
        let plain = Scopes::parse("read,write").unwrap();
        assert_eq!(require_scope(plain, Scope::Write), Ok(()));
        assert_eq!(
            require_scope(plain, Scope::Tokens).unwrap_err(),
            "This API token does not have the 'tokens' scope that this request needs."
        );
        assert!(
            require_scope(Scopes::parse("read").unwrap(), Scope::Write)
                .unwrap_err()
                .contains("'write' scope")
        );
    }

    #[test]
    fn only_the_system_revokes_leaked_secrets() {
        assert!(allows(&Standing::TRUSTED, Action::RevokeLeakedSecret));
        assert!(!allows(
            &Standing::member(ME, Some(Role::Owner), true),
            Action::RevokeLeakedSecret
        ));
    }

    #[test]
    fn a_token_may_revoke_itself_and_nothing_else() {
        let me = TokenId(7);
        let token = Standing::token(Some(ME), Some(Role::Member), token_with("read", None));
        assert!(allows(&token, Action::RevokeItself { token: me }));
        assert!(!allows(&token, Action::RevokeItself { token: TokenId(8) }));
        assert!(!allows(&token, Action::ManageToken { creator: None }));
        assert!(!allows(&token, Action::ReadAudit));
        assert!(!allows(&token, Action::ManageMembers));
        assert!(!allows(
            &as_role(Role::Owner),
            Action::RevokeItself { token: me }
        ));
    }

    #[test]
    fn a_token_hands_on_no_more_than_it_holds_and_never_tokens() {
        let now = chrono::Utc::now().naive_utc();
        let later = now + chrono::Duration::days(30);
        let caller = token_with("read,write,tokens", Some(later));
        let read = Scopes::parse("read").unwrap();
        assert_eq!(may_mint(&caller, read, Some(now)), Ok(()));
        assert_eq!(may_mint(&caller, read, Some(later)), Ok(()));
        let outlives = may_mint(&caller, read, Some(later + chrono::Duration::seconds(1)));
        assert!(outlives.unwrap_err().starts_with("'expires_in_days'"));
        assert!(
            may_mint(&caller, read, None)
                .unwrap_err()
                .starts_with("'expires_in_days'")
        );
        let tokens = may_mint(&caller, Scopes::parse("read,tokens").unwrap(), Some(now));
        assert!(tokens.unwrap_err().contains("'tokens'"));
        let narrow = token_with("read,tokens", None);
        let write = may_mint(&narrow, Scopes::parse("read,write").unwrap(), None);
        assert!(write.unwrap_err().contains("write"));
        assert_eq!(may_mint(&narrow, read, None), Ok(()));
    }

    #[test]
    fn a_token_writes_clusters_while_its_maker_is_a_member() {
        let writing = token_with("read,write", None);
        let member = Standing::token(Some(ME), Some(Role::Member), writing);
        assert!(allows(&member, Action::WriteClusters));
        assert!(allows(
            &Standing::token(None, None, writing),
            Action::WriteClusters
        ));
        let gone = Standing::token(Some(ME), None, writing);
        assert!(!allows(&gone, Action::WriteClusters));
        assert!(refusal(&gone, Action::WriteClusters).contains("no longer a member"));
        // Its maker's role bounds it: a member's token sees only its maker's tokens.
        assert!(!allows(&member, Action::SeeAllTokens));
    }

    #[test]
    fn only_owners_set_the_token_lifetime() {
        assert!(allows(&as_role(Role::Owner), Action::SetTokenLifetime));
        assert!(!allows(&as_role(Role::Admin), Action::SetTokenLifetime));
        assert!(!allows(&as_role(Role::Member), Action::SetTokenLifetime));
    }
}
