-- Safe-migration procedures (sql/install/80_safe.sql): each one's success
-- path checked in the catalogs, bad input, hostile identifiers and
-- fragments, privileges, and backfill batching and resume.  pg_regress runs
-- every statement in autocommit, so CALL is at top level and the
-- procedures may COMMIT.  Lock contention is in test/specs/safe_lock_retry
-- and test/t/080_safe.pl.
SET datestyle = 'ISO, YMD';
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
\set VERBOSITY terse
\set SHOW_CONTEXT never
TRUNCATE moltres_ops.backfills;

-- A table's constraints as the catalog has them.
CREATE FUNCTION safe_cons(rel regclass)
RETURNS TABLE (conname name, contype "char", convalidated boolean, def text)
LANGUAGE sql AS $$
    SELECT conname, contype, convalidated, pg_get_constraintdef(oid)
      FROM pg_constraint WHERE conrelid = rel AND contype IN ('c', 'f')
     ORDER BY conname
$$;

---------------------------------------------------------------------------
-- with_lock_retry
---------------------------------------------------------------------------
-- runs the SQL (several statements too) in its own committed transaction
CALL moltres_ops.with_lock_retry('CREATE TABLE safe_w (id int PRIMARY KEY, v int); INSERT INTO safe_w SELECT g, g FROM generate_series(1, 10) g');
SELECT count(*) FROM safe_w;
-- the lock_timeout it sets is local to that transaction
CALL moltres_ops.with_lock_retry($$SELECT set_config('safe.seen', current_setting('lock_timeout'), false)$$,
                                 lock_timeout => '250ms');
SELECT current_setting('safe.seen') AS lock_timeout_inside, current_setting('lock_timeout') AS lock_timeout_after;
-- an error that is not a lock timeout is the server's own, at once
\set VERBOSITY default
CALL moltres_ops.with_lock_retry('INSERT INTO safe_w VALUES (1, 1)');
\set VERBOSITY terse
CALL moltres_ops.with_lock_retry('SELECT 1 / 0');
-- bad arguments
CALL moltres_ops.with_lock_retry(NULL);
CALL moltres_ops.with_lock_retry('  ');
CALL moltres_ops.with_lock_retry('SELECT 1', lock_timeout => '0');
CALL moltres_ops.with_lock_retry('SELECT 1', lock_timeout => NULL);
CALL moltres_ops.with_lock_retry('SELECT 1', max_attempts => 0);
CALL moltres_ops.with_lock_retry('SELECT 1', max_pause => '-1s');
-- inside a transaction block, or from a function: refused before it runs
\set VERBOSITY default
BEGIN;
CALL moltres_ops.with_lock_retry('CREATE TABLE safe_in_tx (i int)');
ROLLBACK;
\set VERBOSITY terse
CREATE FUNCTION safe_call_from_function() RETURNS void LANGUAGE plpgsql AS $$
BEGIN CALL moltres_ops.with_lock_retry('CREATE TABLE safe_in_fn (i int)'); END $$;
SELECT safe_call_from_function();
SELECT to_regclass('safe_in_tx') IS NULL AS no_tx_table, to_regclass('safe_in_fn') IS NULL AS no_fn_table;
-- the backoff schedule: 100 ms doubling, capped, jittered by [0.75, 1.25)
SELECT n, min(p) >= 0.075 * 2 ^ (n - 1) AND max(p) < 0.125 * 2 ^ (n - 1) AS doubling
  FROM (SELECT n, moltres_ops._lock_retry_pause(n, '10s') AS p
          FROM generate_series(1, 6) n, generate_series(1, 50)) s
 GROUP BY n ORDER BY n;
SELECT max(moltres_ops._lock_retry_pause(20, '10s')) < 12.5 AS capped,
       min(moltres_ops._lock_retry_pause(20, '10s')) >= 7.5 AS at_the_cap
  FROM generate_series(1, 50);

