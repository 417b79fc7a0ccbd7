-- Clusters in Bonsai's shape (issue 10): a space path in place of the region, a release,
-- usage figures, and the client's upper-case states.
ALTER TABLE clusters RENAME COLUMN region TO space;
UPDATE clusters SET space = CASE space
    WHEN 'aws-us-east-1'   THEN 'omc/bonsai/us-east-1/common'
    WHEN 'aws-eu-west-1'   THEN 'omc/bonsai/eu-west-1/common'
    WHEN 'gcp-us-central1' THEN 'omc/bonsai-gcp/us-central1/common'
    ELSE space END;
ALTER TABLE clusters ADD COLUMN "release" TEXT NOT NULL DEFAULT 'elasticsearch-7.10.2';
ALTER TABLE clusters ADD COLUMN docs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clusters ADD COLUMN shards_used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clusters ADD COLUMN data_bytes_used BIGINT NOT NULL DEFAULT 0;
UPDATE clusters SET state = upper(state);
-- A page of an account's clusters in id order, read straight from the index (every
-- SQLite index ends with the rowid, which `id` is).
CREATE INDEX clusters_by_account ON clusters (account_id);
