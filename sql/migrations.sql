-- Migration state: the ledger and its lock, migrate(), the status view over
-- every tool's ledger (recognised by table shape), ready(), privileges and
-- bad input.  Concurrency is in test/specs (migration_lock, migrate_retry,
-- ddl_queue) and test/t/040_migrations.pl; real tools in
-- test/t/041_migration_tools.pl.
SET datestyle = 'ISO, YMD';
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
\set VERBOSITY terse
\set SHOW_CONTEXT never
TRUNCATE moltres_ops.migrations;

-- Runs a statement and shows its error, with pids and timestamps masked.
CREATE FUNCTION mig_try(sql text, OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    code := '00000';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    message := regexp_replace(message, 'pid [0-9]+', 'pid <pid>', 'g');
    detail := replace(regexp_replace(detail, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?([+-]\d\d)?', '<ts>', 'g'),
                      current_user, '<me>');
    hint := regexp_replace(hint, '\(\d+\)', '(<pid>)', 'g');
END $$;

-- The ledger: its columns, and pg_dump keeps its rows (configuration table).
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid = 'moltres_ops.migrations'::regclass AND attnum > 0
 ORDER BY attnum;
SELECT 'moltres_ops.migrations'::regclass = ANY (extconfig) AS dumped_by_pg_dump
  FROM pg_extension WHERE extname = 'moltres_ops';
SELECT * FROM moltres_ops.migration_lock_key();

-- begin / finish: the lock is held in between, the row is running, then
-- applied with its duration.
SELECT moltres_ops.migration_begin('0001', 'create accounts', 'sum-1');
SELECT count(*) AS lock_held
  FROM pg_locks l, moltres_ops.migration_lock_key() k
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
   AND l.classid = k.classid::oid AND l.objid = k.objid::oid AND l.objsubid = 2;
SELECT version, name, checksum, status, finished_at IS NULL AS unfinished,
       applied_by = current_user AS by_me, pid = pg_backend_pid() AS my_pid
  FROM moltres_ops.migrations;
SELECT tool, ledger, state, detail LIKE 'version ''0001'' running for % in pid %' AS detail_ok
  FROM moltres_ops.migration_status;
-- a second begin in the same session is refused; the lock stays
SELECT moltres_ops.migration_begin('0002');
SELECT moltres_ops.ready();
SELECT moltres_ops.migration_finish('0001');
SELECT count(*) AS lock_held
  FROM pg_locks l, moltres_ops.migration_lock_key() k
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
   AND l.classid = k.classid::oid AND l.objid = k.objid::oid AND l.objsubid = 2;
SELECT version, status, finished_at >= started_at AS finished, duration_ms >= 0 AS has_duration, error
  FROM moltres_ops.migrations;
SELECT tool, current_version, applied_count, last_applied_at IS NOT NULL AS has_last, state, detail
  FROM moltres_ops.migration_status;
SELECT moltres_ops.ready(), moltres_ops.ready('0001'), moltres_ops.ready('0002');

-- Re-running an applied version: a NOTICE and nothing to do; with another
-- checksum, an error showing both.  Neither keeps the lock.
SELECT moltres_ops.migration_begin('0001', 'create accounts', 'sum-1');
SELECT moltres_ops.migration_begin('0001', 'create accounts');
\x on
SELECT * FROM mig_try($$SELECT moltres_ops.migration_begin('0001', 'create accounts', 'sum-EDITED')$$);
\x off
SELECT count(*) AS lock_held
  FROM pg_locks l, moltres_ops.migration_lock_key() k
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
   AND l.classid = k.classid::oid AND l.objid = k.objid::oid AND l.objsubid = 2;

-- fail records the error; the failed version can run again.
SELECT moltres_ops.migration_begin('0002', 'add index');
SELECT moltres_ops.migration_fail('0002', 'relation "accounts" does not exist');
SELECT version, status, error FROM moltres_ops.migrations ORDER BY version;
SELECT tool, current_version, applied_count, state, detail ~ '^1 failed; latest: version ''0002'' at .*: relation "accounts" does not exist$' AS detail_ok
  FROM moltres_ops.migration_status;
SELECT moltres_ops.ready(), moltres_ops.ready('0001');
SELECT moltres_ops.migration_begin('0002', 'add index, fixed', 'sum-2');
SELECT version, name, checksum, status, error FROM moltres_ops.migrations WHERE version = '0002';
SELECT moltres_ops.migration_finish('0002');
SELECT state FROM moltres_ops.migration_status;
-- finish and fail only for a running migration of this session
SELECT moltres_ops.migration_finish('0002');
SELECT moltres_ops.migration_fail('0009', 'x');

-- Abandoned: a running row whose backend no longer holds the migration
-- lock.  The pid alone is not trusted (pids are reused): here the row
-- carries this session's pid, but this session does not hold the lock.
INSERT INTO moltres_ops.migrations (version, name, status, started_at, pid)
VALUES ('0003', 'killed', 'running', now() - interval '1 hour', pg_backend_pid());
SELECT tool, state, detail ~ '^version ''0003'' was left running by pid [0-9]+ \(started .*\), which no longer holds the migration lock; check what it applied, then call moltres_ops.migration_resolve\(''0003'', status\)$' AS detail_ok
  FROM moltres_ops.migration_status;
SELECT moltres_ops.ready();
-- nothing else runs until it is settled
\x on
SELECT * FROM mig_try($$SELECT moltres_ops.migration_begin('0004')$$);
\x off
-- and with this session holding the lock, the same pid is still a
-- different backend when the row is older than the backend (pid reuse)
UPDATE moltres_ops.migrations SET started_at = '2000-01-01' WHERE version = '0003';
SELECT pg_advisory_lock(classid, objid) FROM moltres_ops.migration_lock_key();
SELECT state, detail LIKE 'version ''0003'' was left running%' AS names_it FROM moltres_ops.migration_status;
SELECT pg_advisory_unlock(classid, objid) FROM moltres_ops.migration_lock_key();
SELECT moltres_ops.migration_resolve('0003', 'rolled_back');
SELECT version, status, error ~ '^abandoned: pid [0-9]+ ended without finishing; resolved from running to rolled_back by .* at .*$' AS noted
  FROM moltres_ops.migrations WHERE version = '0003';
SELECT state FROM moltres_ops.migration_status;
SELECT moltres_ops.migration_resolve('0003', 'rolled_back');
-- a live migration cannot be resolved from under its migrator
SELECT moltres_ops.migration_begin('0004');
SELECT * FROM mig_try($$SELECT moltres_ops.migration_resolve('0004', 'applied')$$);
SELECT moltres_ops.migration_fail('0004', NULL);

-- Bad input: a clear error, nothing changed.
SELECT moltres_ops.migration_begin(NULL);
SELECT moltres_ops.migration_begin('   ');
-- white space of any kind is no version: 22023 from every function that
-- takes one
SELECT code, message FROM mig_try($$SELECT moltres_ops.migration_begin(E' \t ')$$);
SELECT code, message FROM mig_try($$SELECT moltres_ops.migration_begin(E'\n\r\f')$$);
SELECT code, message FROM mig_try($$SELECT moltres_ops.migration_finish(E'\t')$$);
SELECT code, message FROM mig_try($$SELECT moltres_ops.migration_fail(E' \t ', 'x')$$);
SELECT code, message FROM mig_try($$SELECT moltres_ops.migration_resolve(E'\t', 'failed')$$);
SELECT code, message FROM mig_try($$SELECT moltres_ops.migration_resolve(NULL, 'failed')$$);
SELECT code, message FROM mig_try($$SELECT moltres_ops.ready(E' \t ')$$);
SELECT code, message FROM mig_try($$INSERT INTO moltres_ops.migrations (version, status) VALUES (E'\t\n', 'applied')$$);
SELECT moltres_ops.migration_begin('0005', wait => '-1s');
SELECT moltres_ops.migration_begin('0005', wait => NULL);
SELECT moltres_ops.migration_finish(NULL);
SELECT moltres_ops.migration_resolve('0003', 'done');
SELECT moltres_ops.migration_resolve('0003', NULL);
SELECT moltres_ops.migration_resolve('nope', 'failed');
SELECT moltres_ops.ready(NULL, 'no-such-tool');
SELECT moltres_ops.ready(NULL, NULL);
SELECT moltres_ops.ready('');
SELECT count(*) AS rows, count(*) FILTER (WHERE status = 'running') AS running
  FROM moltres_ops.migrations;

-- Hostile versions and names are data, never SQL.
SELECT moltres_ops.migration_begin(E'0006''); DROP TABLE moltres_ops.migrations; --\n', E'name "with" \\ quotes');
SELECT moltres_ops.migration_finish(E'0006''); DROP TABLE moltres_ops.migrations; --\n');
SELECT version, name, status FROM moltres_ops.migrations WHERE version LIKE '0006%';
SELECT moltres_ops.ready(E'0006''); DROP TABLE moltres_ops.migrations; --\n');

-- CALL migrate(): begin, the statements, applied; each step committed.
CALL moltres_ops.migrate('0010', 'create orders',
    'CREATE TABLE mig_orders (id bigint PRIMARY KEY); INSERT INTO mig_orders VALUES (1), (2)');
SELECT version, name, status, checksum ~ '^sha256:[0-9a-f]{64}$' AS default_checksum, error
  FROM moltres_ops.migrations WHERE version = '0010';
SELECT count(*) FROM mig_orders;
-- the same again: nothing to do
CALL moltres_ops.migrate('0010', 'create orders',
    'CREATE TABLE mig_orders (id bigint PRIMARY KEY); INSERT INTO mig_orders VALUES (1), (2)');
-- the same version with other SQL: drift
CALL moltres_ops.migrate('0010', 'create orders', 'CREATE TABLE mig_orders (id int)');
-- a failing migration: recorded failed with the error (committed), and the
-- CALL fails with the original SQLSTATE; its statements left nothing
\set VERBOSITY default
CALL moltres_ops.migrate('0011', 'bad column',
    'ALTER TABLE mig_orders ADD COLUMN note text; ALTER TABLE mig_orders ALTER COLUMN nope SET NOT NULL');
\set VERBOSITY terse
SELECT version, status, error, duration_ms >= 0 AS has_duration
  FROM moltres_ops.migrations WHERE version = '0011';
SELECT count(*) AS note_column FROM pg_attribute WHERE attrelid = 'mig_orders'::regclass AND attname = 'note';
SELECT state FROM moltres_ops.migration_status;
-- fixed and run again
CALL moltres_ops.migrate('0011', 'note column', 'ALTER TABLE mig_orders ADD COLUMN note text');
SELECT version, status, error FROM moltres_ops.migrations WHERE version = '0011';
SELECT count(*) AS lock_held
  FROM pg_locks l, moltres_ops.migration_lock_key() k
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
   AND l.classid = k.classid::oid AND l.objid = k.objid::oid AND l.objsubid = 2;
-- inside a transaction block: refused before anything is done
\set VERBOSITY default
BEGIN;
CALL moltres_ops.migrate('0012', 'in a transaction', 'SELECT 1');
ROLLBACK;
\set VERBOSITY terse
-- called from a function (an atomic context): refused before anything is done
CREATE FUNCTION mig_call_migrate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN CALL moltres_ops.migrate('0012', 'from a function', 'SELECT 1'); END $$;
SELECT mig_call_migrate();
DROP FUNCTION mig_call_migrate();
CALL moltres_ops.migrate('0012', 'x', NULL);
CALL moltres_ops.migrate('0012', 'x', 'SELECT 1', lock_timeout => '0');
CALL moltres_ops.migrate('0012', 'x', 'SELECT 1', max_attempts => 0);
CALL moltres_ops.migrate(NULL, 'x', 'SELECT 1');
CALL moltres_ops.migrate(E' \t ', 'x', 'SELECT 1');
SELECT count(*) AS rows_for_0012 FROM moltres_ops.migrations WHERE version = '0012';
SELECT count(*) AS lock_held
  FROM pg_locks l, moltres_ops.migration_lock_key() k
 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
   AND l.classid = k.classid::oid AND l.objid = k.objid::oid AND l.objsubid = 2;

-- Privileges: writing the ledger and migrate() are not for PUBLIC; the
-- views are for pg_monitor; the ledger GRANTs of docs/reference.md are
-- enough to deploy.
SELECT p.oid::regprocedure AS routine, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p
 WHERE p.pronamespace = 'moltres_ops'::regnamespace
   AND p.proname IN ('migration_begin', 'migration_finish', 'migration_fail', 'migration_resolve',
                     'migrate', 'migration_status', 'ready', 'migration_lock_key')
 ORDER BY p.oid::regprocedure::text;
SELECT p.proname, p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'moltres_ops'::regnamespace
   AND (p.proname LIKE '%migrat%' OR p.proname IN ('ready', '_in_transaction_block'))
   AND (p.prosecdef OR p.proconfig IS NOT NULL);
CREATE ROLE mig_plain;
CREATE ROLE mig_monitor IN ROLE pg_monitor;
CREATE ROLE mig_deployer;
GRANT SELECT, INSERT, UPDATE ON moltres_ops.migrations TO mig_deployer;
GRANT EXECUTE ON FUNCTION moltres_ops.migration_begin(text, text, text, interval),
                          moltres_ops.migration_finish(text),
                          moltres_ops.migration_fail(text, text) TO mig_deployer;
GRANT EXECUTE ON PROCEDURE moltres_ops.migrate(text, text, text, interval, int, text, interval, boolean) TO mig_deployer;
GRANT CREATE ON SCHEMA public TO mig_deployer;
SET ROLE mig_plain;
SELECT moltres_ops.migration_begin('0020');
SELECT moltres_ops.migration_resolve('0011', 'failed');
CALL moltres_ops.migrate('0020', 'x', 'SELECT 1');
SELECT count(*) FROM moltres_ops.migrations;
SELECT count(*) FROM moltres_ops.migration_status;
SELECT count(*) FROM moltres_ops.ddl_activity;
RESET ROLE;
SET ROLE mig_monitor;
SELECT tool, current_version, state FROM moltres_ops.migration_status;
SELECT count(*) >= 0 AS readable FROM moltres_ops.ddl_activity;
SELECT moltres_ops.ready('0011');
SELECT moltres_ops.migration_begin('0020');
RESET ROLE;
SET ROLE mig_deployer;
CALL moltres_ops.migrate('0020', 'deployed by a granted role', 'CREATE TABLE mig_by_deployer (i int)');
SELECT moltres_ops.migration_begin('0021');
SELECT moltres_ops.migration_finish('0021');
RESET ROLE;
SELECT version, status, applied_by FROM moltres_ops.migrations WHERE version IN ('0020', '0021') ORDER BY 1;
DROP TABLE mig_by_deployer;
REVOKE CREATE ON SCHEMA public FROM mig_deployer;

-- Every tool's ledger, recognised by its shape.  Fake ledgers in the
-- documented shapes, each in a state worth reporting.
CREATE TABLE alembic_version (version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version VALUES ('ae1027a6acf');

CREATE TABLE django_migrations (id serial PRIMARY KEY, app varchar(255) NOT NULL,
    name varchar(255) NOT NULL, applied timestamptz NOT NULL);
INSERT INTO django_migrations (app, name, applied) VALUES
    ('contenttypes', '0001_initial', '2024-01-01 10:00+00'),
    ('polls', '0001_initial', '2024-01-02 10:00+00'),
    ('polls', '0002_question_votes', '2024-01-03 10:00+00');

CREATE TABLE flyway_schema_history (installed_rank int NOT NULL PRIMARY KEY,
    version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL,
    script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL,
    installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL,
    success boolean NOT NULL);
INSERT INTO flyway_schema_history VALUES
    (1, '1', 'init', 'SQL', 'V1__init.sql', 123, 'ci', '2024-02-01 10:00', 12, true),
    (2, '2', 'add users', 'SQL', 'V2__add_users.sql', 456, 'ci', '2024-02-02 10:00', 40, true),
    (3, '3', 'add index', 'SQL', 'V3__add_index.sql', 789, 'ci', '2024-02-03 10:00', 5, false);

CREATE TABLE databasechangelog (id varchar(255) NOT NULL, author varchar(255) NOT NULL,
    filename varchar(255) NOT NULL, dateexecuted timestamp NOT NULL, orderexecuted int NOT NULL,
    exectype varchar(10) NOT NULL, md5sum varchar(35), description varchar(255),
    comments varchar(255), tag varchar(255), liquibase varchar(20), contexts varchar(255),
    labels varchar(255), deployment_id varchar(10));
CREATE TABLE databasechangeloglock (id int NOT NULL PRIMARY KEY, locked boolean NOT NULL,
    lockgranted timestamp, lockedby varchar(255));
INSERT INTO databasechangelog (id, author, filename, dateexecuted, orderexecuted, exectype, md5sum) VALUES
    ('create-table', 'ops', 'db.changelog.xml', '2024-03-01 10:00', 1, 'EXECUTED', '9:aa'),
    ('add-column', 'ops', 'db.changelog.xml', '2024-03-02 10:00', 2, 'EXECUTED', '9:bb');
INSERT INTO databasechangeloglock VALUES (1, true, '2024-03-03 10:00', 'ci-runner-7 (10.0.0.7)');

CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
    installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL,
    checksum bytea NOT NULL, execution_time bigint NOT NULL);
INSERT INTO _sqlx_migrations VALUES
    (20240101000000, 'init', '2024-04-01 10:00+00', true, '\x01', 1000),
    (20240102000000, 'events', '2024-04-02 10:00+00', true, '\x02', 1000),
    (20240103000000, 'backfill', '2024-04-03 10:00+00', false, '\x03', -1);

CREATE TABLE knex_migrations (id serial PRIMARY KEY, name varchar(255), batch int,
    migration_time timestamptz);
CREATE TABLE knex_migrations_lock (index serial PRIMARY KEY, is_locked int);
INSERT INTO knex_migrations (name, batch, migration_time) VALUES
    ('20240501_init.js', 1, '2024-05-01 10:00+00'), ('20240502_users.js', 2, '2024-05-02 10:00+00');
INSERT INTO knex_migrations_lock (is_locked) VALUES (1);

CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL,
    run_on timestamp NOT NULL);
INSERT INTO pgmigrations (name, run_on) VALUES
    ('1714557600000_init', '2024-05-01 10:00'), ('1714644000000_users', '2024-05-02 10:00');

CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL,
    finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text,
    rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(),
    applied_steps_count int NOT NULL DEFAULT 0);
