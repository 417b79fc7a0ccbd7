//! Which store a `KEYWARD_DATABASE_URL` names, parsed once: a SQLite file, or a PostgreSQL
//! server. Its `Debug` and `Display` hide a PostgreSQL password, so the URL can appear in
//! errors and logs.

use std::fmt;

/// Where the data lives. Only [`DatabaseUrl::parse`] makes one, so a `Postgres` URL always
/// starts with `postgres://` or `postgresql://`, and a `Sqlite` path is a real file path.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file, created if needed.
    Sqlite(String),
    /// A libpq connection URL.
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; anything else is a SQLite
    /// path, with an optional `sqlite://` in front.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_string()));
        }
        let path = raw.strip_prefix("sqlite://").unwrap_or(raw);
        if path.is_empty() || path == ":memory:" {
            return Err(
                "give a file path or a postgres:// URL; an in-memory database would lose every token at exit".into(),
            );
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "\"{scheme}://\" is not a store Keyward knows; use a file path, sqlite://PATH or postgres://…"
            ));
        }
        Ok(Self::Sqlite(path.to_string()))
    }

    /// The URL or path as given to the driver. Don't print it: use `Display`.
    pub fn expose(&self) -> &str {
        match self {
            Self::Sqlite(path) => path,
            Self::Postgres(url) => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.write_str(path),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `postgres://user:secret@host/db?password=x` → `postgres://user:***@host/db?password=***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(at) => before_query.split_at(at),
        None => (before_query, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_the_store() {
        assert_eq!(
            DatabaseUrl::parse("keyward.db"),
            Ok(DatabaseUrl::Sqlite("keyward.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/keyward.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/keyward.db".into()))
        );
        assert!(DatabaseUrl::parse("postgres://k@db/keyward").is_ok_and(|u| u.is_postgres()));
        assert!(DatabaseUrl::parse("postgresql://k@db/keyward").is_ok_and(|u| u.is_postgres()));
        assert!(DatabaseUrl::parse("").is_err());
        assert!(DatabaseUrl::parse(":memory:").is_err());
        assert!(DatabaseUrl::parse("mysql://k@db/keyward").is_err());
    }

    #[test]
    fn passwords_never_print() {
        let url = DatabaseUrl::parse(
            "postgres://keyward:hunter2@db.internal:5432/keyward?sslmode=require&password=hunter3",
        )
        .unwrap();
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(!shown.contains("hunter"), "{shown}");
            assert!(
                shown.contains("keyward:***@db.internal:5432/keyward"),
                "{shown}"
            );
            assert!(shown.contains("sslmode=require"), "{shown}");
        }
        let no_password = DatabaseUrl::parse("postgres://keyward@127.0.0.1/k").unwrap();
        assert_eq!(no_password.to_string(), "postgres://keyward@127.0.0.1/k");
    }
}