---------------------------------------------------------------------------
-- safe_set_not_null
---------------------------------------------------------------------------
CREATE TABLE safe_nn (id int PRIMARY KEY, a int, b text);
INSERT INTO safe_nn SELECT g, g, 'x' FROM generate_series(1, 100) g;
-- SET NOT NULL is proved by the validated CHECK: no scan under the
-- ACCESS EXCLUSIVE lock (the scan was VALIDATE's)
SET client_min_messages = debug1;
CALL moltres_ops.safe_set_not_null('safe_nn', 'a');
RESET client_min_messages;
SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'safe_nn'::regclass AND attnum > 0 ORDER BY attnum;
SELECT * FROM safe_cons('safe_nn');    -- the helper CHECK is gone
-- already NOT NULL: nothing to do
CALL moltres_ops.safe_set_not_null('safe_nn', 'a');
-- NULLs present: VALIDATE fails, the NOT VALID CHECK is dropped again
UPDATE safe_nn SET b = NULL WHERE id = 42;
\set VERBOSITY default
CALL moltres_ops.safe_set_not_null('safe_nn', 'b');
\set VERBOSITY terse
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'safe_nn'::regclass AND attname = 'b';
SELECT * FROM safe_cons('safe_nn');
INSERT INTO safe_nn VALUES (101, 101, NULL);   -- new NULLs still allowed
-- an interrupted run left its CHECK NOT VALID: the next CALL carries on
UPDATE safe_nn SET b = 'y' WHERE b IS NULL;
ALTER TABLE safe_nn ADD CONSTRAINT moltres_ops_not_null_3 CHECK (b IS NOT NULL) NOT VALID;
CALL moltres_ops.safe_set_not_null('safe_nn', 'b');
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'safe_nn'::regclass AND attname = 'b';
SELECT * FROM safe_cons('safe_nn');
-- a constraint of that name that is not the helper: refused
ALTER TABLE safe_nn ADD COLUMN c int;
ALTER TABLE safe_nn ADD CONSTRAINT moltres_ops_not_null_4 CHECK (a > 0);
CALL moltres_ops.safe_set_not_null('safe_nn', 'c');
ALTER TABLE safe_nn DROP CONSTRAINT moltres_ops_not_null_4;
-- bad arguments
CALL moltres_ops.safe_set_not_null(NULL, 'a');
CALL moltres_ops.safe_set_not_null('safe_nn', NULL);
CALL moltres_ops.safe_set_not_null('safe_nn', 'nope');
CALL moltres_ops.safe_set_not_null('safe_nn', 'ctid');
CALL moltres_ops.safe_set_not_null('safe_no_such_table', 'a');
CALL moltres_ops.safe_set_not_null(4000000000::oid::regclass, 'a');
CREATE VIEW safe_v AS SELECT * FROM safe_nn;
CALL moltres_ops.safe_set_not_null('safe_v', 'a');
CALL moltres_ops.safe_set_not_null('safe_nn', 'c', lock_timeout => '-1s');
BEGIN;
CALL moltres_ops.safe_set_not_null('safe_nn', 'c');
ROLLBACK;
SELECT attnotnull FROM pg_attribute WHERE attrelid = 'safe_nn'::regclass AND attname = 'c';

---------------------------------------------------------------------------
-- safe_add_check
---------------------------------------------------------------------------
CALL moltres_ops.safe_add_check('safe_nn', 'a_positive', 'a > 0');
SELECT * FROM safe_cons('safe_nn');
-- again: valid already, nothing to do
CALL moltres_ops.safe_add_check('safe_nn', 'a_positive', 'a > 0');
-- rows violate it: the server's error, and the constraint is gone again
\set VERBOSITY default
CALL moltres_ops.safe_add_check('safe_nn', 'a_small', 'a < 50');
\set VERBOSITY terse
SELECT * FROM safe_cons('safe_nn');
-- an existing NOT VALID CHECK of that name is validated
ALTER TABLE safe_nn ADD CONSTRAINT a_big_enough CHECK (a > -1) NOT VALID;
CALL moltres_ops.safe_add_check('safe_nn', 'a_big_enough', 'a > -1');
SELECT * FROM safe_cons('safe_nn') WHERE conname = 'a_big_enough';
-- the expression is SQL executed as given, but it cannot escape its
-- parentheses: not VALIDATE at once, not another subcommand or statement
CALL moltres_ops.safe_add_check('safe_nn', 'hostile1', 'true) NOT VALID, DROP COLUMN b, ADD CHECK (true');
CALL moltres_ops.safe_add_check('safe_nn', 'hostile2', 'true); DROP TABLE safe_w; --');
CALL moltres_ops.safe_add_check('safe_nn', 'hostile3', 'true; DROP TABLE safe_w');
CALL moltres_ops.safe_add_check('safe_nn', 'hostile4', 'a > (0');
CALL moltres_ops.safe_add_check('safe_nn', 'hostile5', 'a > ''0');
CALL moltres_ops.safe_add_check('safe_nn', 'hostile6', 'a[1] > 0]');
-- a trailing comment cannot comment out NOT VALID; a semicolon or a
-- parenthesis inside a literal or a comment is harmless
CALL moltres_ops.safe_add_check('safe_nn', 'trailing_comment', 'a > 0 --');
CALL moltres_ops.safe_add_check('safe_nn', 'b_not_semicolon', E'b <> \';\' /* ) */ -- not ; ( ) code');
SELECT * FROM safe_cons('safe_nn') WHERE conname LIKE 'hostile%' OR conname IN ('trailing_comment', 'b_not_semicolon');
SELECT count(*) AS columns_left FROM pg_attribute WHERE attrelid = 'safe_nn'::regclass AND attnum > 0 AND NOT attisdropped;
SELECT to_regclass('safe_w') IS NOT NULL AS safe_w_still_there;
-- bad arguments
CALL moltres_ops.safe_add_check('safe_nn', NULL, 'a > 0');
CALL moltres_ops.safe_add_check('safe_nn', '', 'a > 0');
CALL moltres_ops.safe_add_check('safe_nn', 'x', NULL);
CALL moltres_ops.safe_add_check('safe_nn', 'x', ' ');
CALL moltres_ops.safe_add_check('safe_nn', 'x', 'nope > 0');
CALL moltres_ops.safe_add_check('safe_nn', 'safe_nn_pkey', 'a > 0');
SELECT * FROM safe_cons('safe_nn') WHERE conname = 'x';

---------------------------------------------------------------------------
-- safe_add_foreign_key, with hostile identifiers
---------------------------------------------------------------------------
CREATE SCHEMA "s; DROP TABLE safe_w; --";
CREATE TABLE "s; DROP TABLE safe_w; --"."a""b; DROP TABLE x" (id int PRIMARY KEY);
INSERT INTO "s; DROP TABLE safe_w; --"."a""b; DROP TABLE x" SELECT generate_series(1, 10);
CREATE TABLE safe_child (id int PRIMARY KEY, "p""id; --" int, q int);
INSERT INTO safe_child SELECT g, g % 10 + 1, g FROM generate_series(1, 50) g;
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['p"id; --'],
    '"s; DROP TABLE safe_w; --"."a""b; DROP TABLE x"', ARRAY['id'], on_delete => 'cascade');
