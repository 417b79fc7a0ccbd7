//! Who may create an account on this server: the operator's `KEYWARD_SIGNUP`.

/// `open`: anyone signs up. `invite-only`: only through an invitation link. `closed`: only
/// the command line creates accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupMode {
    #[default]
    Open,
    InviteOnly,
    Closed,
}

impl SignupMode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "open" => Ok(Self::Open),
            "invite-only" => Ok(Self::InviteOnly),
            "closed" => Ok(Self::Closed),
            other => Err(format!(
                "\"{other}\" is not a sign-up mode: use open, invite-only or closed."
            )),
        }
    }

    /// Whether anyone may sign up at `/signup` and create an account.
    pub fn is_open(self) -> bool {
        self == Self::Open
    }

    /// Whether an invitation link may create a new user.
    pub fn lets_invitees_sign_up(self) -> bool {
        self != Self::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_modes_parse_and_nothing_else() {
        assert_eq!(SignupMode::parse("open"), Ok(SignupMode::Open));
        assert_eq!(SignupMode::parse("invite-only"), Ok(SignupMode::InviteOnly));
        assert_eq!(SignupMode::parse("closed"), Ok(SignupMode::Closed));
        assert!(SignupMode::parse("invite_only").is_err());
    }
}
