DELETE FROM throttle_events WHERE kind IN ('mail-email', 'mail-ip');
ALTER TABLE throttle_events DROP CONSTRAINT throttle_events_kind_check;
ALTER TABLE throttle_events ADD CONSTRAINT throttle_events_kind_check
    CHECK (kind IN ('pair', 'ip', 'email', 'sign-up'));
DROP TABLE address_notices;
DROP TABLE expiry_notices;
DROP TABLE mail_preferences;
DROP TABLE email_links;
DROP TABLE outbox;
ALTER TABLE users DROP COLUMN email_verified_at;
