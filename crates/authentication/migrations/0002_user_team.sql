-- A user may belong to one team; teammates reach each other's bots. The team is a claim in
-- the user's access tokens.
ALTER TABLE users ADD COLUMN team TEXT;
