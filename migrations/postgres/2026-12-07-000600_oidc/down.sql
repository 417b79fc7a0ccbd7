DROP INDEX accounts_claimed_domain;
ALTER TABLE accounts DROP COLUMN claimed_domain;
ALTER TABLE accounts DROP COLUMN require_sso;
ALTER TABLE sessions DROP COLUMN via_sso;
DROP TABLE oidc_flows;
DROP TABLE oidc_identities;
