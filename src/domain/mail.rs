//! The messages Keyward mails, as the outbox keeps them: what each one says, without its
//! wording (that is `templates/mail/`, rendered when the message is sent).

use serde::{Deserialize, Serialize};

/// One message's content. Stored as JSON in the outbox's `payload`; its `kind` is the tag.
/// Links are kept as their tokens, and the sender builds the URL on the server's address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mail {
    /// A new sign-up's link to verify their address.
    VerifyEmail { token: String },
    /// Someone tried to sign up with an address that already has a sign-in.
    SignUpAttempt {},
    /// A link to choose a new password.
    PasswordReset { token: String },
    /// The password was just changed.
    PasswordChanged {},
    /// A link to confirm a new address, sent to that new address.
    ConfirmNewEmail { token: String },
    /// To the old address: the sign-in now uses `new_email`.
    EmailChanged { new_email: String },
    /// An invitation to join `account`.
    Invitation {
        token: String,
        account: String,
        role: String,
        inviter: String,
    },
    /// The user's tokens that expire within a week, each named in one digest only.
    ExpiryDigest { tokens: Vec<ExpiringToken> },
    /// One of the user's tokens was revoked by a leak report or an operator.
    TokenRevoked {
        key: String,
        name: String,
        account: String,
        by: String,
        reason: String,
    },
    /// The user's second factor changed: `change` says how, in a sentence.
    TwoFactorChanged { change: String },
    /// To an account's owners: its two-factor policy changed.
    TwoFactorPolicyChanged {
        account: String,
        required: bool,
        by: String,
    },
    /// One of the user's tokens was used from an address it had never used before.
    NewAddress {
        key: String,
        name: String,
        account: String,
        ip: String,
    },
}

/// A token named in an expiry digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringToken {
    pub key: String,
    pub name: String,
    pub account: String,
    /// UTC, as `YYYY-MM-DD HH:MM`.
    pub expires_at: String,
}

impl Mail {
    /// The name stored in the outbox's `kind` column and shown to operators.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::VerifyEmail { .. } => "verify_email",
            Mail::SignUpAttempt {} => "sign_up_attempt",
            Mail::PasswordReset { .. } => "password_reset",
            Mail::PasswordChanged {} => "password_changed",
            Mail::ConfirmNewEmail { .. } => "confirm_new_email",
            Mail::EmailChanged { .. } => "email_changed",
            Mail::Invitation { .. } => "invitation",
            Mail::ExpiryDigest { .. } => "expiry_digest",
            Mail::TokenRevoked { .. } => "token_revoked",
            Mail::NewAddress { .. } => "new_address",
            Mail::TwoFactorChanged { .. } => "two_factor_changed",
            Mail::TwoFactorPolicyChanged { .. } => "two_factor_policy_changed",
        }
    }

    /// The kinds of notice, which a user may turn off and which carry `List-Unsubscribe`;
    /// the rest are security mails, always sent.
    pub const NOTICE_KINDS: [&'static str; 3] = ["expiry_digest", "token_revoked", "new_address"];

    pub fn is_notice(&self) -> bool {
        Self::NOTICE_KINDS.contains(&self.kind())
    }

    pub fn to_json(&self) -> String {
        // A plain enum of strings always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("the message can't be read ({e})"))
    }
}

/// Links carry one-time tokens: they never reach a log.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mail({})", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_through_the_outbox_json_and_debug_hides_its_link() {
        let mail = Mail::PasswordReset {
            token: "secret-link-token".into(),
        };
        let json = mail.to_json();
        assert!(json.contains("\"kind\":\"password_reset\""), "{json}");
        assert_eq!(Mail::from_json(&json), Ok(mail.clone()));
        assert!(!format!("{mail:?}").contains("secret-link-token"));
        assert!(Mail::from_json("{\"kind\":\"nonsense\"}").is_err());
    }
}