INSERT INTO _prisma_migrations VALUES
    ('a', 'c1', '2024-06-01 10:00+00', '20240601_init', NULL, NULL, '2024-06-01 10:00+00', 1),
    ('b', 'c2', NULL, '20240602_add_email', 'ERROR: column "email" already exists', NULL, '2024-06-02 10:00+00', 0);

-- one schema_migrations per schema: golang-migrate (dirty), Rails (with
-- ar_internal_metadata), dbmate (varchar(128))
CREATE SCHEMA mig_golang;
CREATE TABLE mig_golang.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO mig_golang.schema_migrations VALUES (7, true);
CREATE SCHEMA mig_rails;
CREATE TABLE mig_rails.schema_migrations (version varchar NOT NULL PRIMARY KEY);
CREATE TABLE mig_rails.ar_internal_metadata (key varchar NOT NULL PRIMARY KEY, value varchar,
    created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL);
INSERT INTO mig_rails.schema_migrations VALUES ('20240101120000'), ('20240301120000');
CREATE SCHEMA mig_dbmate;
CREATE TABLE mig_dbmate.schema_migrations (version varchar(128) PRIMARY KEY);
INSERT INTO mig_dbmate.schema_migrations VALUES ('20240105000000');

-- Sqitch's registry, in its default schema
CREATE SCHEMA sqitch;
CREATE TABLE sqitch.changes (change_id text PRIMARY KEY, script_hash text, change text NOT NULL,
    project text NOT NULL, note text NOT NULL DEFAULT '', committed_at timestamptz NOT NULL,
    committer_name text NOT NULL, committer_email text NOT NULL, planned_at timestamptz NOT NULL,
    planner_name text NOT NULL, planner_email text NOT NULL);
