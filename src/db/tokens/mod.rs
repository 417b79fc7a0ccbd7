//! API tokens. Every function that reads or changes one token takes the account, so a
//! token can only be reached through the account that owns it. The operator's lookups
//! across accounts are separate and named as such.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::audit::{Event, action};
use super::schema::tokens;
use super::tx::Tx;
use crate::domain::{
    AccountId, Credits, ExternalId, IpAllowlist, KeyFields, KeyMeta, Permissions, RateLimit,
    Refill, RefillInterval, Scopes, TokenId,
};
use crate::error::AppError;

mod change;
mod find;
mod make;
mod revoke;
mod roll;

pub use change::*;
pub use find::*;
pub use make::*;
pub use revoke::*;
pub use roll::*;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tokens)]
pub struct Token {
    pub id: i32,
    pub account_id: i32,
    pub user_id: Option<i32>,
    pub name: String,
    pub key: String,
    pub secret_digest: Vec<u8>,
    pub secret_hint: String,
    pub scopes: Scopes,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<i32>,
    pub revoke_reason: Option<String>,
    pub expiry_logged: bool,
    /// The token this one was rolled from, and the one it was rolled to.
    pub rolled_from: Option<i32>,
    pub rolled_to: Option<i32>,
    pub rate_limit_per_minute: Option<RateLimit>,
    /// The token that made this one through the API; `None` for the dashboard's and the
    /// command line's tokens, which stand alone.
    pub maker_token_id: Option<i32>,
    /// Free text: the token's purpose, owner or ticket.
    pub note: String,
    /// What the token carries for its verifiers; [`Token::key_fields`] types them.
    pub permissions: Permissions,
    pub meta: Option<String>,
    pub external_id: Option<String>,
    /// The balance as last written (the guard spends in memory; `limits::credits`).
    pub credits_remaining: Option<i64>,
    pub credits_refill_interval: Option<String>,
    pub credits_refill_amount: Option<i64>,
    pub credits_refilled_at: Option<NaiveDateTime>,
    /// Grows with every change a person makes to the credits.
    pub credits_version: i32,
    pub allowed_ips: IpAllowlist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Revoked,
    Expired,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Revoked, Status::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Status::Active),
            "revoked" => Some(Status::Revoked),
            "expired" => Some(Status::Expired),
            _ => None,
        }
    }
}

impl Token {
    pub fn token_id(&self) -> TokenId {
        TokenId(self.id)
    }

    pub fn account(&self) -> AccountId {
        AccountId(self.account_id)
    }

    pub fn status_at(&self, now: NaiveDateTime) -> Status {
        if self.revoked_at.is_some() {
            Status::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Status::Expired
        } else {
            Status::Active
        }
    }

    pub fn status(&self) -> Status {
        self.status_at(super::now())
    }

    /// The credit limit as stored, if the token has one.
    pub fn credits(&self) -> Result<Option<Credits>, AppError> {
        let Some(remaining) = self.credits_remaining else {
            return Ok(None);
        };
        let refill = match (&self.credits_refill_interval, self.credits_refill_amount) {
            (Some(interval), Some(amount)) => Some(
                RefillInterval::parse(interval)
                    .and_then(|i| Refill::new(i, amount))
                    .map_err(|e| self.unreadable("credit refill", e))?,
            ),
            _ => None,
        };
        // A balance spent below zero by several instances at once reads as none left.
        Credits::new(remaining.max(0), refill)
            .map(Some)
            .map_err(|e| self.unreadable("credits", e))
    }

    /// A stored field that doesn't read, named with the token's key so the operator can
    /// find the row: the person is only told something went wrong.
    fn unreadable(&self, field: &str, error: impl std::fmt::Display) -> AppError {
        AppError::internal(format!(
            "token {} has an unreadable stored {field}: {error}",
            self.key
        ))
    }

    /// What the token carries for its verifiers, typed.
    pub fn key_fields(&self) -> Result<KeyFields, AppError> {
        Ok(KeyFields {
            permissions: self.permissions.clone(),
            meta: self
                .meta
                .as_deref()
                .map(KeyMeta::parse)
                .transpose()
                .map_err(|e| self.unreadable("meta", e))?,
            external_id: self
                .external_id
                .as_deref()
                .map(ExternalId::parse)
                .transpose()
                .map_err(|e| self.unreadable("external id", e))?,
            credits: self.credits()?,
            allowed_ips: self.allowed_ips.clone(),
        })
    }
}

