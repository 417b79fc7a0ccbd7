//! What the audit log records, stored as dotted names such as `token.revoked`.

use std::fmt;

macro_rules! audit_actions {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum AuditAction {
            $($variant,)*
        }

        impl AuditAction {
            pub const ALL: &[AuditAction] = &[$(AuditAction::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }

            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw {
                    $($name => Ok(AuditAction::$variant),)*
                    other => Err(format!("\"{other}\" is not an audit action.")),
                }
            }
        }
    };
}

audit_actions! {
    TokenCreated => "token.created",
    TokenRevoked => "token.revoked",
    TokenExpired => "token.expired",
    TokenRolled => "token.rolled",
    TokenRateLimitChanged => "token.rate_limit_changed",
    TokenApiRefused => "token.api_refused",
    TokenRenamed => "token.renamed",
    TokenNoteChanged => "token.note_changed",
    TokenKeyFieldsChanged => "token.key_fields_changed",
    MemberInvited => "member.invited",
    InvitationCancelled => "member.invitation_cancelled",
    MemberJoined => "member.joined",
    MemberRemoved => "member.removed",
    MemberRoleChanged => "member.role_changed",
    LoginSucceeded => "login.succeeded",
    LoginFailed => "login.failed",
    PasswordChanged => "user.password_changed",
    SessionEnded => "user.session_ended",
    ApiSuspended => "api.suspended",
    ApiRestored => "api.restored",
    AccountCreated => "account.created",
    TokenLifetimeSet => "account.token_lifetime_set",
    ClusterCreated => "cluster.created",
    ClusterUpdated => "cluster.updated",
    ClusterDeleted => "cluster.deleted",
    EmailVerified => "user.email_verified",
    EmailChanged => "user.email_changed",
    PasswordReset => "user.password_reset",
    ResetLinkIssued => "user.reset_link_issued",
    TwoFactorEnabled => "user.two_factor_enabled",
    TwoFactorDisabled => "user.two_factor_disabled",
    RecoveryCodesRegenerated => "user.recovery_codes_regenerated",
    RecoveryCodeUsed => "user.recovery_code_used",
    PasskeyAdded => "user.passkey_added",
    PasskeyRemoved => "user.passkey_removed",
    SecondFactorsReset => "user.second_factors_reset",
    TwoFactorPolicySet => "account.two_factor_policy_set",
    SsoLinked => "user.sso_linked",
    SsoPolicySet => "account.sso_policy_set",
}

super::sql::text_column!(AuditAction);

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Ok(*action));
        }
        assert!(AuditAction::parse("token.exploded").is_err());
    }
}
