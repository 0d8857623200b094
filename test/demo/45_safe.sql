-- Safe schema changes: lock-timeout retries, NOT NULL / FK / CHECK without long locks, columns without rewrites, resumable backfills
\set VERBOSITY default
\set SHOW_CONTEXT never

\echo '== An ALTER behind a long report: with_lock_retry waits 100 ms at a time, so readers never queue for long'
\! PGAPPNAME=long-report psql -X -q -d demo -c "BEGIN; SELECT count(*) FROM pgbench_branches; SELECT pg_sleep(1.5); COMMIT" >/dev/null 2>&1 &
\! sleep 0.3
CALL moltres_ops.with_lock_retry('ALTER TABLE pgbench_branches ADD COLUMN manager text', max_attempts => 30);
SELECT attname FROM pg_attribute WHERE attrelid = 'pgbench_branches'::regclass AND attname = 'manager';

\echo '== safe_set_not_null: CHECK NOT VALID, VALIDATE (reads and writes go on), SET NOT NULL (no scan), DROP the CHECK'
SET client_min_messages = debug1;
CALL moltres_ops.safe_set_not_null('pgbench_history', 'tid');
RESET client_min_messages;
SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'pgbench_history'::regclass AND attname = 'tid';

\echo '== safe_add_foreign_key and safe_add_check: NOT VALID, then VALIDATE'
CALL moltres_ops.safe_add_foreign_key('pgbench_accounts', '{bid}', 'pgbench_branches', '{bid}');
CALL moltres_ops.safe_add_check('pgbench_accounts', 'abalance_sane', 'abalance BETWEEN -10000000 AND 10000000');
SELECT conname, contype, convalidated, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid = 'pgbench_accounts'::regclass AND contype IN ('c', 'f');

\echo '== A CHECK the rows violate: the server''s error, and the NOT VALID constraint is dropped again'
CALL moltres_ops.safe_add_check('pgbench_accounts', 'abalance_zero', 'abalance = 0');

\echo '== safe_add_column: a constant default is catalog-only; a volatile one is SET DEFAULT plus a batched backfill'
SELECT relfilenode AS tellers_file FROM pg_class WHERE oid = 'pgbench_tellers'::regclass \gset
CALL moltres_ops.safe_add_column('pgbench_tellers', 'active', 'boolean', 'true', not_null => true);
CALL moltres_ops.safe_add_column('pgbench_tellers', 'public_id', 'uuid', 'gen_random_uuid()', not_null => true, batch_size => 5);
SELECT relfilenode = :tellers_file AS not_rewritten, (SELECT count(DISTINCT public_id) FROM pgbench_tellers) AS distinct_ids
  FROM pg_class WHERE oid = 'pgbench_tellers'::regclass;

\echo '== A backfill of 200,000 accounts in batches of 25,000; a row locked by another session stops it'
\! PGAPPNAME=row-holder psql -X -q -d demo -c "BEGIN; SELECT 1 FROM pgbench_accounts WHERE aid = 150001 FOR UPDATE; SELECT pg_sleep(4); COMMIT" >/dev/null 2>&1 &
\! sleep 0.3
CALL moltres_ops.backfill('pgbench_accounts', 'filler = ''backfilled''', batch_size => 25000,
                          lock_timeout => '100ms', max_attempts => 2);
SELECT relation, state, rows_done, batches, last_key, error FROM moltres_ops.backfill_progress;

\echo '== The holder is gone: the same CALL continues after the last committed key'
\! sleep 4
CALL moltres_ops.backfill('pgbench_accounts', 'filler = ''backfilled''', batch_size => 25000);
SELECT relation, state, rows_done, batches, last_key, rows_per_second, elapsed FROM moltres_ops.backfill_progress;
SELECT count(*) FILTER (WHERE filler = 'backfilled') AS backfilled, count(*) FROM pgbench_accounts;
