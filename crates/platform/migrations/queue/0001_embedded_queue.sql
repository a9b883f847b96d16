-- The embedded queue's log of messages. AUTOINCREMENT: a sequence is never reused after
-- old messages are trimmed, because consumer cursors point at sequences.
CREATE TABLE eq_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    published_at INTEGER NOT NULL
);
CREATE INDEX eq_messages_msg_id ON eq_messages (msg_id, published_at);
CREATE INDEX eq_messages_published_at ON eq_messages (published_at);

-- Durable consumers: the last sequence each has looked at.
CREATE TABLE eq_consumers (
    name TEXT PRIMARY KEY,
    filter TEXT NOT NULL,
    max_deliver INTEGER NOT NULL,
    ack_wait_ms INTEGER NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0
);

-- Messages handed out and not yet acknowledged or terminated. due_at is the ack deadline of
-- an outstanding delivery, or the end of a nak's delay; either way the message is delivered
-- again once it passes.
CREATE TABLE eq_deliveries (
    consumer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, seq)
);
CREATE INDEX eq_deliveries_due ON eq_deliveries (consumer, due_at);
