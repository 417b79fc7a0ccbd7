//! The command line: accounts, tokens and operators on a database file, and a clear one-line
//! refusal of bad settings.

use clap::Parser;
use keyward::cli::Cli;
use keyward::commands;

use crate::support::api::{
    create_account, create_token, keyward_cli, keyward_cli_ok, parse_token_output, revoke,
    unknown_key,
};
use crate::support::process::keyward_binary;
use crate::support::store::TestDb;

#[test]
fn an_account_gets_a_slug_from_its_name_and_a_suffix_when_taken() {
    let db = TestDb::new();

    let first = create_account(&db.path, "Acme Inc");
    let second = create_account(&db.path, "Acme Inc");

    assert_eq!(first, "acme-inc");
    assert_ne!(second, first, "two accounts cannot share a slug");
    assert!(
        second.starts_with("acme-inc-"),
        "the second slug is suffixed: {second:?}"
    );
}

#[test]
fn the_database_flag_may_follow_the_subcommand() {
    let db = TestDb::new();
    let cli = Cli::try_parse_from([
        "keyward",
        "account",
        "create",
        "--name",
        "Late Flag",
        "--database-url",
        &db.path,
    ])
    .expect("--database-url is global");
    let mut printed = Vec::new();
    commands::execute(cli, &mut &b""[..], &mut printed).expect("account create with the flag last");
    let slug = String::from_utf8(printed).expect("UTF-8");

    // The account landed in that file: a token can be made for it there.
    let token = create_token(&db.path, slug.trim(), "ci", "read", &[]);
    assert!(token.key.starts_with("kw_"));
}

#[test]
fn token_create_prints_the_key_and_the_secret_once() {
    let db = TestDb::new();
    let account = create_account(&db.path, "Printer");

    let out = keyward_cli_ok(
        &db.path,
        &["token", "create", "--account", &account, "--name", "ci"],
    );
    let token = parse_token_output(&out);

    assert!(
        !token.key.contains(':'),
        "a key never contains a colon: {}",
        token.key
    );
    assert!(
        token.secret.len() >= 40,
        "a secret carries at least 256 bits: {}",
        token.secret
    );
    let again = create_token(&db.path, &account, "ci 2", "read,write", &[]);
    assert_ne!(again.key, token.key);
    assert_ne!(again.secret, token.secret);
    // The list never shows a secret.
    let listed = keyward_cli_ok(&db.path, &["token", "list", "--account", &account]);
    assert!(
        !listed.contains(&token.secret),
        "token list printed a secret:\n{listed}"
    );
}

#[test]
fn token_list_shows_each_tokens_status() {
    let db = TestDb::new();
    let account = create_account(&db.path, "Statuses");
    let active = create_token(&db.path, &account, "alive-token", "read,write", &[]);
    let revoked = create_token(&db.path, &account, "revoked-token", "read,write", &[]);
    let expired = create_token(
        &db.path,
        &account,
        "expired-token",
        "read",
        &["--expires-in-days", "0"],
    );
    revoke(&db.path, &revoked.key);

    let listed = keyward_cli_ok(&db.path, &["token", "list", "--account", &account]);

    for (token, name, status) in [
        (&active, "alive-token", "active"),
        (&revoked, "revoked-token", "revoked"),
        (&expired, "expired-token", "expired"),
    ] {
        let line = listed
            .lines()
            .find(|l| l.contains(&token.key))
            .unwrap_or_else(|| panic!("{name} ({}) is not listed:\n{listed}", token.key));
        assert!(
            line.contains(name),
            "the line for {} should name it {name:?}: {line}",
            token.key
        );
        assert!(
            line.contains(status),
            "{name} should be listed as {status}: {line}"
        );
    }
}

#[test]
fn token_list_shows_only_that_accounts_tokens() {
    let db = TestDb::new();
    let mine = create_account(&db.path, "Mine");
    let theirs = create_account(&db.path, "Theirs");
    let my_token = create_token(&db.path, &mine, "my-token", "read", &[]);
    let their_token = create_token(&db.path, &theirs, "their-token", "read", &[]);

    let listed = keyward_cli_ok(&db.path, &["token", "list", "--account", &mine]);

    assert!(listed.contains(&my_token.key), "{listed}");
    assert!(
        !listed.contains(&their_token.key),
        "another account's token was listed:\n{listed}"
    );
}

