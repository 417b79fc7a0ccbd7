//! One error type. The API renders it as Bonsai's envelope,
//! `{"errors": [...], "status": N}`; the dashboard renders it as a page (see `HtmlError`).

use std::cell::RefCell;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};

/// Sentences of the 401 body, in the reference's order.
pub const NO_PASSWORD: &str = "The 'Authorization' header has no value for the password field.";
pub const TOKEN_INACTIVE: &str = "The API token is missing, inactive or does not exist.";
pub const AUTH_FAILED: &str = "Authentication failed.";
pub const NOT_AUTHENTICATED: &str = "Could not authenticate your request.";

/// How every API answer, success or error, labels its body: as Bonsai's do.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";
/// Sentences of the API's 429 body, Bonsai's own.
pub const TOO_MANY_REQUESTS: &str = "You are making too many requests to the API.";
/// The first sentence of the 429 to a token with no credits left.
pub const NO_CREDITS: &str = "This API token has no credits left.";
/// The 403 to a token used from outside its allowed addresses.
pub const OUTSIDE_ALLOWED_IPS: &str =
    "This API token may not be used from this address: it is outside the token's allowed IPs.";
/// The 429's pointer to the operator's documentation (`KEYWARD_DOCS_URL`).
pub fn too_many_requests_docs(docs: &str) -> String {
    format!("Please read the documentation at {docs}")
}

/// The first sentence of a 401 to a request that sent a token with another scheme
/// (`Bearer`, `Token`): how to send it instead.
pub const WRONG_SCHEME: &str = "Keyward tokens are sent with HTTP Basic Auth: the key as the user name, the secret as the password.";

/// The one sentence of a suspended account's 403: who turned its API access off.
pub fn suspended(by_operator: bool, support: &str) -> String {
    if by_operator {
        format!("This account's API access has been suspended by the operator. Contact {support}.")
    } else {
        "This account's API access has been turned off by its owners.".to_string()
    }
}

