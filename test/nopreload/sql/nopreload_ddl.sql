-- Without shared_preload_libraries the DDL guard and the DDL lock timeout
-- are inactive (there is no hook): the settings exist and can be set, but
-- dangerous DDL runs without a word; the DDL log raises the standard error.
CREATE EXTENSION IF NOT EXISTS moltres_ops;
SELECT moltres_ops.preloaded();
CREATE TABLE np_ddl_t (id int PRIMARY KEY, c int);
INSERT INTO np_ddl_t SELECT g, g FROM generate_series(1, 50) g;
DROP TABLE np_ddl_t;
SHOW moltres_ops.ddl_guard;
SET moltres_ops.ddl_guard = block;
SET moltres_ops.ddl_lock_timeout = '100ms';
CREATE TABLE np_ddl_t (id int PRIMARY KEY, c int);
INSERT INTO np_ddl_t SELECT g, g FROM generate_series(1, 50) g;
-- lint() rates it dangerous, yet it runs: the guard is not there.
SELECT risk, rule FROM moltres_ops.lint('DROP TABLE np_ddl_t');
CREATE TEMP TABLE np_lt AS SELECT current_setting('lock_timeout') AS during;
SELECT during AS no_ddl_lock_timeout FROM np_lt;
DROP TABLE np_ddl_t;
SELECT to_regclass('np_ddl_t') IS NULL AS dropped;
SHOW moltres_ops.ddl_log_buffer;
\set VERBOSITY default
SELECT * FROM moltres_ops.ddl_log;
SELECT moltres_ops.reset_ddl_log();
