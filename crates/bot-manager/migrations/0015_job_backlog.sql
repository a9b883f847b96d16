-- The publishing backlog (`GET /api/v1/bots/backlog`: the console's System page and banner)
-- counts jobs by state and time from index ranges instead of reading every job. Built in the
-- migration's transaction, not CONCURRENTLY: a concurrent build waits for every older
-- transaction in the database, and the other replicas' migrators waiting on their advisory
-- lock made that a deadlock (seen in the local cluster; .squawk.toml says more). The build
-- holds writes to jobs back for its length.
CREATE INDEX jobs_by_state_run_at ON jobs (state, run_at);
CREATE INDEX jobs_by_state_updated_at ON jobs (state, updated_at);
