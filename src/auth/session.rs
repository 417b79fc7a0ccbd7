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
use sha2::{Digest, Sha256};

use crate::db::{self, Pool};
use crate::domain::random_base62;

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
    URL_SAFE_NO_PAD.encode(Sha256::digest(key.as_ref().as_bytes()))
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
        let key =
            SessionKey::try_from(random_base62(64)).map_err(|e| SaveError::Other(e.into()))?;
        let id = row_id(&key);
        let expires_at = expiry(ttl);
        self.blocking(move |conn| db::sessions::upsert(conn, &id, &body, expires_at))
            .await
            .map_err(SaveError::Other)?;
        Ok(key)
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
        self.blocking(move |conn| db::sessions::upsert(conn, &id, &body, expires_at))
            .await
            .map_err(UpdateError::Other)?;
        Ok(key)
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
