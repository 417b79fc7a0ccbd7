DELETE FROM throttle_events WHERE kind IN ('mail-email', 'mail-ip');
CREATE TABLE throttle_events_old (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL CHECK (kind IN ('pair', 'ip', 'email', 'sign-up')),
    key     TEXT NOT NULL CHECK (length(key) <= 400),
    attempt BIGINT NOT NULL,
    at      TIMESTAMP NOT NULL
);
INSERT INTO throttle_events_old SELECT id, kind, key, attempt, at FROM throttle_events;
DROP TABLE throttle_events;
ALTER TABLE throttle_events_old RENAME TO throttle_events;
CREATE INDEX throttle_events_key ON throttle_events (kind, key, at);
CREATE INDEX throttle_events_at ON throttle_events (at);
CREATE INDEX throttle_events_attempt ON throttle_events (attempt);
DROP TABLE address_notices;
DROP TABLE expiry_notices;
DROP TABLE mail_preferences;
DROP TABLE email_links;
DROP TABLE outbox;
ALTER TABLE users DROP COLUMN email_verified_at;