CREATE TABLE sqitch.events (event text NOT NULL, change_id text NOT NULL, change text NOT NULL,
    project text NOT NULL, note text NOT NULL DEFAULT '', requires text[], conflicts text[],
    tags text[], committed_at timestamptz NOT NULL, committer_name text NOT NULL,
    committer_email text NOT NULL, planned_at timestamptz NOT NULL, planner_name text NOT NULL,
    planner_email text NOT NULL);
CREATE TABLE sqitch.tags (tag_id text PRIMARY KEY, tag text NOT NULL, project text NOT NULL,
    change_id text NOT NULL);
INSERT INTO sqitch.changes VALUES
    ('c1', 'h1', 'appschema', 'shop', '', '2024-07-01 10:00+00', 'ci', 'ci@x', '2024-06-30', 'dev', 'dev@x');
INSERT INTO sqitch.tags VALUES ('t1', '@v1.0', 'shop', 'c1');
INSERT INTO sqitch.events (event, change_id, change, project, committed_at, committer_name,
                           committer_email, planned_at, planner_name, planner_email) VALUES
    ('deploy', 'c1', 'appschema', 'shop', '2024-07-01 10:00+00', 'ci', 'ci@x', '2024-06-30', 'dev', 'dev@x'),
    ('fail', 'c2', 'users', 'shop', '2024-07-02 10:00+00', 'ci', 'ci@x', '2024-06-30', 'dev', 'dev@x');

