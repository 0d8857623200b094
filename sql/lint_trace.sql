-- trace(): runs a migration for real inside a subtransaction, reports the
-- relation locks each statement took (the same ones pg_locks shows) and the
-- relations it rewrote, then rolls everything back.
SET client_min_messages = warning;
CREATE SCHEMA tr;
SET search_path = tr, public;
CREATE TABLE acct (id int PRIMARY KEY, n int, note varchar(20));
INSERT INTO acct SELECT i, i, 'x' FROM generate_series(1, 1000) i;
CREATE INDEX acct_n ON acct (n);

-- Settings and their defaults.
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'moltres_ops.trace%' ORDER BY name;

-- A snapshot of everything the statements below could change.
CREATE FUNCTION snap() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(format('%s/%s/%s/%s', c.relname, c.relfilenode, c.relkind,
                           (SELECT string_agg(a.attname || ':' || a.atttypid::regtype || ':' || a.attnotnull, ',' ORDER BY a.attnum)
                              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)),
                    ';' ORDER BY c.relname)
         || '|' || (SELECT count(*) FROM pg_constraint WHERE conrelid = 'tr.acct'::regclass)
         || '|' || (SELECT sum(n) FROM tr.acct)
    FROM pg_class c WHERE c.relnamespace = 'tr'::regnamespace
$$;
-- What trace reports, and what pg_locks shows for the same statement run
-- by hand in a transaction, on the relations that existed before (a rewrite's
-- transient heap and a new index get new OIDs each time).
CREATE TABLE pre AS SELECT oid AS relid, relname FROM pg_class
 WHERE relnamespace = 'tr'::regnamespace;
CREATE FUNCTION traced(q text) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(p.relname || ':' || t.lock_mode, ' ' ORDER BY p.relname, t.lock_mode)
    FROM moltres_ops.trace(q) t JOIN tr.pre p ON p.relid = t.relation::oid
$$;
CREATE FUNCTION my_locks() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(p.relname || ':' || l.mode, ' ' ORDER BY p.relname, l.mode)
    FROM pg_locks l JOIN tr.pre p ON p.relid = l.relation
   WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
$$;
SELECT snap() AS before \gset

BEGIN;
ALTER TABLE acct ALTER COLUMN n TYPE bigint;
SELECT my_locks() AS manual \gset
ROLLBACK;
SELECT traced('ALTER TABLE acct ALTER COLUMN n TYPE bigint') AS traced, :'manual' AS manual;
SELECT traced('ALTER TABLE acct ALTER COLUMN n TYPE bigint') = :'manual' AS same_locks;

BEGIN;
CREATE INDEX acct_note ON acct (note);
SELECT my_locks() AS manual \gset
ROLLBACK;
SELECT traced('CREATE INDEX acct_note ON acct (note)') = :'manual' AS same_locks,
       traced('CREATE INDEX acct_note ON acct (note)') LIKE '%acct:ShareLock%' AS share_lock;

BEGIN;
ALTER TABLE acct ADD CONSTRAINT acct_n_pos CHECK (n > 0) NOT VALID;
SELECT my_locks() AS manual \gset
ROLLBACK;
SELECT traced('ALTER TABLE acct ADD CONSTRAINT acct_n_pos CHECK (n > 0) NOT VALID') = :'manual' AS same_locks;

-- Rewrites: a type change that is not binary coercible rewrites the table
-- and its indexes; widening varchar does not.
SELECT stmt, relation, lock_mode, rewrote, duration_ms >= 0 AS timed, note
  FROM moltres_ops.trace($$
    ALTER TABLE acct ALTER COLUMN n TYPE bigint;
    ALTER TABLE acct ALTER COLUMN note TYPE varchar(40);
    UPDATE acct SET n = n + 1 WHERE id = 1;
    ALTER TABLE acct ALTER COLUMN n TYPE int;
    SELECT 1
  $$) WHERE relation IS NULL OR relation::text !~ '^[0-9]+$'
 ORDER BY stmt, relation::text, lock_mode;

-- Later statements see what earlier ones did; what cannot run in a
-- transaction block is reported, not run; an error stops only its own
-- statement.
SELECT stmt, statement, CASE WHEN relation::text ~ '^[0-9]+$' THEN 'new' ELSE relation::text END AS relation,
       lock_mode, rewrote, note
  FROM moltres_ops.trace($$
    CREATE TABLE tnew (id int);
    CREATE INDEX tnew_id ON tnew (id);
    CREATE INDEX CONCURRENTLY acct_note2 ON acct (note);
    VACUUM acct;
    BEGIN;
    ALTER TABLE nosuch ADD COLUMN x int;
    ALTR TABLE acct;
    ALTER SYSTEM SET work_mem = '8MB';
    DELETE FROM acct;
    COMMIT
  $$) ORDER BY stmt, relation::text, lock_mode;

-- Nothing persisted.
SELECT snap() = :'before' AS unchanged;
SELECT count(*) AS acct_rows FROM acct;
SELECT count(*) AS leftover FROM pg_class WHERE relname IN ('tnew', 'tnew_id', 'acct_note', 'acct_note2');
SELECT count(*) AS locks_left FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation = 'tr.acct'::regclass;

-- Timeouts: a statement that runs too long is cancelled and reported, and
-- the caller's transaction carries on.
SET moltres_ops.trace_statement_timeout = 50;
SELECT stmt, note FROM moltres_ops.trace('SELECT pg_sleep(5)');
RESET moltres_ops.trace_statement_timeout;
-- The caller's own statement_timeout still ends the call when it comes
-- first: an error for the caller, not a row of trace().  (Terse: wherever
-- the timeout lands, the error is the same.)
\set VERBOSITY terse
SET statement_timeout = '1s';
SELECT stmt, note FROM moltres_ops.trace('SELECT pg_sleep(5)');
RESET statement_timeout;
-- When trace's comes first, the caller's is given back: the rest of the
-- statement is still cancelled at the caller's deadline.
SET statement_timeout = '300ms';
SET moltres_ops.trace_statement_timeout = 50;
SELECT (SELECT count(*) FROM moltres_ops.trace('SELECT pg_sleep(5)')) AS n,
       pg_sleep(2);
RESET moltres_ops.trace_statement_timeout;
RESET statement_timeout;
\set VERBOSITY default
BEGIN;
SAVEPOINT s;
SELECT stmt, note FROM moltres_ops.trace('DROP TABLE acct');
SELECT count(*) AS still_there FROM acct;
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- trace() does not leave its lock_timeout behind.
SHOW lock_timeout;

-- Bad input.
SELECT count(*) FROM moltres_ops.trace(NULL);
SELECT count(*) FROM moltres_ops.trace('');
SELECT stmt, note FROM moltres_ops.trace('SELECT (');

-- Not for PUBLIC; runs with the caller's privileges.
CREATE ROLE mo_trace_user;
GRANT USAGE ON SCHEMA tr TO mo_trace_user;
SET ROLE mo_trace_user;
SELECT count(*) FROM moltres_ops.trace('SELECT 1');
SELECT count(*) > 0 AS lint_is_public FROM moltres_ops.lint('SELECT 1');
RESET ROLE;
GRANT EXECUTE ON FUNCTION moltres_ops.trace(text) TO mo_trace_user;
SET ROLE mo_trace_user;
SELECT stmt, note FROM moltres_ops.trace('ALTER TABLE tr.acct ADD COLUMN x int');
RESET ROLE;
SELECT snap() = :'before' AS unchanged;

DROP OWNED BY mo_trace_user;
DROP ROLE mo_trace_user;
DROP SCHEMA tr CASCADE;
RESET client_min_messages;
