CREATE TABLE sessions_keyed (
    id          TEXT    PRIMARY KEY NOT NULL,
    state       TEXT    NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
INSERT INTO sessions_keyed (id, state, expires_at)
SELECT key_digest, state, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_keyed RENAME TO sessions;
CREATE INDEX sessions_expiry ON sessions (expires_at);
