-- Migration 4: counters that must never go backwards.
-- When this device forgets its record of a path (to fetch the content again,
-- e.g. restoring a locked file), its counter in that path's version is kept
-- here, so that its next change of the path takes a higher counter than any
-- version a peer may already have seen.
CREATE TABLE counter_floors (
  path    TEXT    PRIMARY KEY,
  counter INTEGER NOT NULL
) STRICT;
