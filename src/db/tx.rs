//! The one write path. Every change to accounts, members, invitations and tokens, from
//! the dashboard, the operator console or the command line, runs through [`transact`]:
//!
//! 1. it opens a `BEGIN IMMEDIATE` transaction, so the write lock is held from the start;
//! 2. it re-reads who is acting (their user row, their role in the account, the operator
//!    flag) inside that transaction, so no change can rest on a permission read earlier;
//! 3. it hands a [`Tx`] to a named store function (`db::tokens::revoke`,
//!    `db::members::remove_member`...), which checks the action against `policy`
//!    with the facts of its target, and writes the change with its audit event and any
//!    cache-invalidation note;
//! 4. it commits.
//!
//! `AppState::write` wraps it for the server: it runs it off the async workers and then
//! applies the invalidation log, before the handler answers.
//!
//! The store is layered so that no module imports another that imports it back. From
//! the bottom: `schema`, `audit` and the plain per-table modules (`memberships`,
//! `invalidations`...); `standing` and this module, which every store function above
//! imports for its `Tx`; then the tables whose changes need a `Tx` (`sessions`, `users`,
//! `accounts`, `invitations`, `tokens`), each calling only modules below it; and on
//! top `members`, whose changes reach across tables. `grep -n 'super::' src/db/*.rs`
//! shows it.

use diesel::RunQueryDsl;
use diesel::connection::{AnsiTransactionManager, TransactionManager};

use crate::db::DbConnection;

use super::audit::{self, Actor, Event};
use super::standing;
use crate::domain::{AccountId, TokenId, TokenKey, UserId};
use crate::error::AppError;
use crate::policy::{self, Action, Standing, TokenStanding};

/// Who asks for a change. The rules are applied to what the database says about them
/// at the moment of the write.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in dashboard user.
    User {
        id: UserId,
        ip: Option<String>,
    },
    /// A signed-in user acting through the operator console.
    Operator {
        id: UserId,
        ip: Option<String>,
    },
    /// Someone not signed in, such as a person accepting an invitation.
    Visitor {
        ip: Option<String>,
    },
    CommandLine,
    System,
    /// An API token acting through the API (`/access-tokens`, `DELETE /token`): the
    /// calling token, as the guard let it in. Inside the write it is read again, and must
    /// still be active.
    Token {
        id: TokenId,
        key: TokenKey,
        account: AccountId,
        ip: Option<String>,
    },
}

/// A write transaction in progress, with the actor's standing as read inside it.
/// Only [`transact`] makes one, so a store function that takes a `Tx` can only run
/// inside the write path.
pub struct Tx<'a> {
    pub conn: &'a mut DbConnection,
    standing: Standing,
    actor: Actor,
    account: Option<AccountId>,
}

impl Tx<'_> {
    /// Refuses with a 403 unless the actor's standing allows `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if policy::allows(&self.standing, action) {
            Ok(())
        } else {
            Err(AppError::forbidden(policy::refusal(&self.standing, action)))
        }
    }

    /// The account acted in; a change that needs one and has none is a 404.
    pub fn account(&self) -> Result<AccountId, AppError> {
        self.account.ok_or(AppError::NotFound)
    }

    /// Who the audit log names.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn user(&self) -> Option<UserId> {
        self.standing.user
    }

    /// The acting token's scopes and expiry, when a token acts: the most it may hand on.
    pub fn calling_token(&self) -> Option<TokenStanding> {
        self.standing.token
    }

    /// The acting token's id, when a token acts.
    pub fn acting_token(&self) -> Option<TokenId> {
        self.standing.token.map(|t| t.id)
    }

    /// Whether the change is the platform's own: an operator through the console, the
    /// command line or the system, rather than the account's members.
    pub fn acts_for_platform(&self) -> bool {
        self.standing.operator || self.standing.trusted
    }

    /// The acting user, for changes only a signed-in person makes to their own things.
    pub fn signed_in_user(&self) -> Result<UserId, AppError> {
        self.standing.user.ok_or(AppError::SignInRequired)
    }

    /// Logs `event` in the account acted in, naming this transaction's actor.
    pub fn log(&mut self, event: Event<'_>) -> Result<(), AppError> {
        let account = self.account()?;
        self.log_to(account, event)
    }

    /// Logs `event` in `account`, for changes whose account is found inside them.
    pub fn log_to(&mut self, account: AccountId, event: Event<'_>) -> Result<(), AppError> {
        audit::record(self.conn, account, &self.actor, event)
    }

    /// Logs `event` about the signed-in person's own sign-in (their password, their
    /// sessions) once, in their first account, as a sign-in is logged; a person in no
    /// account leaves no row.
    pub fn log_personal(&mut self, event: Event<'_>) -> Result<(), AppError> {
        let user = self.signed_in_user()?;
        match super::memberships::first_account_of(self.conn, user)? {
            Some(account) => self.log_to(account, event),
            None => Ok(()),
        }
    }

    /// A visitor who has just become a user (by signing up, signing in or accepting an
    /// invitation) is named as that user from here on. Their standing doesn't change: it
    /// was read at the start.
    pub(super) fn act_as(&mut self, user: UserId, email: &str) {
        self.actor = Actor {
            user_id: Some(user),
            label: email.to_string(),
            ip: self.actor.ip.clone(),
        };
    }
}

