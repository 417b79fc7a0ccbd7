ALTER TABLE accounts DROP COLUMN require_two_factor;
