-- Publish before sign: a new signing key is in the JWKS for a lead time before it signs, so
-- every verifier (Kong's copy of the keys too) has it before the first token it signed.
-- signs_from is when a key starts signing; the key before it retires at that moment.
ALTER TABLE signing_keys ADD COLUMN signs_from BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET signs_from = created_at;
