-- The dashboard's new-token form carries a one-use nonce, kept with the token it made, so
-- the same form sent many times at once makes one token: a write that finds its nonce
-- already used by that person points to that token instead.
ALTER TABLE tokens ADD COLUMN form_nonce TEXT;
CREATE UNIQUE INDEX tokens_form_nonce ON tokens (user_id, form_nonce) WHERE form_nonce IS NOT NULL;
