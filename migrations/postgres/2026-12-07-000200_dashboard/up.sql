-- A token's free-text note (purpose, owner, ticket), shown on its page and searched.
ALTER TABLE tokens ADD COLUMN note TEXT NOT NULL DEFAULT '';
-- The token list filters an account's tokens by creator and sorts by expiry and last use.
CREATE INDEX tokens_account_creator ON tokens (account_id, user_id);
CREATE INDEX tokens_account_expiry ON tokens (account_id, expires_at);
CREATE INDEX tokens_account_last_used ON tokens (account_id, last_used_at);
-- Who suspended an account's API access: its operator (TRUE) or its owners (FALSE). The
-- guard's 403 says which.
ALTER TABLE accounts ADD COLUMN suspended_by_operator BOOLEAN NOT NULL DEFAULT FALSE;
-- Answers a handler refused (a 4xx other than 403 and 429) after the guard let the call in.
ALTER TABLE token_usage_days ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;
