-- The token that made this one through the API (`POST /access-tokens`, or a roll through
-- it); NULL for tokens made in the dashboard or at the command line. Revoking a token
-- revokes every token below it in this tree.
ALTER TABLE tokens ADD COLUMN maker_token_id INTEGER REFERENCES tokens (id) ON DELETE SET NULL;
CREATE INDEX tokens_maker ON tokens (maker_token_id) WHERE maker_token_id IS NOT NULL;