-- Same names, other shapes: not ledgers of those tools.  Also a real-shaped
-- ledger in a schema that is neither on the search path nor the default.
CREATE SCHEMA mig_lookalike;
CREATE TABLE mig_lookalike.alembic_version (version_num int);
CREATE TABLE mig_lookalike.django_migrations (id int, app text, name text);
CREATE TABLE mig_lookalike.schema_migrations (id int, note text);
CREATE TABLE mig_lookalike.flyway_schema_history (installed_rank int, version text);
CREATE TABLE mig_lookalike._prisma_migrations (id text, checksum text, finished_at text,
    migration_name text, logs text, rolled_back_at text, started_at text, applied_steps_count int);
CREATE TABLE mig_lookalike.pgmigrations (id int, name text, run_on date);
CREATE SCHEMA mig_hidden;
CREATE TABLE mig_hidden.knex_migrations (id serial PRIMARY KEY, name varchar(255), batch int,
    migration_time timestamptz);
-- a hostile schema name holding a real-shaped ledger
CREATE SCHEMA "mig ""odd""; DROP TABLE x; --";
CREATE TABLE "mig ""odd""; DROP TABLE x; --".alembic_version (version_num varchar(32) NOT NULL);
INSERT INTO "mig ""odd""; DROP TABLE x; --".alembic_version VALUES ('b0b0');

