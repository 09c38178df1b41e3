-- Migration 7: directory locks.
-- A lock is on one file ('file') or on a directory and everything below it
-- ('directory'). Locks granted before this migration are file locks.
ALTER TABLE locks ADD COLUMN scope TEXT NOT NULL DEFAULT 'file' CHECK (scope IN ('file', 'directory'));
