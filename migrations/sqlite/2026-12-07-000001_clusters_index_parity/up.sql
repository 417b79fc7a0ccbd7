-- The same index as PostgreSQL's, column for column. SQLite appended the rowid (id) to the
-- old one anyway, so pages of an account's clusters are read the same way as before.
DROP INDEX clusters_by_account;
CREATE INDEX clusters_by_account ON clusters (account_id, id);
