-- lint(): the advice level, the catalog facts of issue 14 and the rules
-- added with it.  Each case has the statement that fires and one that does
-- not.
SET client_min_messages = warning;
CREATE SCHEMA ll;
SET search_path = ll, public;
CREATE TABLE big (id int PRIMARY KEY, c int, d int, note text)
  WITH (autovacuum_enabled = off);
INSERT INTO big SELECT i, i, i, 'x' FROM generate_series(1, 120000) i;
ANALYZE big;
CREATE TABLE ref (id int PRIMARY KEY);

-- Advice ----------------------------------------------------------------
-- Advice ranks below safe: a statement with advice only is safe, says so
-- in its own row first, and a gate on review or worse passes it.
RESET lock_timeout;
SELECT stmt, risk, rule FROM moltres_ops.lint($$
  CREATE TABLE t1 (id serial PRIMARY KEY, at timestamp, doc json);
  CREATE INDEX CONCURRENTLY t1_at ON t1 (at);
  ALTER TABLE big ADD COLUMN x int;
  ALTER TABLE big ADD COLUMN y int REFERENCES ref$$);
-- the gate a CI job runs: nothing above
SELECT count(*) AS gate_failures FROM moltres_ops.lint($$
  CREATE TABLE t1 (id serial PRIMARY KEY, at timestamp, doc json);
  ALTER TABLE big ADD COLUMN x int$$) WHERE risk IN ('review', 'dangerous');
-- a statement with a real finding keeps its advice, and no safe row
SELECT stmt, risk, rule FROM moltres_ops.lint('ALTER TABLE big ALTER COLUMN id DROP NOT NULL');
SET lock_timeout = '1s';
SET statement_timeout = '5min';

-- Catalog facts -----------------------------------------------------------
-- ALTER COLUMN TYPE re-checks the valid CHECK constraints of the column,
-- not the NOT VALID ones: the server accepts this change although every
-- row violates the NOT VALID constraint.
CREATE TABLE chk (id int, v varchar(10)) WITH (autovacuum_enabled = off);
INSERT INTO chk SELECT i, 'toolong' FROM generate_series(1, 120000) i;
ANALYZE chk;
ALTER TABLE chk ADD CONSTRAINT chk_v_short CHECK (length(v) < 3) NOT VALID;
SELECT stmt, risk, rule, scans FROM moltres_ops.lint('ALTER TABLE chk ALTER COLUMN v TYPE varchar(20)');
BEGIN;
ALTER TABLE chk ALTER COLUMN v TYPE varchar(20);
ROLLBACK;
ALTER TABLE chk ADD CONSTRAINT chk_v_bounded CHECK (length(v) < 100);
SELECT stmt, risk, rule, scans FROM moltres_ops.lint('ALTER TABLE chk ALTER COLUMN v TYPE varchar(20)');

-- ADD COLUMN ... REFERENCES: an explicit DEFAULT NULL is a default, and the
-- server validates the key with a scan; without a default clause it does
-- not.  lint's scans column against the server's own count of scans of big
-- in this transaction.
SELECT stmt, risk, rule, scans FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN r int DEFAULT NULL REFERENCES ref');
SELECT stmt, risk, rule, scans FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN r int REFERENCES ref');
BEGIN;
SELECT seq_scan AS s0 FROM pg_stat_xact_user_tables WHERE relid = 'll.big'::regclass \gset
ALTER TABLE big ADD COLUMN r1 int REFERENCES ref;
SELECT seq_scan - :s0 AS big_scans_without_default
  FROM pg_stat_xact_user_tables WHERE relid = 'll.big'::regclass;
SELECT seq_scan AS s1 FROM pg_stat_xact_user_tables WHERE relid = 'll.big'::regclass \gset
ALTER TABLE big ADD COLUMN r2 int DEFAULT NULL REFERENCES ref;
SELECT seq_scan - :s1 AS big_scans_with_default_null
  FROM pg_stat_xact_user_tables WHERE relid = 'll.big'::regclass;
ROLLBACK;

