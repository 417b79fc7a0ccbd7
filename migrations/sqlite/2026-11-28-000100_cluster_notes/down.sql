-- A 'clusters' note means nothing to the older code, which would refuse to read it.
DELETE FROM cache_invalidations WHERE kind = 'clusters';
CREATE TABLE cache_invalidations_old (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_key   TEXT,
    account_id  INTEGER,
    at          TIMESTAMP NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'forget' CHECK (kind IN ('forget', 'created'))
);
INSERT INTO cache_invalidations_old (seq, token_key, account_id, at, kind)
    SELECT seq, token_key, account_id, at, kind FROM cache_invalidations;
DROP TABLE cache_invalidations;
ALTER TABLE cache_invalidations_old RENAME TO cache_invalidations;
