-- Threads: an ordered list of a bot's posts, each replying to the one before on X. Every
-- part is a post with its own state and X id; the first part's job runs at the thread's time,
-- each later part's job waits until the part before is published (its X id is what it
-- replies to).
CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX threads_by_bot ON threads (bot_id, thread_id);
CREATE TABLE thread_parts (
    thread_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    post_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (thread_id, position)
);
