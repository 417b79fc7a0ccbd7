DROP TABLE sessions;
CREATE TABLE sessions (
    id          TEXT    PRIMARY KEY NOT NULL,
    state       TEXT    NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
