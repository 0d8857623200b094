-- DDL guard, DDL lock timeout and DDL log (ddl_guard.c).  Every DDL
-- statement of every client is linted, logged with its outcome, risk and
-- whether it rewrote its table, and -- under ddl_guard = warn / block --
-- warned about or refused when lint rates it dangerous.
SELECT moltres_ops.reset_ddl_log();
SELECT pg_size_pretty(bytes) AS ring FROM moltres_ops.shmem_usage WHERE area = 'ddl_log';
SET moltres_ops.lint_large_table_rows = 10;   -- so that this small table counts as large
CREATE TABLE guard_t (id int PRIMARY KEY, v text, n int);
INSERT INTO guard_t SELECT g, 'x' || g, g FROM generate_series(1, 100) g;
ANALYZE guard_t;

-- Off (the default): dangerous DDL runs without a word, and is logged.
SHOW moltres_ops.ddl_guard;
ALTER TABLE guard_t ADD COLUMN r float8 DEFAULT random();   -- rewrites the table
ALTER TABLE guard_t ADD COLUMN c int DEFAULT 0;             -- metadata only
-- Non-DDL utility statements are not logged.
SET work_mem = '8MB';
SHOW work_mem;
RESET work_mem;
VACUUM guard_t;
ANALYZE guard_t;
BEGIN; COMMIT;
SELECT command, object, toplevel, statement, outcome, error_code, risk, rules, rewrote,
       duration_ms >= 0 AS timed, pid = pg_backend_pid() AS my_pid,
       username = current_user AS who, datname = current_database() AS db
  FROM moltres_ops.ddl_log ORDER BY ts;
-- Newest first.
SELECT array_agg(left(statement, 40)) AS newest_first FROM moltres_ops.ddl_log;

-- warn: one WARNING per dangerous finding, then the statement runs.
SET moltres_ops.ddl_guard = warn;
ALTER TABLE guard_t ALTER COLUMN v SET NOT NULL;
SELECT attnotnull AS ran FROM pg_attribute WHERE attrelid = 'guard_t'::regclass AND attname = 'v';
-- Safe DDL: no warning.
ALTER TABLE guard_t ADD COLUMN note text;

-- block: refused before it runs, with the safe way and the bypass.
SET moltres_ops.ddl_guard = block;
ALTER TABLE guard_t ALTER COLUMN n TYPE bigint;
\set VERBOSITY sqlstate
ALTER TABLE guard_t ALTER COLUMN n TYPE bigint;
\set VERBOSITY default
SELECT atttypid::regtype AS unchanged FROM pg_attribute WHERE attrelid = 'guard_t'::regclass AND attname = 'n';
CREATE INDEX guard_t_n ON guard_t (n);
TRUNCATE guard_t;
SELECT count(*) AS rows_kept FROM guard_t;
-- A DDL statement nested in a DO block or a function is judged too.
DO $$ BEGIN EXECUTE 'ALTER TABLE guard_t ALTER COLUMN n TYPE bigint'; END $$;
-- The refusal is an ordinary error: an exception block can catch it.
DO $$
BEGIN
    CREATE INDEX guard_t_n2 ON guard_t (n);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RAISE NOTICE 'caught: %', SQLERRM;
END $$;
-- trace() runs statements for real before rolling them back: it is judged
-- like any client, and reports the refusal.
SELECT stmt, relation, note FROM moltres_ops.trace('CREATE INDEX guard_t_n3 ON guard_t (n)');
-- migrate()'s allow_dangerous does not override the server-wide guard: the
-- migration is recorded failed with the guard's error.
\set VERBOSITY terse
CALL moltres_ops.migrate('guard_1', 'widen n', 'ALTER TABLE guard_t ALTER COLUMN n TYPE bigint',
                         allow_dangerous => true);
\set VERBOSITY default
SELECT status, error FROM moltres_ops.migrations WHERE version = 'guard_1';
DELETE FROM moltres_ops.migrations WHERE version = 'guard_1';
-- Safe forms pass: a concurrent index build, a NOT VALID check.
CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_t_n ON guard_t (n);
ALTER TABLE guard_t ADD CONSTRAINT n_pos CHECK (n > 0) NOT VALID;
ALTER TABLE guard_t VALIDATE CONSTRAINT n_pos;
-- The safe-migration procedures pass the guard: each of their steps is safe.
CALL moltres_ops.safe_set_not_null('guard_t', 'n');
SELECT attnotnull AS n_not_null FROM pg_attribute WHERE attrelid = 'guard_t'::regclass AND attname = 'n';
SELECT command, outcome, risk, left(statement, 60) AS statement
  FROM moltres_ops.ddl_log WHERE NOT toplevel AND outcome = 'ok' ORDER BY ts;
