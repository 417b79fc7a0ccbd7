//! What the token pages share (the list, one token, rolling): finding a token the
//! signed-in person may see, its id from the path, and the `curl` line shown with a new
//! secret.

use actix_web::HttpRequest;

use super::session::SignedIn;
use crate::auth::origin::site_origin;
use crate::db::{self, tokens::TokenView};
use crate::domain::{TokenId, TokenSecret, UserId};
use crate::error::AppError;
use crate::policy::Action;
use crate::state::AppState;

/// A token id from the path; one that isn't a number names no token.
pub(super) fn token_id(raw: &str) -> Result<i32, AppError> {
    raw.parse::<i32>().map_err(|_| AppError::NotFound)
}

/// The token, if this user may see it: another account's token is a 404, a colleague's
/// token, for a member, a 403.
pub(super) async fn visible_token(
    signed_in: &SignedIn,
    state: &AppState,
    id: i32,
) -> Result<TokenView, AppError> {
    let account = signed_in.account_id()?;
    let view = db::run(&state.pool, move |conn| {
        db::tokens::find_for_account(conn, account, TokenId(id))
    })
    .await?;
    signed_in.require(Action::ManageToken {
        creator: view.token.user_id.map(UserId),
    })?;
    Ok(view)
}

/// The line that tries a new token, shown with its secret at creation and after a roll.
pub(super) fn curl_line(req: &HttpRequest, key: &str, secret: &TokenSecret) -> String {
    format!(
        "curl -u {}:{} {}/clusters/",
        key,
        secret.expose(),
        site_origin(req)
    )
}
