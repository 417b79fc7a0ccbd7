//! The tree of tokens that tokens made: each token made through the API names its maker
//! (`tokens.maker_token_id`), and revoking a token revokes everything below it. Plain
//! reads on the tokens table; `tokens` does the revoking.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::tokens;
use crate::domain::{AccountId, TokenId};
use crate::error::AppError;

/// A token below another, with the token that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub id: i32,
    pub maker: i32,
}

/// Every token below `root`, whatever its state, makers before what they made. A token
/// is made after its maker, so the tree has no cycles; the `seen` set only guards
/// against a hand-edited store.
pub fn descendants(conn: &mut DbConnection, root: i32) -> Result<Vec<Link>, AppError> {
    let mut seen = std::collections::HashSet::from([root]);
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while !frontier.is_empty() {
        let children: Vec<(i32, Option<i32>)> = tokens::table
            .filter(tokens::maker_token_id.eq_any(&frontier))
            .select((tokens::id, tokens::maker_token_id))
            .order(tokens::id)
            .load(conn)?;
        frontier.clear();
        for (id, maker) in children {
            if let Some(maker) = maker
                && seen.insert(id)
            {
                found.push(Link { id, maker });
                frontier.push(id);
            }
        }
    }
    Ok(found)
}

/// How many tokens below `root` are not revoked yet: those a revocation would take with it.
pub fn unrevoked_below(
    conn: &mut DbConnection,
    account: AccountId,
    root: TokenId,
) -> Result<usize, AppError> {
    let ids: Vec<i32> = descendants(conn, root.0)?.iter().map(|l| l.id).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let count: i64 = tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::id.eq_any(ids))
        .filter(tokens::revoked_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// The tokens `maker` made itself, oldest first, as (id, key): for its page.
pub fn made_by(
    conn: &mut DbConnection,
    account: AccountId,
    maker: TokenId,
) -> Result<Vec<(i32, String)>, AppError> {
    Ok(tokens::table
        .filter(tokens::account_id.eq(account.0))
        .filter(tokens::maker_token_id.eq(maker.0))
        .select((tokens::id, tokens::key))
        .order(tokens::id)
        .load(conn)?)
}
