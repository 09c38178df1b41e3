-- Migration 1: the folder index.
-- Each migration file is named for the schema version it produces and runs
-- once, in order, inside a transaction; PRAGMA user_version records the last.

-- Devices whose records this index holds. Row idx = 1 is always this device.
CREATE TABLE devices (
  idx          INTEGER PRIMARY KEY,
  id           TEXT    NOT NULL UNIQUE, -- full device ID, dashed form
  short_id     TEXT    NOT NULL,        -- first 7 characters of id
  max_sequence INTEGER NOT NULL DEFAULT 0 -- local: last sequence issued; remote: last received
) STRICT;

-- One record per (device, path) ever seen. Tombstones (deleted = 1) stay so a
-- stale copy elsewhere can never resurrect the path.
CREATE TABLE files (
  id       INTEGER PRIMARY KEY,
  device   INTEGER NOT NULL REFERENCES devices(idx),
  path     TEXT    NOT NULL,           -- folder-relative, '/'-separated
  type     INTEGER NOT NULL,           -- 0 file, 1 directory, 2 symlink
  size     INTEGER NOT NULL,           -- bytes; 0 for directories and tombstones
  mtime_s  INTEGER NOT NULL,           -- modification time, whole seconds since the epoch
  mtime_ns INTEGER NOT NULL,           -- and the nanoseconds within that second
  mode     INTEGER NOT NULL,           -- permission bits (mode & 0o7777)
  inode    INTEGER NOT NULL,           -- local inode, for change detection only (0 for remote)
  target   TEXT    NOT NULL DEFAULT '', -- symlink target, verbatim
  chunks   BLOB    NOT NULL,           -- per chunk: u32 big-endian length, 32-byte hash
  version  TEXT    NOT NULL,           -- version vector as JSON, keys sorted
  deleted  INTEGER NOT NULL,           -- 1 for a tombstone
  sequence INTEGER NOT NULL,           -- the owning device's sequence at the last change
  UNIQUE (device, path)
) STRICT;

-- "What changed on device D after sequence N" for incremental index exchange.
CREATE INDEX files_device_sequence ON files (device, sequence);

-- Where this device has each chunk on its own disk: only for local, present
-- files. Answers "where do I already have chunk H" for reuse when pulling.
CREATE TABLE chunks (
  hash   BLOB    NOT NULL,           -- 32-byte chunk hash
  file   INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL
) STRICT;

CREATE INDEX chunks_hash ON chunks (hash);
CREATE INDEX chunks_file ON chunks (file);

-- Small settings of the index itself.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