pub const WWW_AUTHENTICATE: &str = r#"Basic realm="keyward", charset="UTF-8""#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Missing, malformed, unknown, wrong, revoked or expired: one answer for all.
    Inactive,
    /// A user name with nothing after it.
    EmptyPassword,
    /// A token sent as `Bearer` or `Token` rather than with Basic Auth.
    WrongScheme,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("unauthorized")]
    Unauthorized {
        failure: AuthFailure,
        support: String,
    },
    /// The dashboard's "please sign in", which the page renderer turns into a redirect.
    #[error("sign-in required")]
    SignInRequired,
    /// A signed-in person who must first set up a second factor (their account requires
    /// one, or the operator console does): the dashboard sends them to set it up.
    #[error("second factor required")]
    SecondFactorRequired(String),
    #[error("forbidden: {0:?}")]
    Forbidden(Vec<String>),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("invalid input: {0:?}")]
    Invalid(Vec<String>),
    /// A token lifecycle command the store refused: a 403 or a 422 (`TokenRefusal`).
    #[error("token change refused: {0:?}")]
    Token(crate::domain::TokenRefusal),
    /// 400: a request the server won't guess at, such as `/verify` with a parameter it
    /// doesn't know.
    #[error("bad request: {0:?}")]
    BadRequest(Vec<String>),
    /// 413: a body over the limit.
    #[error("payload too large")]
    TooLarge(String),
    #[error("too many requests")]
    TooManyRequests {
        retry_after_secs: u64,
        message: String,
    },
    /// 429 from the API: a token over its own rate limit. `docs` is the operator's API
    /// documentation, which the body points to.
    #[error("token over its rate limit")]
    TokenRateLimited { retry_after_secs: u64, docs: String },
    /// A token with a credit limit and none left: 429 until a refill or a person adds more.
    #[error("token out of credits")]
    NoCredits { docs: String },
    /// The server can't take this on right now (a full disk, a full hashing queue): a 503
    /// with `Retry-After`. Nothing was changed.
    #[error("unavailable: {message}")]
    Unavailable {
        retry_after_secs: u64,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(vec![message.into()])
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(vec![message.into()])
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(anyhow::anyhow!(message.into()))
    }

    /// The sentences people see.
    pub fn messages(&self) -> Vec<String> {
        match self {
            AppError::Unauthorized { failure, support } => {
                let mut errors = Vec::with_capacity(5);
                match failure {
                    AuthFailure::EmptyPassword => errors.push(NO_PASSWORD.to_string()),
                    AuthFailure::WrongScheme => errors.push(WRONG_SCHEME.to_string()),
                    AuthFailure::Inactive => {}
                }
                errors.extend([
                    TOKEN_INACTIVE.to_string(),
                    AUTH_FAILED.to_string(),
                    NOT_AUTHENTICATED.to_string(),
                    format!(
                        "This request has failed authentication. Please read the docs or email us at {support}."
                    ),
                ]);
                errors
            }
            AppError::SignInRequired => vec!["Please sign in to continue.".into()],
            AppError::SecondFactorRequired(message) => vec![message.clone()],
            AppError::Forbidden(messages)
            | AppError::Invalid(messages)
            | AppError::BadRequest(messages) => messages.clone(),
            AppError::TooLarge(message) => vec![message.clone()],
            AppError::Token(refusal) => vec![token_refusal(refusal)],
            AppError::NotFound => {
                vec!["The requested resource could not be found.".into()]
            }
            AppError::MethodNotAllowed => {
                vec!["This method is not allowed for the requested resource.".into()]
            }
            AppError::TokenRateLimited { docs, .. } => {
                vec![TOO_MANY_REQUESTS.into(), too_many_requests_docs(docs)]
            }
            AppError::NoCredits { docs } => {
                vec![NO_CREDITS.into(), too_many_requests_docs(docs)]
            }
            AppError::TooManyRequests { message, .. } | AppError::Unavailable { message, .. } => {
                vec![message.clone()]
            }
            AppError::Internal(_) => vec![
                "Something went wrong on our side. Please try again; if it keeps happening, contact support."
                    .into(),
            ],
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Unauthorized { .. } | AppError::SignInRequired => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::SecondFactorRequired(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Token(refusal) if refusal.is_forbidden() => StatusCode::FORBIDDEN,
            AppError::Token(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. }
            | AppError::TokenRateLimited { .. }
            | AppError::NoCredits { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            AppError::Unauthorized { failure, support } => unauthorized_body(*failure, support),
            _ => self.envelope(),
        };
        self.response_builder()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
            .body(body)
    }
}

/// What a person reads when the store refuses a change to a token.
fn token_refusal(refusal: &crate::domain::TokenRefusal) -> String {
    use crate::domain::TokenRefusal as R;
    match refusal {
        R::RollRevoked => {
            "This token is revoked, so it can't be rolled. Create a new token instead.".into()
        }
        R::RollExpired => {
            "This token has expired, so it can't be rolled. Create a new token instead.".into()
        }
        R::AlreadyRolled { successor } => {
            format!("This token was already rolled to {successor}. Roll that one instead.")
        }
        R::RollItself => "A token can't roll itself: a leaked token must not be able to make a \
            successor that outlives its revocation. Revoke it with DELETE /token, and roll it \
            from the dashboard or the command line."
            .into(),
        R::RollTokensScope => "This token holds the 'tokens' scope, so only the dashboard or \
            the command line may roll it: its successor would hand that scope on."
            .into(),
        R::SuccessorTooBroad { key, why } => format!(
            "This token can't roll {key}: its successor would carry what this token can't \
             hand on. {why}"
        ),
        R::LimitOfRevoked => "This token is revoked: its rate limit can no longer change. Create a new token with the limit you want.".into(),
        R::NoSuchKey { key } => format!("No token has the key {key}. Check the key (it starts with kw_) and try again."),
    }
}

/// Every error: `{"errors": [sentences], "status": N}`, as Bonsai answers. The API's
/// document describes errors with this same type.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorEnvelope {
    /// Sentences for a person, at least one.
    #[schema(min_items = 1)]
    errors: Vec<String>,
    /// The HTTP status, repeated.
    status: u16,
}

impl AppError {
    /// The envelope, serialised.
    fn envelope(&self) -> Bytes {
        let envelope = ErrorEnvelope {
            errors: self.messages(),
            status: self.status_code().as_u16(),
        };
        Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
    }
}

/// A flood of bad credentials is all 401s, and a server's 401 bodies are the same every
/// time: rendering one costs ten times what the guard's checks do. So each worker thread
/// keeps the two bodies it rendered for the support address it was last given, and sends
/// copies of those bytes.
fn unauthorized_body(failure: AuthFailure, support: &str) -> Bytes {
    const FAILURES: [AuthFailure; 3] = [
        AuthFailure::Inactive,
        AuthFailure::EmptyPassword,
        AuthFailure::WrongScheme,
    ];
    thread_local! {
        static RENDERED: RefCell<Option<(String, [Bytes; 3])>> = const { RefCell::new(None) };
    }
    RENDERED.with_borrow_mut(|rendered| {
        let bodies = match rendered {
            Some((address, bodies)) if address == support => bodies,
            _ => {
                let render = |failure| {
                    AppError::Unauthorized {
                        failure,
                        support: support.to_string(),
                    }
                    .envelope()
                };
                &mut rendered
                    .insert((support.to_string(), FAILURES.map(render)))
                    .1
            }
        };
        let at = FAILURES.iter().position(|f| *f == failure).unwrap_or(0);
        bodies[at].clone()
    })
}

