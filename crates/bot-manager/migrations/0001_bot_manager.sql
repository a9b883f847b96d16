-- Bot Manager tables (the same text runs on SQLite and PostgreSQL). Times are unix
-- milliseconds. Bots' credentials are not here: they live in Secure Bot Data.
CREATE TABLE bots (
    bot_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    team TEXT,
    name TEXT NOT NULL,
    x_handle TEXT,
    x_user_id TEXT,
    description TEXT NOT NULL DEFAULT '',
    operator_account TEXT,
    posting_slots TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    status_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    metrics_due_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bots_by_owner ON bots (owner_id, bot_id);
CREATE INDEX bots_by_team ON bots (team, bot_id);
CREATE INDEX bots_by_metrics_due ON bots (metrics_due_at);

CREATE TABLE posts (
    post_id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    text TEXT NOT NULL,
    media_ids TEXT NOT NULL DEFAULT '[]',
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at BIGINT,
    x_post_id TEXT,
    error TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX posts_by_bot ON posts (bot_id, post_id);
CREATE INDEX posts_by_fingerprint ON posts (fingerprint, created_at);

-- One row per action on X (publish, delete). `attempts` counts the tries that count
-- (errors, unknown outcomes), not rate-limit waits; `dispatches` numbers each hand-off to
-- the queue, which makes each one's dedupe id.
CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    bot_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    dispatches BIGINT NOT NULL DEFAULT 0,
    run_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_by_post ON jobs (post_id);
CREATE INDEX jobs_waiting_by_bot ON jobs (bot_id, state);

-- The transactional outbox: written with the job, relayed to the queue when due.
CREATE TABLE outbox (
    job_id TEXT NOT NULL,
    dispatch BIGINT NOT NULL,
    bot_id TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, dispatch)
);
CREATE INDEX outbox_by_due ON outbox (due_at);

-- One write in flight per bot, whichever replica runs it.
CREATE TABLE bot_leases (
    bot_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- What X's rate-limit headers last said, per bot and endpoint (24-hour windows too).
CREATE TABLE rate_limits (
    bot_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    limit_total BIGINT NOT NULL,
    remaining BIGINT NOT NULL,
    reset_at BIGINT NOT NULL,
    PRIMARY KEY (bot_id, endpoint)
);

CREATE TABLE idempotency_keys (
    owner_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    post_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, idempotency_key)
);

CREATE TABLE bot_metrics (
    bot_id TEXT NOT NULL,
    taken_at BIGINT NOT NULL,
    followers BIGINT NOT NULL,
    following BIGINT NOT NULL,
    posts BIGINT NOT NULL,
    listed BIGINT NOT NULL,
    PRIMARY KEY (bot_id, taken_at)
);

CREATE TABLE post_metrics (
    post_id TEXT NOT NULL,
    taken_at BIGINT NOT NULL,
    impressions BIGINT NOT NULL,
    likes BIGINT NOT NULL,
    replies BIGINT NOT NULL,
    reposts BIGINT NOT NULL,
    quotes BIGINT NOT NULL,
    bookmarks BIGINT NOT NULL,
    url_clicks BIGINT,
    profile_clicks BIGINT,
    PRIMARY KEY (post_id, taken_at)
);
