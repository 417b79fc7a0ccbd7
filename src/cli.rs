//! The command line: `serve` (the default), and the operator's tools.

use clap::{Parser, Subcommand};

use crate::config::RawSettings;

#[derive(Parser, Debug)]
#[command(
    name = "keyward",
    version,
    about = "Self-hosted API tokens for your accounts"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: RawSettings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (what runs when no command is given).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Help users with their sign-in.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage platform operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Create, list, roll and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Apply the database migrations it hasn't had yet, and print their names. (The
    /// server also does this as it starts.)
    Migrate,
    /// Copy a SQLite store to FILE while servers use it; FILE must not exist yet.
    /// (For PostgreSQL, use pg_dump.)
    Backup { file: std::path::PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account and print its slug. With `--owner`, also its owner's sign-in,
    /// whose password is read from stdin: how people get accounts when sign-up is closed.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner: Option<String>,
    },
    /// List every account.
    List,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Print a one-time link (valid 30 minutes) with which EMAIL's owner sets a new
    /// password; using it ends every session of theirs. For servers without mail, or a
    /// person whose mail doesn't arrive.
    ResetPassword { email: String },
    /// Remove EMAIL's second factors (authenticator app, recovery codes and passkeys) and
    /// end their sessions, for a person who lost them: their password then signs them in,
    /// and an account that requires a second factor asks them to set one up. Make sure
    /// first that whoever asks is that person.
    ResetTwoFactor { email: String },
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Create an operator, or grant the flag to an existing user. Reads the password from stdin.
    Create {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print its key and secret. The secret is shown only this once.
    Create {
        /// The account's slug.
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: read, write, tokens (manage tokens through /access-tokens),
        /// verify (verify the account's keys through /keys/verify).
        #[arg(long, default_value = "read,write")]
        scopes: String,
        /// Days until the token stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Requests per minute the token may make (default: no limit).
        #[arg(long)]
        rate_limit: Option<String>,
        /// Comma-separated permission names, such as documents.read,billing.write.
        #[arg(long, default_value = "")]
        permissions: String,
        /// A JSON object returned when the key is verified, at most 4 KiB.
        #[arg(long, default_value = "")]
        meta: String,
        /// The customer this key belongs to in your own system.
        #[arg(long, default_value = "")]
        external_id: String,
        /// Credits: how many successful calls the key may make (default: no limit).
        #[arg(long, default_value = "")]
        credits: String,
        /// A lazy refill of the credits: daily:N or monthly:N.
        #[arg(long, default_value = "")]
        credits_refill: String,
        /// Comma-separated CIDRs the key may be used from (default: anywhere).
        #[arg(long, default_value = "")]
        allowed_ips: String,
    },
    /// Roll a token: print a new key and secret with the same name, creator and scopes.
    /// The old secret keeps working for the grace period, then gets 401.
    Roll {
        key: String,
        /// How long the old secret keeps working: now, 1h, 24h or 7d.
        #[arg(long)]
        grace: String,
    },
    /// Revoke a token by its key, in any account.
    Revoke {
        key: String,
        #[arg(long)]
        reason: String,
    },
    /// List an account's tokens.
    List {
        #[arg(long)]
        account: String,
    },
}
