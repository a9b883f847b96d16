-- What each category holds per UTC day, for the space budgets (logging.retention_bytes.*)
-- and the space report, kept exact by triggers: an insert that stored nothing (a duplicate)
-- fires none, and every delete (retention, a delete by filter) takes its share back. Bytes
-- are the events' stored content (`stored_bytes`, computed, never stored); the file's
-- indexes come on top. PostgreSQL needs no ledger: each day is a partition whose size the
-- server knows.
ALTER TABLE events ADD COLUMN stored_bytes BIGINT GENERATED ALWAYS AS (
    32 + length(CAST(id AS BLOB)) + length(CAST(service AS BLOB))
    + length(CAST(level AS BLOB)) + length(CAST(message AS BLOB))
    + length(CAST(data AS BLOB)) + IFNULL(length(CAST(actor_id AS BLOB)), 0)
    + IFNULL(length(CAST(actor_name AS BLOB)), 0)
    + IFNULL(length(CAST(actor_service AS BLOB)), 0)
    + IFNULL(length(CAST(bot_id AS BLOB)), 0) + IFNULL(length(CAST(team AS BLOB)), 0)
    + IFNULL(length(CAST(action AS BLOB)), 0) + IFNULL(length(CAST(request_id AS BLOB)), 0)
) VIRTUAL;
CREATE TABLE event_space (
    category TEXT NOT NULL,
    day BIGINT NOT NULL,
    events BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (category, day)
);
INSERT INTO event_space (category, day, events, bytes)
    SELECT category, ts / 86400000 * 86400000, COUNT(*), SUM(stored_bytes)
    FROM events GROUP BY category, ts / 86400000;
CREATE TRIGGER event_space_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_space (category, day, events, bytes)
    VALUES (new.category, new.ts / 86400000 * 86400000, 1, new.stored_bytes)
    ON CONFLICT (category, day) DO UPDATE SET
        events = events + excluded.events, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER event_space_delete AFTER DELETE ON events BEGIN
    UPDATE event_space SET events = events - 1, bytes = bytes - old.stored_bytes
    WHERE category = old.category AND day = old.ts / 86400000 * 86400000;
END;
