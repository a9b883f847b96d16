-- A migration that breaks the release before it: renames a column it still reads.
ALTER TABLE bots RENAME COLUMN bot_name TO display_name;
