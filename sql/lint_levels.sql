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

DROP SCHEMA ll CASCADE;
RESET client_min_messages;
