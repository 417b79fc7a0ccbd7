ALTER TABLE accounts DROP COLUMN max_token_lifetime_days;
DROP INDEX tokens_rolled_to;
DROP INDEX tokens_rolled_from;
ALTER TABLE tokens DROP COLUMN rolled_to;
ALTER TABLE tokens DROP COLUMN rolled_from;
