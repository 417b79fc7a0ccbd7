-- Single sign-on with OpenID Connect.

-- Who a person is at the provider: (issuer, sub), never the email alone. A user may have
-- one link per issuer. Deleting the user deletes the link.
CREATE TABLE oidc_identities (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issuer            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    email             TEXT,
    created_at        TIMESTAMP NOT NULL,
    last_sign_in_at   TIMESTAMP NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- A sign-in on its way through the provider: found by the SHA-256 of its `state`, bound
-- to the browser that started it (the SHA-256 of a cookie), used once, alive 10 minutes.
-- The PKCE verifier and nonce are secrets only for those minutes.
CREATE TABLE oidc_flows (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    state_digest   BLOB NOT NULL UNIQUE,
    browser_digest BLOB NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    -- `sign-in`, or `reauth` (sudo mode) for the user in `user_id`.
    purpose        TEXT NOT NULL,
    user_id        INTEGER REFERENCES users (id) ON DELETE CASCADE,
    return_to      TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL
);
CREATE INDEX oidc_flows_expiry ON oidc_flows (expires_at);

-- Whether a session began at the provider: the sessions list says so.
ALTER TABLE sessions ADD COLUMN via_sso BOOLEAN NOT NULL DEFAULT 0;

-- The owners' policy: members must sign in through the provider; and a claimed email
-- domain, whose people join as members at their first SSO sign-in.
ALTER TABLE accounts ADD COLUMN require_sso BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN claimed_domain TEXT;
CREATE UNIQUE INDEX accounts_claimed_domain ON accounts (claimed_domain);
