//! Who may do what in an account: one table, consulted by every dashboard action.

use crate::domain::{Role, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateToken,
    /// See or revoke a token; `creator` is who made it.
    ManageToken {
        creator: Option<UserId>,
    },
    SeeAllTokens,
    ManageMembers,
    ChangeRoles,
    ReadAudit,
    SuspendApi,
}

/// Whether `role`, held by `user`, allows `action`.
pub fn allows(role: Role, user: UserId, action: Action) -> bool {
    match action {
        Action::CreateToken => true,
        Action::ManageToken { creator } => role >= Role::Admin || creator == Some(user),
        Action::SeeAllTokens | Action::ManageMembers | Action::ReadAudit => role >= Role::Admin,
        Action::ChangeRoles | Action::SuspendApi => role >= Role::Owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_manage_only_their_own_tokens() {
        let me = UserId(1);
        assert!(allows(
            Role::Member,
            me,
            Action::ManageToken { creator: Some(me) }
        ));
        assert!(!allows(
            Role::Member,
            me,
            Action::ManageToken {
                creator: Some(UserId(2))
            }
        ));
        assert!(!allows(
            Role::Member,
            me,
            Action::ManageToken { creator: None }
        ));
        assert!(allows(
            Role::Admin,
            me,
            Action::ManageToken { creator: None }
        ));
    }

    #[test]
    fn only_owners_change_roles_and_suspend() {
        for action in [Action::ChangeRoles, Action::SuspendApi] {
            assert!(allows(Role::Owner, UserId(1), action));
            assert!(!allows(Role::Admin, UserId(1), action));
            assert!(!allows(Role::Member, UserId(1), action));
        }
    }
}
