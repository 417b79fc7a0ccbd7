//! Dashboard sessions. actix-session keeps the state in our `sessions` table, keyed by
//! the SHA-256 of the cookie's session id, so a copy of the database holds no usable
//! cookie. Ending a session (logout, or from the user's session list) deletes the row, so
//! a replayed cookie is anonymous at once.
//!
//! Only signed-in sessions are stored. An anonymous visitor's forms carry a signed cookie
//! instead (see `csrf`), and this store refuses to write state that names no user, so no
//! page an anonymous visitor can open writes to the database.
//!
//! Sessions end after 2 idle hours (the row's expiry, pushed back at most once a minute
//! as the session is used) and 12 hours after sign-in, whatever the activity (checked by
//! `SignedIn`).

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::{self, Pool};
use crate::domain::{SecretDigest, random_base62};

pub const IDLE_TIMEOUT_HOURS: i64 = 2;
pub const ABSOLUTE_LIFETIME_HOURS: i64 = 12;

/// Session state keys. The values are JSON, as actix-session writes them.
pub mod keys {
    /// The signed-in user's id: what makes a session worth storing.
    pub const USER_ID: &str = "user_id";
    /// The session's row id, added by the store when it loads the row, so a page can tell
    /// which of the user's sessions is this one. Never stored.
    pub const ROW_ID: &str = "session_row";
    /// Where the sign-in came from. Set at sign-in, moved by the store into the row's
    /// columns when it first writes it, and never kept in the state.
    pub const CLIENT_IP: &str = "client_ip";
    pub const CLIENT_AGENT: &str = "client_agent";
    /// The sign-in went through the provider (single sign-on). Kept in the state, and
    /// copied into the row's `via_sso` column when it is first written, for the list.
    pub const VIA_SSO: &str = "via_sso";
}

/// Activity pushes a session's expiry back at most this often. Every signed-in request
/// would otherwise be a write (and an fsync) just to say "still here".
const TOUCH_INTERVAL_SECS: i64 = 60;

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

/// A new, random session key: 64 base62 characters, about 381 bits.
fn new_key() -> anyhow::Result<SessionKey> {
    Ok(SessionKey::try_from(random_base62(64))?)
}

/// The row's `key_digest` for a cookie's session key.
fn key_digest(key: &SessionKey) -> String {
    URL_SAFE_NO_PAD.encode(SecretDigest::of(key.as_ref()).as_bytes())
}

fn expiry(ttl: &Duration) -> chrono::NaiveDateTime {
    db::now() + chrono::Duration::seconds(ttl.whole_seconds())
}

/// Takes a string value out of the state, if it is there and is a string.
fn take_string(state: &mut HashMap<String, String>, key: &str) -> Option<String> {
    state
        .remove(key)
        .and_then(|json| serde_json::from_str::<String>(&json).ok())
}

