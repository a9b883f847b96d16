-- Connections to X in progress (OAuth 2.0 Authorization Code with PKCE): one per bot, from the
-- moment a person is sent to X's consent page until X's code comes back or it expires. The
-- state is kept as its SHA-256 only; the PKCE verifier (and a confidential client's secret)
-- wait in Secure Bot Data, never here.
CREATE TABLE x_connections (
    state_hash TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL UNIQUE,
    requested_by TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    confidential BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
