//! Whether an account's tokens may call the API. Suspension is the operator's (or the
//! owner's) emergency brake: every token of the account gets 403 until it is restored.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum ApiState {
    Active,
    Suspended,
}

super::sql::text_column!(ApiState);

impl ApiState {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "active" => Ok(ApiState::Active),
            "suspended" => Ok(ApiState::Suspended),
            other => Err(format!(
                "\"{other}\" is not an API state: use active or suspended."
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ApiState::Active => "active",
            ApiState::Suspended => "suspended",
        }
    }
}

impl fmt::Display for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
