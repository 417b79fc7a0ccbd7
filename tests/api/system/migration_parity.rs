//! The SQLite and PostgreSQL migrations build the same schema: the same tables, the same
//! columns (name, nullability, kind) and the same indexes (columns and uniqueness). The
//! two folders are kept in step by hand; this is what catches a column added to one alone.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use crate::support::store::TestDb;

/// One column as both stores can describe it.
type Column = (String, String, bool, String);
/// One index: its table, its columns in order, and whether it is unique.
type Index = (String, String, bool);

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    columns: String,
    #[diesel(sql_type = Integer)]
    is_unique: i32,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

#[derive(QueryableByName)]
struct PgIndex {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    columns: String,
    #[diesel(sql_type = Bool)]
    is_unique: bool,
}

/// A column's kind in words both stores share: SQLite's declared type or PostgreSQL's.
fn kind(declared: &str) -> String {
    let declared = declared.to_ascii_lowercase();
    let kind = match declared.as_str() {
        "integer" | "int" | "int4" | "int8" | "bigint" | "serial" | "bigserial" => "integer",
        "text" | "varchar" | "character varying" => "text",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "boolean" | "bool" => "boolean",
        "blob" | "bytea" => "bytes",
        "date" => "date",
        other => other,
    };
    kind.to_string()
}

fn sqlite_catalogue(path: &str) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let mut conn = SqliteConnection::establish(path).expect("open the SQLite file");
    let tables = "SELECT name FROM sqlite_master WHERE type = 'table' \
                  AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'";
    let columns: Vec<SqliteColumn> = diesel::sql_query(format!(
        "SELECT t.name AS tbl, c.name AS name, c.type AS kind, c.\"notnull\" AS \"notnull\", c.pk AS pk \
         FROM ({tables}) t, pragma_table_info(t.name) c"
    ))
    .load(&mut conn)
    .expect("SQLite's columns");
    let indexes: Vec<SqliteIndex> = diesel::sql_query(format!(
        "SELECT t.name AS tbl, i.\"unique\" AS is_unique, \
                (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(i.name) ORDER BY seqno)) AS columns \
         FROM ({tables}) t, pragma_index_list(t.name) i WHERE i.origin <> 'pk'"
    ))
    .load(&mut conn)
    .expect("SQLite's indexes");
    (
        columns
            .into_iter()
            // An INTEGER PRIMARY KEY is the rowid: never null, whatever it declares.
            .map(|c| (c.tbl, c.name, c.notnull == 0 && c.pk == 0, kind(&c.kind)))
            .collect(),
        indexes
            .into_iter()
            .map(|i| (i.tbl, i.columns, i.is_unique != 0))
            .collect(),
    )
}

fn postgres_catalogue(url: &str) -> (BTreeSet<Column>, BTreeSet<Index>) {
    let mut conn = PgConnection::establish(url).expect("connect to PostgreSQL");
    let columns: Vec<PgColumn> = diesel::sql_query(
        "SELECT table_name::text AS tbl, column_name::text AS name, data_type::text AS kind, \
                is_nullable = 'YES' AS nullable \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .expect("PostgreSQL's columns");
    let indexes: Vec<PgIndex> = diesel::sql_query(
        "SELECT t.relname::text AS tbl, ix.indisunique AS is_unique, \
                array_to_string(array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) \
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS columns \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND NOT ix.indisprimary AND t.relname <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .expect("PostgreSQL's indexes");
    (
        columns
            .into_iter()
            .map(|c| (c.tbl, c.name, c.nullable, kind(&c.kind)))
            .collect(),
        indexes
            .into_iter()
            .map(|i| (i.tbl, i.columns, i.is_unique))
            .collect(),
    )
}

/// What one side has that the other hasn't, a line each.
fn differences<T: Ord + std::fmt::Debug>(sqlite: &BTreeSet<T>, postgres: &BTreeSet<T>) -> String {
    let only = |a: &BTreeSet<T>, b: &BTreeSet<T>, side: &str| {
        a.difference(b)
            .map(|item| format!("only on {side}: {item:?}"))
            .collect::<Vec<_>>()
    };
    [
        only(sqlite, postgres, "SQLite"),
        only(postgres, sqlite, "PostgreSQL"),
    ]
    .concat()
    .join("\n")
}

#[test]
fn both_stores_migrate_to_the_same_tables_columns_and_indexes() {
    crate::postgres_only!("compares the SQLite schema with a PostgreSQL one");
    let postgres = TestDb::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = dir.path().join("parity.db").to_string_lossy().into_owned();
    for url in [&sqlite, &postgres.path] {
        let url = keyward::domain::DatabaseUrl::parse(url).expect("a database URL");
        keyward::db::migrate(&url).expect("the migrations run");
    }

    let (sqlite_columns, sqlite_indexes) = sqlite_catalogue(&sqlite);
    let (postgres_columns, postgres_indexes) = postgres_catalogue(&postgres.path);

    assert!(sqlite_columns.len() > 50, "{sqlite_columns:?}");
    assert_eq!(
        differences(&sqlite_columns, &postgres_columns),
        "",
        "the two stores' columns differ"
    );
    assert_eq!(
        differences(&sqlite_indexes, &postgres_indexes),
        "",
        "the two stores' indexes differ"
    );
}
