-- Mail: verified addresses, one-time links sent by mail, the outbox, and notices.

-- When the address was proven, by a link sent to it. Users from before mail are taken as
-- verified, as are users made while mail is off.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP;
UPDATE users SET email_verified_at = created_at;

-- Every message, written in the same transaction as the change that causes it, and
-- delivered by the background sender. A row is claimed (claimed_until) before it is sent,
-- so two instances never send it together; a sender killed mid-send leaves a claim that
-- runs out, and the message is sent again: twice, never zero times. The payload (which may
-- hold a link's token) is emptied once the row is sent or failed.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    payload         TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claimed_until   TIMESTAMP,
    sent_at         TIMESTAMP,
    failed_at       TIMESTAMP,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;

-- One-time links sent by mail: verify an address, reset a password, confirm a new
-- address. Only the SHA-256 of the link's token is kept.
CREATE TABLE email_links (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'change')),
    token_digest BLOB NOT NULL UNIQUE,
    email        TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP
);
CREATE INDEX email_links_user ON email_links (user_id, purpose);

-- Which notices a user gets; no row means the defaults (expiry digest and revocations on,
-- new addresses off).
CREATE TABLE mail_preferences (
    user_id              INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    expiry_digest        BOOLEAN NOT NULL,
    revocations          BOOLEAN NOT NULL,
    new_ip               BOOLEAN NOT NULL,
    last_expiry_digest_at TIMESTAMP
);

-- Tokens already named in an expiry digest, and token addresses already noticed: each
-- is mentioned once.
CREATE TABLE expiry_notices (
    token_id   INTEGER PRIMARY KEY REFERENCES tokens (id) ON DELETE CASCADE,
    noticed_at TIMESTAMP NOT NULL
);
CREATE TABLE address_notices (
    token_id   INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    noticed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, ip)
);

-- Reset and verification requests are limited per address and per IP, like sign-ups:
-- two more kinds of throttle event. SQLite changes a CHECK by rebuilding the table.
CREATE TABLE throttle_events_new (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL CHECK (kind IN ('pair', 'ip', 'email', 'sign-up', 'mail-email', 'mail-ip')),
    key     TEXT NOT NULL CHECK (length(key) <= 400),
    attempt BIGINT NOT NULL,
    at      TIMESTAMP NOT NULL
);
INSERT INTO throttle_events_new SELECT id, kind, key, attempt, at FROM throttle_events;
DROP TABLE throttle_events;
ALTER TABLE throttle_events_new RENAME TO throttle_events;
CREATE INDEX throttle_events_key ON throttle_events (kind, key, at);
CREATE INDEX throttle_events_at ON throttle_events (at);
CREATE INDEX throttle_events_attempt ON throttle_events (attempt);