SET search_path = public, mig_golang, mig_rails, mig_dbmate, mig_lookalike, "mig ""odd""; DROP TABLE x; --";
SELECT tool, ledger, current_version, applied_count,
       CASE WHEN tool = 'moltres_ops' THEN last_applied_at > now() - interval '1 hour'
            ELSE last_applied_at = last_applied_at END AS last_applied_at_ok,
       state, regexp_replace(detail, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?([+-]\d\d)?', '<ts>', 'g') AS detail
  FROM moltres_ops.migration_status
 ORDER BY tool, ledger;
SELECT tool, last_applied_at FROM moltres_ops.migration_status
 WHERE tool <> 'moltres_ops' AND last_applied_at IS NOT NULL ORDER BY tool;

-- ready(): the version applied, per tool; with NULL, nothing wrong.
SELECT t.tool, t.version, moltres_ops.ready(t.version, t.tool) AS ready
  FROM (VALUES ('moltres_ops', '0011'), ('moltres_ops', '0012'),
               ('alembic', 'ae1027a6acf'), ('alembic', 'b0b0'), ('alembic', 'nope'),
               ('django', 'polls.0002_question_votes'), ('django', '0002_question_votes'),
               ('flyway', '2'), ('flyway', '3'),
               ('liquibase', 'add-column'), ('liquibase', 'nope'),
               ('sqlx', '20240102000000'), ('sqlx', '20240103000000'),
               ('golang-migrate', '6'), ('golang-migrate', '7'), ('golang-migrate', '8'),
               ('rails', '20240301120000'), ('rails', '20240105000000'),
               ('dbmate', '20240105000000'), ('dbmate', '20240301120000'),
               ('knex', '20240502_users.js'), ('knex', '20240502_users'), ('knex', 'nope'),
               ('node-pg-migrate', '1714644000000_users'), ('node-pg-migrate', 'nope'),
               ('sqitch', 'appschema'), ('sqitch', '@v1.0'), ('sqitch', 'v1.0'), ('sqitch', 'users'),
               ('prisma', '20240601_init'), ('prisma', '20240602_add_email')) AS t(tool, version)
 ORDER BY 1, 2;
SELECT t.tool, moltres_ops.ready(NULL, t.tool) AS nothing_wrong
  FROM unnest(ARRAY['moltres_ops', 'alembic', 'django', 'flyway', 'liquibase', 'sqlx',
                    'golang-migrate', 'rails', 'dbmate', 'knex', 'node-pg-migrate',
                    'sqitch', 'prisma']) AS t(tool)
 ORDER BY 1;
SELECT moltres_ops.ready(NULL, 'Django') AS case_insensitive;
SELECT moltres_ops.ready('x', 'golang-migrate');

-- Settled ledgers read clean.
UPDATE flyway_schema_history SET success = true;
UPDATE databasechangeloglock SET locked = false;
DELETE FROM _sqlx_migrations WHERE NOT success;
UPDATE mig_golang.schema_migrations SET dirty = false;
UPDATE knex_migrations_lock SET is_locked = 0;
UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL;
INSERT INTO sqitch.events (event, change_id, change, project, committed_at, committer_name,
                           committer_email, planned_at, planner_name, planner_email) VALUES
    ('deploy', 'c2', 'users', 'shop', '2024-07-03 10:00+00', 'ci', 'ci@x', '2024-06-30', 'dev', 'dev@x');
SELECT tool, state FROM moltres_ops.migration_status ORDER BY tool, ledger;
-- Sqitch and Prisma (and node-pg-migrate, see 041_migration_tools.pl) hold
-- an advisory lock while they run: running.
SELECT pg_advisory_lock(75474063), pg_advisory_lock(72707369);
INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at)
VALUES ('c', 'c3', '20240603_in_progress', '2024-06-03 10:00+00');
SELECT tool, state, regexp_replace(detail, 'pid \d+', 'pid <pid>') AS detail
  FROM moltres_ops.migration_status WHERE tool IN ('sqitch', 'prisma') ORDER BY tool;