/// Runs `change` in one write transaction, after reading the standing of `who` in
/// `account` inside it. A user who no longer exists is signed out.
pub fn transact<T>(
    conn: &mut DbConnection,
    who: &Principal,
    account: Option<AccountId>,
    change: impl FnOnce(&mut Tx<'_>) -> Result<T, AppError>,
) -> Result<T, AppError> {
    write(conn, |conn| {
        let (standing, actor) = standing_of(conn, who, account)?;
        let mut tx = Tx {
            conn,
            standing,
            actor,
            account,
        };
        change(&mut tx)
    })
}

/// Runs `change` as the system: the bookkeeping no person asks for (sign-in limits,
/// sessions, usage and credit flushes, the outbox, the expiry sweep), on the same path as
/// every other write.
pub fn as_system<T>(
    conn: &mut DbConnection,
    change: impl FnOnce(&mut Tx<'_>) -> Result<T, AppError>,
) -> Result<T, AppError> {
    transact(conn, &Principal::System, None, change)
}

/// The standing of `who` in `account` for a read, such as which tokens an API token may
/// list: the same facts a write would read, but every change checks them again inside
/// its own transaction.
pub fn standing_for_read(
    conn: &mut DbConnection,
    who: &Principal,
    account: Option<AccountId>,
) -> Result<Standing, AppError> {
    standing_of(conn, who, account).map(|(standing, _)| standing)
}

fn standing_of(
    conn: &mut DbConnection,
    who: &Principal,
    account: Option<AccountId>,
) -> Result<(Standing, Actor), AppError> {
    let user_standing =
        |conn: &mut DbConnection, id: UserId, ip: &Option<String>, console: bool| {
            let user = standing::user(conn, id)?.ok_or(AppError::SignInRequired)?;
            let role = match account {
                Some(account) => standing::role(conn, id, account)?,
                None => None,
            };
            let label = if console {
                format!("{} (operator)", user.email)
            } else {
                user.email.clone()
            };
            Ok::<_, AppError>((
                Standing::member(id, role, console && user.operator).unverified(!user.verified),
                Actor {
                    user_id: Some(id),
                    label,
                    ip: ip.clone(),
                },
            ))
        };
    match who {
        Principal::User { id, ip } => user_standing(conn, *id, ip, false),
        Principal::Operator { id, ip } => user_standing(conn, *id, ip, true),
        Principal::Visitor { ip } => Ok((
            Standing::NOBODY,
            Actor {
                user_id: None,
                label: "visitor".into(),
                ip: ip.clone(),
            },
        )),
        Principal::CommandLine => Ok((Standing::TRUSTED, Actor::cli())),
        Principal::System => Ok((Standing::TRUSTED, Actor::system())),
        Principal::Token {
            id,
            key,
            account: own,
            ip,
        } => token_standing(conn, *id, key, *own, ip, account),
    }
}

/// A calling token's standing: its maker's role, re-read here, and what the token holds.
/// A token revoked or expired since the guard let the request in may do nothing, one
/// whose account is suspended nothing but revoke itself; nor may it act in an account
/// other than its own. Read inside the write, so a mint and its maker's revocation take
/// turns: the mint sees the maker revoked, or the revocation sees the child.
fn token_standing(
    conn: &mut DbConnection,
    id: TokenId,
    key: &TokenKey,
    own: AccountId,
    ip: &Option<String>,
    account: Option<AccountId>,
) -> Result<(Standing, Actor), AppError> {
    let no_longer = || AppError::forbidden("This API token is no longer active.");
    if account != Some(own) {
        return Err(AppError::NotFound);
    }
    let (token, suspended) = standing::acting_token(conn, own, id, key)?.ok_or_else(no_longer)?;
    let maker = token.maker();
    let role = match maker {
        Some(user) => standing::role(conn, user, own)?,
        None => None,
    };
    let standing = Standing::token(
        maker,
        role,
        TokenStanding {
            id,
            scopes: token.scopes,
            expires_at: token.expires_at,
            rate_limit: token.rate_limit_per_minute,
            suspended,
        },
    );
    let actor = Actor {
        user_id: None,
        label: super::audit::token_actor_label(&token.key, &token.name),
        ip: ip.clone(),
    };
    Ok((standing, actor))
}

/// Runs `f` in a write transaction: the one place a write transaction begins, private so
/// that every write goes through [`transact`] and names who makes it.
///
/// Both backends give the same guarantee: write transactions run one at a time, and each
/// sees every write committed before it began.
/// * SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front. A deferred
///   transaction that reads first and writes later can't wait out a busy lock and fails
///   at once with SQLITE_BUSY.
/// * PostgreSQL: a `READ COMMITTED` transaction whose first statement takes one
///   transaction-scoped advisory lock, `WRITE_LOCK`. PostgreSQL releases it only after
///   the commit (or rollback) is complete, so write transactions are serialised exactly
///   as SQLite's are; and in `READ COMMITTED` every statement after the lock reads a fresh
///   snapshot, so each sees all that the previous writer committed. That is what the
///   write path relies on (a permission read inside the transaction is still true at its
///   commit), and it needs no retry loop, so no user's request fails for a
///   serialisation conflict, as it could under `SERIALIZABLE`. It also keeps the
///   invalidation log's `seq` in commit order: a poller that has read note N has seen
///   every note before it. Writes are rare (the API's hot path never writes), so one
///   writer at a time costs nothing that matters. Reads never take the lock.
fn write<T, F>(conn: &mut DbConnection, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AppError>,
{
    let started = match conn {
        DbConnection::Sqlite(c) => {
            let begun = AnsiTransactionManager::begin_transaction_sql(&mut *c, "BEGIN IMMEDIATE")
                .map_err(AppError::from);
            #[cfg(feature = "test-support")]
            let begun = begun.and_then(|()| super::simulated_full_disk::before_write(c));
            begun
        }
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction_sql(
            &mut *c,
            "BEGIN ISOLATION LEVEL READ COMMITTED",
        )
        .and_then(|()| {
            diesel::sql_query(format!(
                "SELECT pg_advisory_xact_lock({})",
                super::WRITE_LOCK
            ))
            .execute(c)
            .map(drop)
        })
        .map_err(AppError::from),
    };
    match started.and_then(|()| f(conn)) {
        Ok(value) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            if <DbConnection as TransactionManager<DbConnection>>::transaction_manager_status_mut(
                conn,
            )
            .transaction_depth()
            .ok()
            .flatten()
            .is_some()
                && let Err(rollback) =
                    <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn)
            {
                // The pool drops a connection whose rollback failed; the caller learns
                // of the first error, which is the one that says what went wrong.
                tracing::warn!(error = %rollback, "could not roll back a failed write");
            }
            Err(err)
        }
    }
}
