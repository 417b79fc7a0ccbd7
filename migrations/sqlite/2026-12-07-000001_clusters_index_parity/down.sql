DROP INDEX clusters_by_account;
CREATE INDEX clusters_by_account ON clusters (account_id);
