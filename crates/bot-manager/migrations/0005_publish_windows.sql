-- What was published when, per bot and across the app, for X's posting limits that no
-- response header reports (per account over 3 hours, per app over 24 hours).
CREATE INDEX posts_by_published_at ON posts (published_at);
CREATE INDEX posts_by_bot_published_at ON posts (bot_id, published_at);
