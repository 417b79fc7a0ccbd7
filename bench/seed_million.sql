-- Filler tokens for the scale benchmark: ?2 rows in account ?1, made in one statement.
-- Each has a random key of the published shape ('kw_' and 16 hex digits, which are
-- base62) and a random 32-byte digest that no secret will hash to, so none can be used;
-- the benchmark's working token comes from `keyward token create`. The rows exist before
-- the server starts, so they need no change-log note: the server reads every key at start.
WITH RECURSIVE n(i) AS (
    SELECT 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < ?2
)
INSERT INTO tokens (account_id, user_id, name, key, secret_digest, secret_hint, scopes, created_at)
SELECT ?1, NULL, 'filler ' || i, 'kw_' || lower(hex(randomblob(8))), randomblob(32), '0000',
       'read,write', strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM n;
