-- lint() and trace() need no shared memory: without
-- shared_preload_libraries they judge and trace as they do preloaded.
CREATE EXTENSION IF NOT EXISTS moltres_ops;
SELECT moltres_ops.preloaded();
SET lock_timeout = '1s';
CREATE TABLE np_t (id int PRIMARY KEY, c int);
SELECT stmt, risk, rule, lock_mode FROM moltres_ops.lint(
  'ALTER TABLE np_t ALTER COLUMN c SET NOT NULL; CREATE INDEX CONCURRENTLY IF NOT EXISTS np_c ON np_t (c); DROP TABLE np_t; SELEC 1');
SHOW moltres_ops.lint_large_table_rows;
SELECT stmt, relation, lock_mode, rewrote, note
  FROM moltres_ops.trace('ALTER TABLE np_t ALTER COLUMN c TYPE bigint')
 WHERE relation IS NULL OR relation::text !~ '^[0-9]+$' ORDER BY relation::text, lock_mode;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'np_t'::regclass AND attname = 'c';
DROP TABLE np_t;
