-- Reviews: a post's content version (bumped by every change of what would be sent to X, not
-- by a new time), the approval pinned to a hash of that content, who approved it and when.
-- A post from before this step has no approval (NULL) and content version 1.
ALTER TABLE posts ADD COLUMN content_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE posts ADD COLUMN approved_hash TEXT;
ALTER TABLE posts ADD COLUMN approved_by TEXT;
ALTER TABLE posts ADD COLUMN approved_at BIGINT;
-- What happened to a post, as its readers need it: who wrote, edited, submitted, approved or
-- asked for changes, when, on which content version, with the reviewer's comment and, for a
-- content change, the content itself (JSON). Ordered by history_id (UUIDv7, time-ordered).
CREATE TABLE post_history (
    history_id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    content_version BIGINT NOT NULL,
    comment TEXT,
    content TEXT
);
CREATE INDEX post_history_by_post ON post_history (post_id, history_id);
-- Who must have posts reviewed: a team ('team:<name>') or one bot ('bot:<id>'). Any level
-- that requires review requires it (the setting, the bot's team, the bot); self-approval
-- follows the team's row where there is one, else the setting.
CREATE TABLE review_policies (
    scope TEXT PRIMARY KEY,
    approval_required BIGINT NOT NULL,
    allow_self_approval BIGINT,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
