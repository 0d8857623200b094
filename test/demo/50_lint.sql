-- DDL risk: lint and trace a risky migration before running it
-- The pgbench tables stand for a live application.  The migration below is
-- the kind that takes production down: a volatile default (rewrite), an index
-- built without CONCURRENTLY, SET NOT NULL with nothing to prove it, a type
-- change that rewrites, a rename the running code still uses.
SET lock_timeout = '2s';
\set migration 'ALTER TABLE pgbench_accounts ADD COLUMN ref uuid DEFAULT gen_random_uuid(); ALTER TABLE pgbench_accounts ADD COLUMN note text; CREATE INDEX pgbench_accounts_bid ON pgbench_accounts (bid); ALTER TABLE pgbench_accounts ALTER COLUMN bid SET NOT NULL; ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint; ALTER TABLE pgbench_branches RENAME COLUMN bbalance TO balance;'
SELECT reltuples::bigint AS rows FROM pg_class WHERE relname = 'pgbench_accounts';
SELECT stmt, risk, rule, lock_mode, rewrites, scans
  FROM moltres_ops.lint(:'migration') ORDER BY stmt, risk DESC;
-- What to run instead, in the linter's words.
SELECT stmt, rule, hint
  FROM moltres_ops.lint(:'migration') WHERE risk = 'dangerous' ORDER BY stmt;
-- The same migration, run for real and rolled back: every lock taken and
-- every relation rewritten (pg_locks' view, this backend only).
SELECT stmt, relation, lock_mode, rewrote, round(duration_ms::numeric, 1) AS ms, note
  FROM moltres_ops.trace(:'migration')
 WHERE relation IS NULL OR relation::text !~ '^[0-9]+$'
 ORDER BY stmt, relation::text, lock_mode;
-- Nothing changed.
SELECT count(*) AS new_columns FROM pg_attribute
 WHERE attrelid = 'pgbench_accounts'::regclass AND attname IN ('ref', 'note');
-- The safe version of the same migration: lint finds nothing dangerous.
SELECT stmt, risk, rule, message FROM moltres_ops.lint($$
  ALTER TABLE pgbench_accounts ADD COLUMN ref uuid;
  ALTER TABLE pgbench_accounts ALTER COLUMN ref SET DEFAULT gen_random_uuid();
  ALTER TABLE pgbench_accounts ADD COLUMN note text;
  CREATE INDEX CONCURRENTLY IF NOT EXISTS pgbench_accounts_bid ON pgbench_accounts (bid);
  ALTER TABLE pgbench_accounts ADD CONSTRAINT pgbench_accounts_bid_nn CHECK (bid IS NOT NULL) NOT VALID;
  ALTER TABLE pgbench_accounts VALIDATE CONSTRAINT pgbench_accounts_bid_nn;
  ALTER TABLE pgbench_accounts ALTER COLUMN bid SET NOT NULL
$$) ORDER BY stmt;
