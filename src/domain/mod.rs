//! Types that can't hold an invalid value. Each `parse` returns a `Result`
//! whose error is a sentence fit to show the user.

mod email;
mod ids;
mod names;
mod paging;
mod password;
mod role;
mod scope;
mod token;

pub use email::Email;
pub use ids::{AccountId, ClusterId, TokenId, UserId};
pub use names::{AccountName, ClusterName, Reason, Slug, TokenName};
pub use paging::Paging;
pub use password::Password;
pub use role::Role;
pub use scope::{Scope, Scopes};
pub use token::{SecretDigest, TokenKey, TokenSecret, random_base62};