SELECT conname, contype, convalidated, confdeltype, confrelid::regclass
  FROM pg_constraint WHERE conrelid = 'safe_child'::regclass AND contype = 'f';
-- again: nothing to do (the same definition, found in the catalog)
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['p"id; --'],
    '"s; DROP TABLE safe_w; --"."a""b; DROP TABLE x"', ARRAY['id'], on_delete => 'CASCADE');
-- rows without a referenced row: the server's error, the key is gone again
\set VERBOSITY default
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['id'], 'q_fk');
\set VERBOSITY terse
SELECT conname FROM pg_constraint WHERE conrelid = 'safe_child'::regclass AND conname = 'q_fk';
DELETE FROM safe_child WHERE q > 10;
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['id'], 'q_fk', 'SET  null');
SELECT conname, convalidated, confdeltype FROM pg_constraint WHERE conrelid = 'safe_child'::regclass AND conname = 'q_fk';
-- bad arguments
CALL moltres_ops.safe_add_foreign_key('safe_child', NULL, 'safe_w', ARRAY['id']);
CALL moltres_ops.safe_add_foreign_key('safe_child', '{}', 'safe_w', ARRAY['id']);
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q', NULL], 'safe_w', ARRAY['id', 'v']);
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['id', 'v']);
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], NULL, ARRAY['id']);
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['nope'], 'safe_w', ARRAY['id']);
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['nope']);
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['id'], on_delete => 'CASCADE; DROP TABLE safe_w');
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['id'], '');
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['q'], 'safe_w', ARRAY['v'], 'q_to_v');
SELECT count(*) AS foreign_keys FROM pg_constraint WHERE conrelid = 'safe_child'::regclass AND contype = 'f';
-- a constraint of the given name that is another foreign key (here: other
-- columns): refused with both definitions, nothing changed
\set VERBOSITY default
CALL moltres_ops.safe_add_foreign_key('safe_child', ARRAY['id'], 'safe_w', ARRAY['id'], 'q_fk');
\set VERBOSITY terse
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'safe_child'::regclass AND conname = 'q_fk';
-- the default name is the server's own (a long table name is shortened
-- PostgreSQL's way, not cut at 63 bytes), and two different foreign keys
-- whose default names would collide are both added: the second is not
-- taken for the first, and binds its rows
CREATE TABLE safe_fk_parent_a (id int PRIMARY KEY);
CREATE TABLE safe_fk_parent_b (id int PRIMARY KEY);
INSERT INTO safe_fk_parent_a VALUES (1);
INSERT INTO safe_fk_parent_b VALUES (1);
CREATE TABLE safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql (
    id int PRIMARY KEY,
    reference_to_parent_a_with_a_long_name int,
    reference_to_parent_a_with_a_long_name_too int);
