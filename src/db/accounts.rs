//! Accounts: the tenants. Each has a unique slug and an API state.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;

use super::audit::{Event, action};
use super::schema::{accounts, clusters, memberships, tokens};
use super::tx::Tx;
use super::users::User;
use crate::domain::{
    AccountId, AccountName, ApiState, Email, LifetimeLimit, Reason, Role, Slug, UserId,
};
use crate::error::AppError;
use crate::policy::Action;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i32,
    pub name: String,
    pub slug: String,
    pub api_state: ApiState,
    pub created_at: NaiveDateTime,
    /// The longest a token of this account may live; `None`: no limit.
    pub max_token_lifetime_days: Option<LifetimeLimit>,
    /// Whether the API was suspended by the operator rather than by the account's owners.
    pub suspended_by_operator: bool,
    /// Whether every member must sign in with a second factor.
    pub require_two_factor: bool,
    /// Whether members (not owners) must sign in through the single sign-on provider.
    pub require_sso: bool,
    /// The email domain whose people join as members at their first single sign-on.
    pub claimed_domain: Option<String>,
}

impl Account {
    pub fn account_id(&self) -> AccountId {
        AccountId(self.id)
    }

    pub fn is_suspended(&self) -> bool {
        self.api_state == ApiState::Suspended
    }
}

#[derive(Insertable)]
#[diesel(table_name = accounts)]
struct NewAccount<'a> {
    name: &'a str,
    slug: &'a str,
    api_state: ApiState,
    created_at: NaiveDateTime,
}

/// Creates an account, with `acme-inc`, else `acme-inc-2`, `acme-inc-3`... as its slug.
/// Call inside a write transaction.
pub fn create(conn: &mut DbConnection, name: &AccountName) -> Result<Account, AppError> {
    let base = Slug::from_name(name.as_str()).map_err(AppError::invalid)?;
    let mut n = 1;
    let slug = loop {
        let candidate = if n == 1 {
            base.clone()
        } else {
            base.with_suffix(n)
        };
        let taken: i64 = accounts::table
            .filter(accounts::slug.eq(candidate.as_str()))
            .count()
            .get_result(conn)?;
        if taken == 0 {
            break candidate;
        }
        n += 1;
    };
    Ok(diesel::insert_into(accounts::table)
        .values(NewAccount {
            name: name.as_str(),
            slug: slug.as_str(),
            api_state: ApiState::Active,
            created_at: super::now(),
        })
        .returning(super::columns_of::<Account>())
        .get_result(conn)?)
}

/// A visitor signs up: a new user, and a new account with them as its owner, logged as
/// the new user. A taken email is refused by the `users` table's unique index.
pub fn sign_up(
    tx: &mut Tx<'_>,
    name: &AccountName,
    email: &Email,
    password_hash: &str,
) -> Result<(User, Account), AppError> {
    // Proven later if mail is on (`db::verification::sign_up`), else taken on trust.
    let user = super::users::create(
        tx.conn,
        email,
        password_hash,
        false,
        super::users::Address::Assumed,
    )?;
    super::users::record_login(tx.conn, user.user_id())?;
    tx.act_as(user.user_id(), &user.email);
    let account = create_owned(tx, user.user_id(), name, "signed up as owner")?;
    Ok((user, account))
}

/// A signed-in person with no account yet (someone new through single sign-on) makes one
/// and owns it: sign-up without a password.
/// `None` when they belong to an account by now: the page's check ran before the write
/// lock, and the same form sent twice at once must make one account, not two.
pub fn create_for_signed_in(
    tx: &mut Tx<'_>,
    name: &AccountName,
) -> Result<Option<Account>, AppError> {
    let user = tx.signed_in_user()?;
    if super::memberships::first_account_of(tx.conn, user)?.is_some() {
        return Ok(None);
    }
    create_owned(tx, user, name, "created as owner, after a single sign-on").map(Some)
}

/// A new account named `name`, owned by `owner`, with the audit row that says how.
fn create_owned(
    tx: &mut Tx<'_>,
    owner: UserId,
    name: &AccountName,
    how: &str,
) -> Result<Account, AppError> {
    let account = create(tx.conn, name)?;
    super::memberships::create(tx.conn, owner, account.account_id(), Role::Owner)?;
    tx.log_to(
        account.account_id(),
        Event {
            action: action::ACCOUNT_CREATED,
            target: &format!("account {} ({})", account.name, account.slug),
            token: None,
            detail: how,
        },
    )?;
    Ok(account)
}

pub fn find(conn: &mut DbConnection, id: AccountId) -> Result<Account, AppError> {
    Ok(accounts::table
        .find(id.0)
        .select(Account::as_select())
        .first(conn)?)
}

