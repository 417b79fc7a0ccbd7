//! Forms that more than one page takes, read into domain values once.

use serde::Deserialize;

use crate::domain::{ApiState, Reason};
use crate::error::AppError;

/// The switch for an account's API access, from the owner's page (`/members`) or the
/// operator's (`/admin`).
#[derive(Deserialize)]
pub(crate) struct ApiAccessForm {
    #[serde(default)]
    state: String,
    #[serde(default)]
    reason: String,
}

impl ApiAccessForm {
    /// The state asked for, and the reason given.
    pub fn parse(&self) -> Result<(ApiState, Reason), AppError> {
        let state = ApiState::parse(&self.state)
            .map_err(|_| AppError::invalid("Choose to suspend or restore API access."))?;
        Ok((
            state,
            Reason::parse(&self.reason).map_err(AppError::invalid)?,
        ))
    }
}
