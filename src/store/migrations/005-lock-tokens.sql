-- Migration 5: fencing tokens.
-- Every grant takes the next token from lock_counter, which only grows: it is
-- never lowered, not by a release, a restart or a snapshot from another
-- authority (a replica raises it to the largest token it has seen, so that a
-- device that becomes the authority later grants above every earlier grant).
-- Locks granted before this migration keep token 0.
ALTER TABLE locks ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
CREATE TABLE lock_counter (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  last INTEGER NOT NULL
) STRICT;
INSERT INTO lock_counter (id, last) VALUES (1, 0);