INSERT INTO safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql VALUES (1, 1, 1);
-- what ALTER TABLE ... ADD FOREIGN KEY without a name would call them
BEGIN;
ALTER TABLE safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql
    ADD FOREIGN KEY (reference_to_parent_a_with_a_long_name) REFERENCES safe_fk_parent_a (id);
ALTER TABLE safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql
    ADD FOREIGN KEY (reference_to_parent_a_with_a_long_name_too) REFERENCES safe_fk_parent_b (id);
CREATE TEMP TABLE safe_fk_by_hand AS
SELECT conname, confrelid::regclass FROM pg_constraint
 WHERE conrelid = 'safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql'::regclass AND contype = 'f';
COMMIT;
DO $$
DECLARE c name;
BEGIN
    FOR c IN SELECT conname FROM safe_fk_by_hand LOOP
        EXECUTE format('ALTER TABLE safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
CALL moltres_ops.safe_add_foreign_key('safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql',
    ARRAY['reference_to_parent_a_with_a_long_name'], 'safe_fk_parent_a', ARRAY['id']);
CALL moltres_ops.safe_add_foreign_key('safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql',
    ARRAY['reference_to_parent_a_with_a_long_name_too'], 'safe_fk_parent_b', ARRAY['id']);
-- the same one again, found by its definition: nothing to do
CALL moltres_ops.safe_add_foreign_key('safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql',
    ARRAY['reference_to_parent_a_with_a_long_name_too'], 'safe_fk_parent_b', ARRAY['id']);
SELECT c.conname, c.convalidated, c.confrelid::regclass,
       c.conname IN (SELECT h.conname FROM safe_fk_by_hand h WHERE h.confrelid = c.confrelid) AS server_name
  FROM pg_constraint c
 WHERE c.conrelid = 'safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql'::regclass
   AND c.contype = 'f'
 ORDER BY 1;
INSERT INTO safe_fk_a_table_name_long_enough_to_be_shortened_by_postgresql VALUES (2, 1, 42);

---------------------------------------------------------------------------
-- safe_add_column
---------------------------------------------------------------------------
CREATE TABLE safe_ac (id bigint PRIMARY KEY, v int);
INSERT INTO safe_ac SELECT g, g FROM generate_series(1, 2500) g;
SELECT relfilenode AS ac_file FROM pg_class WHERE oid = 'safe_ac'::regclass \gset
-- no default: a plain ADD COLUMN
CALL moltres_ops.safe_add_column('safe_ac', 'plain', 'text');
-- a non-volatile default: stored in the catalog, read by existing rows;
-- with NOT NULL in the same ALTER, which the stored default proves (no
-- "verifying table" scan)
SET client_min_messages = debug1;
CALL moltres_ops.safe_add_column('safe_ac', 'flag', 'boolean', 'false', not_null => true);
RESET client_min_messages;
-- a non-volatile default that is NULL cannot make a NOT NULL column
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'int', 'NULL::int + 1', not_null => true);
-- a volatile default: SET DEFAULT for new rows in the same ALTER, then a
-- batched backfill of existing rows, then NOT NULL the safe way
CALL moltres_ops.safe_add_column('safe_ac', 'token', 'text', 'md5(random()::text)', not_null => true,
                                 batch_size => 1000);
