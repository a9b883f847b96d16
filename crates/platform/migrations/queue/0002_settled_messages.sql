-- A message every matching consumer has settled keeps only its id and time (for the
-- duplicate window) until the window has passed; then it is deleted.
ALTER TABLE eq_messages ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
