-- What a post carries to X besides text and media (reply, quote, poll, reply settings), as
-- JSON; '{}' for a post with none, which is every post written before this step.
ALTER TABLE posts ADD COLUMN x_options TEXT NOT NULL DEFAULT '{}';
