-- Log events on PostgreSQL: partitioned by category (each has its own retention), then by
-- day, so retention drops whole partitions. Day partitions are created by the writer as
-- events arrive. ts is Unix milliseconds. The primary key holds the partition keys, and a
-- duplicate delivery of an event carries the same category and ts, so it is stored once.
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
) PARTITION BY LIST (category);

CREATE TABLE events_user_activity PARTITION OF events FOR VALUES IN ('user_activity') PARTITION BY RANGE (ts);
CREATE TABLE events_debug PARTITION OF events FOR VALUES IN ('debug') PARTITION BY RANGE (ts);
CREATE TABLE events_terminal PARTITION OF events FOR VALUES IN ('terminal') PARTITION BY RANGE (ts);
CREATE TABLE events_console PARTITION OF events FOR VALUES IN ('console') PARTITION BY RANGE (ts);

CREATE INDEX events_by_time ON events (ts DESC, id DESC);
CREATE INDEX events_by_service ON events (service, ts DESC);
CREATE INDEX events_by_level ON events (level, ts DESC);
CREATE INDEX events_by_user ON events (user_id, ts DESC);
CREATE INDEX events_by_action ON events (action, ts DESC);
CREATE INDEX events_by_request ON events (request_id);
CREATE INDEX events_by_text ON events USING GIN (to_tsvector('simple', message));
