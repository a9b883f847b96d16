-- Webhook subscriptions, the messages they are sent, and each message's delivery to each
-- subscription: the outbox the sender works from and the delivery log people read. The same
-- SQL on SQLite and PostgreSQL.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    -- NULL: a global subscription (admins), told about every team's events.
    team TEXT,
    url TEXT NOT NULL,
    -- A JSON array of event types.
    event_types TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Signing secrets, sealed with logging.webhooks.encryption_key; the previous one signs
    -- too until previous_valid_until (a rotation's overlap).
    secret_sealed TEXT NOT NULL,
    previous_secret_sealed TEXT,
    previous_valid_until BIGINT,
    enabled BIGINT NOT NULL,
    disabled_reason TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_by_team ON webhook_subscriptions (team);

-- One row per notification, however many subscriptions get it: the body is stored once.
CREATE TABLE webhook_messages (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- pending (in the outbox), delivered, or failed (given up).
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- A replica sending it holds it until then.
    lease_until BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    last_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (subscription_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, created_at DESC, id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_by_message ON webhook_deliveries (message_id);
CREATE INDEX webhook_messages_by_age ON webhook_messages (created_at);
