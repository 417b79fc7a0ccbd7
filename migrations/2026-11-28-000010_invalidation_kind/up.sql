-- The log also carries token creations now: every process adds a created key to the set
-- of keys it knows, and refuses any other key without reading the database.
-- 'forget': drop what is cached about the token (token_key) or the account (account_id).
-- 'created': a token with token_key now exists.
ALTER TABLE cache_invalidations
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'forget' CHECK (kind IN ('forget', 'created'));
