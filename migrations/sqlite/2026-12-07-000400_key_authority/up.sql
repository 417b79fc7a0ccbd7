-- What a token carries for the services that verify it (issue 26): permissions the
-- account names (comma-separated), a JSON object returned on verification, the caller's
-- own customer id, usage credits with an optional lazy refill, and an IP allowlist
-- (comma-separated CIDRs; empty for anywhere). credits_version grows on every change
-- made by a person, so a batch of spending counted against an older value is dropped.
ALTER TABLE tokens ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN meta TEXT;
ALTER TABLE tokens ADD COLUMN external_id TEXT;
ALTER TABLE tokens ADD COLUMN credits_remaining BIGINT;
ALTER TABLE tokens ADD COLUMN credits_refill_interval TEXT;
ALTER TABLE tokens ADD COLUMN credits_refill_amount BIGINT;
ALTER TABLE tokens ADD COLUMN credits_refilled_at TIMESTAMP;
ALTER TABLE tokens ADD COLUMN credits_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_external_id ON tokens (account_id, external_id) WHERE external_id IS NOT NULL;
