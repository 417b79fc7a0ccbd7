ALTER TABLE token_usage_days DROP COLUMN failed;
