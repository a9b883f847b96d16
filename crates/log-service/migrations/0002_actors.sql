-- Who acted, in separate fields: the acting user's id (was user_id, which held user ids,
-- usernames or service names depending on the event), their name, or the service that
-- acted; the bot an event concerns; and the team it belongs to, which scopes Managers' reads.
-- The same SQL on SQLite and PostgreSQL (where it reaches every partition).
ALTER TABLE events RENAME COLUMN user_id TO actor_id;
ALTER TABLE events ADD COLUMN actor_name TEXT;
ALTER TABLE events ADD COLUMN actor_service TEXT;
ALTER TABLE events ADD COLUMN bot_id TEXT;
ALTER TABLE events ADD COLUMN team TEXT;
CREATE INDEX events_by_bot ON events (bot_id, ts DESC);
CREATE INDEX events_by_team ON events (team, ts DESC);
