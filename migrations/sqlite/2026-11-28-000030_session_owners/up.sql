-- Sessions belong to users. A row is made at sign-in and never for an anonymous visitor
-- (their forms carry a signed cookie instead), so every row names its user and says
-- when and from where it began: the user can list their sessions and end them.
-- The cookie's session id is still stored only as its SHA-256 (`key_digest`); `id` is
-- what pages show and forms name.

CREATE TABLE sessions_owned (
    id            INTEGER PRIMARY KEY NOT NULL,
    key_digest    TEXT    NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state         TEXT    NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);

-- Signed-in sessions carry on; anonymous ones (a sign-in form's CSRF token) are dropped.
-- actix-session keeps each value JSON-encoded, so `user_id` reads as the text '7'.
-- A session's expiry is its last activity plus the 2-hour idle timeout.
INSERT INTO sessions_owned (key_digest, user_id, state, created_at, last_seen_at, expires_at)
SELECT s.id,
       u.id,
       s.state,
       COALESCE(
           datetime(CAST(json_extract(s.state, '$.signed_in_at') AS INTEGER), 'unixepoch'),
           datetime(s.expires_at, '-2 hours')),
       datetime(s.expires_at, '-2 hours'),
       s.expires_at
FROM sessions s
JOIN users u ON u.id = CAST(json_extract(s.state, '$.user_id') AS INTEGER)
WHERE json_valid(s.state);

DROP TABLE sessions;
ALTER TABLE sessions_owned RENAME TO sessions;
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id, last_seen_at);
