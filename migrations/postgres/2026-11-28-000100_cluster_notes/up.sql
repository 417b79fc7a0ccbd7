-- The log also tells every process when an account's clusters changed, so a page of
-- `GET /clusters` rendered and kept in memory is dropped by every instance within one poll.
-- 'clusters': the clusters of account_id changed.
ALTER TABLE cache_invalidations DROP CONSTRAINT cache_invalidations_kind_check;
ALTER TABLE cache_invalidations
    ADD CONSTRAINT cache_invalidations_kind_check CHECK (kind IN ('forget', 'created', 'clusters'));
