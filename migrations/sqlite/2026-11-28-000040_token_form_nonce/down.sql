DROP INDEX tokens_form_nonce;
ALTER TABLE tokens DROP COLUMN form_nonce;
