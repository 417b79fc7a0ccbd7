ALTER TABLE tokens DROP COLUMN rate_limit_per_minute;
DROP TABLE token_addresses;
DROP INDEX token_usage_days_day;
DROP TABLE token_usage_days;
