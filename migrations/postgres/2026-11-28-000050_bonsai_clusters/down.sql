DROP INDEX clusters_by_account;
UPDATE clusters SET state = lower(state);
ALTER TABLE clusters DROP COLUMN data_bytes_used;
ALTER TABLE clusters DROP COLUMN shards_used;
ALTER TABLE clusters DROP COLUMN docs;
ALTER TABLE clusters DROP COLUMN "release";
UPDATE clusters SET space = CASE space
    WHEN 'omc/bonsai/us-east-1/common'       THEN 'aws-us-east-1'
    WHEN 'omc/bonsai/eu-west-1/common'       THEN 'aws-eu-west-1'
    WHEN 'omc/bonsai-gcp/us-central1/common' THEN 'gcp-us-central1'
    ELSE space END;
ALTER TABLE clusters RENAME COLUMN space TO region;
