-- Recurring posts: a rule with an end, whose occurrences become ordinary posts ahead of time.
-- next_occurrence is the first occurrence neither made into a post nor skipped; due_at is when
-- a replica looks at the rule again (claimed as metric rounds are).
CREATE TABLE recurrences (
    recurrence_id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    texts TEXT NOT NULL,
    rule TEXT NOT NULL,
    reply_settings TEXT,
    state TEXT NOT NULL,
    next_occurrence BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    refused BIGINT NOT NULL,
    last_refusal TEXT,
    due_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX recurrences_by_bot ON recurrences (bot_id, recurrence_id);
CREATE INDEX recurrences_due ON recurrences (state, due_at);
-- Each occurrence made into a post, at most once (the key decides between replicas).
CREATE TABLE recurrence_posts (
    recurrence_id TEXT NOT NULL,
    occurrence BIGINT NOT NULL,
    post_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (recurrence_id, occurrence)
);
