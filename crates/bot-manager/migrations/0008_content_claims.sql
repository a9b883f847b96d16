-- Who is sending which content: one row per near-duplicate fingerprint, naming the bot and
-- post that last took it. X's automation rules forbid the same content from several accounts;
-- a worker takes the claim right before sending, atomically, so two bots whose posts passed
-- the checks at the same moment cannot both send. A claim lapses after the duplicate window.
CREATE TABLE content_claims (
    fingerprint TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    claimed_at BIGINT NOT NULL
);