SELECT pg_advisory_unlock(75474063), pg_advisory_unlock(72707369);
SELECT tool, state, detail FROM moltres_ops.migration_status WHERE tool = 'prisma';
DELETE FROM _prisma_migrations WHERE id = 'c';

-- A ledger the caller cannot read: reported as unreadable, others still
-- shown; ready() raises the permission error instead of guessing.
SET ROLE mig_monitor;
SELECT tool, state, regexp_replace(detail, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?([+-]\d\d)?', '<ts>', 'g') AS detail
  FROM moltres_ops.migration_status WHERE tool IN ('moltres_ops', 'flyway');
SELECT moltres_ops.ready(NULL, 'flyway');
RESET ROLE;
GRANT SELECT ON flyway_schema_history TO mig_monitor;
SET ROLE mig_monitor;
SELECT moltres_ops.ready('2', 'flyway');
RESET ROLE;

-- A tool with no ledger here is not ready.
DROP TABLE alembic_version;
DROP SCHEMA "mig ""odd""; DROP TABLE x; --" CASCADE;
SELECT moltres_ops.ready(NULL, 'alembic') AS alembic_ready;

-- ddl_activity: a DDL holding its lock in this session shows up (granted,
-- nothing queued); a plain read does not.
BEGIN;
SELECT count(*) FROM mig_orders;
SELECT count(*) AS rows_for_a_read FROM moltres_ops.ddl_activity WHERE pid = pg_backend_pid();
ALTER TABLE mig_orders ADD COLUMN extra int;
SELECT relation, mode_held, mode_wanted, granted, waiting, queued_behind, blocked_by, phase, progress_pct
  FROM moltres_ops.ddl_activity WHERE pid = pg_backend_pid();
ROLLBACK;
-- temporary tables are nobody else's business
BEGIN;
CREATE TEMP TABLE mig_tmp (i int);
SELECT count(*) AS rows_for_temp FROM moltres_ops.ddl_activity WHERE pid = pg_backend_pid();
ROLLBACK;

-- Clean up.
RESET search_path;
DROP TABLE django_migrations, flyway_schema_history, databasechangelog, databasechangeloglock,
           _sqlx_migrations, knex_migrations, knex_migrations_lock, pgmigrations,
           _prisma_migrations, mig_orders;
DROP SCHEMA mig_golang, mig_rails, mig_dbmate, sqitch, mig_lookalike, mig_hidden CASCADE;
DROP FUNCTION mig_try(text);
DROP OWNED BY mig_plain, mig_monitor, mig_deployer;
DROP ROLE mig_plain, mig_monitor, mig_deployer;
TRUNCATE moltres_ops.migrations;
