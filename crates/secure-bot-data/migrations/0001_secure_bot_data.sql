-- Secure Bot Data: who may reach each bot, per-field metadata, sealed versions, the KEK
-- policy and the audit trail. Shared by SQLite and PostgreSQL. Times are Unix seconds except
-- audit.at (milliseconds). No column ever holds a plaintext value or a key-encryption key.

CREATE TABLE bots (
    bot_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    team TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX bots_by_owner ON bots (owner_id, bot_id);
CREATE INDEX bots_by_team ON bots (team, bot_id);

-- Metadata of a field, kept apart from its ciphertexts.
CREATE TABLE secret_fields (
    bot_id TEXT NOT NULL REFERENCES bots (bot_id),
    field TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (bot_id, field)
);

-- One row per version. kek_version, wrapped_dek and ciphertext are NULL once destroyed.
CREATE TABLE secret_versions (
    bot_id TEXT NOT NULL,
    field TEXT NOT NULL,
    version BIGINT NOT NULL,
    kek_version BIGINT,
    wrapped_dek TEXT,
    ciphertext TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at BIGINT,
    deleted_by TEXT,
    destroyed_at BIGINT,
    destroyed_by TEXT,
    PRIMARY KEY (bot_id, field, version),
    FOREIGN KEY (bot_id, field) REFERENCES secret_fields (bot_id, field)
);
CREATE INDEX secret_versions_by_kek ON secret_versions (kek_version);

CREATE TABLE kek_policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    min_decryption_version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO kek_policy (id, min_decryption_version, updated_at) VALUES (1, 1, 0);

-- The audit trail doubles as the outbox of user_activity events: `published` flips once the
-- event is on the queue. Values appear only as HMACs.
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    bot_id TEXT,
    field TEXT,
    version BIGINT,
    request_id TEXT,
    value_hmac TEXT,
    details TEXT NOT NULL,
    published BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX audit_by_bot ON audit (bot_id, id);
CREATE INDEX audit_unpublished ON audit (id) WHERE published = 0;
