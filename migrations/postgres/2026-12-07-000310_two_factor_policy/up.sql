-- Whether the account's owners require every member to sign in with a second factor.
ALTER TABLE accounts ADD COLUMN require_two_factor BOOLEAN NOT NULL DEFAULT FALSE;
