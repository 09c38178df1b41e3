-- Migration 6: fencing tokens on versions.
-- Each record carries the fencing token of the lock its version was written
-- under (0: written without a lock). Rows from before keep their versions
-- and get token 0: they were written before any version carried a token.
ALTER TABLE files ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
