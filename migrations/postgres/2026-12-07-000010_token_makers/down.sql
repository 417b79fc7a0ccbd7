DROP INDEX tokens_maker;
ALTER TABLE tokens DROP COLUMN maker_token_id;
