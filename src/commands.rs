//! The operator's command-line tools. They work on the database file directly, so they
//! run beside a live server: a revocation here reaches the server within a second
//! through the invalidation log.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};

use crate::auth::password;
use crate::cli::{AccountCommand, Cli, Command, OperatorCommand, TokenCommand, UserCommand};
use crate::config::Config;
use crate::db::{self, DbConnection, tokens::TokenRequest, tx::Principal, tx::Tx};
use crate::domain::{
    AccountId, AccountName, Email, Grace, KeyFieldsText, Password, RateLimit, Reason, Scopes,
    TokenKey, TokenName,
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
    conn: &mut DbConnection,
    account: Option<AccountId>,
    change: impl FnOnce(&mut Tx<'_>) -> Result<T, AppError>,
) -> anyhow::Result<T> {
    db::tx::transact(conn, &Principal::CommandLine, account, change).map_err(plain)
}

/// Turns a parse error into a plain message for the terminal.
fn parsed<T, E: std::fmt::Display>(result: Result<T, E>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs any command but `serve`.
pub fn execute(cli: Cli, stdin: &mut impl BufRead, out: &mut impl Write) -> anyhow::Result<()> {
    let config = parsed(Config::try_from(cli.settings))?;
    let command = match cli.command {
        None | Some(Command::Serve) => bail!("`serve` runs the server; it is not a tool command"),
        Some(command) => command,
    };
    // These two come before the migrations: a backup is taken before an upgrade, of the
    // store as it is.
    match command {
        Command::Serve => unreachable!("refused above"),
        Command::Migrate => migrate(&config, out),
        Command::Backup { file } => backup(&config, &file, out),
        Command::Account(command) => account(&mut open(&config)?, command, stdin, out),
        Command::Operator(OperatorCommand::Create { email }) => {
            create_operator(&mut open(&config)?, &email, stdin, out)
        }
        Command::Token(command) => token(&mut open(&config)?, command, out),
        Command::User(UserCommand::ResetPassword { email }) => {
            reset_password_link(&mut open(&config)?, &config, &email, out)
        }
        Command::User(UserCommand::ResetTwoFactor { email }) => {
            reset_two_factor(&mut open(&config)?, &config, &email, out)
        }
    }
}

/// A one-time link that sets a new password: the way back in when the server sends no mail.
fn reset_password_link(
    conn: &mut DbConnection,
    config: &Config,
    email: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let email = parsed(Email::parse(email))?;
    let token = write(conn, None, |tx| db::recovery::link_for(tx, &email))?;
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    writeln!(out, "{base}/password-reset/{}", token.expose())?;
    eprintln!(
        "Give this link to {email} only: it sets a new password, works once, for 30 minutes, and signs them out everywhere."
    );
    Ok(())
}

/// Removes the second factors of a person who lost them, and says what went.
fn reset_two_factor(
    conn: &mut DbConnection,
    config: &Config,
    email: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let email = parsed(Email::parse(email))?;
    let mail_on = config.mail.is_some();
    let removed = write(conn, None, |tx| {
        db::recovery::reset_second_factors(tx, &email, mail_on)
    })?;
    writeln!(
        out,
        "removed {removed} of {email}, and ended every session of theirs"
    )?;
    eprintln!(
        "{email} signs in with their password alone now; an account that requires a second factor asks them to set one up."
    );
    Ok(())
}

/// The store, migrated, through one connection of its own. No pool: a pool opens its
/// connections on background threads, and a process that exits while one of them is inside
/// libpq (a SCRAM handshake is slow) can crash in OpenSSL's exit-time cleanup. With one
/// connection, owned here, nothing is left running when the command returns.
fn open(config: &Config) -> anyhow::Result<DbConnection> {
    db::migrate(&config.database_url)?;
    db::open_url(&config.database_url)
}

fn migrate(config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    for name in db::migrate(&config.database_url)? {
        writeln!(out, "applied {name}")?;
    }
    Ok(())
}

fn backup(config: &Config, file: &std::path::Path, out: &mut impl Write) -> anyhow::Result<()> {
    let bytes = db::backup::to_file(&config.database_url, file)?;
    writeln!(out, "backed up to {} ({bytes} bytes)", file.display())?;
    Ok(())
}

fn account(
    conn: &mut DbConnection,
    command: AccountCommand,
    stdin: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create { name, owner: None } => {
            let name = parsed(AccountName::parse(&name))?;
            let account = write(conn, None, |tx| db::accounts::create(tx.conn, &name))?;
            writeln!(out, "{}", account.slug)?;
        }
        // With sign-up closed, the way an account gets its first owner.
        AccountCommand::Create {
            name,
            owner: Some(owner),
        } => {
            let name = parsed(AccountName::parse(&name))?;
            let email = parsed(Email::parse(&owner))?;
            let hash = read_password_hash(stdin)?;
            let (_, account) = write(conn, None, |tx| {
                db::accounts::sign_up(tx, &name, &email, &hash)
            })?;
            writeln!(out, "{}", account.slug)?;
        }
        AccountCommand::List => {
            for summary in db::accounts::list_with_counts(conn).map_err(plain)? {
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
    }
    Ok(())
}

/// A password read from the first line of stdin, hashed.
fn read_password_hash(stdin: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    let password = parsed(Password::parse(line))?;
    password::hash(&password).map_err(plain)
}

/// Grants the flag to an existing user, or makes a new one with the password on stdin.
fn create_operator(
    conn: &mut DbConnection,
    email: &str,
    stdin: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let email = parsed(Email::parse(email))?;
    if let Some(user) = db::users::find_by_email(conn, &email).map_err(plain)? {
        write(conn, None, |tx| {
            db::users::set_operator(tx.conn, user.user_id())
        })?;
        writeln!(out, "{email} is now an operator (password unchanged)")?;
        return Ok(());
    }
    let hash = read_password_hash(stdin)?;
    write(conn, None, |tx| {
        db::users::create(tx.conn, &email, &hash, true, db::users::Address::Assumed)
    })?;
    writeln!(out, "{email} is now an operator")?;
    Ok(())
}

fn token(
    conn: &mut DbConnection,
    command: TokenCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            account,
            name,
            scopes,
            expires_in_days,
            rate_limit,
            permissions,
            meta,
            external_id,
            credits,
            credits_refill,
            allowed_ips,
        } => {
            let (refill_interval, refill_amount) = credits_refill
                .split_once(':')
                .map(|(i, n)| (i.to_string(), n.to_string()))
                .unwrap_or((credits_refill, String::new()));
            let fields = KeyFieldsText {
                permissions,
                meta,
                external_id,
                credits,
                refill_interval,
                refill_amount,
                allowed_ips,
            }
            .parse()
            .map_err(|errors| anyhow::anyhow!(errors.join("\n")))?;
            let account = db::accounts::find_by_slug(conn, &account).map_err(plain)?;
            let request = TokenRequest {
                name: parsed(TokenName::parse(&name))?,
                scopes: parsed(Scopes::parse(&scopes))?,
                expires_at: expiry(expires_in_days)?,
                rate_limit: parsed(RateLimit::parse_optional(
                    rate_limit.as_deref().unwrap_or(""),
                ))?,
                fields,
            };
            let (token, secret) = write(conn, Some(account.account_id()), |tx| {
                db::tokens::create(tx, request)
            })?;
            print_secret(out, &token.key, &secret)
        }
        TokenCommand::Roll { key, grace } => roll(conn, &key, &grace, out),
        TokenCommand::Revoke { key, reason } => {
            let key = parsed(TokenKey::parse(&key))?;
            let reason = parsed(Reason::required(
                &reason,
                "Give a reason: the token's owners will read it.",
            ))?;
            let token = write(conn, None, |tx| {
                db::tokens::revoke_by_key(tx, &key, &reason)
            })?;
            writeln!(out, "revoked {}", token.key)?;
            Ok(())
        }
        TokenCommand::List { account } => list_tokens(conn, &account, out),
    }
}

/// `--expires-in-days`, checked: a huge number of days would overflow the calendar.
fn expiry(days: Option<u32>) -> anyhow::Result<Option<chrono::NaiveDateTime>> {
    days.map(|d| {
        db::now()
            .checked_add_signed(chrono::Duration::days(i64::from(d)))
            .filter(|_| d <= 100_000)
            .ok_or_else(|| {
                anyhow::anyhow!("--expires-in-days: give a number of days from 0 to 100000.")
            })
    })
    .transpose()
}

fn print_secret(
    out: &mut impl Write,
    key: &str,
    secret: &crate::domain::TokenSecret,
) -> anyhow::Result<()> {
    writeln!(out, "key: {key}")?;
    writeln!(out, "secret: {}", secret.expose())?;
    eprintln!("Store the secret now: it will not be shown again.");
    Ok(())
}

fn roll(
    conn: &mut DbConnection,
    key: &str,
    grace: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let key = parsed(TokenKey::parse(key))?;
    let grace = parsed(Grace::parse(grace))?;
    // The key only tells which account to act in; the roll reads the token again under
    // the write lock.
    let found = db::tokens::find_by_key_any_account(conn, &key)
        .map_err(plain)?
        .ok_or_else(|| anyhow::anyhow!("No token has the key {key}."))?;
    let period = grace.duration();
    let rolled = write(conn, Some(found.token.account()), |tx| {
        db::tokens::roll(tx, found.token.token_id(), period)
    })?;
    print_secret(out, &rolled.new.key, &rolled.secret)?;
    match rolled.old.expires_at {
        Some(ends) if ends > db::now() => eprintln!(
            "The old secret of {} works until {} UTC.",
            rolled.old.key,
            ends.format("%Y-%m-%d %H:%M:%S")
        ),
        _ => eprintln!("The old secret of {} no longer works.", rolled.old.key),
    }
    Ok(())
}

fn list_tokens(conn: &mut DbConnection, account: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let account = db::accounts::find_by_slug(conn, account).map_err(plain)?;
    let tokens = db::tokens::list_for_account(conn, account.account_id(), &Default::default())
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
    Ok(())
}