-- Statements the server would reject are error rows, not safe ...
SELECT stmt, risk, rule, message FROM moltres_ops.lint('UPDATE big SET c = 1, c = 2 WHERE id = 1');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('UPDATE big SET nope = 1 WHERE id = 1');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN x no_such_type');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('CREATE TABLE t1 (a no_such_type)');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('ALTER TABLE big ALTER COLUMN nope SET NOT NULL');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('ALTER TABLE big DROP COLUMN nope');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN z int DEFAULT 1/0');
SELECT stmt, risk, rule, message FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN z int DEFAULT ''abc''');
SELECT stmt, risk, rule, message FROM moltres_ops.lint($$SET lock_timeout = 'banana'$$);
SELECT stmt, risk, rule, message FROM moltres_ops.lint($$SET max_parallel_workers_per_gather = -1$$);
-- ... and what the input itself makes valid is not.
SELECT stmt, risk, rule FROM moltres_ops.lint('UPDATE big SET c = 1, d = 2 WHERE id = 1');
SELECT stmt, risk, rule FROM moltres_ops.lint('UPDATE big SET c = 1 WHERE id = 1');
SELECT stmt, risk, rule FROM moltres_ops.lint($$ALTER TABLE big ADD COLUMN n int;
                                              UPDATE big SET n = 1 WHERE id < 10;
                                              ALTER TABLE big RENAME COLUMN n TO m;
                                              ALTER TABLE big ALTER COLUMN m SET DEFAULT 0$$);
SELECT stmt, risk, rule FROM moltres_ops.lint($$CREATE TYPE pair AS (a int, b int);
                                              ALTER TABLE big ADD COLUMN p pair;
                                              CREATE TABLE t1 (a pair, b big, c serial)$$);
SELECT stmt, risk, rule FROM moltres_ops.lint('ALTER TABLE big DROP COLUMN IF EXISTS nope');
SELECT stmt, risk, rule FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN z int DEFAULT 1/1');
SELECT stmt, risk, rule FROM moltres_ops.lint($$SET lock_timeout = '2s'$$);
SELECT stmt, risk, rule FROM moltres_ops.lint($$SET transaction_isolation = 'serializable'$$);
-- nothing was set by the checks
SHOW lock_timeout;

-- UPDATE or DELETE without WHERE in a WITH clause is unbatched DML too.
SELECT stmt, risk, rule FROM moltres_ops.lint('WITH d AS (DELETE FROM big RETURNING id) SELECT count(*) FROM d');
SELECT stmt, risk, rule FROM moltres_ops.lint('WITH u AS (UPDATE big SET c = 0 RETURNING id) INSERT INTO ref SELECT id FROM u');
SELECT stmt, risk, rule FROM moltres_ops.lint('WITH d AS (DELETE FROM big WHERE id < 10 RETURNING id) SELECT count(*) FROM d');

-- psql meta-commands are skipped with a note; the statements after them
-- are linted.
SELECT stmt, statement, risk, rule FROM moltres_ops.lint($$\set ON_ERROR_STOP on
ALTER TABLE big ALTER COLUMN c TYPE bigint;
\echo done
CREATE INDEX CONCURRENTLY IF NOT EXISTS big_d ON big (d);
SELECT 1 \gset
SELECT 2$$);

-- New rules ---------------------------------------------------------------
-- Turning a timeout off removes a protection.
SELECT stmt, risk, rule FROM moltres_ops.lint('SET statement_timeout = 0');
SELECT stmt, risk, rule FROM moltres_ops.lint('BEGIN; SET LOCAL lock_timeout = ''0''; COMMIT');
SELECT stmt, risk, rule FROM moltres_ops.lint('SET statement_timeout = ''10min''');
SELECT stmt, risk, rule FROM moltres_ops.lint('ALTER ROLE CURRENT_USER SET lock_timeout = 0');
SELECT stmt, risk, rule FROM moltres_ops.lint('ALTER DATABASE contrib_regression SET statement_timeout = ''1min''');
-- So does turning off foreign keys and triggers, or durable commits.
SELECT stmt, risk, rule FROM moltres_ops.lint($$SET session_replication_role = replica;
                                              SET LOCAL synchronous_commit = off;
                                              ALTER ROLE CURRENT_USER SET synchronous_commit = 'local';
                                              SET session_replication_role = origin;
                                              SET synchronous_commit = on$$);
