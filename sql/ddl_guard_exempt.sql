-- The DDL guard's false positives (issue 10, item 13): statements that
-- neither lock out readers and writers for long nor lose data must run
-- under ddl_guard = block and draw no WARNING under warn.  A sequence of
-- such DDL under warn, then the same kinds under block, then the ALTER
-- SYSTEM steps of the runbook (the extension's own settings).
SET client_min_messages = warning;
SET moltres_ops.lint_large_table_rows = 10;
SELECT moltres_ops.reset_ddl_log();
CREATE SCHEMA ge;
SET search_path = ge, public;
CREATE FOREIGN DATA WRAPPER ge_fdw;
CREATE SERVER ge_srv FOREIGN DATA WRAPPER ge_fdw;

SET moltres_ops.ddl_guard = warn;
-- DROP ... IF EXISTS of what does not exist
DROP TABLE IF EXISTS ge_missing;
DROP INDEX IF EXISTS ge_missing_idx;
DROP TABLE IF EXISTS ge_missing, ge_missing2;
-- a table created earlier in the same transaction: no one else sees it
BEGIN;
CREATE TABLE ge_t (id int, v text);
INSERT INTO ge_t SELECT g, 'x' FROM generate_series(1, 1000) g;
ANALYZE ge_t;
CREATE INDEX ge_t_v ON ge_t (v);
ALTER TABLE ge_t ALTER COLUMN id TYPE bigint;
ALTER TABLE ge_t ADD COLUMN r float8 DEFAULT random();
DROP INDEX ge_t_v;
TRUNCATE ge_t;
DROP TABLE ge_t;
COMMIT;
-- foreign tables: no rows here to rewrite, scan or lose
CREATE FOREIGN TABLE ge_ft (id int, v text) SERVER ge_srv;
ALTER FOREIGN TABLE ge_ft ALTER COLUMN id TYPE bigint;
ALTER FOREIGN TABLE ge_ft ADD COLUMN r float8 DEFAULT random();
ALTER FOREIGN TABLE ge_ft ALTER COLUMN v SET NOT NULL;
ALTER FOREIGN TABLE ge_ft ADD CONSTRAINT ge_ft_id CHECK (id > 0);
DROP FOREIGN TABLE ge_ft;
-- none of them warned; every one was judged (risk not NULL) and none
-- dangerous
SELECT command, object, outcome, risk, rules FROM moltres_ops.ddl_log ORDER BY ts;

-- The same kinds under block run.
SET moltres_ops.ddl_guard = block;
DROP TABLE IF EXISTS ge_missing;
BEGIN;
CREATE TABLE ge_t (id int);
INSERT INTO ge_t SELECT generate_series(1, 1000);
ANALYZE ge_t;
CREATE INDEX ge_t_id ON ge_t (id);
DROP TABLE ge_t;
COMMIT;
CREATE FOREIGN TABLE ge_ft (id int) SERVER ge_srv;
ALTER FOREIGN TABLE ge_ft ALTER COLUMN id TYPE bigint;
DROP FOREIGN TABLE ge_ft;
-- ... and what is dangerous is still refused: a table of an earlier
-- transaction, dropped
CREATE TABLE ge_kept (id int);
INSERT INTO ge_kept SELECT generate_series(1, 1000);
ANALYZE ge_kept;
\set VERBOSITY terse
DROP TABLE ge_kept;
CREATE INDEX ge_kept_id ON ge_kept (id);
-- ... also after this transaction altered it (its pg_class row is new)
BEGIN;
ALTER TABLE ge_kept ADD COLUMN x int;
CREATE INDEX ge_kept_x ON ge_kept (x);
ROLLBACK;
\set VERBOSITY default

-- The runbook's ALTER SYSTEM steps set the extension's own settings: they
-- run under block; other settings are still refused.
ALTER SYSTEM SET moltres_ops.ddl_lock_timeout = '2s';
ALTER SYSTEM RESET moltres_ops.ddl_lock_timeout;
\set VERBOSITY terse
ALTER SYSTEM SET work_mem = '8MB';
\set VERBOSITY default
SELECT command, outcome, risk, rules FROM moltres_ops.ddl_log
 WHERE command = 'ALTER SYSTEM' ORDER BY ts;

RESET moltres_ops.ddl_guard;
DROP TABLE ge_kept;
DROP SCHEMA ge CASCADE;
DROP SERVER ge_srv;
DROP FOREIGN DATA WRAPPER ge_fdw;
RESET moltres_ops.lint_large_table_rows;
RESET client_min_messages;
