-- SQLite's index becomes this one, column for column; nothing changes here.
SELECT 1;
