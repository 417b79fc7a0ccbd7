-- Usage history (issue 8, part 4): per token and UTC day, how many calls the guard let
-- through and how many it refused, written in batches by the servers. Several servers add
-- to the same row (count = count + n), so none overwrites another's figures. Days older
-- than 90 are deleted by the same batch.
CREATE TABLE token_usage_days (
    token_id INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    day DATE NOT NULL,
    succeeded BIGINT NOT NULL DEFAULT 0,
    wrong_secret BIGINT NOT NULL DEFAULT 0,
    forbidden BIGINT NOT NULL DEFAULT 0,
    rate_limited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, day)
);
CREATE INDEX token_usage_days_day ON token_usage_days (day);

-- The last client addresses of each token, at most 5 kept.
CREATE TABLE token_addresses (
    token_id INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    ip TEXT COLLATE "C" NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (token_id, ip)
);

-- Per-token rate limits (issue 8, part 6): requests per minute; NULL is no limit.
ALTER TABLE tokens ADD COLUMN rate_limit_per_minute INTEGER
    CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0);
