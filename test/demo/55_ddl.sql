-- DDL guard and DDL log: every client's DDL linted, logged, the dangerous warned about or refused
-- A copy of pgbench_accounts (200,000 rows) stands for a busy table, so that
-- the other demos keep theirs.
SELECT moltres_ops.reset_ddl_log();
CREATE TABLE demo_orders AS SELECT aid AS id, bid, abalance AS amount FROM pgbench_accounts;
ANALYZE demo_orders;
-- warn: the statement runs, with a WARNING per dangerous finding and the safe way.
SET moltres_ops.ddl_guard = warn;
ALTER TABLE demo_orders ADD COLUMN ref uuid DEFAULT gen_random_uuid();
ALTER TABLE demo_orders ADD COLUMN note text;
-- block: refused before it runs (SQLSTATE 55000); the safe form passes.
SET moltres_ops.ddl_guard = block;
CREATE INDEX demo_orders_bid ON demo_orders (bid);
CREATE INDEX CONCURRENTLY IF NOT EXISTS demo_orders_bid ON demo_orders (bid);
RESET moltres_ops.ddl_guard;
-- ddl_lock_timeout: another session reads the table in a long transaction;
-- the ALTER gives up after 300 ms instead of queueing every reader behind it.
\! psql -X -q -d demo -c "BEGIN; SELECT count(*) FROM demo_orders; SELECT pg_sleep(2); COMMIT;" >/dev/null &
SELECT pg_sleep(0.5);
SET moltres_ops.ddl_lock_timeout = '300ms';
ALTER TABLE demo_orders ADD COLUMN flag boolean;
RESET moltres_ops.ddl_lock_timeout;
SELECT pg_sleep(2);
DROP TABLE demo_orders;
-- What ran, newest first: outcome, the linter's worst risk, and whether the
-- table was rewritten.
SELECT to_char(ts, 'HH24:MI:SS') AS at, command, object, outcome, error_code, risk, rules,
       rewrote, round(duration_ms::numeric, 1) AS ms, left(statement, 50) AS statement
  FROM moltres_ops.ddl_log;
