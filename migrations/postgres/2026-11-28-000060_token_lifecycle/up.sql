-- Rolling a token makes a successor. Each side names the other, so both pages can link
-- across; the unique index means a token has at most one successor, whatever races.
ALTER TABLE tokens ADD COLUMN rolled_from INTEGER REFERENCES tokens (id) ON DELETE SET NULL;
ALTER TABLE tokens ADD COLUMN rolled_to INTEGER REFERENCES tokens (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX tokens_rolled_from ON tokens (rolled_from) WHERE rolled_from IS NOT NULL;
CREATE UNIQUE INDEX tokens_rolled_to ON tokens (rolled_to) WHERE rolled_to IS NOT NULL;

-- The account's longest allowed token lifetime, in days; NULL: no limit.
ALTER TABLE accounts ADD COLUMN max_token_lifetime_days INTEGER;
