//! A model test of the promise "revoked means refused". Random sequences of token
//! creation, revocation, member removal, suspension, restoration and restarts run
//! against the real write path and guard on a real SQLite file, and beside them against
//! a few lines of model that say who may call what. After every step, the guard's answer
//! for every token ever made equals the model's. At the end, two stories of the guard's
//! memory of headers: a remembered header still meets its token's expiry, and a refused
//! one is never remembered.

use std::collections::BTreeSet;

use base64::Engine;
use keyward::auth::guard;
use keyward::config::Config;
use keyward::db::{self, tokens::TokenRequest, tx::Principal};
use keyward::domain::{
    AccountId, AccountName, ApiState, Email, Reason, Role, Scopes, TokenName, UserId,
};
use keyward::error::AppError;
use keyward::state::AppState;
use proptest::prelude::*;

/// Two accounts, each with an owner and two members; members are indexes 0..6,
/// `index / 3` is the account, and `index % 3 == 0` is its owner.
const PEOPLE: usize = 6;
const ACCOUNTS: usize = 2;

fn account_of(person: usize) -> usize {
    person / 3
}

fn is_owner(person: usize) -> bool {
    person.is_multiple_of(3)
}

#[derive(Debug, Clone)]
enum Step {
    /// A person creates a token in their account from the dashboard.
    Create {
        person: usize,
    },
    /// The command line creates a token in an account.
    CreateFromCli {
        account: usize,
    },
    /// The account's owner revokes the n-th token ever made (modulo how many exist).
    Revoke {
        token: usize,
    },
    /// The owner removes a (non-owner) member.
    Remove {
        person: usize,
    },
    Suspend {
        account: usize,
    },
    Restore {
        account: usize,
    },
    /// The server stops and starts again: a fresh cache over the same file.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..PEOPLE).prop_map(|person| Step::Create { person }),
        1 => (0..ACCOUNTS).prop_map(|account| Step::CreateFromCli { account }),
        3 => any::<usize>().prop_map(|token| Step::Revoke { token }),
        2 => (0..PEOPLE).prop_map(|person| Step::Remove { person }),
        1 => (0..ACCOUNTS).prop_map(|account| Step::Suspend { account }),
        1 => (0..ACCOUNTS).prop_map(|account| Step::Restore { account }),
        1 => Just(Step::Restart),
    ]
}

/// What the guard should answer for one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allowed,
    Unauthorized,
    Suspended,
}

/// Who may call what, in as few lines as it takes.
#[derive(Debug, Default)]
struct Model {
    removed: BTreeSet<usize>,
    suspended: BTreeSet<usize>,
    /// For every token made: its account, its creator (none for the CLI), revoked.
    tokens: Vec<(usize, Option<usize>, bool)>,
}

impl Model {
    fn answer(&self, token: usize) -> Answer {
        let (account, _, revoked) = self.tokens[token];
        if revoked {
            Answer::Unauthorized
        } else if self.suspended.contains(&account) {
            Answer::Suspended
        } else {
            Answer::Allowed
        }
    }
}

/// The real thing: a database file, the shared state over it, and the ids it handed out.
struct Real {
    _dir: tempfile::TempDir,
    config: Config,
    pool: db::Pool,
    state: AppState,
    accounts: Vec<AccountId>,
    people: Vec<UserId>,
    /// For every token made: its id and its `Authorization` header.
    tokens: Vec<(keyward::domain::TokenId, String)>,
}

