-- Each bot's time zone (an IANA name): its posting slots are on that wall clock, so a 09:00 slot
-- stays 09:00 local across daylight-saving changes. Bots before this step keep UTC, as their
-- slots were.
ALTER TABLE bots ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