#[test]
fn the_command_line_refuses_what_it_cannot_do() {
    let db = TestDb::new();
    let account = create_account(&db.path, "Refusals");
    let token = create_token(&db.path, &account, "ci", "read", &[]);

    let unknown = unknown_key();
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("revoke an unknown key", vec!["token", "revoke", &unknown, "--reason", "typo"]),
        ("revoke something that is not a key", vec!["token", "revoke", "not-a-key", "--reason", "typo"]),
        ("revoke with a blank reason", vec!["token", "revoke", &token.key, "--reason", "  "]),
        ("a token for an unknown account", vec!["token", "create", "--account", "no-such-account", "--name", "x"]),
        ("a scope that does not exist", vec!["token", "create", "--account", &account, "--name", "x", "--scopes", "read,admin"]),
        ("no scopes at all", vec!["token", "create", "--account", &account, "--name", "x", "--scopes", ""]),
        ("a blank token name", vec!["token", "create", "--account", &account, "--name", "  "]),
        ("a blank account name", vec!["account", "create", "--name", "   "]),
    ];
    let mut accepted = Vec::new();
    for (name, args) in cases {
        if let Ok(out) = keyward_cli(&db.path, &args, "") {
            accepted.push(format!("  {name}: succeeded and printed {out:?}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "these should have been errors:\n{}",
        accepted.join("\n")
    );

    // None of the refusals touched the existing token.
    let listed = keyward_cli_ok(&db.path, &["token", "list", "--account", &account]);
    assert_eq!(
        listed.lines().filter(|l| l.contains("kw_")).count(),
        1,
        "only the first token exists:\n{listed}"
    );
    let line = listed
        .lines()
        .find(|l| l.contains(&token.key))
        .expect("the token is listed");
    assert!(line.contains("active"), "{line}");
}

#[test]
fn an_operator_is_created_with_a_password_from_stdin() {
    let db = TestDb::new();

    let created = keyward_cli(
        &db.path,
        &["operator", "create", "--email", "ops@example.com"],
        "a long enough passphrase\n",
    );
    assert!(created.is_ok(), "operator create failed: {created:?}");

    let too_short = keyward_cli(
        &db.path,
        &["operator", "create", "--email", "ops2@example.com"],
        "short\n",
    );
    assert!(too_short.is_err(), "a 5-character password was accepted");
}

#[test]
fn bad_settings_stop_the_server_with_one_clear_line() {
    let db = TestDb::new();
    // Held until the end of the test, so its port stays taken.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let taken = listener.local_addr().expect("its address").to_string();
    // Every row starts from good settings and spoils exactly one.
    let good = [
        ("KEYWARD_BIND", "127.0.0.1:0"),
        ("KEYWARD_DATABASE_URL", db.path.as_str()),
        ("KEYWARD_SUPPORT_EMAIL", "support@keyward.test"),
    ];
    let cases = [
        ("bind is not an address", ("KEYWARD_BIND", "not-an-address")),
        (
            "bind address already in use",
            ("KEYWARD_BIND", taken.as_str()),
        ),
        (
            "database in a missing directory",
            ("KEYWARD_DATABASE_URL", "/nonexistent-dir/x.db"),
        ),
        (
            "support address is not an email",
            ("KEYWARD_SUPPORT_EMAIL", "not-an-email"),
        ),
        ("zero workers", ("KEYWARD_WORKERS", "0")),
        ("a short session key", ("KEYWARD_SESSION_KEY", "too-short")),
        (
            "an SMTP URL that is not smtp:// or smtps://",
            ("KEYWARD_SMTP_URL", "http://mail.example.com"),
        ),
        (
            "an SMTP password that would cross in clear text",
            (
                "KEYWARD_SMTP_URL",
                "smtp://keys:hunter2@mail.example.com:25",
            ),
        ),
        (
            "an SMTP URL without a sender",
            ("KEYWARD_SMTP_URL", "smtps://keys:hunter2@mail.example.com"),
        ),
        (
            "a sender without an SMTP URL",
            ("KEYWARD_MAIL_FROM", "keys@example.com"),
        ),
        (
            "an OpenID Connect issuer that is not a URL",
            ("KEYWARD_OIDC_ISSUER", "sso.example.com/realms/corp"),
        ),
        (
            "an OpenID Connect issuer with no client",
            ("KEYWARD_OIDC_ISSUER", "https://sso.example.com/realms/corp"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, (bad_name, bad_value)) in cases {
        let mut env: Vec<(&str, &str)> = good
            .iter()
            .filter(|(k, _)| *k != bad_name)
            .copied()
            .collect();
        env.push((bad_name, bad_value));
        let output = keyward_binary(&["serve"], &env);
        let stderr_lines: Vec<&str> = output
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let problems: Vec<&str> = [
            (
                output.status.is_none(),
                "kept running (killed after the timeout)",
            ),
            (
                output.status.is_some_and(|s| s.success()),
                "exited with status 0",
            ),
            (stderr_lines.len() != 1, "stderr is not exactly one line"),
            (output.stderr.contains("panicked"), "panicked"),
            (
                output.stdout.contains("http://"),
                "printed a listening address",
            ),
            (
                output.stderr.contains("hunter2"),
                "repeated the SMTP password",
            ),
        ]
        .into_iter()
        .filter_map(|(failed, what)| failed.then_some(what))
        .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "  {name}: {}\n    status: {:?}\n    stderr: {:?}\n    stdout: {:?}",
                problems.join(", "),
                output.status,
                output.stderr,
                output.stdout
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "bad settings were not refused cleanly:\n{}",
        failures.join("\n")
    );
}

#[test]
fn account_list_counts_each_accounts_members_and_active_tokens() {
    let db = TestDb::new();
    let busy = create_account(&db.path, "Busy Co");
    let quiet = create_account(&db.path, "Quiet Co");
    let tokens: Vec<_> = (0..3)
        .map(|n| create_token(&db.path, &busy, &format!("t{n}"), "read", &[]))
        .collect();
    keyward_cli_ok(
        &db.path,
        &["token", "revoke", &tokens[0].key, "--reason", "rotated"],
    );

    let listed = keyward_cli_ok(&db.path, &["account", "list"]);
    let line = |slug: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{slug}\t")))
            .unwrap_or_else(|| panic!("`account list` should list {slug}: {listed}"))
            .to_string()
    };
    assert!(
        line(&busy).ends_with("\t0 members\t2 active tokens"),
        "{listed}"
    );
    assert!(
        line(&quiet).ends_with("\t0 members\t0 active tokens"),
        "{listed}"
    );
}
