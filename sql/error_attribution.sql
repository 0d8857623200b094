-- Errors the clients saw are counted where they arose, and a statement is
-- counted as a success only if it succeeded for the client (issue: trust).
-- Runs in the preloaded instance with track = top, track_utility = on.
SELECT moltres_ops.reset();
SELECT moltres_ops.reset_errors();
SET application_name = 'ea_app';

-- Errors at COMMIT: a deferred foreign key, in an implicit transaction and
-- at an explicit COMMIT.  The INSERT returned "INSERT 0 1" to nobody: the
-- client saw the error, so the INSERT is a failure, without rows.
CREATE TABLE ea_parent (id int PRIMARY KEY);
CREATE TABLE ea_child (pid int REFERENCES ea_parent DEFERRABLE INITIALLY DEFERRED);
INSERT INTO ea_child VALUES (1);
BEGIN;
INSERT INTO ea_child VALUES (2);
COMMIT;
SELECT query, calls, errors, rows
  FROM moltres_ops.query_stats
 WHERE query LIKE 'INSERT INTO ea_child%' OR query = 'COMMIT'
 ORDER BY query COLLATE "C";

-- A deferred constraint trigger that raises at commit.
CREATE FUNCTION ea_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
CREATE TABLE ea_t (v int);
CREATE CONSTRAINT TRIGGER ea_trg AFTER INSERT ON ea_t
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ea_refuse();
INSERT INTO ea_t VALUES (1), (2);
SELECT query, calls, errors, rows
  FROM moltres_ops.query_stats WHERE query LIKE 'INSERT INTO ea_t%';

-- Planner-time errors have a query id and count against it: the planner
-- folds 1/0.
SELECT 1 / x FROM (VALUES (0)) v(x);
SELECT query, calls, errors, rows FROM moltres_ops.query_stats
 WHERE query LIKE 'SELECT $1 / x%';

-- Errors before any statement ran (syntax, unknown table) have none, and
-- are counted in errors; so is every error above, by where it arose.
SELEC 1;
SELECT * FROM ea_no_such_table;
SELECT sqlstate, errors, before_execution, during_execution, after_execution,
       last_queryid IS NOT NULL AS has_queryid, application_name,
       username = current_user AS me, datname = current_database() AS here
  FROM moltres_ops.errors
 WHERE application_name = 'ea_app'
 ORDER BY sqlstate COLLATE "C";
SELECT last_message FROM moltres_ops.errors WHERE sqlstate = '42601';

-- Failed executions add no rows; the statement's text is known even when
-- its first run failed.
CREATE TABLE ea_u (id int PRIMARY KEY);
INSERT INTO ea_u VALUES (3);
INSERT INTO ea_u SELECT g FROM generate_series(1, 5) g;
SELECT query, calls, errors, rows FROM moltres_ops.query_stats
 WHERE query LIKE 'INSERT INTO ea_u SELECT%';
LOCK TABLE ea_later;
CREATE TABLE ea_later (v int);
BEGIN;
LOCK TABLE ea_later;
COMMIT;
SELECT query, calls, errors FROM moltres_ops.query_stats
 WHERE query LIKE 'LOCK TABLE ea_later%';

-- A DDL statement's own subcommands (CREATE TABLE's index and foreign key)
-- are part of it: one row, top level.
CREATE TABLE ea_ref (id int PRIMARY KEY, pid int REFERENCES ea_parent);
SELECT toplevel, calls FROM moltres_ops.query_stats
 WHERE query LIKE 'CREATE TABLE ea_ref%';

-- first_seen is never later than last_seen.
SELECT count(*) AS time_travel FROM moltres_ops.query_stats
 WHERE first_seen > last_seen;

-- Only privileged readers see other users' messages.
CREATE ROLE ea_reader;
GRANT USAGE ON SCHEMA moltres_ops TO ea_reader;
GRANT SELECT ON moltres_ops.errors TO ea_reader;
GRANT EXECUTE ON FUNCTION moltres_ops.errors_internal() TO ea_reader;
SET ROLE ea_reader;
SELECT count(*) > 0 AS sees_rows, count(last_message) AS sees_messages
  FROM moltres_ops.errors WHERE application_name = 'ea_app';
RESET ROLE;
REVOKE ALL ON SCHEMA moltres_ops FROM ea_reader;
REVOKE ALL ON moltres_ops.errors FROM ea_reader;
REVOKE ALL ON FUNCTION moltres_ops.errors_internal() FROM ea_reader;
DROP ROLE ea_reader;

DROP TABLE ea_child, ea_parent CASCADE;
DROP TABLE ea_t, ea_u, ea_later, ea_ref;
DROP FUNCTION ea_refuse();
RESET application_name;