impl Real {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.db").to_string_lossy().to_string();
        let config = Config::for_database(path.clone());
        let pool = db::connect(&path).expect("a fresh database");
        let mut conn = pool.get().expect("a connection");
        let (accounts, people) = db::tx::transact(&mut conn, &Principal::CommandLine, None, |tx| {
            let mut accounts = Vec::new();
            let mut people = Vec::new();
            for a in 0..ACCOUNTS {
                let name = AccountName::parse(&format!("Model {a}")).map_err(AppError::invalid)?;
                let account = db::accounts::create(tx.conn, &name)?.account_id();
                for p in 0..PEOPLE / ACCOUNTS {
                    let email =
                        Email::parse(&format!("p{a}{p}@model.test")).map_err(AppError::invalid)?;
                    // Nobody signs in here, so no password needs hashing.
                    let user = db::users::create(
                        tx.conn,
                        &email,
                        "$argon2id$unused",
                        false,
                        db::users::Address::Assumed,
                    )?;
                    let role = if p == 0 { Role::Owner } else { Role::Member };
                    db::memberships::create(tx.conn, user.user_id(), account, role)?;
                    people.push(user.user_id());
                }
                accounts.push(account);
            }
            Ok((accounts, people))
        })
        .expect("the model's accounts and people");
        drop(conn);
        let state = Self::start(&pool, &config);
        Self {
            _dir: dir,
            config,
            pool,
            state,
            accounts,
            people,
            tokens: Vec::new(),
        }
    }

    /// What the server does at start: a fresh state, its cache knowing every key.
    fn start(pool: &db::Pool, config: &Config) -> AppState {
        let state = AppState::new(pool.clone(), config.clone());
        let mut conn = pool.get().expect("a connection");
        state.cache.start(&mut conn).expect("the cache starts");
        state
    }

    fn as_person(&self, person: usize) -> Principal {
        Principal::User {
            id: self.people[person],
            ip: None,
        }
    }

    fn owner_of(&self, account: usize) -> Principal {
        self.as_person(account * 3)
    }

    async fn create(&mut self, who: Principal, account: usize) -> Result<(), AppError> {
        let request = TokenRequest {
            name: TokenName::parse("model").expect("a valid name"),
            scopes: Scopes::all(),
            expires_at: None,
            rate_limit: None,
            fields: Default::default(),
        };
        let (token, secret) = self
            .state
            .write(who, Some(self.accounts[account]), |tx| {
                db::tokens::create(tx, request)
            })
            .await?;
        let header = basic(&format!("{}:{}", token.key, secret.expose()));
        self.tokens.push((token.token_id(), header));
        Ok(())
    }

    async fn answer(&self, token: usize) -> Answer {
        match guard::authenticate(&self.state, Some(self.tokens[token].1.as_bytes())).await {
            Ok(_) => Answer::Allowed,
            Err(AppError::Unauthorized { .. }) => Answer::Unauthorized,
            Err(AppError::Forbidden(_)) => Answer::Suspended,
            Err(other) => panic!("the guard failed: {other}"),
        }
    }
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut real = Real::new();
    let mut model = Model::default();
    for (n, step) in steps.iter().enumerate() {
        match *step {
            Step::Create { person } => {
                let account = account_of(person);
                let made = real.create(real.as_person(person), account).await;
                let allowed = !model.removed.contains(&person);
                prop_assert_eq!(
                    made.is_ok(),
                    allowed,
                    "step {} {:?}: {:?}",
                    n,
                    step,
                    made.err()
                );
                if allowed {
                    model.tokens.push((account, Some(person), false));
                }
            }
            Step::CreateFromCli { account } => {
                real.create(Principal::CommandLine, account)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("CLI create: {e}")))?;
                model.tokens.push((account, None, false));
            }
            Step::Revoke { token } => {
                if model.tokens.is_empty() {
                    continue;
                }
                let token = token % model.tokens.len();
                let account = model.tokens[token].0;
                let id = real.tokens[token].0;
                let reason = Reason::parse("model").expect("a valid reason");
                real.state
                    .write(
                        real.owner_of(account),
                        Some(real.accounts[account]),
                        move |tx| db::tokens::revoke(tx, id, &reason),
                    )
                    .await
                    .map_err(|e| TestCaseError::fail(format!("revoke: {e}")))?;
                model.tokens[token].2 = true;
            }
            Step::Remove { person } => {
                if is_owner(person) {
                    continue;
                }
                let account = account_of(person);
                let target = real.people[person];
                let removed = real
                    .state
                    .write(
                        real.owner_of(account),
                        Some(real.accounts[account]),
                        move |tx| db::members::remove_member(tx, target),
                    )
                    .await;
                let was_member = model.removed.insert(person);
                prop_assert_eq!(removed.is_ok(), was_member, "step {} {:?}", n, step);
                for token in model.tokens.iter_mut() {
                    if token.1 == Some(person) {
                        token.2 = true;
                    }
                }
            }
            Step::Suspend { account } | Step::Restore { account } => {
                let suspend = matches!(step, Step::Suspend { .. });
                let state = if suspend {
                    ApiState::Suspended
                } else {
                    ApiState::Active
                };
                let reason = Reason::parse("").expect("an empty reason");
                real.state
                    .write(
                        real.owner_of(account),
                        Some(real.accounts[account]),
                        move |tx| db::accounts::set_api_access(tx, state, &reason),
                    )
                    .await
                    .map_err(|e| TestCaseError::fail(format!("API access: {e}")))?;
                if suspend {
                    model.suspended.insert(account);
                } else {
                    model.suspended.remove(&account);
                }
            }
            Step::Restart => {
                real.state = Real::start(&real.pool, &real.config);
            }
        }
        for token in 0..model.tokens.len() {
            prop_assert_eq!(
                real.answer(token).await,
                model.answer(token),
                "after step {} {:?}, token {} of {:?}",
                n,
                step,
                token,
                model.tokens
            );
        }
    }
    Ok(())
}

