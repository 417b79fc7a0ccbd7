-- Two-factor sign-in: an authenticator app's secret, recovery codes, and the sign-ins
-- that wait for their second step.

-- One authenticator (TOTP) per user. The secret is sealed with the server's secret key
-- (XChaCha20-Poly1305), which is never in the database. Unconfirmed (confirmed_at NULL)
-- while the person is still scanning it. last_used_step is the last 30-second step a
-- code was accepted for: a code is never taken twice (RFC 6238, 5.2).
CREATE TABLE two_factor (
    user_id        INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    totp_sealed    BLOB NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    confirmed_at   TIMESTAMP,
    last_used_step BIGINT
);

-- Ten single-use codes per user, kept as HMACs under the server's secret key.
CREATE TABLE recovery_codes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_digest BLOB NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id, code_digest);

-- A right password waiting for its second step, named by the SHA-256 of a cookie made for
-- it. Lives 5 minutes; dies after 5 wrong codes.
CREATE TABLE pending_sign_ins (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key_digest BLOB NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pending_sign_ins_expiry ON pending_sign_ins (expires_at);
