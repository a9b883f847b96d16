-- Log events in one-process mode: one table, retention by delete. ts is Unix milliseconds.
CREATE TABLE events (
    id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    category TEXT NOT NULL,
    service TEXT NOT NULL,
    level TEXT NOT NULL,
    user_id TEXT,
    action TEXT,
    request_id TEXT,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (category, ts, id)
);
CREATE INDEX events_by_time ON events (ts DESC, id DESC);
CREATE INDEX events_by_service ON events (service, ts DESC);
CREATE INDEX events_by_level ON events (level, ts DESC);
CREATE INDEX events_by_user ON events (user_id, ts DESC);
CREATE INDEX events_by_action ON events (action, ts DESC);
CREATE INDEX events_by_request ON events (request_id);