proptest! {
    // Each case is a fresh database file and up to 40 fsynced writes: enough cases to
    // find an ordering bug, few enough to keep `cargo test` quick.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_guard_answers_every_token_as_the_model_says(steps in prop::collection::vec(step(), 1..40)) {
        actix_web::rt::System::new().block_on(run(steps))?;
    }
}

// A cached token is judged again on every call: at the call's time for its expiry, and
// against the secret each call sends.

/// A fresh server state over an empty store, and a cached token of it expiring at
/// `expires_at`, with the header that carries its secret.
fn state_with_cached_token(
    expires_at: chrono::NaiveDateTime,
) -> (
    tempfile::TempDir,
    AppState,
    keyward::domain::TokenKey,
    String,
) {
    use keyward::auth::cache::CachedToken;
    use keyward::domain::{TokenId, TokenKey, TokenSecret};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("memo.db").to_string_lossy().to_string();
    let pool = db::connect(&path).expect("a fresh database");
    let state = Real::start(&pool, &Config::for_database(path));
    let (key, secret) = (TokenKey::generate(), TokenSecret::generate());
    let token = CachedToken {
        id: TokenId(7),
        key: key.as_str().into(),
        name: "ci".into(),
        digest: secret.digest(),
        scopes: Scopes::all(),
        created_at: expires_at - chrono::Duration::days(1),
        expires_at: Some(expires_at),
        revoked: false,
        account_id: AccountId(1),
        account_slug: "acme".into(),
        account_name: "Acme".into(),
        account_suspended: false,
        account_suspended_by_operator: false,
        rate_limit: None,
        rate_bucket: TokenId(7),
        permissions: Default::default(),
        meta: None,
        external_id: None,
        credits: None,
        allowed_ips: Default::default(),
    };
    let generation = state.cache.generation();
    assert!(
        state
            .cache
            .insert_if_unchanged(std::sync::Arc::new(token), generation)
    );
    let header = basic(&format!("{key}:{}", secret.expose()));
    (dir, state, key, header)
}

/// The `Authorization` header that carries `key:secret`.
fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// Why the guard refused `header` at `now`; `None` when it let it in.
async fn refusal(
    state: &AppState,
    header: &str,
    now: chrono::NaiveDateTime,
) -> Option<keyward::metrics::GuardReason> {
    match guard::check(state, Some(header.as_bytes()), now).await {
        guard::Verdict::Allowed(_) => None,
        guard::Verdict::Suspended(_) => Some(keyward::metrics::GuardReason::Suspended),
        guard::Verdict::Refused { reason, .. } => Some(reason),
    }
}

#[tokio::test]
async fn a_cached_token_is_judged_for_expiry_at_each_calls_time() {
    let expires = chrono::Utc::now().naive_utc() + chrono::Duration::hours(1);
    let (_dir, state, _, header) = state_with_cached_token(expires);
    let before = expires - chrono::Duration::minutes(1);

    assert_eq!(refusal(&state, &header, before).await, None);
    assert_eq!(refusal(&state, &header, before).await, None);
    assert_eq!(
        refusal(&state, &header, expires).await,
        Some(keyward::metrics::GuardReason::Expired),
        "a token is refused from the instant it expires"
    );
}

#[tokio::test]
async fn a_wrong_secret_for_a_key_just_let_in_is_refused() {
    let expires = chrono::Utc::now().naive_utc() + chrono::Duration::hours(1);
    let (_dir, state, key, header) = state_with_cached_token(expires);
    let now = expires - chrono::Duration::minutes(1);
    assert_eq!(refusal(&state, &header, now).await, None);

    let wrong = basic(&format!(
        "{key}:{}",
        keyward::domain::TokenSecret::generate().expose()
    ));
    assert_eq!(
        refusal(&state, &wrong, now).await,
        Some(keyward::metrics::GuardReason::WrongSecret)
    );
    assert_eq!(refusal(&state, &header, now).await, None);
}
