-- Media uploaded for a bot's posts: the bytes wait here, in chunks the size of X's upload
-- segments, until the post that carries the medium is published (then only the description
-- stays). Right before the send a worker uploads them to X in chunks (initialize, append,
-- finalize) and keeps X's media id for as long as X keeps the upload.
CREATE TABLE media (
    media_id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    alt_text TEXT,
    state TEXT NOT NULL,
    x_media_id TEXT,
    x_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX media_by_bot ON media (bot_id, media_id);
CREATE TABLE media_chunks (
    media_id TEXT NOT NULL,
    chunk BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (media_id, chunk)
);
