-- Whether a user's address was taken on trust rather than proven: signed up while mail
-- was off, typed in by an operator, or joined through an invitation link (which its
-- inviter sees too). Such a user acts as verified, but their address links no single
-- sign-on, claims no domain and takes up no invitation without its link, until mail or
-- the provider proves it (a followed link, a password reset, a connected provider).
ALTER TABLE users ADD COLUMN email_assumed BOOLEAN NOT NULL DEFAULT FALSE;
-- Users from before this column whose address was verified the moment they were made, and
-- no provider vouched for: most were taken on trust, and which can't be told, so all are.
UPDATE users SET email_assumed = TRUE
WHERE email_verified_at IS NOT NULL
  AND julianday(email_verified_at) - julianday(created_at) < 1.0 / 86400
  AND id NOT IN (SELECT user_id FROM oidc_identities);