impl AppError {
    /// The status and headers of this error, whatever the body: the API's JSON and the
    /// dashboard's page both start here. Logs an internal error's cause, which only the
    /// log ever sees.
    pub fn response_builder(&self) -> HttpResponseBuilder {
        if let AppError::Internal(err) = self {
            tracing::error!(error = %format!("{err:#}"), "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            AppError::Unauthorized { .. } | AppError::SignInRequired => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(WWW_AUTHENTICATE),
                ));
            }
            AppError::TooManyRequests {
                retry_after_secs, ..
            }
            | AppError::TokenRateLimited {
                retry_after_secs, ..
            }
            | AppError::Unavailable {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response
    }
}

/// What a person is told when the database can't take a write. The cause goes to the log.
pub const STORAGE_UNAVAILABLE: &str = "The server can't save changes right now: its storage is full or failing. Nothing was changed. Please try again later.";

/// How long to suggest waiting when storage refuses a write: someone has to make room.
const STORAGE_RETRY_AFTER_SECS: u64 = 60;

/// SQLite's own sentences (`sqlite3_errstr`) for a full disk and for an I/O error, every
/// kind of which reads the same. Diesel passes on only the sentence, not the code.
const SQLITE_FULL_MESSAGE: &str = "database or disk is full";
const SQLITE_IOERR_MESSAGE: &str = "disk I/O error";

/// What a person is told when the database can't be reached (PostgreSQL gone, or no
/// pooled connection to be had). It claims neither that a change happened nor that it
/// didn't: a connection lost during a commit leaves that unknown.
pub const DATABASE_UNREACHABLE: &str =
    "The server can't reach its database right now. Please try again in a few seconds.";

/// A lost database comes back by itself (a restart, a failover); ask again soon.
const UNREACHABLE_RETRY_AFTER_SECS: u64 = 5;

/// Whether SQLite refused for lack of working storage, rather than for a bug or bad data.
fn is_storage_fault(err: &diesel::result::Error) -> bool {
    use diesel::result::Error;
    match err {
        Error::DatabaseError(_, info) => {
            matches!(info.message(), SQLITE_FULL_MESSAGE | SQLITE_IOERR_MESSAGE)
        }
        Error::RollbackErrorOnCommit { commit_error, .. } => is_storage_fault(commit_error),
        _ => false,
    }
}

/// Whether the database server went away (PostgreSQL stopped, restarted, or the network
/// dropped), rather than refusing the statement. diesel marks a connection libpq reports
/// as bad `ClosedConnection`, and a statement it couldn't send `UnableToSendCommand`.
fn is_connection_fault(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::RollbackErrorOnCommit {
            commit_error,
            rollback_error,
        } => is_connection_fault(commit_error) || is_connection_fault(rollback_error),
        _ => false,
    }
}

fn unreachable() -> AppError {
    AppError::Unavailable {
        retry_after_secs: UNREACHABLE_RETRY_AFTER_SECS,
        message: DATABASE_UNREACHABLE.into(),
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => AppError::NotFound,
            // Not a bug: the write was refused and rolled back whole. Say so, and that it
            // may work later, instead of a 500 that reads like something broke halfway.
            other if is_storage_fault(&other) => {
                tracing::error!(error = %other, "the database refused a write");
                AppError::Unavailable {
                    retry_after_secs: STORAGE_RETRY_AFTER_SECS,
                    message: STORAGE_UNAVAILABLE.into(),
                }
            }
            other if is_connection_fault(&other) => {
                tracing::error!(error = %other, "lost the connection to the database");
                unreachable()
            }
            other => AppError::Internal(other.into()),
        }
    }
}

/// The pool gave no connection in time: every connection is busy, or none can be made
/// because the database is gone. Either way the request can't be served now, and may be
/// later: a 503, not a 500.
impl From<r2d2::Error> for AppError {
    fn from(err: r2d2::Error) -> Self {
        tracing::error!(error = %err, "no database connection");
        unreachable()
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_token_change_is_a_403_for_the_caller_and_a_422_for_the_token() {
        use crate::domain::TokenRefusal as R;
        let key = "kw_live_abc".to_string();
        let cases = [
            (R::RollRevoked, 422, "revoked, so it can't be rolled"),
            (R::RollExpired, 422, "expired, so it can't be rolled"),
            (
                R::AlreadyRolled {
                    successor: key.clone(),
                },
                422,
                "already rolled to kw_live_abc",
            ),
            (R::RollItself, 403, "can't roll itself"),
            (R::RollTokensScope, 403, "'tokens' scope"),
            (
                R::SuccessorTooBroad {
                    key: key.clone(),
                    why: "It expires sooner.".into(),
                },
                403,
                "can't roll kw_live_abc: its successor would carry what this token can't hand on. It expires sooner.",
            ),
            (R::LimitOfRevoked, 422, "rate limit can no longer change"),
            (
                R::NoSuchKey { key },
                422,
                "No token has the key kw_live_abc.",
            ),
        ];
        for (refusal, status, sentence) in cases {
            let err = AppError::Token(refusal);
            assert_eq!(err.status_code().as_u16(), status, "{err:?}");
            let messages = err.messages();
            assert!(
                messages.len() == 1 && messages[0].contains(sentence),
                "{messages:?}"
            );
            assert!(
                !messages[0].contains("  "),
                "no doubled space: {messages:?}"
            );
        }
    }

    #[test]
    fn empty_password_sentence_comes_first() {
        let err = AppError::Unauthorized {
            failure: AuthFailure::EmptyPassword,
            support: "help@example.com".into(),
        };
        let messages = err.messages();
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[0], NO_PASSWORD);
        assert!(messages[4].ends_with("email us at help@example.com."));
    }

