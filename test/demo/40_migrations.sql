-- Migrations: migrate(), the ledger, one view over every tool's ledger, readiness, live DDL
\set VERBOSITY default
\set SHOW_CONTEXT never

\echo '== A migration applied with CALL migrate(): begin, run under a lock timeout, record'
CALL moltres_ops.migrate('2024_06_01_branch_note', 'add a note to branches',
    'ALTER TABLE pgbench_branches ADD COLUMN note text');

\echo '== Run again (another pod, a retried deploy): nothing to do'
CALL moltres_ops.migrate('2024_06_01_branch_note', 'add a note to branches',
    'ALTER TABLE pgbench_branches ADD COLUMN note text');

\echo '== A migration that fails is recorded, with its error, and the CALL fails'
CALL moltres_ops.migrate('2024_06_02_teller_index', 'index tellers by branch',
    'CREATE INDEX pgbench_tellers_bid ON pgbench_teller (bid)');
\echo '== Fixed, the same version runs again'
CALL moltres_ops.migrate('2024_06_02_teller_index', 'index tellers by branch',
    'CREATE INDEX pgbench_tellers_bid ON pgbench_tellers (bid)');

SELECT version, name, status, round(duration_ms::numeric, 1) AS ms, applied_by, error
  FROM moltres_ops.migrations ORDER BY version;

\echo '== The same database also has an Alembic ledger and a golang-migrate one left dirty'
CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('4f2e0c1d9a7b');
CREATE SCHEMA billing;
CREATE TABLE billing.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO billing.schema_migrations VALUES (12, true);
SET search_path = public, billing;
SELECT tool, ledger, current_version, applied_count, state, detail FROM moltres_ops.migration_status;
SELECT moltres_ops.ready('2024_06_02_teller_index') AS app_ready,
       moltres_ops.ready(NULL, 'golang-migrate') AS billing_ready;

\echo '== The lock-queue outage: an ALTER waits behind a long report; readers queue behind the ALTER'
\! PGAPPNAME=long-report psql -X -q -d demo -c "BEGIN; SELECT count(*) FROM pgbench_branches; SELECT pg_sleep(3); COMMIT" >/dev/null 2>&1 &
\! sleep 0.5
\! PGAPPNAME=raw-alter psql -X -q -d demo -c "ALTER TABLE pgbench_branches ADD COLUMN region text" >/dev/null 2>&1 &
\! sleep 0.3
\! PGAPPNAME=web-1 psql -X -q -d demo -c "SELECT count(*) FROM pgbench_branches" >/dev/null 2>&1 &
\! PGAPPNAME=web-2 psql -X -q -d demo -c "SELECT count(*) FROM pgbench_branches" >/dev/null 2>&1 &
\! sleep 0.5
SELECT application_name, query, relation, mode_held, mode_wanted, granted,
       waiting > interval '0' AS waiting, queued_behind,
       (SELECT application_name FROM pg_stat_activity WHERE pid = blocked_by[1]) AS blocked_by
  FROM moltres_ops.ddl_activity ORDER BY queued_behind DESC;
\! sleep 3

\echo '== The safe way: migrate() waits at most 100 ms at a time, so readers never pile up behind it'
\! PGAPPNAME=long-report psql -X -q -d demo -c "BEGIN; SELECT count(*) FROM pgbench_branches; SELECT pg_sleep(1.5); COMMIT" >/dev/null 2>&1 &
\! sleep 0.3
CALL moltres_ops.migrate('2024_06_03_branch_region_default', 'default region',
    'ALTER TABLE pgbench_branches ALTER COLUMN region SET DEFAULT ''eu''',
    lock_timeout => '100ms', max_attempts => 30);
SELECT tool, current_version, applied_count, state FROM moltres_ops.migration_status
 WHERE tool = 'moltres_ops';
RESET search_path;
