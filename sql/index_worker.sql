-- safe_create_index() / safe_drop_index(): CREATE/DROP INDEX CONCURRENTLY
-- run top-level by a background worker, so that they work inside a
-- transaction block; failures come back with the worker's SQLSTATE and a
-- failed build leaves no invalid index behind.
CREATE TABLE idx_t (id int PRIMARY KEY, customer_id int, deleted_at timestamptz);
INSERT INTO idx_t SELECT g, g % 10, NULL FROM generate_series(1, 1000) g;

-- Waits until no job is running and its worker has exited.  A procedure
-- that commits between checks, because a concurrent build waits for every
-- older transaction.
CREATE PROCEDURE idx_wait_jobs() LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..1200 LOOP
        IF NOT EXISTS (SELECT FROM moltres_ops.index_jobs
                        WHERE state IN ('starting', 'running'))
           AND NOT EXISTS (SELECT FROM pg_stat_activity
                            WHERE backend_type = 'moltres_ops index worker') THEN
            RETURN;
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'index jobs did not finish';
END $$;

-- Inside a transaction block: the worker builds the index, and waits for
-- this transaction only at the end, which the NOTICE says.
\set VERBOSITY terse
BEGIN;
SELECT moltres_ops.safe_create_index('idx_t_customer', 'idx_t',
    'USING btree (customer_id) WHERE deleted_at IS NULL') > 0 AS started;
COMMIT;
\set VERBOSITY default
CALL idx_wait_jobs();
SELECT indexrelid::regclass AS index, indisvalid, indisready,
       pg_get_indexdef(indexrelid) AS definition
  FROM pg_index WHERE indrelid = 'idx_t'::regclass ORDER BY 1;
SELECT state, attempts, error_code, error, command, pid > 0 AS had_pid,
       finished_at >= started_at AS timed
  FROM moltres_ops.index_jobs ORDER BY id;

-- Again: the index exists and is valid, so nothing is done.
SELECT moltres_ops.safe_create_index('idx_t_customer', 'idx_t', '(customer_id)') > 0 AS ran;
SELECT state, detail FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;

-- Called from a function, with a multi-column definition.
CREATE FUNCTION idx_in_function() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RETURN moltres_ops.safe_create_index('idx_t_two', 'idx_t', '(customer_id, id)');
END $$;
\set VERBOSITY terse
SELECT idx_in_function() > 0 AS started;
\set VERBOSITY default
CALL idx_wait_jobs();
SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_t_two'::regclass;

-- Names in the definition resolve on the caller's search_path.
CREATE SCHEMA idx_fn;
CREATE FUNCTION idx_fn.neg(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT -$1';
SET search_path = idx_fn, public;
\set VERBOSITY terse
SELECT moltres_ops.safe_create_index('idx_t_neg', 'idx_t', '(neg(customer_id))') > 0 AS started;
\set VERBOSITY default
RESET search_path;
CALL idx_wait_jobs();
SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indexrelid = 'idx_t_neg'::regclass;
DROP SCHEMA idx_fn CASCADE;

-- An index of that name that is invalid (as a crashed build leaves it) is
-- reported, not dropped; a relation of that name that is not an index of
-- the table is reported too.
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_t_two'::regclass;
SELECT moltres_ops.safe_create_index('idx_t_two', 'idx_t', '(customer_id, id)');
SELECT count(*) AS kept FROM pg_index WHERE indexrelid = 'idx_t_two'::regclass;
UPDATE pg_index SET indisvalid = true WHERE indexrelid = 'idx_t_two'::regclass;
CREATE SEQUENCE idx_t_name_taken;
SELECT moltres_ops.safe_create_index('idx_t_name_taken', 'idx_t', '(id)');
DROP SEQUENCE idx_t_name_taken;

-- A definition the server refuses: its error and SQLSTATE, and no index.
SELECT moltres_ops.safe_create_index('idx_t_bad', 'idx_t', '(no_such_column)');
SELECT state, error_code, error FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;
SELECT count(*) AS leftovers FROM pg_class WHERE relname = 'idx_t_bad';

-- A unique index over duplicates fails during the build, which leaves an
-- invalid index; the worker drops it and says so.
SELECT moltres_ops.safe_create_index('idx_t_customer_uq', 'idx_t', '(customer_id)',
                                     is_unique => true);
SELECT state, error_code FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;
SELECT count(*) AS leftovers FROM pg_class WHERE relname = 'idx_t_customer_uq';
-- A unique index over unique data is built.
\set VERBOSITY terse
SELECT moltres_ops.safe_create_index('idx_t_id_uq', 'idx_t', '(id)', is_unique => true) > 0 AS started;
\set VERBOSITY default
CALL idx_wait_jobs();
SELECT indisunique, indisvalid FROM pg_index WHERE indexrelid = 'idx_t_id_uq'::regclass;

-- Definitions that are not a single index definition are refused before
-- any worker starts.
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id); DROP TABLE idx_t');
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id');
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '');
SELECT count(*) AS still_there FROM idx_t;

-- Hostile names are quoted.
CREATE TABLE "idx ""odd"" tab" ("we ird" int);
\set VERBOSITY terse
SELECT moltres_ops.safe_create_index('ix"; DROP TABLE idx_t; --', '"idx ""odd"" tab"',
                                     '("we ird")') > 0 AS started;
\set VERBOSITY default
CALL idx_wait_jobs();
SELECT indexrelid::regclass AS index, indisvalid FROM pg_index
 WHERE indrelid = '"idx ""odd"" tab"'::regclass;
