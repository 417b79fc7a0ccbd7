-- Calls the guard let in that the server then failed to answer (a 5xx from a handler, as
-- a 503 when the store can't be written): neither a success nor the token's refusal.
ALTER TABLE token_usage_days ADD COLUMN failed BIGINT NOT NULL DEFAULT 0;
