-- Keyward's first schema. Every row of account data carries account_id.
-- Times are UTC, stored as ISO-8601 text by diesel's Timestamp type.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY NOT NULL,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL UNIQUE,
    api_state   TEXT    NOT NULL DEFAULT 'active' CHECK (api_state IN ('active', 'suspended')),
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY NOT NULL,
    email          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT    NOT NULL,
    operator       BOOLEAN NOT NULL DEFAULT 0,
    created_at     TIMESTAMP NOT NULL,
    last_login_at  TIMESTAMP
);

CREATE TABLE memberships (
    id          INTEGER PRIMARY KEY NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (user_id, account_id)
);
CREATE INDEX memberships_account ON memberships (account_id);

CREATE TABLE tokens (
    id             INTEGER PRIMARY KEY NOT NULL,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id        INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name           TEXT    NOT NULL,
    key            TEXT    NOT NULL UNIQUE,
    secret_digest  BLOB    NOT NULL UNIQUE,
    secret_hint    TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP,
    last_used_at   TIMESTAMP,
    last_used_ip   TEXT,
    revoked_at     TIMESTAMP,
    revoked_by     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    revoke_reason  TEXT,
    expiry_logged  BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX tokens_account ON tokens (account_id, created_at);

-- Append-only. actor_id is NULL for the command line and for the system.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY NOT NULL,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    actor_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor_label TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    token_id    INTEGER REFERENCES tokens (id) ON DELETE SET NULL,
    ip          TEXT,
    at          TIMESTAMP NOT NULL,
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_account ON audit_events (account_id, id);
CREATE INDEX audit_events_token ON audit_events (token_id);
CREATE TRIGGER audit_events_no_update
BEFORE UPDATE OF account_id, actor_label, action, target, ip, at, detail ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

-- Every change that must leave the guard's cache is written here in the same
-- transaction, so that other processes on this file see it by polling `seq`.
CREATE TABLE cache_invalidations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_key   TEXT,
    account_id  INTEGER,
    at          TIMESTAMP NOT NULL
);

CREATE TABLE clusters (
    id          INTEGER PRIMARY KEY NOT NULL,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slug        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    plan        TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (account_id, slug)
);

CREATE TABLE sessions (
    id          TEXT    PRIMARY KEY NOT NULL,
    state       TEXT    NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE invitations (
    id           INTEGER PRIMARY KEY NOT NULL,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL COLLATE NOCASE,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    token_digest BLOB    NOT NULL UNIQUE,
    invited_by   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    accepted_at  TIMESTAMP
);
CREATE INDEX invitations_account ON invitations (account_id);

-- Server-wide values, such as the generated session signing key.
CREATE TABLE server_settings (
    name   TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);