/// Every account the user belongs to, with their role in it, oldest membership first.
pub fn of_user(conn: &mut DbConnection, user: UserId) -> Result<Vec<(Account, Role)>, AppError> {
    Ok(memberships::table
        .inner_join(accounts::table)
        .filter(memberships::user_id.eq(user.0))
        .order(memberships::id.asc())
        .select((Account::as_select(), memberships::role))
        .load(conn)?)
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Account, AppError> {
    accounts::table
        .filter(accounts::slug.eq(slug))
        .select(Account::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::invalid(format!("No account has the slug \"{slug}\".")))
}

/// Suspends or restores the account's API access, with its audit event, and tells every
/// process to drop the account's cached tokens. Setting the state it already has
/// changes nothing and logs nothing. For the account's owners, and for operators; the
/// account remembers which, for the API's 403 and the suspended banner.
pub fn set_api_access(tx: &mut Tx<'_>, state: ApiState, reason: &Reason) -> Result<(), AppError> {
    tx.require(Action::SetApiAccess)?;
    let id = tx.account()?;
    let account = find(tx.conn, id)?;
    let by_operator = tx.acts_for_platform();
    // The operator's suspension is theirs to lift: owners could otherwise undo it at once.
    if account.is_suspended() && account.suspended_by_operator && !by_operator {
        return Err(AppError::forbidden(SUSPENDED_BY_OPERATOR));
    }
    if account.api_state == state {
        return Ok(());
    }
    diesel::update(accounts::table.find(id.0))
        .set((
            accounts::api_state.eq(state),
            accounts::suspended_by_operator.eq(state == ApiState::Suspended && by_operator),
        ))
        .execute(tx.conn)?;
    super::invalidations::record_account(tx.conn, id)?;
    tx.log(Event {
        action: match state {
            ApiState::Suspended => action::API_SUSPENDED,
            ApiState::Active => action::API_RESTORED,
        },
        target: &format!("account {} ({})", account.name, account.slug),
        token: None,
        detail: reason.as_str(),
    })
}

/// What an owner is told when they try to change a suspension the operator made.
pub const SUSPENDED_BY_OPERATOR: &str = "The operator suspended this account's API access, so only the operator can restore it. Contact their support.";

/// Sets the account's longest allowed token lifetime (`None`: no limit), with its audit
/// event. For owners. Tokens that already outlive it are left alone: they keep working
/// until their own expiry, and the settings page lists them. Setting the limit it already
/// has changes nothing and logs nothing.
pub fn set_token_lifetime(tx: &mut Tx<'_>, limit: Option<LifetimeLimit>) -> Result<(), AppError> {
    tx.require(Action::SetTokenLifetime)?;
    let id = tx.account()?;
    let account = find(tx.conn, id)?;
    if account.max_token_lifetime_days == limit {
        return Ok(());
    }
    diesel::update(accounts::table.find(id.0))
        .set(accounts::max_token_lifetime_days.eq(limit))
        .execute(tx.conn)?;
    let words = |l: Option<LifetimeLimit>| l.map_or("no limit".to_string(), |l| l.to_string());
    tx.log(Event {
        action: action::TOKEN_LIFETIME_SET,
        target: &format!("account {} ({})", account.name, account.slug),
        token: None,
        detail: &format!(
            "longest token lifetime: {} (was {})",
            words(limit),
            words(account.max_token_lifetime_days)
        ),
    })
}

/// Owners require a second factor of every member, or stop requiring it. Members without
/// one are sent to set it up at their next request (`SignedIn`).
pub fn set_two_factor_policy(
    tx: &mut Tx<'_>,
    required: bool,
    mail_on: bool,
) -> Result<bool, AppError> {
    tx.require(Action::SetTwoFactorPolicy)?;
    let id = tx.account()?;
    let account = find(tx.conn, id)?;
    if account.require_two_factor == required {
        return Ok(false);
    }
    diesel::update(accounts::table.find(id.0))
        .set(accounts::require_two_factor.eq(required))
        .execute(tx.conn)?;
    tx.log(Event {
        action: action::TWO_FACTOR_POLICY_SET,
        target: &format!("account {} ({})", account.name, account.slug),
        token: None,
        detail: if required {
            "every member must sign in with a second factor"
        } else {
            "a second factor is up to each member"
        },
    })?;
    if mail_on {
        let owners: Vec<String> = memberships::table
            .inner_join(super::schema::users::table)
            .filter(memberships::account_id.eq(id.0))
            .filter(memberships::role.eq(Role::Owner))
            .select(super::schema::users::email)
            .load(tx.conn)?;
        let mail = crate::domain::Mail::TwoFactorPolicyChanged {
            account: account.name.clone(),
            required,
            by: tx.actor().label.clone(),
        };
        for owner in owners {
            let owner = Email::parse(&owner).map_err(AppError::internal)?;
            super::outbox::enqueue(tx.conn, &owner, &mail)?;
        }
    }
    Ok(true)
}

/// The first account that requires `user` to sign in through the provider: one where they
/// are a member or admin and require-SSO is on. Owners keep their password (break-glass).
pub fn sso_required_of(conn: &mut DbConnection, user: UserId) -> Result<Option<String>, AppError> {
    Ok(memberships::table
        .inner_join(accounts::table)
        .filter(memberships::user_id.eq(user.0))
        .filter(memberships::role.ne(Role::Owner))
        .filter(accounts::require_sso.eq(true))
        .order(memberships::id.asc())
        .select(accounts::name)
        .first(conn)
        .optional()?)
}

/// Owners set the account's single sign-on policy: whether members must sign in through
/// the provider, and the email domain (if any) whose people join at their first SSO
/// sign-in. A domain another account claimed is refused. Returns whether anything changed.
pub fn set_sso_policy(
    tx: &mut Tx<'_>,
    require_sso: bool,
    claimed_domain: Option<&str>,
) -> Result<bool, AppError> {
    // The same owners-only right as the two-factor policy: both decide how members sign in.
    tx.require(Action::SetTwoFactorPolicy)?;
    let id = tx.account()?;
    let account = find(tx.conn, id)?;
    let domain = claimed_domain.map(str::to_ascii_lowercase);
    if account.require_sso == require_sso && account.claimed_domain == domain {
        return Ok(false);
    }
    if let Some(domain) = &domain
        && account.claimed_domain.as_ref() != Some(domain)
        && !tx.acts_for_platform()
    {
        // A claim makes everyone there a member at their first SSO sign-in, so an owner
        // claims only the domain of their own proven address, as Slack asks: no one claims
        // gmail.com, or a rival's domain, to collect its people.
        let me = super::users::find(tx.conn, tx.signed_in_user()?)?;
        let at_domain = me
            .email
            .rsplit_once('@')
            .is_some_and(|(_, own)| own.eq_ignore_ascii_case(domain));
        if !at_domain || !me.address_proven() {
            return Err(AppError::invalid(format!(
                "To claim {domain}, your own address must be at {domain} and proven, by a link mailed to it or by connecting your single sign-on (you sign in as {}): a claim lets everyone there join this account.",
                me.email
            )));
        }
    }
    if let Some(domain) = &domain {
        let taken: i64 = accounts::table
            .filter(accounts::claimed_domain.eq(domain))
            .filter(accounts::id.ne(id.0))
            .count()
            .get_result(tx.conn)?;
        if taken > 0 {
            return Err(AppError::invalid(format!(
                "{domain} is claimed by another account already. Each domain joins one account."
            )));
        }
    }
    diesel::update(accounts::table.find(id.0))
        .set((
            accounts::require_sso.eq(require_sso),
            accounts::claimed_domain.eq(&domain),
        ))
        .execute(tx.conn)?;
    tx.log(Event {
        action: action::SSO_POLICY_SET,
        target: &format!("account {} ({})", account.name, account.slug),
        token: None,
        detail: &format!(
            "{}; claimed domain: {}",
            if require_sso {
                "members must sign in through single sign-on"
            } else {
                "members may sign in with a password"
            },
            domain.as_deref().unwrap_or("none")
        ),
    })?;
    Ok(true)
}

/// One row of the operator's account list.
#[derive(Debug, Clone)]
pub struct AccountSummary {
    pub account: Account,
    pub members: i64,
    pub active_tokens: i64,
    pub clusters: i64,
}

/// Every account with its counts, newest first: four queries whatever the number of
/// accounts (the accounts, then each count grouped by account), not three per account.
pub fn list_with_counts(conn: &mut DbConnection) -> Result<Vec<AccountSummary>, AppError> {
    use std::collections::HashMap;

    let all: Vec<Account> = accounts::table
        .order(accounts::created_at.desc())
        .select(Account::as_select())
        .load(conn)?;
    let members: HashMap<i32, i64> = memberships::table
        .group_by(memberships::account_id)
        .select((memberships::account_id, diesel::dsl::count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let now = super::now();
    let active_tokens: HashMap<i32, i64> = tokens::table
        .filter(super::standing::token_active_at(now))
        .group_by(tokens::account_id)
        .select((tokens::account_id, diesel::dsl::count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let clusters: HashMap<i32, i64> = clusters::table
        .group_by(clusters::account_id)
        .select((clusters::account_id, diesel::dsl::count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let count = |counts: &HashMap<i32, i64>, account: &Account| {
        counts.get(&account.id).copied().unwrap_or(0)
    };
    Ok(all
        .into_iter()
        .map(|account| AccountSummary {
            members: count(&members, &account),
            active_tokens: count(&active_tokens, &account),
            clusters: count(&clusters, &account),
            account,
        })
        .collect())
}
