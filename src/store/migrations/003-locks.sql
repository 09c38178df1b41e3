-- Migration 3: locks.
-- On the lock authority this is the lock table itself; on every other device
-- it is a replica kept from the authority's lock stream, so listings and
-- enforcement work while the authority is away.
CREATE TABLE locks (
  path       TEXT    PRIMARY KEY,   -- folder-relative path of the locked file
  id         TEXT    NOT NULL UNIQUE, -- lock ID (token)
  owner      TEXT    NOT NULL,      -- user name
  device     TEXT    NOT NULL,      -- full ID of the device the owner's client used
  created_ms INTEGER NOT NULL,      -- when granted, ms since the epoch
  expires_ms INTEGER,               -- expiry, ms since the epoch; NULL: none
  reason     TEXT    NOT NULL DEFAULT ''
) STRICT;
