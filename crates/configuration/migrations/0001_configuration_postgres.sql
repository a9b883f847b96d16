-- Every change is an immutable release: the full snapshot of one scope in one profile.
CREATE TABLE releases (
    revision BIGINT PRIMARY KEY,
    scope TEXT NOT NULL,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    diff TEXT NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    request_id TEXT,
    rollback_of BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX releases_by_scope ON releases (scope, profile, revision);
