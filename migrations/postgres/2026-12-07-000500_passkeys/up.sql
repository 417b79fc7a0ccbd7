-- Passkeys (WebAuthn): a person's registered credentials, and the ceremonies under way.

-- One row per registered credential. `passkey` is webauthn-rs's serialised Passkey (the
-- public key, its signature counter and backup state; nothing secret). credential_id is
-- unique across all users: a credential belongs to one person. user_handle is the random
-- id the authenticator keeps for the person, the same on all their passkeys, so that a
-- passwordless sign-in names whose it is.
CREATE TABLE passkeys (
    id            SERIAL PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BYTEA NOT NULL UNIQUE,
    user_handle   BYTEA NOT NULL,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A ceremony's challenge and state, kept here and never in the browser, named by the
-- SHA-256 of a cookie made for it. Lives 5 minutes and is deleted when used, so it
-- can't be replayed. user_id is the person it is for (NULL for a passwordless sign-in,
-- which learns who from the passkey).
CREATE TABLE passkey_ceremonies (
    id         SERIAL PRIMARY KEY,
    key_digest BYTEA NOT NULL UNIQUE,
    purpose    TEXT NOT NULL,
    user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
