//! Why the store refused a change to a token, as a fact: the sentence a person reads is
//! written where errors are shown (`error.rs`), for the API, the dashboard and the command
//! line alike.

/// A token lifecycle command the store refused, after reading the token under the write
/// lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// A roll of a revoked token.
    RollRevoked,
    /// A roll of an expired token.
    RollExpired,
    /// A roll of a token that already has a successor.
    AlreadyRolled { successor: String },
    /// An API token asked to roll itself.
    RollItself,
    /// An API token asked to roll a token that holds the `tokens` scope.
    RollTokensScope,
    /// An API token asked to roll a token whose successor it couldn't have made itself;
    /// `why` is the policy's own sentence.
    SuccessorTooBroad { key: String, why: String },
    /// A rate-limit change to a revoked token.
    LimitOfRevoked,
    /// An operator's revoke by a key no token has.
    NoSuchKey { key: String },
}

impl TokenRefusal {
    /// A refusal of what the caller may do (403), as opposed to what the token's state
    /// allows (422).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            TokenRefusal::RollItself
                | TokenRefusal::RollTokensScope
                | TokenRefusal::SuccessorTooBroad { .. }
        )
    }
}
