DELETE FROM cache_invalidations WHERE kind = 'clusters';
ALTER TABLE cache_invalidations DROP CONSTRAINT cache_invalidations_kind_check;
ALTER TABLE cache_invalidations
    ADD CONSTRAINT cache_invalidations_kind_check CHECK (kind IN ('forget', 'created'));