-- Tables created in the same statement or small tables are not dangerous.
CREATE TABLE guard_small (id int);
ALTER TABLE guard_small ALTER COLUMN id TYPE bigint;
-- A statement the linter cannot analyse runs unjudged and fails on its own.
ALTER TABLE guard_t ADD COLUMN bad no_such_type;
CREATE TABLE guard_t (id int);

-- Temporary tables are invisible to other sessions: their DDL is logged
-- but never refused (applications create, index and drop them routinely).
CREATE TEMP TABLE guard_tmp AS SELECT g AS id FROM generate_series(1, 100) g;
CREATE INDEX ON guard_tmp (id);
ALTER TABLE guard_tmp ALTER COLUMN id TYPE bigint;
TRUNCATE guard_tmp;
DROP TABLE guard_tmp;
-- but a DROP that names a permanent table too is judged.
CREATE TEMP TABLE guard_tmp (id int);
DROP TABLE guard_tmp, guard_small;
DROP TABLE guard_tmp;

-- Statements that run outside a transaction block still run (the linter's
-- subtransaction is over before they start) and are logged.
VACUUM FULL guard_small;
DROP INDEX CONCURRENTLY IF EXISTS guard_t_n;
SELECT command, object, outcome, risk, rules, rewrote FROM moltres_ops.ddl_log LIMIT 2;
BEGIN;
VACUUM FULL guard_small;
ROLLBACK;

-- Deliberate bypass: a superuser sets warn for the session.
SET moltres_ops.ddl_guard = warn;
ALTER TABLE guard_t ALTER COLUMN n TYPE bigint;
SELECT atttypid::regtype AS changed FROM pg_attribute WHERE attrelid = 'guard_t'::regclass AND attname = 'n';
RESET moltres_ops.ddl_guard;

SELECT command, object, toplevel, outcome, error_code, error, risk, rules, rewrote
  FROM moltres_ops.ddl_log ORDER BY ts;
-- The text is the statement's own, also out of a multi-statement string.
SELECT 1 AS one\; ALTER TABLE guard_t ADD COLUMN m1 int\; ALTER TABLE guard_t ADD COLUMN m2 int;
SELECT statement FROM moltres_ops.ddl_log LIMIT 2;

-- ddl_lock_timeout: a DDL statement runs with it when the session has no
-- lock_timeout (CREATE TABLE AS is DDL and can show the setting it ran
-- under), and the session's value is back afterwards, after errors too.
SET moltres_ops.ddl_lock_timeout = '250ms';
CREATE TEMP TABLE lt_seen AS SELECT current_setting('lock_timeout') AS during;
SELECT during FROM lt_seen;
SHOW lock_timeout;
CREATE TEMP TABLE lt_fail AS SELECT 1 / 0 AS boom;
SHOW lock_timeout;
-- A session lock_timeout wins.
SET lock_timeout = '2s';
CREATE TEMP TABLE lt_own AS SELECT current_setting('lock_timeout') AS during;
SELECT during FROM lt_own;
RESET lock_timeout;
-- Not applied to non-DDL.
SELECT current_setting('lock_timeout') AS in_select;
RESET moltres_ops.ddl_lock_timeout;
CREATE TEMP TABLE lt_off AS SELECT current_setting('lock_timeout') AS during;
SELECT during FROM lt_off;

-- Bad settings are refused and change nothing.
SET moltres_ops.ddl_guard = 'maybe';
SET moltres_ops.ddl_log_buffer = 5;
SHOW moltres_ops.ddl_guard;
SHOW moltres_ops.ddl_lock_timeout;

-- Privacy: a role sees its own rows only, cannot reset the log, and cannot
-- switch the guard off.
CREATE ROLE guard_user;
GRANT CREATE ON SCHEMA public TO guard_user;
SET moltres_ops.ddl_guard = block;
SET ROLE guard_user;
SET moltres_ops.ddl_guard = off;
CREATE TABLE guard_mine (id int);
DROP TABLE guard_mine;
ALTER TABLE guard_mine ADD COLUMN t text;
SELECT count(*) AS visible, bool_and(username = 'guard_user') AS only_mine,
       array_agg(outcome || ':' || command ORDER BY ts) AS what
  FROM moltres_ops.ddl_log;
SELECT moltres_ops.reset_ddl_log();
RESET ROLE;
RESET moltres_ops.ddl_guard;
SELECT count(*) > 10 AS superuser_sees_all FROM moltres_ops.ddl_log;
SELECT moltres_ops.reset_ddl_log();
SELECT count(*) AS after_reset FROM moltres_ops.ddl_log;

DROP TABLE guard_t, guard_small, guard_mine;
REVOKE CREATE ON SCHEMA public FROM guard_user;
DROP ROLE guard_user;