SELECT relfilenode = :ac_file AS never_rewritten FROM pg_class WHERE oid = 'safe_ac'::regclass;
SELECT attname, format_type(atttypid, atttypmod), attnotnull, atthasmissing,
       pg_get_expr(d.adbin, d.adrelid) AS default_expr
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = 'safe_ac'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT count(*), count(plain), count(*) FILTER (WHERE NOT flag) AS flag_false,
       count(DISTINCT token) AS distinct_tokens FROM safe_ac;
SELECT * FROM safe_cons('safe_ac');
SELECT relation, set_clause, where_clause, state, rows_done, batches, last_key, error
  FROM moltres_ops.backfill_progress WHERE relation = 'public.safe_ac';
-- a new row gets its own default
INSERT INTO safe_ac (id, v) VALUES (2501, 2501);
SELECT token IS NOT NULL AND token <> (SELECT token FROM safe_ac WHERE id = 1) AS own_token FROM safe_ac WHERE id = 2501;
-- the column exists with the same type: carries on (here: nothing left)
CALL moltres_ops.safe_add_column('safe_ac', 'flag', 'bool', 'false', not_null => true);
-- refused
CALL moltres_ops.safe_add_column('safe_ac', 'flag', 'int');
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'int', not_null => true);
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'int; DROP TABLE safe_w');
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'no_such_type');
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'int', '1) , ADD COLUMN y int DEFAULT (2');
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'int', 'nope');
CALL moltres_ops.safe_add_column('safe_ac', 'x', 'int', '1', not_null => NULL);
CALL moltres_ops.safe_add_column('safe_ac', NULL, 'int');
CALL moltres_ops.safe_add_column('safe_ac', 'x', NULL);
CALL moltres_ops.safe_add_column(NULL, 'x', 'int');
CREATE TABLE safe_nopk (a int);
\set VERBOSITY default
CALL moltres_ops.safe_add_column('safe_nopk', 'x', 'float8', 'random()');
\set VERBOSITY terse
SELECT attname FROM pg_attribute WHERE attrelid IN ('safe_ac'::regclass, 'safe_nopk'::regclass)
   AND attname IN ('x', 'y') AND NOT attisdropped;
-- hostile column name
CALL moltres_ops.safe_add_column('safe_ac', 'c"; DROP TABLE safe_w; --', 'int', '0');
SELECT attname FROM pg_attribute WHERE attrelid = 'safe_ac'::regclass AND attname LIKE 'c"%';

