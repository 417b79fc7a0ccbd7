//! The documentation against the program: `docs/configuration.md`'s one table of settings
//! names exactly the flags and variables `keyward --help` and `keyward serve --help` list,
//! paired as they are, with the same defaults. A setting added to `src/config.rs` without
//! a row, or a row left behind by a removed setting, fails here.

use std::collections::BTreeMap;

use crate::support::process::keyward_binary;

const CONFIGURATION: &str = include_str!("../../docs/configuration.md");

/// One setting as documented: its flag (None for a variable only), and its default cell.
#[derive(Debug)]
struct Row {
    flag: Option<String>,
    default: String,
}

/// What `--help` says of one option: its variable, and its default if it shows one.
#[derive(Debug, PartialEq)]
struct HelpOption {
    env: Option<String>,
    default: Option<String>,
}

/// The settings table's rows, by variable. The table is the one whose header starts
/// `| Flag | Variable |`; every cell is a `code` span or `—`.
fn documented_settings() -> BTreeMap<String, Row> {
    let mut lines = CONFIGURATION
        .lines()
        .skip_while(|l| !l.starts_with("| Flag | Variable |"));
    assert!(
        lines.next().is_some(),
        "docs/configuration.md has no settings table"
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert!(
            cells.len() >= 4,
            "a settings row with too few cells: {line}"
        );
        let flag = match cells[0] {
            "—" => None,
            cell => Some(unquote(cell, line)),
        };
        let variable = unquote(cells[1], line);
        assert!(variable.starts_with("KEYWARD_"), "{line}");
        let row = Row {
            flag,
            default: cells[2].to_string(),
        };
        assert!(
            rows.insert(variable.clone(), row).is_none(),
            "{variable} has two rows in docs/configuration.md"
        );
    }
    assert!(!rows.is_empty(), "the settings table has no rows");
    rows
}

fn unquote(cell: &str, line: &str) -> String {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or_else(|| panic!("expected one `code` span, got {cell:?} in: {line}"))
        .to_string()
}

/// The long options `--help` lists (`--help` and `--version` aside), each with the
/// `[env: …]` and `[default: …]` of its description.
fn help_options(help: &str) -> BTreeMap<String, HelpOption> {
    let mut options = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut finish = |current: Option<(String, String)>| {
        if let Some((flag, text)) = current {
            let option = HelpOption {
                env: bracketed(&text, "[env: ")
                    .map(|e| e.split('=').next().unwrap_or(e).to_string()),
                default: bracketed(&text, "[default: ").map(str::to_string),
            };
            options.insert(flag, option);
        }
    };
    for line in help.lines() {
        let trimmed = line.trim_start();
        let flag = trimmed
            .strip_prefix("-h, ")
            .or_else(|| trimmed.strip_prefix("-V, "))
            .unwrap_or(trimmed);
        if flag.starts_with("--") {
            finish(current.take());
            let name = flag.split([' ', '=']).next().unwrap_or(flag).to_string();
            current = Some((name, String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(trimmed);
            text.push(' ');
        }
    }
    finish(current);
    options.remove("--help");
    options.remove("--version");
    options
}

/// The text after `open` up to the next `]`.
fn bracketed<'a>(text: &'a str, open: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(']')? + start;
    Some(&text[start..end])
}

fn help_of(args: &[&str]) -> String {
    let output = keyward_binary(args, &[]);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "`keyward {}` failed: {output:?}",
        args.join(" ")
    );
    output.stdout
}

#[test]
fn the_configuration_table_names_every_setting_help_lists_and_no_other() {
    let documented = documented_settings();
    for args in [&["--help"][..], &["serve", "--help"]] {
        let listed = help_options(&help_of(args));
        assert!(
            listed.contains_key("--bind"),
            "no options found in {args:?}"
        );

        // Every option --help lists has its row: the same variable, flag and default.
        for (flag, option) in &listed {
            let env = option
                .env
                .as_ref()
                .unwrap_or_else(|| panic!("{flag} in {args:?} has no KEYWARD_* variable"));
            let row = documented.get(env).unwrap_or_else(|| {
                panic!(
                    "{env} ({flag}) is in `keyward {}` but not in docs/configuration.md",
                    args.join(" ")
                )
            });
            assert_eq!(row.flag.as_deref(), Some(flag.as_str()), "{env}'s flag");
            match &option.default {
                Some(default) => assert!(
                    row.default.contains(&format!("`{default}`")),
                    "{env}: --help says the default is {default:?}, the table {:?}",
                    row.default
                ),
                None => assert!(
                    row.default.starts_with("none"),
                    "{env} has no default in --help, so the table should say none: {:?}",
                    row.default
                ),
            }
        }

        // Every row with a flag is an option --help lists.
        for (env, row) in &documented {
            if let Some(flag) = &row.flag {
                let option = listed.get(flag).unwrap_or_else(|| {
                    panic!("docs/configuration.md documents {flag} ({env}), which `keyward {}` doesn't list", args.join(" "))
                });
                assert_eq!(
                    option.env.as_deref(),
                    Some(env.as_str()),
                    "{flag}'s variable"
                );
            }
        }
    }
}

#[test]
fn a_setting_documented_without_a_flag_is_read_by_the_program() {
    let sources = rust_sources(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    )));
    for (env, row) in documented_settings() {
        if row.flag.is_none() {
            assert!(
                sources.iter().any(|s| s.contains(&format!("\"{env}\""))),
                "docs/configuration.md documents {env}, which nothing in src/ reads"
            );
        }
    }
}

fn rust_sources(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(std::fs::read_to_string(&path).expect("a readable source file"));
        }
    }
    found
}
