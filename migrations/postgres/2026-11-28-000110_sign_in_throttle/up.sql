-- Failed sign-ins and sign-ups, counted in the store (issue 11, part 2), so that several
-- instances on one database share one limit instead of each granting its own. One row per
-- event and key: an attempt is counted under its (address, email) pair, its address and
-- its email, three rows sharing `attempt`, so it can be forgiven whole. Rows older than the
-- hour the rules look back over are deleted by the next write, and the table is capped.
-- kind: 'pair', 'ip', 'email' or 'sign-up'.
CREATE TABLE throttle_events (
    id      BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('pair', 'ip', 'email', 'sign-up')),
    key     TEXT COLLATE "C" NOT NULL CHECK (length(key) <= 400),
    attempt BIGINT NOT NULL,
    at      TIMESTAMP NOT NULL
);
CREATE INDEX throttle_events_key ON throttle_events (kind, key, at);
CREATE INDEX throttle_events_at ON throttle_events (at);
CREATE INDEX throttle_events_attempt ON throttle_events (attempt);
