-- Online index changes: CREATE INDEX CONCURRENTLY from inside a transaction
-- A migration tool wraps each file in BEGIN ... COMMIT, where CREATE INDEX
-- CONCURRENTLY is refused.  safe_create_index() hands it to a background
-- worker that runs it top-level with our privileges.
\set VERBOSITY default
\set SHOW_CONTEXT errors
BEGIN;
CREATE INDEX CONCURRENTLY pgbench_accounts_bid ON pgbench_accounts (bid);
ROLLBACK;
BEGIN;
SELECT moltres_ops.safe_create_index('pgbench_accounts_bid', 'pgbench_accounts', '(bid)') > 0 AS started;
COMMIT;
-- The build finished once our transaction ended (it waits for older ones).
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM moltres_ops.index_jobs WHERE state IN ('starting', 'running'));
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT indexrelid::regclass AS index, indisvalid FROM pg_index
 WHERE indexrelid = 'pgbench_accounts_bid'::regclass;
-- A unique index over duplicate data fails; the invalid index it leaves is
-- dropped, and the error keeps its SQLSTATE (23505).
SELECT moltres_ops.safe_create_index('pgbench_accounts_bid_uq', 'pgbench_accounts', '(bid)',
                                     is_unique => true);
SELECT count(*) AS leftovers FROM pg_class WHERE relname = 'pgbench_accounts_bid_uq';
-- Anything but one index definition is refused before a worker starts.
SELECT moltres_ops.safe_create_index('x', 'pgbench_accounts', '(bid); DROP TABLE pgbench_accounts');
-- Drop it again, concurrently.
SELECT moltres_ops.safe_drop_index('pgbench_accounts_bid') > 0 AS dropped;
SELECT id, state, attempts, error_code, error, command FROM moltres_ops.index_jobs;
