DROP INDEX passkey_ceremonies_user;
