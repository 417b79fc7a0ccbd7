//! The operator's command-line tools. They work on the database file directly, so they
//! run beside a live server: a revocation here reaches the server within a second
//! through the invalidation log.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};

use crate::auth::password;
use crate::cli::{AccountCommand, Cli, Command, OperatorCommand, TokenCommand, UserCommand};
use crate::config::Config;
use crate::db::{self, tokens::TokenRequest, tx::Principal, tx::Tx};
use crate::domain::{
    AccountId, AccountName, Email, Grace, Password, RateLimit, Reason, Scopes, TokenKey, TokenName,
};
use crate::error::AppError;

/// Turns an `AppError` into a plain message for the terminal.
fn plain(err: AppError) -> anyhow::Error {
    match err {
        AppError::Internal(e) => e,
        other => anyhow::anyhow!(other.messages().join(" ")),
    }
}

/// Runs a change through the write path, as the command line.
fn write<T>(
    conn: &mut db::Conn,
    account: Option<AccountId>,
    change: impl FnOnce(&mut Tx<'_>) -> Result<T, AppError>,
) -> anyhow::Result<T> {
    db::tx::transact(conn, &Principal::CommandLine, account, change).map_err(plain)
}

/// Runs any command but `serve`.
pub fn execute(cli: Cli, stdin: &mut impl BufRead, out: &mut impl Write) -> anyhow::Result<()> {
    let config = Config::try_from(cli.settings).map_err(|e| anyhow::anyhow!(e))?;
    let command = match cli.command {
        None | Some(Command::Serve) => bail!("`serve` runs the server; it is not a tool command"),
        Some(command) => command,
    };
    // These two come before the pool, which would migrate: a backup is taken before an
    // upgrade, of the store as it is.
    match &command {
        Command::Migrate => {
            for name in db::migrate(&config.database_url)? {
                writeln!(out, "applied {name}")?;
            }
            return Ok(());
        }
        Command::Backup { file } => {
            let bytes = db::backup::to_file(&config.database_url, file)?;
            writeln!(out, "backed up to {} ({bytes} bytes)", file.display())?;
            return Ok(());
        }
        _ => {}
    }
    let pool = db::connect_to(&config.database_url)?;
    let mut conn = pool.get().context("cannot open a database connection")?;
    match command {
        Command::Serve | Command::Migrate | Command::Backup { .. } => {
            unreachable!("handled above")
        }
        Command::Account(AccountCommand::Create { name }) => {
            let name = AccountName::parse(&name).map_err(|e| anyhow::anyhow!(e))?;
            let account = write(&mut conn, None, |tx| db::accounts::create(tx.conn, &name))?;
            writeln!(out, "{}", account.slug)?;
        }
        Command::Account(AccountCommand::List) => {
            for summary in db::accounts::list_with_counts(&mut conn).map_err(plain)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{} members\t{} active tokens",
                    summary.account.slug,
                    summary.account.name,
                    summary.account.api_state,
                    summary.members,
                    summary.active_tokens
                )?;
            }
        }
        Command::User(UserCommand::ResetPassword { email }) => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!(e))?;
            let token = write(&mut conn, None, |tx| db::recovery::link_for(tx, &email))?;
            let base = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.bind));
            writeln!(out, "{base}/password-reset/{}", token.expose())?;
            eprintln!(
                "Give this link to {email} only: it sets a new password, works once, for 30 minutes, and signs them out everywhere."
            );
        }
        Command::Operator(OperatorCommand::Create { email }) => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!(e))?;
            if let Some(user) = db::users::find_by_email(&mut conn, &email).map_err(plain)? {
                write(&mut conn, None, |tx| {
                    db::users::set_operator(tx.conn, user.user_id())
                })?;
                writeln!(out, "{email} is now an operator (password unchanged)")?;
                return Ok(());
            }
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let password = Password::parse(line).map_err(|e| anyhow::anyhow!(e))?;
            let hash = password::hash(&password).map_err(plain)?;
            write(&mut conn, None, |tx| {
                db::users::create(tx.conn, &email, &hash, true)
            })?;
            writeln!(out, "{email} is now an operator")?;
        }
        Command::Token(TokenCommand::Create {
            account,
            name,
            scopes,
            expires_in_days,
            rate_limit,
        }) => {
            let account = db::accounts::find_by_slug(&mut conn, &account).map_err(plain)?;
            let name = TokenName::parse(&name).map_err(|e| anyhow::anyhow!(e))?;
            let scopes = Scopes::parse(&scopes).map_err(|e| anyhow::anyhow!(e))?;
            let rate_limit = RateLimit::parse_optional(rate_limit.as_deref().unwrap_or(""))
                .map_err(|e| anyhow::anyhow!(e))?;
            // Checked: a huge number of days would overflow the calendar, not panic.
            let expires_at = expires_in_days
                .map(|d| {
                    db::now()
                        .checked_add_signed(chrono::Duration::days(i64::from(d)))
                        .filter(|_| d <= 100_000)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--expires-in-days: give a number of days from 0 to 100000."
                            )
                        })
                })
                .transpose()?;
            let request = TokenRequest {
                name,
                scopes,
                expires_at,
                rate_limit,
            };
            let (token, secret) = write(&mut conn, Some(account.account_id()), |tx| {
                db::tokens::create(tx, request)
            })?;
            writeln!(out, "key: {}", token.key)?;
            writeln!(out, "secret: {}", secret.expose())?;
            eprintln!("Store the secret now: it will not be shown again.");
        }
        Command::Token(TokenCommand::Roll { key, grace }) => {
            let key = TokenKey::parse(&key).map_err(|e| anyhow::anyhow!(e))?;
            let grace = Grace::parse(&grace).map_err(|e| anyhow::anyhow!(e))?;
            // The key only tells which account to act in; the roll reads the token again
            // under the write lock.
            let found = db::tokens::find_by_key_any_account(&mut conn, &key)
                .map_err(plain)?
                .ok_or_else(|| anyhow::anyhow!("No token has the key {key}."))?;
            let period = config.grace_period(grace);
            let rolled = write(&mut conn, Some(found.token.account()), |tx| {
                db::tokens::roll(tx, found.token.token_id(), period)
            })?;
            writeln!(out, "key: {}", rolled.new.key)?;
            writeln!(out, "secret: {}", rolled.secret.expose())?;
            eprintln!("Store the secret now: it will not be shown again.");
            match rolled.old.expires_at {
                Some(ends) if ends > db::now() => eprintln!(
                    "The old secret of {} works until {} UTC.",
                    rolled.old.key,
                    ends.format("%Y-%m-%d %H:%M:%S")
                ),
                _ => eprintln!("The old secret of {} no longer works.", rolled.old.key),
            }
        }
        Command::Token(TokenCommand::Revoke { key, reason }) => {
            let key = TokenKey::parse(&key).map_err(|e| anyhow::anyhow!(e))?;
            let reason =
                Reason::required(&reason, "Give a reason: the token's owners will read it.")
                    .map_err(|e| anyhow::anyhow!(e))?;
            let token = write(&mut conn, None, |tx| {
                db::tokens::revoke_by_key(tx, &key, &reason)
            })?;
            writeln!(out, "revoked {}", token.key)?;
        }
        Command::Token(TokenCommand::List { account }) => {
            let account = db::accounts::find_by_slug(&mut conn, &account).map_err(plain)?;
            let tokens =
                db::tokens::list_for_account(&mut conn, account.account_id(), &Default::default())
                    .map_err(plain)?;
            for view in tokens {
                let t = &view.token;
                writeln!(
                    out,
                    "{}\t{}\t{}\t…{}\t{}\tcreated {}\tlast used {}\t{}",
                    t.key,
                    t.name,
                    t.status().as_str(),
                    t.secret_hint,
                    t.scopes,
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    t.last_used_at
                        .map(|at| format!(
                            "{} from {}",
                            at.format("%Y-%m-%d %H:%M:%S"),
                            t.last_used_ip.as_deref().unwrap_or("?")
                        ))
                        .unwrap_or_else(|| "never".into()),
                    t.rate_limit_per_minute
                        .map(|l| format!("at most {l}"))
                        .unwrap_or_else(|| "no rate limit".into()),
                )?;
            }
        }
    }
    Ok(())
}
