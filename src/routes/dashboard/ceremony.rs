//! Starting a passkey ceremony, for every page that runs one: registration, a sign-in with a
//! passkey alone or as the second step, and sudo mode. Each start makes a step cookie for
//! this browser and keeps the ceremony's state under its digest (`db::passkeys`).

use actix_web::{HttpRequest, HttpResponse};
use webauthn_rs::prelude::Webauthn;

use crate::auth::step_cookie::StepCookie;
use crate::auth::webauthn;
use crate::db::{self, DbConnection, passkeys::CheckFor};
use crate::domain::UserId;
use crate::error::AppError;
use crate::state::AppState;

/// Starts a check of `user` with their passkeys, a sign-in's second step or sudo mode, each
/// under a cookie of its own; someone with none is told what to use instead.
pub(super) async fn begin_check(
    req: &HttpRequest,
    state: &AppState,
    user: UserId,
    check: CheckFor,
) -> Result<HttpResponse, AppError> {
    let (cookie, instead) = match check {
        CheckFor::SecondStep => (
            &webauthn::COOKIE,
            "You have no passkeys. Type a code instead.",
        ),
        CheckFor::Sudo => (
            &webauthn::SUDO_COOKIE,
            "You have no passkeys. Confirm with your password.",
        ),
    };
    begin_ceremony(req, state, cookie, move |conn, relying_party, digest| {
        db::passkeys::start_check(conn, relying_party, digest, user, check)?
            .ok_or_else(|| AppError::invalid(instead))
    })
    .await
}

/// Starts a ceremony named by a new `cookie` for this site: `start` keeps its state under
/// the cookie's digest and gives the options for `navigator.credentials`, which go back
/// with the cookie. Every page's "begin" is this.
pub(super) async fn begin_ceremony<F>(
    req: &HttpRequest,
    state: &AppState,
    cookie: &StepCookie,
    start: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut DbConnection, &Webauthn, &[u8]) -> Result<serde_json::Value, AppError>
        + Send
        + 'static,
{
    let relying_party = webauthn::relying_party(req)?;
    let (cookie, digest) = cookie.issue(state.config.is_https(), webauthn::CEREMONY_MINUTES);
    let options = db::run(&state.pool, move |conn| {
        start(conn, &relying_party, &digest)
    })
    .await?;
    Ok(webauthn::challenge(options, cookie))
}
