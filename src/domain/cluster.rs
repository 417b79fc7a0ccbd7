//! A cluster's lifecycle state, stored as Bonsai's upper-case names, and the access
//! credentials a new cluster is given, which are shown once and never logged.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! cluster_states {
    ($($variant:ident => $name:literal,)*) => {
        /// The states Bonsai's client knows, spelled as it spells them (one has a space).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum ClusterState {
            $($variant,)*
        }

        impl ClusterState {
            pub const ALL: &[ClusterState] = &[$(ClusterState::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(ClusterState::$variant => $name,)*
                }
            }

            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw {
                    $($name => Ok(ClusterState::$variant),)*
                    other => Err(format!("\"{other}\" is not a cluster state.")),
                }
            }
        }
    };
}

cluster_states! {
    Provisioning => "PROVISIONING",
    Provisioned => "PROVISIONED",
    UpdatingPlan => "UPDATING PLAN",
    Maintenance => "MAINTENANCE",
    Readonly => "READONLY",
    Disabled => "DISABLED",
    Deprovisioning => "DEPROVISIONING",
    Deprovisioned => "DEPROVISIONED",
}

super::sql::text_column!(ClusterState);

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ClusterState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The user name and password a new cluster answers to, shown once in the create's
/// answer. The password's `Debug` is redacted, so a stray `{:?}` can't log it.
#[derive(Clone, Serialize)]
pub struct ClusterCredentials {
    pub user: String,
    pub pass: String,
}

impl ClusterCredentials {
    /// Ten lower-case characters for the user, as Bonsai's, and 32 base62 characters
    /// (190 bits) from the OS generator for the password.
    pub fn generate() -> Self {
        Self {
            user: super::random_base62(10).to_ascii_lowercase(),
            pass: super::random_base62(32),
        }
    }
}

impl fmt::Debug for ClusterCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCredentials")
            .field("user", &self.user)
            .field("pass", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for state in ClusterState::ALL {
            assert_eq!(ClusterState::parse(state.as_str()), Ok(*state));
        }
        assert_eq!(ClusterState::UpdatingPlan.as_str(), "UPDATING PLAN");
        assert!(ClusterState::parse("provisioned").is_err());
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let credentials = ClusterCredentials::generate();
        let shown = format!("{credentials:?}");
        assert!(!shown.contains(&credentials.pass), "{shown}");
        assert!(shown.contains(&credentials.user));
        assert_eq!(credentials.pass.len(), 32);
        assert_ne!(credentials.pass, ClusterCredentials::generate().pass);
    }
}
