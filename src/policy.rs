//! Who may do what: the one gate. Every change is checked here inside the transaction
//! that makes it (see `db::tx`), and the dashboard builds its pages and navigation from
//! the same answers, so a link is shown exactly when its action would be allowed.

use crate::domain::{Role, TokenId, UserId};

/// What someone wants to do, with the facts about its target that the answer depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateToken,
    /// See, revoke or roll a token; `creator` is who made it.
    ManageToken {
        creator: Option<UserId>,
    },
    SeeAllTokens,
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
    /// Set the account's longest allowed token lifetime.
    SetTokenLifetime,
    /// A token revoking itself (`DELETE /token`), with nothing but its own credentials.
    RevokeItself {
        token: TokenId,
    },
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
    /// An API token acting for itself: it may do what concerns that token alone.
    pub token: Option<TokenId>,
}

impl Standing {
    pub const TRUSTED: Standing = Standing {
        user: None,
        role: None,
        operator: false,
        trusted: true,
        token: None,
    };

    pub const NOBODY: Standing = Standing {
        user: None,
        role: None,
        operator: false,
        trusted: false,
        token: None,
    };

    pub fn member(user: UserId, role: Option<Role>, operator: bool) -> Self {
        Standing {
            user: Some(user),
            role,
            operator,
            trusted: false,
            token: None,
        }
    }

    /// An API token, acting through the API with its own key and secret.
    pub fn token(id: TokenId) -> Self {
        Standing {
            token: Some(id),
            ..Standing::NOBODY
        }
    }
}

/// Whether `standing` allows `action`.
pub fn allows(standing: &Standing, action: Action) -> bool {
    if standing.trusted {
        return true;
    }
    let role = standing.role;
    let at_least = |needed: Role| role.is_some_and(|r| r >= needed);
    match action {
        Action::OperatorConsole => standing.operator,
        Action::SetApiAccess => standing.operator || at_least(Role::Owner),
        Action::SetTokenLifetime => at_least(Role::Owner),
        Action::RevokeItself { token } => standing.token == Some(token),
        Action::CreateToken => role.is_some(),
        Action::ManageToken { creator } => {
            at_least(Role::Admin)
                || (role.is_some() && creator.is_some() && creator == standing.user)
        }
        Action::SeeAllTokens | Action::ManageMembers | Action::ReadAudit => at_least(Role::Admin),
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
    }
}

/// The sentence for a refusal: what a person sees on the 403 page.
pub fn refusal(standing: &Standing, action: Action) -> &'static str {
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

    #[test]
    fn a_token_may_revoke_itself_and_nothing_else() {
        let me = TokenId(7);
        let token = Standing::token(me);
        assert!(allows(&token, Action::RevokeItself { token: me }));
        assert!(!allows(&token, Action::RevokeItself { token: TokenId(8) }));
        assert!(!allows(&token, Action::ManageToken { creator: None }));
        assert!(!allows(&token, Action::CreateToken));
        assert!(!allows(
            &as_role(Role::Owner),
            Action::RevokeItself { token: me }
        ));
    }

    #[test]
    fn only_owners_set_the_token_lifetime() {
        assert!(allows(&as_role(Role::Owner), Action::SetTokenLifetime));
        assert!(!allows(&as_role(Role::Admin), Action::SetTokenLifetime));
        assert!(!allows(&as_role(Role::Member), Action::SetTokenLifetime));
    }
}
