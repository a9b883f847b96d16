-- The X app (project) each bot's credentials belong to: X limits posts per app over 24 hours,
-- bills and caps per project, so the meter, the 24-hour window and budgets follow the app.
ALTER TABLE bots ADD COLUMN x_app TEXT NOT NULL DEFAULT 'default';
CREATE INDEX bots_by_x_app ON bots (x_app);
ALTER TABLE usage_events ADD COLUMN app TEXT NOT NULL DEFAULT 'default';
CREATE INDEX usage_events_by_app ON usage_events (app, at);
-- Monthly budgets per app, as per team.
CREATE TABLE app_budgets (
    app TEXT PRIMARY KEY,
    monthly_micros BIGINT NOT NULL,
    currency TEXT NOT NULL,
    soft_percent BIGINT NOT NULL,
    hard_stop BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE app_budget_notices (
    app TEXT NOT NULL,
    month TEXT NOT NULL,
    level TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (app, month, level)
);
-- Apps whose usage X is asked for: the app-only bearer token lives in Secure Bot Data under
-- vault_id (never here); the rest is X's last answer to GET /2/usage/tweets.
CREATE TABLE x_apps (
    app TEXT PRIMARY KEY,
    vault_id TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    project_id TEXT,
    project_cap BIGINT,
    project_usage BIGINT,
    cap_reset_day BIGINT,
    read_at BIGINT,
    read_error TEXT
);