---------------------------------------------------------------------------
-- backfill: batches, failure, resume
---------------------------------------------------------------------------
CREATE TABLE safe_bf (id int PRIMARY KEY, v int, w int, touched int NOT NULL DEFAULT 0);
INSERT INTO safe_bf SELECT g, g, NULL FROM generate_series(1, 2500) g;
UPDATE safe_bf SET v = 0 WHERE id = 2200;
-- the batch that holds id 2200 fails: two batches stay committed
\set VERBOSITY default
CALL moltres_ops.backfill('safe_bf', 'w = 100000 / v, touched = touched + 1', 'w IS NULL', batch_size => 1000);
\set VERBOSITY terse
SELECT state, rows_done, batches, last_key, error FROM moltres_ops.backfill_progress WHERE relation = 'public.safe_bf';
SELECT count(*) FILTER (WHERE w IS NOT NULL) AS filled, max(id) FILTER (WHERE w IS NOT NULL) AS up_to FROM safe_bf;
-- fixed, and called again: continues after key 2000; no row twice
UPDATE safe_bf SET v = 1 WHERE id = 2200;
CALL moltres_ops.backfill('safe_bf', 'w = 100000 / v, touched = touched + 1', 'w IS NULL', batch_size => 1000);
SELECT state, rows_done, batches, last_key, error, finished_at >= started_at AS finished
  FROM moltres_ops.backfill_progress WHERE relation = 'public.safe_bf';
SELECT count(*) FILTER (WHERE w IS NOT NULL) AS filled, min(touched), max(touched) FROM safe_bf;
-- finished: nothing to do; restart runs it again (no NULLs left: 0 rows)
CALL moltres_ops.backfill('safe_bf', 'w = 100000 / v, touched = touched + 1', 'w IS NULL', batch_size => 1000);
CALL moltres_ops.backfill('safe_bf', 'w = 100000 / v, touched = touched + 1', 'w IS NULL', restart => true);
-- without a WHERE, every row, in batches of 700
CALL moltres_ops.backfill('safe_bf', 'touched = touched + 1', batch_size => 700);
SELECT min(touched), max(touched) FROM safe_bf;
SELECT set_clause, where_clause, state, rows_done, batches, last_key, batch_size
  FROM moltres_ops.backfills WHERE relid = 'safe_bf'::regclass ORDER BY id;
-- a running row whose backend is gone shows as interrupted, and resumes;
-- one whose backend is alive (another session) is refused
CALL moltres_ops.backfill('safe_bf', 'v = v', 'id > 2400', batch_size => 50);
UPDATE moltres_ops.backfills SET state = 'running', pid = 0, last_key = '2450', rows_done = 50
 WHERE relid = 'safe_bf'::regclass AND set_clause = 'v = v';
SELECT state, last_key FROM moltres_ops.backfill_progress WHERE set_clause = 'v = v';
CALL moltres_ops.backfill('safe_bf', 'v = v', 'id > 2400', batch_size => 50);
SELECT state, rows_done, batches FROM moltres_ops.backfill_progress WHERE set_clause = 'v = v';
UPDATE moltres_ops.backfills SET state = 'running',
       pid = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer')
 WHERE relid = 'safe_bf'::regclass AND set_clause = 'v = v';
