-- Monthly budgets per team: an amount in millionths of the pricing currency, the share at
-- which people are told (soft), and whether sends stop when it is spent (hard stop); and a
-- record of each notice given, so each crossing is announced once a month.
CREATE TABLE budgets (
    team TEXT PRIMARY KEY,
    monthly_micros BIGINT NOT NULL,
    currency TEXT NOT NULL,
    soft_percent BIGINT NOT NULL,
    -- 1: sends stop when the budget is spent; 0: people are told only.
    hard_stop BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE budget_notices (
    team TEXT NOT NULL,
    month TEXT NOT NULL,
    level TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (team, month, level)
);