SELECT command FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;
SELECT moltres_ops.safe_drop_index('"ix""; DROP TABLE idx_t; --"') > 0 AS dropped;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = '"idx ""odd"" tab"'::regclass;
SELECT command FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;
DROP TABLE "idx ""odd"" tab";

-- Bad arguments: a clear error, nothing started.
SELECT moltres_ops.safe_create_index(NULL, 'idx_t', '(id)');
SELECT moltres_ops.safe_create_index('idx_x', NULL, '(id)');
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', NULL);
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id)', NULL);
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id)', timeout => NULL);
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id)', timeout => '-1s');
SELECT moltres_ops.safe_create_index('', 'idx_t', '(id)');
SELECT moltres_ops.safe_create_index('idx_x', 'no_such_table', '(id)');
CREATE SEQUENCE idx_seq;
SELECT moltres_ops.safe_create_index('idx_x', 'idx_seq', '(id)');
SELECT moltres_ops.safe_drop_index(NULL);
SELECT moltres_ops.safe_drop_index('idx_t');
SELECT moltres_ops.safe_drop_index('idx_t_two', NULL);
DROP SEQUENCE idx_seq;
-- A table created in the same transaction needs no CONCURRENTLY (and the
-- worker could not see it).
BEGIN;
CREATE TABLE idx_new_t (a int);
SELECT moltres_ops.safe_create_index('idx_x', 'idx_new_t', '(a)');
ROLLBACK;
SELECT count(*) AS no_idx_x FROM pg_class WHERE relname = 'idx_x';

-- Privileges: not executable by PUBLIC; a role granted EXECUTE that does
-- not own the table gets the server's own error from the worker, and sees
-- only its own jobs.
CREATE ROLE mo_idx_plain;
SELECT has_function_privilege('mo_idx_plain',
    'moltres_ops.safe_create_index(name, regclass, text, boolean, interval, boolean)',
    'EXECUTE') AS public_can_create,
       has_function_privilege('mo_idx_plain',
    'moltres_ops.safe_drop_index(regclass, boolean, interval)', 'EXECUTE') AS public_can_drop;
GRANT USAGE ON SCHEMA moltres_ops TO mo_idx_plain;
SET ROLE mo_idx_plain;
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id)');
RESET ROLE;
GRANT EXECUTE ON FUNCTION moltres_ops.safe_create_index(name, regclass, text, boolean, interval, boolean),
                          moltres_ops.safe_drop_index(regclass, boolean, interval) TO mo_idx_plain;
SET ROLE mo_idx_plain;
SELECT moltres_ops.safe_create_index('idx_x', 'idx_t', '(id)');
SELECT moltres_ops.safe_drop_index('idx_t_two');
SELECT username, state, error_code FROM moltres_ops.index_jobs ORDER BY id DESC;
RESET ROLE;
SELECT count(*) AS no_idx_x FROM pg_class WHERE relname = 'idx_x';
SELECT count(*) AS idx_t_two_kept FROM pg_class WHERE relname = 'idx_t_two';
-- On its own table in its own schema the same role builds and drops.
CREATE SCHEMA idx_plain AUTHORIZATION mo_idx_plain;
CREATE TABLE idx_plain.t (a int);
ALTER TABLE idx_plain.t OWNER TO mo_idx_plain;
SET ROLE mo_idx_plain;
\set VERBOSITY terse
SELECT moltres_ops.safe_create_index('idx_plain_a', 'idx_plain.t', '(a)') > 0 AS started;
\set VERBOSITY default
RESET ROLE;
CALL idx_wait_jobs();
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, i.indisvalid
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'idx_plain.t'::regclass;
SELECT username, state FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;
SET ROLE mo_idx_plain;
SELECT moltres_ops.safe_drop_index('idx_plain.idx_plain_a') > 0 AS dropped;
RESET ROLE;
SELECT count(*) AS idx_plain_a_gone FROM pg_class WHERE relname = 'idx_plain_a';
DROP SCHEMA idx_plain CASCADE;

-- Drop: synchronous when this transaction holds nothing on the table.
SELECT moltres_ops.safe_drop_index('idx_t_two') > 0 AS dropped;
SELECT count(*) AS idx_t_two_gone FROM pg_class WHERE relname = 'idx_t_two';
-- In a transaction that read the table, the drop waits for it to end.
\set VERBOSITY terse
BEGIN;
SELECT count(*) FROM idx_t;
SELECT moltres_ops.safe_drop_index('idx_t_customer') > 0 AS started;
COMMIT;
\set VERBOSITY default
CALL idx_wait_jobs();
SELECT count(*) AS idx_t_customer_gone FROM pg_class WHERE relname = 'idx_t_customer';

-- wait => false returns the worker's pid at once.
SELECT moltres_ops.safe_create_index('idx_t_deleted', 'idx_t', '(deleted_at)',
                                     wait => false) > 0 AS pid_returned;
CALL idx_wait_jobs();
SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_t_deleted'::regclass;
SELECT state FROM moltres_ops.index_jobs ORDER BY id DESC LIMIT 1;

-- No job is left unfinished.
SELECT count(*) AS unfinished FROM moltres_ops.index_jobs WHERE state NOT IN ('done', 'failed');

DROP FUNCTION idx_in_function();
DROP PROCEDURE idx_wait_jobs();
DROP TABLE idx_t;
REVOKE USAGE ON SCHEMA moltres_ops FROM mo_idx_plain;
DROP OWNED BY mo_idx_plain;
DROP ROLE mo_idx_plain;
