-- Invitations can be cancelled: by an admin, or because whoever sent one was removed.
ALTER TABLE invitations ADD COLUMN cancelled_at TIMESTAMP;
