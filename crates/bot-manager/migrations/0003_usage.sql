-- What the fleet's use of X costs: one row per billable use (a post created, a post deleted,
-- a read of the bot's own data), priced when it happened from the price table then in
-- force, in millionths of the currency unit so that sums are exact. Written in the same
-- commit as the outcome it bills (a publish, a delete), so a use is metered exactly once.
CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    team TEXT,
    kind TEXT NOT NULL,
    units BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    currency TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX usage_events_by_time ON usage_events (at);
CREATE INDEX usage_events_by_bot ON usage_events (bot_id, at);
CREATE INDEX usage_events_by_team ON usage_events (team, at);
