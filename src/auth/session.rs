//! Dashboard sessions. actix-session keeps the state in our `sessions` table, keyed by
//! the SHA-256 of the cookie's session id, so a copy of the database holds no usable
//! cookie. Logging out deletes the row, so a replayed cookie is anonymous at once.
//!
//! Sessions end after 2 idle hours (the row's TTL, extended on every request) and
//! 12 hours after sign-in, whatever the activity (checked by `SignedIn`).

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::{self, Pool};
use crate::domain::{SecretDigest, random_base62};

pub const IDLE_TIMEOUT_HOURS: i64 = 2;
pub const ABSOLUTE_LIFETIME_HOURS: i64 = 12;

/// The cookie's name: `__Host-` pinned to this host and path when served over HTTPS.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-keyward_session"
    } else {
        "keyward_session"
    }
}

#[derive(Clone)]
pub struct DbSessionStore {
    pool: Pool,
}

impl DbSessionStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Stores `body` under a new random session key.
    async fn insert(&self, body: String, ttl: &Duration) -> anyhow::Result<SessionKey> {
        let key = SessionKey::try_from(random_base62(64))?;
        let id = row_id(&key);
        let expires_at = expiry(ttl);
        self.blocking(move |conn| db::sessions::insert(conn, &id, &body, expires_at))
            .await?;
        Ok(key)
    }

    async fn blocking<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut db::Conn) -> Result<T, crate::error::AppError> + Send + 'static,
    {
        db::run(&self.pool, f)
            .await
            .map_err(|e| anyhow::anyhow!("session store: {e}"))
    }
}

/// The row id for a cookie's session key.
fn row_id(key: &SessionKey) -> String {
    URL_SAFE_NO_PAD.encode(SecretDigest::of(key.as_ref()).as_bytes())
}

fn expiry(ttl: &Duration) -> chrono::NaiveDateTime {
    db::now() + chrono::Duration::seconds(ttl.whole_seconds())
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let id = row_id(key);
        let state = self
            .blocking(move |conn| db::sessions::load(conn, &id, db::now()))
            .await
            .map_err(LoadError::Other)?;
        state
            .map(|s| serde_json::from_str(&s).map_err(|e| LoadError::Deserialization(e.into())))
            .transpose()
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let body = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        self.insert(body, ttl).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let body =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let id = row_id(&key);
        let expires_at = expiry(ttl);
        let updated = self
            .blocking(move |conn| db::sessions::update(conn, &id, &body, expires_at))
            .await
            .map_err(UpdateError::Other)?;
        if updated {
            return Ok(key);
        }
        // The session ended (logout, expiry) while this request ran. Writing its state
        // back would undo the logout, so the browser gets a new, empty session instead.
        self.insert("{}".to_string(), ttl)
            .await
            .map_err(UpdateError::Other)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let id = row_id(key);
        let expires_at = expiry(ttl);
        self.blocking(move |conn| db::sessions::touch(conn, &id, expires_at))
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let id = row_id(key);
        self.blocking(move |conn| db::sessions::delete(conn, &id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_in_state() -> HashMap<String, String> {
        HashMap::from([("user_id".to_string(), "7".to_string())])
    }

    #[actix_web::test]
    async fn a_request_that_ends_after_logout_does_not_bring_the_session_back() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::connect(dir.path().join("s.db").to_str().unwrap()).unwrap();
        let store = DbSessionStore::new(pool);
        let ttl = Duration::hours(2);

        let key = store.save(signed_in_state(), &ttl).await.unwrap();
        let same = SessionKey::try_from(key.as_ref().to_string()).unwrap();
        // Another tab logs out...
        store.delete(&key).await.unwrap();
        // ...while a slower request still holds the signed-in state and saves it.
        let after = store.update(same, signed_in_state(), &ttl).await.unwrap();

        assert_ne!(
            after.as_ref(),
            key.as_ref(),
            "the ended session id was reused"
        );
        assert_eq!(store.load(&key).await.unwrap(), None);
        let fresh = store.load(&after).await.unwrap().unwrap();
        assert!(
            fresh.is_empty(),
            "the new session carries no sign-in: {fresh:?}"
        );
    }

    #[actix_web::test]
    async fn a_live_session_keeps_its_id_when_its_state_changes() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::connect(dir.path().join("s.db").to_str().unwrap()).unwrap();
        let store = DbSessionStore::new(pool);
        let ttl = Duration::hours(2);

        let key = store.save(HashMap::new(), &ttl).await.unwrap();
        let same = SessionKey::try_from(key.as_ref().to_string()).unwrap();
        let after = store.update(same, signed_in_state(), &ttl).await.unwrap();

        assert_eq!(after.as_ref(), key.as_ref());
        assert_eq!(store.load(&key).await.unwrap(), Some(signed_in_state()));
    }
}
