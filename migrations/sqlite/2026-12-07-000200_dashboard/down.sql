ALTER TABLE token_usage_days DROP COLUMN refused;
ALTER TABLE accounts DROP COLUMN suspended_by_operator;
DROP INDEX tokens_account_last_used;
DROP INDEX tokens_account_expiry;
DROP INDEX tokens_account_creator;
ALTER TABLE tokens DROP COLUMN note;
