-- A ceremony is found by its owner at every start (a person's older one is replaced), and
-- the anonymous ones are counted at every passwordless start: both read by user_id.
CREATE INDEX passkey_ceremonies_user ON passkey_ceremonies (user_id);
