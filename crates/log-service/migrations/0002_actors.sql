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
-- Events stored before: what the old user_id held, sorted into the new fields. Service
-- clients and a service's own workers are services; an operator command has a name only;
-- the Configuration service wrote the admin's username as the actor.
UPDATE events SET actor_service = substr(actor_id, 8), actor_id = NULL
    WHERE actor_id LIKE 'client:%';
UPDATE events SET actor_service = actor_id, actor_id = NULL
    WHERE actor_id = service;
UPDATE events SET actor_name = actor_id, actor_id = NULL
    WHERE actor_id LIKE 'operator:%'
       OR (service = 'configuration' AND action LIKE 'settings.%');