    /// The sentences matched above are SQLite's own.
    #[test]
    fn storage_sentences_are_sqlites() {
        let errstr = |code| {
            // SAFETY: sqlite3_errstr returns a static, NUL-terminated English string.
            unsafe { std::ffi::CStr::from_ptr(libsqlite3_sys::sqlite3_errstr(code)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(errstr(libsqlite3_sys::SQLITE_FULL), SQLITE_FULL_MESSAGE);
        assert_eq!(errstr(libsqlite3_sys::SQLITE_IOERR), SQLITE_IOERR_MESSAGE);
        assert_eq!(
            errstr(libsqlite3_sys::SQLITE_IOERR_WRITE),
            SQLITE_IOERR_MESSAGE
        );
    }

    #[test]
    fn a_database_that_cannot_grow_is_a_503_with_retry_after() {
        use diesel::connection::SimpleConnection;
        use diesel::{Connection, RunQueryDsl, SqliteConnection};

        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 1;")
            .unwrap();
        let refused = diesel::sql_query("INSERT INTO t VALUES (zeroblob(100000))")
            .execute(&mut conn)
            .unwrap_err();

        let err = AppError::from(refused);
        assert_eq!(err.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.messages(), [STORAGE_UNAVAILABLE]);
        let response = err.error_response();
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).unwrap(),
            &STORAGE_RETRY_AFTER_SECS.to_string()
        );
    }

    #[test]
    fn other_database_errors_stay_internal() {
        let err: AppError = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("no such table: nowhere".to_string()),
        )
        .into();
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_401_body_is_the_envelope_of_its_sentences_for_each_address() {
        for support in ["help@example.com", "other@example.org", "help@example.com"] {
            for failure in [AuthFailure::Inactive, AuthFailure::EmptyPassword] {
                let err = AppError::Unauthorized {
                    failure,
                    support: support.into(),
                };
                let body: serde_json::Value =
                    serde_json::from_slice(&unauthorized_body(failure, support))
                        .expect("the body is JSON");
                assert_eq!(
                    body,
                    json!({ "errors": err.messages(), "status": 401 }),
                    "{support} {failure:?}"
                );
            }
        }
    }

    #[test]
    fn diesel_not_found_is_a_404() {
        let err: AppError = diesel::result::Error::NotFound.into();
        assert_eq!(err.status_code(), StatusCode::NOT_FOUND);
    }

    /// PostgreSQL gone (stopped, restarted, the network cut) is a 503 that claims nothing,
    /// whether the statement couldn't be sent or the connection broke under it, also when
    /// it broke during a commit; a statement PostgreSQL refused is not.
    #[test]
    fn a_lost_database_connection_is_a_503_that_claims_nothing() {
        use diesel::result::{DatabaseErrorKind, Error};
        let lost = |kind| {
            Error::DatabaseError(
                kind,
                Box::new("server closed the connection unexpectedly".to_string()),
            )
        };
        for err in [
            lost(DatabaseErrorKind::ClosedConnection),
            lost(DatabaseErrorKind::UnableToSendCommand),
            Error::RollbackErrorOnCommit {
                rollback_error: Box::new(lost(DatabaseErrorKind::ClosedConnection)),
                commit_error: Box::new(lost(DatabaseErrorKind::ClosedConnection)),
            },
        ] {
            let err: AppError = err.into();
            assert_eq!(err.status_code(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(err.messages(), [DATABASE_UNREACHABLE]);
            let response = err.error_response();
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.as_bytes()),
                Some(&b"5"[..])
            );
        }
        let refused: AppError = Error::DatabaseError(
            DatabaseErrorKind::CheckViolation,
            Box::new("new row violates check constraint".to_string()),
        )
        .into();
        assert_eq!(refused.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