SELECT state FROM moltres_ops.backfill_progress WHERE set_clause = 'v = v';
CALL moltres_ops.backfill('safe_bf', 'v = v', 'id > 2400', batch_size => 50);
DELETE FROM moltres_ops.backfills WHERE set_clause = 'v = v';
-- refused: fragments that escape, a SET with FROM, no usable key, bad numbers
CALL moltres_ops.backfill('safe_bf', 'w = 1', 'true) OR (true');
CALL moltres_ops.backfill('safe_bf', 'w = 1; DROP TABLE safe_w');
CALL moltres_ops.backfill('safe_bf', 'w = s.v FROM safe_w s');
CALL moltres_ops.backfill('safe_bf', 'w = 1 RETURNING id');
CALL moltres_ops.backfill('safe_bf', 'w = 1 WHERE true');
CALL moltres_ops.backfill('safe_bf', 'nope = 1');
-- a SET list that changes the primary key would walk ahead of its own
-- batches for ever: refused before anything is written, however it is
-- spelled (quoted, in a multi-column assignment), also through a generated
-- key column
SET statement_timeout = '60s';  -- without the check these would never end
\set VERBOSITY default
CALL moltres_ops.backfill('safe_bf', 'w = 1, id = id + 1000');
\set VERBOSITY terse
CALL moltres_ops.backfill('safe_bf', '"id" = id + 1000');
CALL moltres_ops.backfill('safe_bf', '(w, id) = (1, id * 2)', 'id < 10');
CREATE TABLE safe_genpk (a int NOT NULL, k int GENERATED ALWAYS AS (a * 10) STORED PRIMARY KEY, b int);
INSERT INTO safe_genpk (a) SELECT generate_series(1, 20);
CALL moltres_ops.backfill('safe_genpk', 'a = a + 100');
RESET statement_timeout;
CALL moltres_ops.backfill('safe_genpk', 'b = a');
SELECT count(*) FILTER (WHERE b = a) AS filled, max(k) AS max_key FROM safe_genpk;
SELECT min(id), max(id), count(*) FILTER (WHERE w = 1) AS set_to_one FROM safe_bf;
CALL moltres_ops.backfill('safe_bf', NULL);
CALL moltres_ops.backfill('safe_bf', 'w = 1', '');
CALL moltres_ops.backfill('safe_bf', 'w = 1', batch_size => 0);
CALL moltres_ops.backfill('safe_bf', 'w = 1', pause => NULL);
CALL moltres_ops.backfill('safe_bf', 'w = 1', restart => NULL);
CALL moltres_ops.backfill('safe_nopk', 'a = 1');
CREATE TABLE safe_pk2 (a int, b int, PRIMARY KEY (a, b));
CALL moltres_ops.backfill('safe_pk2', 'a = 1');
BEGIN;
CALL moltres_ops.backfill('safe_bf', 'w = 1');
ROLLBACK;
SELECT count(*) AS failed_jobs_left FROM moltres_ops.backfills WHERE set_clause LIKE 'nope%' OR set_clause LIKE '%RETURNING%';
SELECT count(*) FILTER (WHERE w = 1) AS set_to_one FROM safe_bf;
-- a text key and a pause between batches
CREATE TABLE safe_txt (k text PRIMARY KEY, n int);
INSERT INTO safe_txt SELECT 'key ' || g, 0 FROM generate_series(1, 30) g;
CALL moltres_ops.backfill('safe_txt', 'n = n + 1', batch_size => 7, pause => '10ms');
SELECT sum(n), max(n) FROM safe_txt;
SELECT rows_done, batches, last_key, rows_per_second > 0 AS has_rate
  FROM moltres_ops.backfill_progress WHERE relation = 'public.safe_txt';

-- The table and the view: columns, and who may read them.
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute WHERE attrelid = 'moltres_ops.backfills'::regclass AND attnum > 0 ORDER BY attnum;

---------------------------------------------------------------------------
-- Privileges
---------------------------------------------------------------------------
SELECT p.oid::regprocedure AS routine, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may,
       p.prosecdef AS security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'moltres_ops'::regnamespace
   AND p.proname IN ('with_lock_retry', '_lock_retry', '_step', '_validate_or_drop', 'safe_set_not_null',
                     'safe_add_check', 'safe_add_foreign_key', 'safe_add_column', 'backfill')
 ORDER BY 1::text;
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_reads,
       has_table_privilege('pg_monitor', c.oid, 'SELECT') AS monitor_reads
  FROM pg_class c WHERE c.oid IN ('moltres_ops.backfills'::regclass, 'moltres_ops.backfill_progress'::regclass)
 ORDER BY 1;
