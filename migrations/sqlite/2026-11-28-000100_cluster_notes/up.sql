-- The log also tells every process when an account's clusters changed, so a page of
-- `GET /clusters` rendered and kept in memory is dropped by every instance within one poll.
-- 'clusters': the clusters of account_id changed.
-- SQLite can't change a CHECK constraint in place, so the table is rebuilt with its rows
-- and sequence numbers as they are: every process keeps reading from the seq it has seen.
CREATE TABLE cache_invalidations_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_key   TEXT,
    account_id  INTEGER,
    at          TIMESTAMP NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'forget' CHECK (kind IN ('forget', 'created', 'clusters'))
);
INSERT INTO cache_invalidations_new (seq, token_key, account_id, at, kind)
    SELECT seq, token_key, account_id, at, kind FROM cache_invalidations;
DROP TABLE cache_invalidations;
ALTER TABLE cache_invalidations_new RENAME TO cache_invalidations;