pub(super) fn token_target(token: &Token) -> String {
    format!("token {} ({})", token.name, token.key)
}

/// Logs a refused attempt of the acting token on the token API, with what it was told.
/// Nothing to allow: it is the token's own attempt, named as it was made.
pub fn log_refused(tx: &mut Tx<'_>, detail: &str) -> Result<(), AppError> {
    let target = tx.actor().label.clone();
    let token = tx.acting_token();
    // The reason may hold the caller's own input (a key, a name): keep the row bounded.
    let detail: String = detail.chars().take(500).collect();
    tx.log(Event {
        action: action::TOKEN_API_REFUSED,
        target: &target,
        token,
        detail: &detail,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};

    use super::*;
    use crate::db::tx::{Principal, transact};
    use crate::domain::AccountName;
    use crate::domain::{Reason, TokenName};

    /// Every statement the connection runs, as SQL.
    #[derive(Clone, Default)]
    struct Statements(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Statements {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                self.0.lock().unwrap().push(query.to_string());
            }
        }
    }

    /// An account with one token, in a store of its own in `dir`.
    fn one_token(dir: &tempfile::TempDir) -> (crate::db::Conn, AccountId, Token) {
        let pool = crate::db::connect(dir.path().join("t.db").to_str().unwrap()).unwrap();
        let mut conn = pool.get().unwrap();
        let (account, token) = transact(&mut conn, &Principal::CommandLine, None, |tx| {
            let name = AccountName::parse("Acme").map_err(AppError::invalid)?;
            Ok(crate::db::accounts::create(tx.conn, &name)?.account_id())
        })
        .and_then(|account| {
            transact(&mut conn, &Principal::CommandLine, Some(account), |tx| {
                let request = TokenRequest {
                    name: TokenName::parse("ci").map_err(AppError::invalid)?,
                    scopes: Scopes::all(),
                    expires_at: None,
                    rate_limit: None,
                    fields: KeyFields::default(),
                };
                Ok((account, create(tx, request)?.0))
            })
        })
        .unwrap();
        (conn, account, token)
    }

    #[test]
    fn an_unreadable_stored_field_is_an_error_that_names_the_token_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, mut token) = one_token(&dir);
        token.credits_remaining = Some(5);
        token.credits_refill_interval = Some("fortnightly".into());
        token.credits_refill_amount = Some(5);
        let Err(AppError::Internal(error)) = token.key_fields() else {
            panic!("an unknown refill interval must not read as a token without limits");
        };
        let logged = format!("{error:#}");
        assert!(logged.contains(&token.key), "{logged}");
        assert!(logged.contains("credit refill"), "{logged}");
    }

    #[test]
    fn a_revoke_reads_the_token_once_and_answers_with_the_row_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, account, token) = one_token(&dir);

        let statements = Statements::default();
        conn.set_instrumentation(statements.clone());
        let reason = Reason::parse("leaked").unwrap();
        let revoked = transact(&mut conn, &Principal::CommandLine, Some(account), |tx| {
            revoke(tx, token.token_id(), &reason)
        })
        .unwrap();
        conn.set_instrumentation(diesel::connection::get_default_instrumentation());

        let seen = statements.0.lock().unwrap().clone();
        let token_reads: Vec<&String> = seen
            .iter()
            .filter(|sql| {
                // The walk of its tree (none here) reads ids, not the row.
                (sql.starts_with("SELECT")
                    && sql.contains("FROM `tokens`")
                    && !sql.contains("`maker_token_id` IN"))
                    || sql.contains("RETURNING")
            })
            .collect();
        assert_eq!(
            token_reads.len(),
            1,
            "the token was read by: {token_reads:#?}"
        );
        let stored: Token = tokens::table
            .find(token.id)
            .select(Token::as_select())
            .first(&mut conn)
            .unwrap();
        assert!(stored.revoked_at.is_some());
        assert_eq!(stored.revoked_at, revoked.revoked_at);
        assert_eq!(stored.revoke_reason.as_deref(), Some("leaked"));
        assert_eq!(stored.revoked_by, revoked.revoked_by);
    }
}