/// The state as it is stored: without the keys that live in columns or come from the row.
fn storable(mut state: HashMap<String, String>) -> serde_json::Result<String> {
    for key in [keys::ROW_ID, keys::CLIENT_IP, keys::CLIENT_AGENT] {
        state.remove(key);
    }
    serde_json::to_string(&state)
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let digest = key_digest(key);
        let row = self
            .blocking(move |conn| db::sessions::load(conn, &digest, db::now()))
            .await
            .map_err(LoadError::Other)?;
        let Some((id, body)) = row else {
            return Ok(None);
        };
        let mut state: HashMap<String, String> =
            serde_json::from_str(&body).map_err(|e| LoadError::Deserialization(e.into()))?;
        state.insert(keys::ROW_ID.to_string(), id.0.to_string());
        Ok(Some(state))
    }

    async fn save(
        &self,
        mut state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let key = new_key().map_err(SaveError::Other)?;
        let user_id = state
            .get(keys::USER_ID)
            .and_then(|json| serde_json::from_str::<i32>(json).ok());
        let Some(user_id) = user_id else {
            // Only a sign-in makes a row. The cookie names no row, so it reads as anonymous;
            // whatever was put in this session is lost, which is a bug to fix, not to store.
            tracing::warn!("a session without a signed-in user was not stored");
            return Ok(key);
        };
        let via_sso = state
            .get(keys::VIA_SSO)
            .and_then(|json| serde_json::from_str::<bool>(json).ok())
            .unwrap_or(false);
        let ip = take_string(&mut state, keys::CLIENT_IP);
        let agent = take_string(&mut state, keys::CLIENT_AGENT);
        let body = storable(state).map_err(|e| SaveError::Serialization(e.into()))?;
        let digest = key_digest(&key);
        let now = db::now();
        let expires_at = expiry(ttl);
        self.blocking(move |conn| {
            db::sessions::insert(
                conn,
                &db::sessions::NewSession {
                    key_digest: &digest,
                    user_id,
                    state: &body,
                    created_at: now,
                    last_seen_at: now,
                    expires_at,
                    ip: ip.as_deref(),
                    user_agent: agent.as_deref(),
                    via_sso,
                },
            )
        })
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
        let body = storable(state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let digest = key_digest(&key);
        let expires_at = expiry(ttl);
        let updated = self
            .blocking(move |conn| db::sessions::update(conn, &digest, &body, expires_at, db::now()))
            .await
            .map_err(UpdateError::Other)?;
        if updated {
            return Ok(key);
        }
        // The session ended (logout, ended from another session, expiry) while this request
        // ran. Writing its state back would undo that, so the browser gets a new id that
        // names no row: it is anonymous from the next request on.
        new_key().map_err(UpdateError::Other)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let digest = key_digest(key);
        let expires_at = expiry(ttl);
        let touched = self
            .blocking(move |conn| {
                let now = db::now();
                // A read first, without the write lock: most requests stop here.
                match db::sessions::last_seen(conn, &digest)? {
                    Some(seen) if (now - seen).num_seconds() >= TOUCH_INTERVAL_SECS => {
                        db::sessions::touch(conn, &digest, expires_at, now)
                    }
                    _ => Ok(()),
                }
            })
            .await;
        // Only the idle timeout is at stake: the page the person asked for still answers
        // when the database can't take the write (a full disk, say).
        if let Err(err) = touched {
            tracing::warn!(error = %err, "could not record a session's activity");
        }
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let digest = key_digest(key);
        self.blocking(move |conn| db::sessions::delete(conn, &digest))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, UserId};

    struct Fixture {
        _dir: tempfile::TempDir,
        pool: Pool,
        store: DbSessionStore,
        user: UserId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::connect(dir.path().join("s.db").to_str().unwrap()).unwrap();
        let user = {
            let mut conn = pool.get().unwrap();
            let email = Email::parse("sessions@example.test").unwrap();
            db::users::create(
                &mut conn,
                &email,
                "not-a-real-hash",
                false,
                db::users::Address::Assumed,
            )
            .unwrap()
            .user_id()
        };
        Fixture {
            _dir: dir,
            store: DbSessionStore::new(pool.clone()),
            pool,
            user,
        }
    }

    fn json(value: impl serde::Serialize) -> String {
        serde_json::to_string(&value).unwrap()
    }

    fn signed_in_state(user: UserId) -> HashMap<String, String> {
        HashMap::from([(keys::USER_ID.to_string(), json(user.0))])
    }

    fn session_rows(pool: &Pool) -> i64 {
        use diesel::prelude::*;
        db::schema::sessions::table
            .count()
            .get_result(&mut pool.get().unwrap())
            .unwrap()
    }

    /// The state as a handler would read it back: without the row id the store adds.
    fn as_stored(mut state: HashMap<String, String>) -> HashMap<String, String> {
        assert!(
            state.remove(keys::ROW_ID).is_some(),
            "a loaded session names its row: {state:?}"
        );
        state
    }

    #[actix_web::test]
    async fn a_request_that_ends_after_logout_does_not_bring_the_session_back() {
        let f = fixture();
        let ttl = Duration::hours(2);

        let key = f.store.save(signed_in_state(f.user), &ttl).await.unwrap();
        let same = SessionKey::try_from(key.as_ref().to_string()).unwrap();
        // Another tab logs out...
        f.store.delete(&key).await.unwrap();
        // ...while a slower request still holds the signed-in state and saves it.
        let after = f
            .store
            .update(same, signed_in_state(f.user), &ttl)
            .await
            .unwrap();

        assert_ne!(
            after.as_ref(),
            key.as_ref(),
            "the ended session id was reused"
        );
        assert_eq!(f.store.load(&key).await.unwrap(), None);
        assert_eq!(f.store.load(&after).await.unwrap(), None);
        assert_eq!(session_rows(&f.pool), 0, "no row was brought back");
    }

    #[actix_web::test]
    async fn a_live_session_keeps_its_id_when_its_state_changes() {
        let f = fixture();
        let ttl = Duration::hours(2);

        let key = f.store.save(signed_in_state(f.user), &ttl).await.unwrap();
        let mut changed = signed_in_state(f.user);
        changed.insert("flash".into(), json("hello"));
        let same = SessionKey::try_from(key.as_ref().to_string()).unwrap();
        let after = f.store.update(same, changed.clone(), &ttl).await.unwrap();

        assert_eq!(after.as_ref(), key.as_ref());
        let loaded = f.store.load(&key).await.unwrap().unwrap();
        assert_eq!(as_stored(loaded), changed);
    }

    #[actix_web::test]
    async fn state_without_a_signed_in_user_is_never_stored() {
        let f = fixture();
        let anonymous = HashMap::from([("csrf".to_string(), json("abc"))]);

        let key = f.store.save(anonymous, &Duration::hours(2)).await.unwrap();

        assert_eq!(session_rows(&f.pool), 0);
        assert_eq!(f.store.load(&key).await.unwrap(), None);
    }

    #[actix_web::test]
    async fn where_a_sign_in_came_from_goes_to_the_row_not_the_state() {
        let f = fixture();
        let mut state = signed_in_state(f.user);
        state.insert(keys::CLIENT_IP.into(), json("192.0.2.7"));
        state.insert(
            keys::CLIENT_AGENT.into(),
            json("Mozilla/5.0 (X11; Linux x86_64)"),
        );

        let key = f.store.save(state, &Duration::hours(2)).await.unwrap();

        let loaded = f.store.load(&key).await.unwrap().unwrap();
        assert_eq!(as_stored(loaded), signed_in_state(f.user));
        let mut conn = f.pool.get().unwrap();
        let listed = db::sessions::list_for_user(&mut conn, f.user, db::now()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(
            listed[0].user_agent.as_deref(),
            Some("Mozilla/5.0 (X11; Linux x86_64)")
        );
    }
}
