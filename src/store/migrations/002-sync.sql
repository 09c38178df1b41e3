-- Migration 2: what peer sync needs.

-- The short ID of the device that made the record's current version: breaks
-- conflict ties by device ID ('' when unknown).
ALTER TABLE files ADD COLUMN modified_by TEXT NOT NULL DEFAULT '';

-- A peer's index identity: when a peer's database is replaced its sequence
-- numbers start again, so a changed index ID means "exchange everything".
ALTER TABLE devices ADD COLUMN index_id TEXT NOT NULL DEFAULT '';

-- "Which paths does any device know" for planning, and "all records of one
-- path" across devices.
CREATE INDEX files_path ON files (path);
