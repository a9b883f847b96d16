-- Each bot's automation disclosure, as a person confirmed it: X's automated-account label is
-- set on the account, its bio says it is automated, and the human operator's account it
-- links to. Required before a bot's first post where bot_manager.compliance.record_required.
CREATE TABLE compliance_records (
    bot_id TEXT PRIMARY KEY,
    automated_label BIGINT NOT NULL,
    bio_discloses_automation BIGINT NOT NULL,
    operator_account TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    confirmed_at BIGINT NOT NULL
);
