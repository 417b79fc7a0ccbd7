DROP INDEX tokens_unlogged_expiry;
-- A 'created' note read as a 'forget' only drops a cache entry that isn't there.
ALTER TABLE cache_invalidations DROP COLUMN kind;