-- CREATE EXTENSION needs privileges and matching versions; a type it
-- brings is not an error later in the input.
SELECT stmt, risk, rule FROM moltres_ops.lint('CREATE EXTENSION IF NOT EXISTS hstore; ALTER TABLE big ADD COLUMN h hstore');
-- ALTER SYSTEM of moltres_ops's own settings is review, any other dangerous.
SELECT stmt, risk, rule FROM moltres_ops.lint($$ALTER SYSTEM SET moltres_ops.ddl_lock_timeout = '2s';
                                              ALTER SYSTEM RESET moltres_ops.log_format;
                                              ALTER SYSTEM SET work_mem = '8MB';
                                              ALTER SYSTEM RESET ALL$$);

-- PostgreSQL 18: generated columns are virtual by default (no rewrite);
-- NOT NULL constraints can be added NOT VALID; CHECK and FOREIGN KEY can be
-- NOT ENFORCED.  Before 18 none of these parses: a syntax_error row.  One
-- expected output for every version.
SELECT q, (SELECT string_agg(risk || coalesce(':' || rule, ''), ',')
             FROM moltres_ops.lint(q)) =
          CASE WHEN current_setting('server_version_num')::int >= 180000
               THEN on18 ELSE 'review:syntax_error' END AS as_expected
  FROM (VALUES
    ('ALTER TABLE big ADD COLUMN v int GENERATED ALWAYS AS (c * 2)', 'safe'),
    ('ALTER TABLE big ADD COLUMN v int GENERATED ALWAYS AS (c * 2) VIRTUAL', 'safe'),
    ('ALTER TABLE big ADD CONSTRAINT big_d_nn NOT NULL d NOT VALID', 'safe'),
    ('ALTER TABLE big ADD CONSTRAINT big_d_nn NOT NULL d', 'dangerous:set_not_null_scan'),
    ('ALTER TABLE big ADD CONSTRAINT big_d_pos CHECK (d > 0) NOT ENFORCED', 'safe'),
    ('ALTER TABLE big ADD CONSTRAINT big_d_fk FOREIGN KEY (d) REFERENCES ref NOT ENFORCED',
     'safe,advice:foreign_key_without_index')) v(q, on18);
-- ... while STORED still rewrites, on every version.
SELECT stmt, risk, rule FROM moltres_ops.lint('ALTER TABLE big ADD COLUMN v int GENERATED ALWAYS AS (c * 2) STORED');

-- The guard's false positives, in lint() ------------------------------------
-- DROP ... IF EXISTS of what this catalog lacks: a no-op here, so not
-- dangerous (the guard lets it pass), but review: it may exist where the
-- migration runs.
SELECT stmt, risk, rule FROM moltres_ops.lint('DROP TABLE IF EXISTS no_such_table; DROP INDEX IF EXISTS no_such_index');
SELECT stmt, risk, rule FROM moltres_ops.lint('DROP TABLE no_such_table');
-- a table created earlier in this transaction is new, as one created
-- earlier in the input
BEGIN;
CREATE TABLE tx (id int);
INSERT INTO tx SELECT generate_series(1, 200000);
SELECT stmt, risk, rule FROM moltres_ops.lint('CREATE INDEX tx_id ON tx (id); ALTER TABLE tx ALTER COLUMN id TYPE bigint; DROP TABLE tx');
ROLLBACK;
-- ... but a table of an earlier transaction that this one only altered is
-- not (its pg_class row is new, the table is not)
BEGIN;
ALTER TABLE big ADD COLUMN q int;
SELECT stmt, risk, rule FROM moltres_ops.lint('CREATE INDEX big_q ON big (q); DROP TABLE big');
ROLLBACK;
-- foreign tables hold no rows here: no rewrite, no scan, no data lost
CREATE FOREIGN DATA WRAPPER ll_fdw;
CREATE SERVER ll_srv FOREIGN DATA WRAPPER ll_fdw;
CREATE FOREIGN TABLE ft (id int, v text) SERVER ll_srv;
SELECT stmt, risk, rule, rewrites, scans FROM moltres_ops.lint($$
  ALTER FOREIGN TABLE ft ALTER COLUMN id TYPE bigint;
  ALTER FOREIGN TABLE ft ADD COLUMN r float8 DEFAULT random();
  ALTER FOREIGN TABLE ft ALTER COLUMN v SET NOT NULL;
  ALTER FOREIGN TABLE ft ADD COLUMN n int NOT NULL;
  DROP FOREIGN TABLE ft;
  UPDATE ft SET v = 'x'$$);

DROP SCHEMA ll CASCADE;
DROP SERVER ll_srv;
DROP FOREIGN DATA WRAPPER ll_fdw;
RESET client_min_messages;