CREATE ROLE safe_plain;
CREATE ROLE safe_deployer;
CREATE ROLE safe_owner;
-- the GRANT of docs/reference.md
GRANT EXECUTE ON PROCEDURE moltres_ops.with_lock_retry(text, interval, integer, interval),
    moltres_ops._lock_retry(text, interval, integer, interval, text, text[], text, text, text),
    moltres_ops._step(text, interval, integer, interval, text),
    moltres_ops._validate_or_drop(text, name, interval, integer, interval, text, text),
    moltres_ops.safe_set_not_null(regclass, name, interval, integer, interval),
    moltres_ops.safe_add_check(regclass, name, text, interval, integer, interval),
    moltres_ops.safe_add_foreign_key(regclass, name[], regclass, name[], name, text, interval, integer, interval),
    moltres_ops.safe_add_column(regclass, name, text, text, boolean, interval, integer, interval, integer),
    moltres_ops.backfill(regclass, text, text, integer, interval, interval, integer, interval, boolean)
  TO safe_deployer;
GRANT SELECT, INSERT, UPDATE ON moltres_ops.backfills TO safe_deployer;
GRANT safe_deployer TO safe_owner;
CREATE TABLE safe_owned (id int PRIMARY KEY, v int);
INSERT INTO safe_owned SELECT g, NULL FROM generate_series(1, 10) g;
ALTER TABLE safe_owned OWNER TO safe_owner;
-- no EXECUTE: refused by the server
SET ROLE safe_plain;
CALL moltres_ops.with_lock_retry('SELECT 1');
CALL moltres_ops.safe_set_not_null('safe_owned', 'v');
CALL moltres_ops.backfill('safe_owned', 'v = 1');
SELECT count(*) FROM moltres_ops.backfill_progress;
RESET ROLE;
-- EXECUTE but not the owner: the server's own error, nothing changed
SET ROLE safe_deployer;
\set VERBOSITY default
CALL moltres_ops.safe_set_not_null('safe_owned', 'v');
\set VERBOSITY terse
CALL moltres_ops.safe_add_check('safe_owned', 'v_pos', 'v > 0');
CALL moltres_ops.backfill('safe_owned', 'v = 1');
RESET ROLE;
SELECT count(*) AS constraints FROM pg_constraint WHERE conrelid = 'safe_owned'::regclass AND contype = 'c';
SELECT state, error FROM moltres_ops.backfills WHERE relid = 'safe_owned'::regclass;
DELETE FROM moltres_ops.backfills WHERE relid = 'safe_owned'::regclass;
-- the owner, with the grants: every procedure works
SET ROLE safe_owner;
CALL moltres_ops.backfill('safe_owned', 'v = id');
CALL moltres_ops.safe_set_not_null('safe_owned', 'v');
CALL moltres_ops.safe_add_check('safe_owned', 'v_pos', 'v > 0');
CALL moltres_ops.safe_add_column('safe_owned', 'w', 'int', '0', not_null => true);
CALL moltres_ops.with_lock_retry('ALTER TABLE safe_owned ADD COLUMN z int');
RESET ROLE;
SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = 'safe_owned'::regclass AND attnum > 0 ORDER BY attnum;
SELECT * FROM safe_cons('safe_owned');
SELECT started_by, state, rows_done FROM moltres_ops.backfills WHERE relid = 'safe_owned'::regclass;

DROP TABLE safe_owned, safe_nn, safe_child, safe_w, safe_ac, safe_bf, safe_nopk, safe_pk2, safe_txt CASCADE;
DROP SCHEMA "s; DROP TABLE safe_w; --" CASCADE;
DROP FUNCTION safe_cons(regclass), safe_call_from_function();
DROP OWNED BY safe_plain, safe_deployer, safe_owner;
DROP ROLE safe_plain, safe_deployer, safe_owner;
TRUNCATE moltres_ops.backfills;
