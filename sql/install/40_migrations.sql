-- moltres_ops install script, part 40: migration state.
--
--   migrations              the ledger (a configuration table: pg_dump keeps
--                           its rows)
--   migration_lock_key()    the advisory lock that serialises migrators
--   migration_begin/finish/fail/resolve, CALL migrate(...)
--   migration_status        one row per migration ledger of any common tool
--   ready(version, tool)    for readiness probes
--   ddl_activity            DDL running or queued on a lock, right now
--
-- All of it is SQL and PL/pgSQL (plus one tiny C helper), so it works without
-- shared_preload_libraries.  Every function runs with its caller's
-- privileges; the ones that write the ledger are not executable by PUBLIC.
--
-- The migration lock is a session-level advisory lock on the two-int key
-- migration_lock_key() = (1836018804, 1835624306), the ASCII of 'molt' and
-- 'migr'.  Advisory locks are already per database (pg_locks.database), so
-- the key needs no database part: each database's ledger has its own lock.
-- A session that holds it has a granted ExclusiveLock row in pg_locks
-- (locktype 'advisory', objsubid 2).  migration_finish and migration_fail
-- hand the lock over to a transaction-level *shared* lock on the same key
-- before releasing the session lock, so the next migrator cannot start
-- before the finishing transaction has committed its ledger row; an
-- ExclusiveLock row therefore always means "holds the session lock".

CREATE TABLE migrations (
    version          text PRIMARY KEY CHECK (version ~ '[^[:space:]]'),
    name             text,
    checksum         text,
    status           text NOT NULL
                     CHECK (status IN ('running', 'applied', 'failed', 'rolled_back')),
    started_at       timestamptz,
    finished_at      timestamptz,
    duration_ms      float8,
    applied_by       name,
    application_name text,
    pid              int,
    error            text
);

COMMENT ON TABLE migrations IS
'migrations: the moltres_ops migration ledger, one row per version; written by migration_begin/finish/fail/resolve and CALL migrate()';

-- Its rows are configuration: pg_dump must keep them.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.migrations', '');

REVOKE ALL ON migrations FROM PUBLIC;
GRANT SELECT ON migrations TO pg_monitor;

CREATE FUNCTION migration_lock_key(OUT classid integer, OUT objid integer)
RETURNS record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1836018804, 1835624306 $$;

COMMENT ON FUNCTION migration_lock_key() IS
'migration_lock_key: the two-int advisory lock key of the migration lock (pg_locks: locktype advisory, classid, objid, objsubid 2, in this database)';

CREATE FUNCTION _in_transaction_block()
RETURNS boolean
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'moltres_ops_in_transaction_block';

COMMENT ON FUNCTION _in_transaction_block() IS
'_in_transaction_block: internal to migrate(); true inside BEGIN ... COMMIT';

-- Who holds the migration lock in this database: pid, and whether it is the
-- session-level ExclusiveLock (false: the shared hand-over lock of a
-- finishing transaction).
CREATE FUNCTION _migration_lock_holders(OUT pid integer, OUT exclusive boolean)
RETURNS SETOF record
LANGUAGE sql STABLE
AS $$
    SELECT l.pid, l.mode = 'ExclusiveLock'
      FROM pg_catalog.pg_locks l, @extschema@.migration_lock_key() k
     WHERE l.locktype = 'advisory'
       AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                          WHERE d.datname = pg_catalog.current_database())
       AND l.classid = k.classid::oid
       AND l.objid = k.objid::oid
       AND l.objsubid = 2
       AND l.granted
$$;

COMMENT ON FUNCTION _migration_lock_holders() IS
'_migration_lock_holders: internal; backends holding the migration lock in this database';

-- Whether a 'running' ledger row still has its migrator: the backend with
-- that pid holds the migration lock and is not a newer backend that merely
-- reuses the pid (started after the row).  backend_start is hidden from
-- unprivileged roles for other users' sessions; the lock alone decides then.
CREATE FUNCTION _migration_row_live(row_pid integer, row_started timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@._migration_lock_holders() h
                    WHERE h.pid = row_pid)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                        WHERE a.pid = row_pid AND a.backend_start > row_started)
$$;

COMMENT ON FUNCTION _migration_row_live(integer, timestamptz) IS
'_migration_row_live: internal; true when the backend that began a running migration still holds the migration lock';

-- A duration the way an operator reads it: "3.2 s" below a minute, else
-- an interval to the second.
CREATE FUNCTION _migration_fmt_duration(d interval)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE
        WHEN d IS NULL THEN NULL
        WHEN d < interval '1 minute'
            THEN pg_catalog.round(pg_catalog.date_part('epoch', d)::numeric, 1)::text || ' s'
        ELSE pg_catalog.justify_interval(pg_catalog.date_trunc('second', d))::text
    END
$$;

COMMENT ON FUNCTION _migration_fmt_duration(interval) IS
'_migration_fmt_duration: internal; formats a duration for messages';

-- Raise SQLSTATE 55P03 naming who holds the migration lock.
CREATE FUNCTION _migration_lock_busy(waited interval)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    h record;
BEGIN
    SELECT l.pid, m.version, m.started_at, a.usename, a.application_name, a.state
      INTO h
      FROM @extschema@._migration_lock_holders() l
      LEFT JOIN @extschema@.migrations m
             ON m.status = 'running' AND m.pid = l.pid
      LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
     WHERE l.pid <> pg_catalog.pg_backend_pid()
     ORDER BY m.started_at NULLS LAST
     LIMIT 1;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration lock is held by another session, which has just released it'
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Try again.';
    END IF;

    RAISE EXCEPTION 'migration lock is held by pid % (version %, held for %)',
            h.pid,
            coalesce(pg_catalog.quote_literal(h.version), 'unknown'),
            coalesce(@extschema@._migration_fmt_duration(pg_catalog.clock_timestamp() - h.started_at),
                     'unknown')
        USING ERRCODE = 'lock_not_available',
              DETAIL = CASE WHEN h.version IS NULL THEN
                  pg_catalog.format('Waited %s. No running ledger row of pid %s is visible: its migration_begin has not committed yet, or it was rolled back while the session kept the lock. Holder: user %s, application %s, state %s.',
                         coalesce(@extschema@._migration_fmt_duration(waited), '0 s'), h.pid,
                         coalesce(h.usename::text, '?'), coalesce(pg_catalog.quote_literal(h.application_name), '?'),
                         coalesce(h.state, '?'))
              ELSE
                  pg_catalog.format('Waited %s. Holder: user %s, application %s, state %s, started at %s.',
                         coalesce(@extschema@._migration_fmt_duration(waited), '0 s'),
                         coalesce(h.usename::text, '?'), coalesce(pg_catalog.quote_literal(h.application_name), '?'),
                         coalesce(h.state, '?'), h.started_at)
              END,
              HINT = pg_catalog.format('Wait for that migration to finish, or pass a longer wait. If pid %s is stuck, pg_cancel_backend(%s) or pg_terminate_backend(%s) frees the lock; its ledger row then shows as abandoned in moltres_ops.migration_status.',
                         h.pid, h.pid, h.pid);
END;
$$;

COMMENT ON FUNCTION _migration_lock_busy(interval) IS
'_migration_lock_busy: internal; raises 55P03 naming the holder of the migration lock';

-- A version must be given and hold more than white space (any of it: tabs,
-- newlines, not only blanks); every function that takes one asks this.
CREATE FUNCTION _migration_check_version(version text, what text DEFAULT 'migration version')
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF version IS NULL OR version !~ '[^[:space:]]' THEN
        RAISE EXCEPTION '% must not be null, empty or only white space', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

COMMENT ON FUNCTION _migration_check_version(text, text) IS
'_migration_check_version: internal; raises 22023 for a NULL version or one of only white space';

CREATE FUNCTION migration_begin(version text, name text DEFAULT NULL,
                                checksum text DEFAULT NULL,
                                wait interval DEFAULT '0')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    k record;
    me integer := pg_catalog.pg_backend_pid();
    my_start timestamptz;
    r record;
    got boolean;
    wait_ms bigint;
    saved_timeout text;
BEGIN
    PERFORM @extschema@._migration_check_version(migration_begin.version);
    IF migration_begin.wait IS NULL OR migration_begin.wait < interval '0' THEN
        RAISE EXCEPTION 'wait must be zero or a positive interval, not %',
                coalesce(migration_begin.wait::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM @extschema@._require_primary('migration_begin');

    SELECT * INTO k FROM @extschema@.migration_lock_key();
    SELECT a.backend_start INTO my_start
      FROM pg_catalog.pg_stat_activity a WHERE a.pid = me;

    IF EXISTS (SELECT 1 FROM @extschema@._migration_lock_holders() h
                WHERE h.pid = me AND h.exclusive) THEN
        -- This session already holds the lock.  With a migration of its
        -- own running, that is a second begin without finish; without one
        -- (the begin's transaction rolled back, the session lock stayed),
        -- the lock is simply reused: it is never taken twice.
        SELECT m.version INTO r
          FROM @extschema@.migrations m
         WHERE m.status = 'running' AND m.pid = me AND m.started_at >= my_start
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'this session is already running migration %',
                    pg_catalog.quote_literal(r.version)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Call moltres_ops.migration_finish or moltres_ops.migration_fail for it first.';
        END IF;
    ELSIF migration_begin.wait = interval '0' THEN
        IF NOT pg_catalog.pg_try_advisory_lock(k.classid, k.objid) THEN
            PERFORM @extschema@._migration_lock_busy(migration_begin.wait);
        END IF;
    ELSE
        -- Queue for the lock (fairly, in arrival order) for at most wait.
        wait_ms := least(pg_catalog.ceil(pg_catalog.date_part('epoch', migration_begin.wait) * 1000),
                         2147483647)::bigint;
        saved_timeout := pg_catalog.current_setting('lock_timeout');
        PERFORM pg_catalog.set_config('lock_timeout', greatest(wait_ms, 1)::text, true);
        BEGIN
            PERFORM pg_catalog.pg_advisory_lock(k.classid, k.objid);
            got := true;
        EXCEPTION WHEN lock_not_available THEN
            got := false;
        END;
        PERFORM pg_catalog.set_config('lock_timeout', saved_timeout, true);
        IF NOT got THEN
            PERFORM @extschema@._migration_lock_busy(migration_begin.wait);
        END IF;
    END IF;

    -- From here on this session holds the lock: any error releases it.
    BEGIN
        -- With the lock held, a visible running row has no migrator: its
        -- session ended (or its finish rolled back).  What it did is
        -- unknown, so nothing runs until an operator settles it.
        SELECT m.version, m.pid, m.started_at INTO r
          FROM @extschema@.migrations m
         WHERE m.status = 'running'
         ORDER BY m.started_at
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'migration % was left running by pid %, which no longer holds the migration lock',
                    pg_catalog.quote_literal(r.version), r.pid
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = pg_catalog.format('It started at %s; its session ended before migration_finish or migration_fail, so it may be partly applied.', r.started_at),
                      HINT = pg_catalog.format('Check what it applied, then settle it with SELECT moltres_ops.migration_resolve(%L, ''applied'' | ''failed'' | ''rolled_back'').', r.version);
        END IF;

        SELECT m.status, m.checksum, m.finished_at, m.applied_by INTO r
          FROM @extschema@.migrations m
         WHERE m.version = migration_begin.version
           FOR UPDATE;

        IF FOUND AND r.status = 'applied' THEN
            IF migration_begin.checksum IS NOT NULL AND r.checksum IS NOT NULL
               AND migration_begin.checksum <> r.checksum THEN
                RAISE EXCEPTION 'checksum drift: migration % was applied with checksum %, now given %',
                        pg_catalog.quote_literal(migration_begin.version),
                        pg_catalog.quote_literal(r.checksum),
                        pg_catalog.quote_literal(migration_begin.checksum)
                    USING ERRCODE = 'data_exception',
                          DETAIL = pg_catalog.format('Applied at %s by %s.', r.finished_at, r.applied_by),
                          HINT = 'An applied migration must not change: put the new change in a new version. If the edit is intended, review it and update the recorded checksum in moltres_ops.migrations.';
            END IF;
            RAISE NOTICE 'migration % is already applied; nothing to do',
                    pg_catalog.quote_literal(migration_begin.version);
            PERFORM pg_catalog.pg_advisory_unlock(k.classid, k.objid);
            RETURN false;
        END IF;

        IF FOUND THEN
            -- failed or rolled_back: run it again.
            UPDATE @extschema@.migrations m
               SET name = coalesce(migration_begin.name, m.name),
                   checksum = migration_begin.checksum,
                   status = 'running',
                   started_at = pg_catalog.clock_timestamp(),
                   finished_at = NULL,
                   duration_ms = NULL,
                   applied_by = current_user,
                   application_name = pg_catalog.current_setting('application_name'),
                   pid = me,
                   error = NULL
             WHERE m.version = migration_begin.version;
        ELSE
            INSERT INTO @extschema@.migrations
                   (version, name, checksum, status, started_at, applied_by,
                    application_name, pid)
            VALUES (migration_begin.version, migration_begin.name,
                    migration_begin.checksum, 'running',
                    pg_catalog.clock_timestamp(), current_user,
                    pg_catalog.current_setting('application_name'), me);
        END IF;
    EXCEPTION
        WHEN query_canceled THEN
            PERFORM pg_catalog.pg_advisory_unlock(k.classid, k.objid);
            RAISE;
        WHEN OTHERS THEN
            PERFORM pg_catalog.pg_advisory_unlock(k.classid, k.objid);
            RAISE;
    END;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION migration_begin(text, text, text, interval) IS
'migration_begin: takes the migration lock (waiting up to wait, then 55P03 naming the holder) and records version as running; false with a NOTICE when it is already applied, an error on checksum drift';

-- Shared body of migration_finish and migration_fail.
CREATE FUNCTION _migration_end(version text, new_status text, error text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    k record;
    me integer := pg_catalog.pg_backend_pid();
    my_start timestamptz;
    r record;
    fin timestamptz := pg_catalog.clock_timestamp();
BEGIN
    PERFORM @extschema@._migration_check_version(_migration_end.version);
    PERFORM @extschema@._require_primary(CASE _migration_end.new_status
                                             WHEN 'applied' THEN 'migration_finish'
                                             ELSE 'migration_fail' END);
    SELECT * INTO k FROM @extschema@.migration_lock_key();
    SELECT a.backend_start INTO my_start
      FROM pg_catalog.pg_stat_activity a WHERE a.pid = me;

    SELECT m.status, m.pid, m.started_at INTO r
      FROM @extschema@.migrations m
     WHERE m.version = _migration_end.version
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration % is not in the ledger',
                pg_catalog.quote_literal(_migration_end.version)
            USING ERRCODE = 'undefined_object',
                  HINT = 'Call moltres_ops.migration_begin first.';
    END IF;
    IF r.status <> 'running' THEN
        RAISE EXCEPTION 'migration % is %, not running',
                pg_catalog.quote_literal(_migration_end.version), r.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF r.pid IS DISTINCT FROM me OR r.started_at < my_start THEN
        RAISE EXCEPTION 'migration % was begun by pid %, not by this session',
                pg_catalog.quote_literal(_migration_end.version), r.pid
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Finish a migration from the session that began it. If that session is gone, settle the row with moltres_ops.migration_resolve.';
    END IF;

    UPDATE @extschema@.migrations m
       SET status = _migration_end.new_status,
           finished_at = fin,
           duration_ms = pg_catalog.date_part('epoch', fin - m.started_at) * 1000,
           error = _migration_end.error
     WHERE m.version = _migration_end.version;

    -- Hand the lock over to this transaction: the next migrator starts
    -- only once this ledger row is committed (or rolled back).
    IF EXISTS (SELECT 1 FROM @extschema@._migration_lock_holders() h
                WHERE h.pid = me AND h.exclusive) THEN
        PERFORM pg_catalog.pg_advisory_xact_lock_shared(k.classid, k.objid);
        PERFORM pg_catalog.pg_advisory_unlock(k.classid, k.objid);
    END IF;
END;
$$;

COMMENT ON FUNCTION _migration_end(text, text, text) IS
'_migration_end: internal; records the outcome of a running migration and releases the migration lock at commit';

CREATE FUNCTION migration_finish(version text)
RETURNS void
LANGUAGE sql
AS $$ SELECT @extschema@._migration_end(version, 'applied', NULL) $$;

COMMENT ON FUNCTION migration_finish(text) IS
'migration_finish: records a migration begun by this session as applied and releases the migration lock when the transaction ends';

CREATE FUNCTION migration_fail(version text, error text)
RETURNS void
LANGUAGE sql
AS $$ SELECT @extschema@._migration_end(version, 'failed', error) $$;

COMMENT ON FUNCTION migration_fail(text, text) IS
'migration_fail: records a migration begun by this session as failed, with its error, and releases the migration lock when the transaction ends';

CREATE FUNCTION migration_resolve(version text, status text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    r record;
    note text;
BEGIN
    PERFORM @extschema@._migration_check_version(migration_resolve.version);
    IF migration_resolve.status IS NULL
       OR migration_resolve.status NOT IN ('applied', 'failed', 'rolled_back') THEN
        RAISE EXCEPTION 'status must be applied, failed or rolled_back, not %',
                coalesce(pg_catalog.quote_literal(migration_resolve.status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._require_primary('migration_resolve');

    SELECT m.status, m.pid, m.started_at, m.error INTO r
      FROM @extschema@.migrations m
     WHERE m.version = migration_resolve.version
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration % is not in the ledger',
                pg_catalog.quote_literal(migration_resolve.version)
            USING ERRCODE = 'undefined_object';
    END IF;
    IF r.status = 'running' AND @extschema@._migration_row_live(r.pid, r.started_at) THEN
        RAISE EXCEPTION 'migration % is still running in pid %',
                pg_catalog.quote_literal(migration_resolve.version), r.pid
            USING ERRCODE = 'object_in_use',
                  HINT = pg_catalog.format('Only a migration whose session is gone can be resolved. Wait for it, or stop it first with pg_cancel_backend(%s).', r.pid);
    END IF;
    IF r.status = migration_resolve.status THEN
        RAISE NOTICE 'migration % is already %; nothing to do',
                pg_catalog.quote_literal(migration_resolve.version), r.status;
        RETURN;
    END IF;

    note := pg_catalog.format('resolved from %s to %s by %s at %s',
                              r.status, migration_resolve.status, current_user,
                              pg_catalog.clock_timestamp());
    IF r.status = 'running' THEN
        note := pg_catalog.format('abandoned: pid %s ended without finishing; %s', r.pid, note);
    END IF;

    UPDATE @extschema@.migrations m
       SET status = migration_resolve.status,
           finished_at = coalesce(m.finished_at, pg_catalog.clock_timestamp()),
           error = pg_catalog.concat_ws('; ', m.error, note)
     WHERE m.version = migration_resolve.version;
END;
$$;

COMMENT ON FUNCTION migration_resolve(text, text) IS
'migration_resolve: an operator settles a migration (typically an abandoned running one) as applied, failed or rolled_back; the error column keeps a note of who did it';

CREATE PROCEDURE migrate(version text, name text, sql text,
                         lock_timeout interval DEFAULT '2s',
                         max_attempts int DEFAULT 5,
                         checksum text DEFAULT NULL,
                         wait interval DEFAULT '5min',
                         allow_dangerous boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    sum text;
    lt_ms bigint;
    outcome text;
    e_state text;
    e_msg text;
    e_detail text;
    e_hint text;
    dangerous jsonb;
    pause float8;
BEGIN
    PERFORM @extschema@._migration_check_version(migrate.version);
    IF migrate.sql IS NULL OR pg_catalog.btrim(migrate.sql) = '' THEN
        RAISE EXCEPTION 'migration sql must not be null or empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF migrate.lock_timeout IS NULL OR migrate.lock_timeout <= interval '0' THEN
        RAISE EXCEPTION 'lock_timeout must be a positive interval, not %',
                coalesce(migrate.lock_timeout::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF migrate.max_attempts IS NULL OR migrate.max_attempts < 1 THEN
        RAISE EXCEPTION 'max_attempts must be at least 1, not %',
                coalesce(migrate.max_attempts::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF migrate.allow_dangerous IS NULL THEN
        RAISE EXCEPTION 'allow_dangerous must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._require_primary('migrate');
    IF @extschema@._in_transaction_block() THEN
        RAISE EXCEPTION 'moltres_ops.migrate() cannot run inside a transaction block'
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'It commits the ledger after each step, so that other sessions see the migration running, applied or failed.',
                  HINT = 'CALL it in autocommit mode: in psql outside BEGIN ... COMMIT; in a driver with autocommit on (psycopg: conn.autocommit = True). Inside a transaction, use migration_begin and migration_finish instead.';
    END IF;
    -- Called from a function (an atomic context), this fails here, before
    -- anything is locked or written.
    COMMIT;

    sum := coalesce(migrate.checksum,
                    'sha256:' || pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(migrate.sql, 'UTF8')), 'hex'));
    lt_ms := greatest(least(pg_catalog.ceil(pg_catalog.date_part('epoch', migrate.lock_timeout) * 1000),
                            2147483647), 1)::bigint;

    -- Lint first when the linter is installed: refuse dangerous statements
    -- unless the caller allows them.  Nothing is recorded for a refusal.
    IF pg_catalog.to_regprocedure('@extschema@.lint(text)') IS NOT NULL THEN
        EXECUTE 'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(l)) FROM @extschema@.lint($1) l '
                'WHERE pg_catalog.to_jsonb(l) ->> ''risk'' = ''dangerous'''
           INTO dangerous USING migrate.sql;
        IF dangerous IS NOT NULL AND NOT migrate.allow_dangerous THEN
            RAISE EXCEPTION 'migration % has % dangerous statement(s); not run',
                    pg_catalog.quote_literal(migrate.version), pg_catalog.jsonb_array_length(dangerous)
                USING ERRCODE = 'prohibited_sql_statement_attempted',
                      DETAIL = (SELECT pg_catalog.string_agg(
                                    pg_catalog.concat_ws(': ', d ->> 'rule', coalesce(d ->> 'message', d ->> 'command')),
                                    E'\n')
                                  FROM pg_catalog.jsonb_array_elements(dangerous) d),
                      HINT = 'See moltres_ops.lint(sql) for the safe alternative, or pass allow_dangerous => true after review.';
        END IF;
    END IF;

    IF NOT @extschema@.migration_begin(migrate.version, migrate.name, sum, migrate.wait) THEN
        RETURN;     -- already applied: migration_begin said so
    END IF;
    COMMIT;         -- the running row is visible to everyone now

    FOR attempt IN 1 .. migrate.max_attempts LOOP
        outcome := NULL;
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', lt_ms::text, true);
            EXECUTE migrate.sql;
            outcome := 'ok';
        EXCEPTION
            WHEN lock_not_available THEN
                outcome := 'lock';
                GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            WHEN query_canceled THEN
                outcome := 'error';
                GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            WHEN OTHERS THEN
                outcome := 'error';
                GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        END;

        IF outcome = 'ok' THEN
            -- The statements and the applied row commit together.
            PERFORM @extschema@.migration_finish(migrate.version);
            COMMIT;
            RETURN;
        END IF;
        ROLLBACK;

        IF outcome = 'lock' AND attempt < migrate.max_attempts THEN
            -- Back off with jitter (100 ms doubling, at most 10 s), holding
            -- no lock but the migration lock, so queued readers drain.
            pause := least(0.1 * pg_catalog.power(2, attempt - 1), 10.0) * (0.75 + 0.5 * pg_catalog.random());
            RAISE NOTICE 'migration %: attempt % of % could not get its locks within %; retrying in % ms',
                    pg_catalog.quote_literal(migrate.version), attempt, migrate.max_attempts,
                    @extschema@._migration_fmt_duration(migrate.lock_timeout),
                    pg_catalog.round((pause * 1000)::numeric);
            BEGIN
                PERFORM pg_catalog.pg_sleep(pause);
            EXCEPTION WHEN query_canceled THEN
                outcome := 'error';
                GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            END;
            IF outcome = 'lock' THEN
                CONTINUE;
            END IF;
        END IF;

        -- Failed for good: record it (committed), then raise.
        IF outcome = 'lock' THEN
            PERFORM @extschema@.migration_fail(migrate.version,
                pg_catalog.format('%s (SQLSTATE %s; gave up after %s attempts with lock_timeout %s)',
                                  e_msg, e_state, migrate.max_attempts,
                                  @extschema@._migration_fmt_duration(migrate.lock_timeout)));
            COMMIT;
            RAISE EXCEPTION 'migration % gave up after % attempts: %',
                    pg_catalog.quote_literal(migrate.version), migrate.max_attempts, e_msg
                USING ERRCODE = e_state,
                      DETAIL = 'The ledger records it as failed.',
                      HINT = 'Find what holds the lock in moltres_ops.ddl_activity or pg_locks, then CALL migrate again. Each wait queues the table''s readers behind the migration, so prefer more attempts to a longer lock_timeout.';
        END IF;
        PERFORM @extschema@.migration_fail(migrate.version,
            pg_catalog.format('%s (SQLSTATE %s)', e_msg, e_state));
        COMMIT;
        RAISE EXCEPTION 'migration % failed: %', pg_catalog.quote_literal(migrate.version), e_msg
            USING ERRCODE = e_state,
                  DETAIL = pg_catalog.concat_ws(E'\n', nullif(e_detail, ''), 'The ledger records it as failed.'),
                  HINT = coalesce(nullif(e_hint, ''), 'Fix the cause and CALL migrate again with the same version: a failed version runs again.');
    END LOOP;
END;
$$;

COMMENT ON PROCEDURE migrate(text, text, text, interval, integer, text, interval, boolean) IS
'migrate: runs one migration safely: lint (when installed), begin (committed), the statements under a lock timeout with retries and backoff, then applied or failed (committed either way)';

-- Not executable by PUBLIC: everything that writes the ledger.  A role that
-- deploys needs EXECUTE on these five and SELECT, INSERT, UPDATE on
-- migrations (docs/reference.md has the GRANTs).  _migration_end, their
-- shared body, stays callable so that migration_finish and migration_fail
-- work for such a role; on its own it can only end a migration that the
-- calling session began with migration_begin, and it needs UPDATE on the
-- ledger, which PUBLIC does not have.
REVOKE EXECUTE ON FUNCTION migration_begin(text, text, text, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION migration_finish(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION migration_fail(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION migration_resolve(text, text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE migrate(text, text, text, interval, integer, text, interval, boolean) FROM PUBLIC;

---------------------------------------------------------------------------
-- One view over every migration tool's ledger.
---------------------------------------------------------------------------

-- Tables that look like a tool's ledger, by name and shape (columns and
-- their types), in any schema on the search path or in the tool's default
-- schema.  A table that only shares the name is not reported.
CREATE FUNCTION _migration_ledgers(OUT tool text, OUT nspname name, OUT relname name)
RETURNS SETOF record
LANGUAGE sql STABLE
AS $$
WITH shape(tool, relname, default_schema, cols) AS (VALUES
    ('alembic', 'alembic_version', 'public',
     '{version_num:character varying|text}'::text[]),
    ('django', 'django_migrations', 'public',
     '{id:integer|bigint,app:character varying|text,name:character varying|text,'
     'applied:timestamp with time zone|timestamp without time zone}'),
    ('flyway', 'flyway_schema_history', 'public',
     '{installed_rank:integer,version:character varying,description:character varying,'
     'type:character varying,script:character varying,checksum:integer,'
     'installed_by:character varying,installed_on:timestamp without time zone|timestamp with time zone,'
     'execution_time:integer,success:boolean}'),
    ('liquibase', 'databasechangelog', 'public',
     '{id:character varying,author:character varying,filename:character varying,'
     'dateexecuted:timestamp without time zone|timestamp with time zone,orderexecuted:integer,'
     'exectype:character varying,md5sum:character varying}'),
    ('sqlx', '_sqlx_migrations', 'public',
     '{version:bigint,description:text,installed_on:timestamp with time zone,success:boolean,'
     'checksum:bytea,execution_time:bigint}'),
    ('golang-migrate', 'schema_migrations', 'public',
     '{version:bigint,dirty:boolean}'),
    ('rails', 'schema_migrations', 'public',
     '{version:character varying|text}'),
    ('dbmate', 'schema_migrations', 'public',
     '{version:character varying}'),
    ('knex', 'knex_migrations', 'public',
     '{id:integer|bigint,name:character varying|text,batch:integer,'
     'migration_time:timestamp with time zone|timestamp without time zone}'),
    ('node-pg-migrate', 'pgmigrations', 'public',
     '{id:integer|bigint,name:character varying|text,'
     'run_on:timestamp without time zone|timestamp with time zone}'),
    ('sqitch', 'changes', 'sqitch',
     '{change_id:text,script_hash:text,change:text,project:text,'
     'committed_at:timestamp with time zone}'),
    ('prisma', '_prisma_migrations', 'public',
     '{id:character varying|text,checksum:character varying|text,'
     'finished_at:timestamp with time zone,migration_name:character varying|text,logs:text,'
     'rolled_back_at:timestamp with time zone,started_at:timestamp with time zone,'
     'applied_steps_count:integer}')
),
cand AS (
    SELECT s.tool, s.cols, c.oid AS relid, n.nspname, c.relname
      FROM shape s
      JOIN pg_catalog.pg_class c ON c.relname = s.relname AND c.relkind IN ('r', 'p')
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = s.default_schema
        OR n.nspname = ANY (pg_catalog.current_schemas(false))
),
-- a column of the table, with its type without modifiers
att AS (
    SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, NULL) AS typ, a.atttypmod
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid IN (SELECT relid FROM cand)
       AND a.attnum > 0 AND NOT a.attisdropped
),
fits AS (
    SELECT c.*
      FROM cand c
     WHERE NOT EXISTS (
            SELECT 1 FROM pg_catalog.unnest(c.cols) req
             WHERE NOT EXISTS (
                    SELECT 1 FROM att
                     WHERE att.attrelid = c.relid
                       AND att.attname = pg_catalog.split_part(req, ':', 1)
                       AND att.typ = ANY (pg_catalog.string_to_array(pg_catalog.split_part(req, ':', 2), '|'))))
)
SELECT 'moltres_ops'::text, '@extschema@'::name, 'migrations'::name
UNION ALL
SELECT f.tool, f.nspname, f.relname
  FROM fits f
 WHERE CASE f.tool
        -- Rails and dbmate both keep one text version column; Rails keeps
        -- ar_internal_metadata beside it and an unbounded varchar, dbmate
        -- a varchar(128) and nothing else.
        WHEN 'rails' THEN
            (SELECT count(*) FROM att WHERE att.attrelid = f.relid) = 1
            AND (EXISTS (SELECT 1 FROM pg_catalog.pg_class c2
                          WHERE c2.relname = 'ar_internal_metadata' AND c2.relkind IN ('r', 'p')
                            AND c2.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = f.nspname))
                 OR NOT EXISTS (SELECT 1 FROM att WHERE att.attrelid = f.relid
                                   AND att.attname = 'version' AND att.typ = 'character varying'
                                   AND att.atttypmod = 128 + 4))
        WHEN 'dbmate' THEN
            (SELECT count(*) FROM att WHERE att.attrelid = f.relid) = 1
            AND EXISTS (SELECT 1 FROM att WHERE att.attrelid = f.relid
                           AND att.attname = 'version' AND att.atttypmod = 128 + 4)
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c2
                             WHERE c2.relname = 'ar_internal_metadata' AND c2.relkind IN ('r', 'p')
                               AND c2.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = f.nspname))
        -- Sqitch's registry: changes beside an events table.
        WHEN 'sqitch' THEN
            EXISTS (SELECT 1 FROM pg_catalog.pg_class e
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = e.oid AND a.attnum > 0 AND NOT a.attisdropped
                     WHERE e.relname = 'events' AND e.relkind IN ('r', 'p')
                       AND e.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = f.nspname)
                       AND a.attname IN ('event', 'change', 'project', 'committed_at')
                    HAVING count(*) = 4)
        ELSE true
       END
$$;

COMMENT ON FUNCTION _migration_ledgers() IS
'_migration_ledgers: internal; every table in this database recognised, by name and shape, as a migration tool''s ledger';

-- Whether a tool's advisory lock (the one-bigint form) is held now in this
-- database: node-pg-migrate, Prisma and Sqitch take a fixed key.
CREATE FUNCTION _migration_advisory_holder(lock_key bigint)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT l.pid
      FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'advisory'
       AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                          WHERE d.datname = pg_catalog.current_database())
       AND l.classid = (lock_key >> 32)::oid
       AND l.objid = (lock_key & 4294967295)::oid
       AND l.objsubid = 1
       AND l.granted
     LIMIT 1
$$;

COMMENT ON FUNCTION _migration_advisory_holder(bigint) IS
'_migration_advisory_holder: internal; pid holding a bigint advisory lock in this database, if any';

-- Whether schema.table exists with that column of that type: the lock
-- tables beside Liquibase's and Knex's ledgers are optional.
CREATE FUNCTION _migration_has_column(nspname name, relname name, colname name, coltype regtype)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', nspname, relname))
                      AND a.attname = colname AND a.atttypid = coltype AND NOT a.attisdropped)
$$;

COMMENT ON FUNCTION _migration_has_column(name, name, name, regtype) IS
'_migration_has_column: internal; whether a table exists with a column of a type';

-- The status of one ledger.  Errors (such as no SELECT privilege on it)
-- propagate: migration_status catches them per ledger, ready() does not.
CREATE FUNCTION _migration_ledger_status(tool text, nspname name, relname name,
    OUT current_version text, OUT applied_count bigint,
    OUT last_applied_at timestamptz, OUT state text, OUT detail text)
RETURNS record
LANGUAGE plpgsql
AS $$
DECLARE
    q text;
    bad bigint;
    bad_version text;
    bad_at timestamptz;
    bad_text text;
    holder integer;
    locked boolean;
    r record;
BEGIN
    -- Each query returns: current version, applied count, last applied,
    -- then how many failed or dirty entries there are and the latest one.
    q := CASE tool
    WHEN 'alembic' THEN
        'SELECT pg_catalog.string_agg(version_num::text, '','' ORDER BY version_num::text),
                NULL::bigint, NULL::timestamptz, 0::bigint, NULL, NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'django' THEN
        'SELECT (SELECT app || ''.'' || name FROM %1$I.%2$I ORDER BY applied DESC, id DESC LIMIT 1),
                count(*), max(applied)::timestamptz, 0::bigint, NULL, NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'flyway' THEN
        'SELECT (SELECT version::text FROM %1$I.%2$I WHERE success AND version IS NOT NULL
                  ORDER BY installed_rank DESC LIMIT 1),
                count(*) FILTER (WHERE success),
                (max(installed_on) FILTER (WHERE success))::timestamptz,
                count(*) FILTER (WHERE NOT success),
                (SELECT coalesce(version::text, script::text) FROM %1$I.%2$I WHERE NOT success
                  ORDER BY installed_rank DESC LIMIT 1),
                (SELECT installed_on::timestamptz FROM %1$I.%2$I WHERE NOT success
                  ORDER BY installed_rank DESC LIMIT 1),
                (SELECT description::text FROM %1$I.%2$I WHERE NOT success
                  ORDER BY installed_rank DESC LIMIT 1)
           FROM %1$I.%2$I'
    WHEN 'liquibase' THEN
        'SELECT (SELECT id::text FROM %1$I.%2$I WHERE exectype IN (''EXECUTED'', ''RERAN'', ''MARK_RAN'')
                  ORDER BY dateexecuted DESC, orderexecuted DESC LIMIT 1),
                count(*) FILTER (WHERE exectype IN (''EXECUTED'', ''RERAN'', ''MARK_RAN'')),
                (max(dateexecuted) FILTER (WHERE exectype IN (''EXECUTED'', ''RERAN'', ''MARK_RAN'')))::timestamptz,
                count(*) FILTER (WHERE exectype = ''FAILED''),
                (SELECT id::text FROM %1$I.%2$I WHERE exectype = ''FAILED''
                  ORDER BY dateexecuted DESC, orderexecuted DESC LIMIT 1),
                (SELECT dateexecuted::timestamptz FROM %1$I.%2$I WHERE exectype = ''FAILED''
                  ORDER BY dateexecuted DESC, orderexecuted DESC LIMIT 1),
                (SELECT description::text FROM %1$I.%2$I WHERE exectype = ''FAILED''
                  ORDER BY dateexecuted DESC, orderexecuted DESC LIMIT 1)
           FROM %1$I.%2$I'
    WHEN 'sqlx' THEN
        'SELECT (max(version) FILTER (WHERE success))::text,
                count(*) FILTER (WHERE success),
                max(installed_on) FILTER (WHERE success),
                count(*) FILTER (WHERE NOT success),
                (min(version) FILTER (WHERE NOT success))::text,
                min(installed_on) FILTER (WHERE NOT success),
                NULL
           FROM %1$I.%2$I'
    WHEN 'golang-migrate' THEN
        'SELECT max(version)::text, NULL::bigint, NULL::timestamptz,
                count(*) FILTER (WHERE dirty), (max(version) FILTER (WHERE dirty))::text,
                NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'rails' THEN
        'SELECT max(version::text), count(*), NULL::timestamptz, 0::bigint, NULL, NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'dbmate' THEN
        'SELECT max(version::text), count(*), NULL::timestamptz, 0::bigint, NULL, NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'knex' THEN
        'SELECT (SELECT name::text FROM %1$I.%2$I ORDER BY id DESC LIMIT 1),
                count(*), max(migration_time)::timestamptz, 0::bigint, NULL, NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'node-pg-migrate' THEN
        'SELECT (SELECT name::text FROM %1$I.%2$I ORDER BY id DESC LIMIT 1),
                count(*), max(run_on)::timestamptz, 0::bigint, NULL, NULL::timestamptz, NULL
           FROM %1$I.%2$I'
    WHEN 'sqitch' THEN
        -- A deploy that fails is reverted and logged as a ''fail'' event:
        -- a project is failed while its latest event is one.
        'SELECT (SELECT change FROM %1$I.%2$I ORDER BY committed_at DESC LIMIT 1),
                (SELECT count(*) FROM %1$I.%2$I),
                (SELECT max(committed_at) FROM %1$I.%2$I),
                count(*), max(change), max(committed_at), max(note)
           FROM (SELECT DISTINCT ON (project) project, event, change, committed_at, note
                   FROM %1$I.events ORDER BY project, committed_at DESC) last
          WHERE event = ''fail'''
    WHEN 'prisma' THEN
        'SELECT (SELECT migration_name::text FROM %1$I.%2$I
                  WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL
                  ORDER BY finished_at DESC LIMIT 1),
                count(*) FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL),
                max(finished_at) FILTER (WHERE rolled_back_at IS NULL),
                count(*) FILTER (WHERE finished_at IS NULL AND rolled_back_at IS NULL),
                (SELECT migration_name::text FROM %1$I.%2$I
                  WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at DESC LIMIT 1),
                (SELECT started_at FROM %1$I.%2$I
                  WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at DESC LIMIT 1),
                (SELECT logs FROM %1$I.%2$I
                  WHERE finished_at IS NULL AND rolled_back_at IS NULL ORDER BY started_at DESC LIMIT 1)
           FROM %1$I.%2$I'
    END;

    IF tool = 'moltres_ops' THEN
        SELECT (SELECT m.version FROM @extschema@.migrations m WHERE m.status = 'applied'
                 ORDER BY m.finished_at DESC NULLS LAST, m.version DESC LIMIT 1),
               count(*) FILTER (WHERE m.status = 'applied'),
               max(m.finished_at) FILTER (WHERE m.status = 'applied')
          INTO current_version, applied_count, last_applied_at
          FROM @extschema@.migrations m;

        SELECT m.version, m.pid, m.started_at INTO r
          FROM @extschema@.migrations m
         WHERE m.status = 'running'
           AND NOT @extschema@._migration_row_live(m.pid, m.started_at)
         ORDER BY m.started_at LIMIT 1;
        IF FOUND THEN
            state := 'abandoned';
            detail := pg_catalog.format('version %L was left running by pid %s (started %s), which no longer holds the migration lock; check what it applied, then call moltres_ops.migration_resolve(%L, status)',
                                        r.version, r.pid, r.started_at, r.version);
            RETURN;
        END IF;
        SELECT m.version, m.pid, m.started_at INTO r
          FROM @extschema@.migrations m
         WHERE m.status = 'running' ORDER BY m.started_at LIMIT 1;
        IF FOUND THEN
            state := 'running';
            detail := pg_catalog.format('version %L running for %s in pid %s',
                                        r.version,
                                        @extschema@._migration_fmt_duration(pg_catalog.clock_timestamp() - r.started_at),
                                        r.pid);
            RETURN;
        END IF;
        SELECT m.version, m.finished_at, m.error, count(*) OVER () AS n INTO r
          FROM @extschema@.migrations m
         WHERE m.status = 'failed' ORDER BY m.finished_at DESC NULLS LAST LIMIT 1;
        IF FOUND THEN
            state := 'failed';
            detail := pg_catalog.format('%s failed; latest: version %L at %s: %s',
                                        r.n, r.version, r.finished_at, coalesce(r.error, '(no error text)'));
            RETURN;
        END IF;
        state := 'clean';
        RETURN;
    END IF;

    IF q IS NULL THEN
        RAISE EXCEPTION 'unknown migration tool %', pg_catalog.quote_literal(tool)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    EXECUTE pg_catalog.format(q, nspname, relname)
       INTO current_version, applied_count, last_applied_at, bad, bad_version, bad_at, bad_text;
    bad := coalesce(bad, 0);
    state := 'clean';

    CASE tool
    WHEN 'alembic' THEN
        IF current_version IS NULL THEN
            detail := 'no revision stamped';
        ELSIF pg_catalog.strpos(current_version, ',') > 0 THEN
            detail := 'several heads: ' || current_version;
        END IF;
    WHEN 'flyway' THEN
        IF bad > 0 THEN
            state := 'failed';
            detail := pg_catalog.format('%s failed; latest: %s (%s) at %s; fix it, then flyway repair',
                                        bad, bad_version, bad_text, bad_at);
        END IF;
    WHEN 'liquibase' THEN
        IF bad > 0 THEN
            state := 'failed';
            detail := pg_catalog.format('%s failed; latest: changeset %s (%s) at %s',
                                        bad, bad_version, bad_text, bad_at);
        END IF;
        IF @extschema@._migration_has_column(nspname, 'databasechangeloglock', 'locked', 'boolean') THEN
            -- (EXECUTE does not set FOUND: the query says whether it found)
            EXECUTE pg_catalog.format('SELECT true, lockedby::text, lockgranted::timestamptz FROM %I.databasechangeloglock WHERE locked LIMIT 1', nspname)
               INTO locked, bad_text, bad_at;
            IF locked THEN
                state := 'locked';
                detail := pg_catalog.format('databasechangeloglock held by %s since %s; if that process is gone: liquibase release-locks',
                                            coalesce(bad_text, '?'), bad_at);
            END IF;
        END IF;
    WHEN 'sqlx' THEN
        IF bad > 0 THEN
            state := 'dirty';
            detail := pg_catalog.format('version %s has success = false (partly applied, installed %s); sqlx refuses to migrate until it is fixed and its row deleted',
                                        bad_version, bad_at);
        END IF;
    WHEN 'golang-migrate' THEN
        IF bad > 0 THEN
            state := 'dirty';
            detail := pg_catalog.format('version %s is dirty: it failed or was interrupted; fix the schema, then migrate force %s',
                                        bad_version, bad_version);
        END IF;
    WHEN 'knex' THEN
        IF @extschema@._migration_has_column(nspname, 'knex_migrations_lock', 'is_locked', 'integer') THEN
            EXECUTE pg_catalog.format('SELECT true FROM %I.knex_migrations_lock WHERE is_locked = 1 LIMIT 1', nspname)
               INTO locked;
            IF locked THEN
                state := 'locked';
                detail := 'knex_migrations_lock.is_locked = 1: a run is in progress, or a killed run left it; if none is running: knex migrate:unlock';
            END IF;
        END IF;
    WHEN 'node-pg-migrate' THEN
        holder := @extschema@._migration_advisory_holder(7241865325823964);
        IF holder IS NOT NULL THEN
            state := 'running';
            detail := pg_catalog.format('pid %s holds node-pg-migrate''s advisory lock', holder);
        END IF;
    WHEN 'sqitch' THEN
        IF bad > 0 THEN
            state := 'failed';
            detail := pg_catalog.format('deploy of change %s failed at %s and was reverted',
                                        bad_version, bad_at);
        END IF;
        holder := @extschema@._migration_advisory_holder(75474063);
        IF holder IS NOT NULL THEN
            state := 'running';
            detail := pg_catalog.format('pid %s holds sqitch''s advisory lock', holder);
        END IF;
        applied_count := coalesce(applied_count, 0);
    WHEN 'prisma' THEN
        holder := @extschema@._migration_advisory_holder(72707369);
        IF bad > 0 AND holder IS NOT NULL THEN
            state := 'running';
            detail := pg_catalog.format('migration %s started at %s; pid %s holds prisma''s advisory lock',
                                        bad_version, bad_at, holder);
        ELSIF bad > 0 THEN
            state := 'failed';
            detail := pg_catalog.format('migration %s started at %s and did not finish: %s; prisma migrate resolve settles it',
                                        bad_version, bad_at, coalesce(bad_text, '(no log)'));
        END IF;
    ELSE
        NULL;
    END CASE;
END;
$$;

COMMENT ON FUNCTION _migration_ledger_status(text, name, name) IS
'_migration_ledger_status: internal; the status of one migration ledger';

CREATE FUNCTION migration_status(
    OUT tool text, OUT ledger text, OUT current_version text,
    OUT applied_count bigint, OUT last_applied_at timestamptz,
    OUT state text, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql
AS $$
DECLARE
    l record;
    s record;
BEGIN
    FOR l IN SELECT * FROM @extschema@._migration_ledgers() x
              ORDER BY x.tool <> 'moltres_ops', x.tool, x.nspname, x.relname LOOP
        tool := l.tool;
        ledger := pg_catalog.format('%I.%I', l.nspname, l.relname);
        BEGIN
            SELECT * INTO s FROM @extschema@._migration_ledger_status(l.tool, l.nspname, l.relname);
            current_version := s.current_version;
            applied_count := s.applied_count;
            last_applied_at := s.last_applied_at;
            state := s.state;
            detail := s.detail;
        EXCEPTION WHEN OTHERS THEN
            -- One unreadable ledger must not hide the others.
            current_version := NULL;
            applied_count := NULL;
            last_applied_at := NULL;
            state := NULL;
            detail := pg_catalog.format('cannot read %s: %s', ledger, SQLERRM);
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION migration_status() IS
'migration_status: one row per migration ledger found in this database (moltres_ops and the common tools), read with the caller''s privileges';

CREATE VIEW migration_status AS
    SELECT tool, ledger, current_version, applied_count, last_applied_at, state, detail
      FROM migration_status();

COMMENT ON VIEW migration_status IS
'migration_status: one row per migration ledger found in this database: tool, current version, applied count, state (clean, running, failed, dirty, locked, abandoned) and detail';

REVOKE ALL ON migration_status FROM PUBLIC;
GRANT SELECT ON migration_status TO pg_monitor;

-- Whether a ledger records expected_version as applied.
CREATE FUNCTION _migration_ledger_has(tool text, nspname name, relname name, expected text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    q text;
    ok boolean;
    num numeric;
BEGIN
    IF tool = 'moltres_ops' THEN
        RETURN EXISTS (SELECT 1 FROM @extschema@.migrations m
                        WHERE m.version = expected AND m.status = 'applied');
    END IF;
    IF tool = 'golang-migrate' THEN
        -- One row holding the latest version: anything at or past it is
        -- applied, unless that very version is dirty.
        BEGIN
            num := expected::numeric;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'golang-migrate versions are integers, not %', pg_catalog.quote_literal(expected)
                USING ERRCODE = 'invalid_text_representation';
        END;
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE version > $1 OR (version = $1 AND NOT dirty))',
                                  nspname, relname)
           INTO ok USING num;
        RETURN ok;
    END IF;
    q := CASE tool
        WHEN 'alembic' THEN 'version_num::text = $1'
        WHEN 'django' THEN 'app || ''.'' || name = $1'
        WHEN 'flyway' THEN 'version::text = $1 AND success'
        WHEN 'liquibase' THEN 'id::text = $1 AND exectype IN (''EXECUTED'', ''RERAN'', ''MARK_RAN'')'
        WHEN 'sqlx' THEN 'version::text = $1 AND success'
        WHEN 'rails' THEN 'version::text = $1'
        WHEN 'dbmate' THEN 'version::text = $1'
        WHEN 'knex' THEN 'name = $1 OR pg_catalog.regexp_replace(name, ''\.[^.]*$'', '''') = $1'
        WHEN 'node-pg-migrate' THEN 'name = $1'
        WHEN 'sqitch' THEN 'change = $1 OR change_id = $1'
        WHEN 'prisma' THEN 'migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL'
    END;
    IF q IS NULL THEN
        RAISE EXCEPTION 'unknown migration tool %', pg_catalog.quote_literal(tool)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE %s)', nspname, relname, q)
       INTO ok USING expected;
    IF NOT ok AND tool = 'sqitch' THEN
        -- a Sqitch tag (@v1.0, or v1.0) names a deployed point too
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.tags WHERE tag = $1 OR tag = ''@'' || $1)', nspname)
           INTO ok USING expected;
    END IF;
    RETURN ok;
END;
$$;

COMMENT ON FUNCTION _migration_ledger_has(text, name, name, text) IS
'_migration_ledger_has: internal; whether a ledger records a version as applied';

CREATE FUNCTION ready(expected_version text DEFAULT NULL, tool text DEFAULT 'moltres_ops')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    t text := pg_catalog.lower(pg_catalog.btrim(ready.tool));
    tools CONSTANT text[] := ARRAY['moltres_ops', 'alembic', 'django', 'flyway', 'liquibase',
                                   'sqlx', 'golang-migrate', 'rails', 'dbmate', 'knex',
                                   'node-pg-migrate', 'sqitch', 'prisma'];
    l record;
    s record;
    seen boolean := false;
BEGIN
    IF t IS NULL OR NOT t = ANY (tools) THEN
        RAISE EXCEPTION 'unknown migration tool %', coalesce(pg_catalog.quote_literal(ready.tool), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Known tools: ' || pg_catalog.array_to_string(tools, ', ') || '.';
    END IF;
    IF ready.expected_version IS NOT NULL AND ready.expected_version !~ '[^[:space:]]' THEN
        RAISE EXCEPTION 'expected_version must not be empty or only white space'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL to ask only whether nothing is failed, dirty, locked, running or abandoned.';
    END IF;

    -- With a version: some ledger of the tool has it applied (an
    -- application sees its own ledger through its search_path).  Without:
    -- there is a ledger and none of them is failed, dirty, locked, running
    -- or abandoned.
    FOR l IN SELECT * FROM @extschema@._migration_ledgers() x WHERE x.tool = t LOOP
        seen := true;
        IF ready.expected_version IS NULL THEN
            SELECT * INTO s FROM @extschema@._migration_ledger_status(l.tool, l.nspname, l.relname);
            IF s.state <> 'clean' THEN
                RETURN false;
            END IF;
        ELSIF @extschema@._migration_ledger_has(l.tool, l.nspname, l.relname, ready.expected_version) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN seen AND ready.expected_version IS NULL;
END;
$$;

COMMENT ON FUNCTION ready(text, text) IS
'ready: for readiness probes; true when a ledger of that tool has expected_version applied, or, with NULL, when the tool has a ledger here and none is failed, dirty, locked, running or abandoned';

---------------------------------------------------------------------------
-- Live DDL.
---------------------------------------------------------------------------

CREATE VIEW ddl_activity AS
WITH RECURSIVE
lk AS (
    SELECT l.pid, l.locktype, l.database, l.relation, l.mode, l.granted, l.waitstart,
           pg_catalog.array_position(
               '{AccessShareLock,RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}'::text[],
               l.mode) AS strength
      FROM pg_catalog.pg_locks l
     WHERE l.pid IS NOT NULL
),
-- relation locks in this database, on relations that are not temporary
rel AS (
    SELECT lk.*, c.relkind
      FROM lk
      LEFT JOIN pg_catalog.pg_class c ON c.oid = lk.relation
     WHERE lk.locktype = 'relation'
       AND lk.database = (SELECT d.oid FROM pg_catalog.pg_database d
                           WHERE d.datname = pg_catalog.current_database())
       AND c.relpersistence IS DISTINCT FROM 't'
),
-- backends that hold or want ShareUpdateExclusive or stronger (parallel
-- workers are their leader's)
ddl AS (
    SELECT DISTINCT rel.pid
      FROM rel
     WHERE rel.strength >= 4
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                        WHERE a.pid = rel.pid AND a.leader_pid IS NOT NULL AND a.leader_pid <> a.pid)
),
-- the one lock each backend waits for
waits AS (
    SELECT DISTINCT ON (lk.pid) lk.pid, lk.locktype, lk.database, lk.relation, lk.mode, lk.waitstart
      FROM lk
     WHERE NOT lk.granted
     ORDER BY lk.pid, lk.waitstart
),
edge AS (
    SELECT w.pid AS waiter, b.blocker
      FROM waits w, pg_catalog.unnest(pg_catalog.pg_blocking_pids(w.pid)) AS b(blocker)
),
-- everyone queued behind a backend, directly or through another waiter
behind(root, waiter) AS (
    SELECT e.blocker, e.waiter FROM edge e
    UNION
    SELECT b.root, e.waiter FROM behind b JOIN edge e ON e.blocker = b.waiter
),
queued AS (
    SELECT root, count(DISTINCT waiter) FILTER (WHERE waiter <> root) AS n
      FROM behind GROUP BY root
),
progress AS (
    SELECT p.pid, p.relid, p.phase,
           -- counters of an earlier phase linger: read the current one's
           CASE WHEN p.phase LIKE 'waiting for%' THEN
                    CASE WHEN p.lockers_total > 0 THEN 100.0 * p.lockers_done / p.lockers_total END
                WHEN p.phase LIKE '%tuples%' THEN
                    CASE WHEN p.tuples_total > 0 THEN 100.0 * p.tuples_done / p.tuples_total END
                WHEN p.blocks_total > 0 THEN 100.0 * p.blocks_done / p.blocks_total
                WHEN p.partitions_total > 0 THEN 100.0 * p.partitions_done / p.partitions_total
           END AS pct
      FROM pg_catalog.pg_stat_progress_create_index p
    UNION ALL
    SELECT p.pid, p.relid, p.phase,
           CASE WHEN p.phase = 'seq scanning heap' AND p.heap_blks_total > 0
                THEN 100.0 * p.heap_blks_scanned / p.heap_blks_total END
      FROM pg_catalog.pg_stat_progress_cluster p
    UNION ALL
    SELECT p.pid, p.relid, p.phase,
           CASE WHEN p.heap_blks_total > 0 AND p.phase = 'scanning heap'
                    THEN 100.0 * p.heap_blks_scanned / p.heap_blks_total
                WHEN p.heap_blks_total > 0 AND p.phase = 'vacuuming heap'
                    THEN 100.0 * p.heap_blks_vacuumed / p.heap_blks_total
           END
      FROM pg_catalog.pg_stat_progress_vacuum p
    UNION ALL
    SELECT p.pid, p.relid, p.phase,
           CASE WHEN p.sample_blks_total > 0 THEN 100.0 * p.sample_blks_scanned / p.sample_blks_total END
      FROM pg_catalog.pg_stat_progress_analyze p
),
-- the relation a row is about: the one waited for, else the one the
-- progress view names, else the most strongly locked (tables first)
target AS (
    SELECT d.pid,
           coalesce(
               (SELECT w.relation FROM waits w
                 WHERE w.pid = d.pid AND w.locktype = 'relation'
                   AND w.database = (SELECT o.oid FROM pg_catalog.pg_database o
                                      WHERE o.datname = pg_catalog.current_database())),
               (SELECT p.relid FROM progress p
                 WHERE p.pid = d.pid AND p.relid IS NOT NULL AND p.relid <> 0
                   AND EXISTS (SELECT 1 FROM rel r WHERE r.pid = d.pid AND r.relation = p.relid)
                 LIMIT 1),
               (SELECT r.relation FROM rel r
                 WHERE r.pid = d.pid AND r.granted
                 ORDER BY r.strength DESC, (r.relkind IN ('r', 'p', 'm')) DESC NULLS LAST, r.relation
                 LIMIT 1)) AS relation
      FROM ddl d
)
SELECT t.pid,
       a.usename,
       a.application_name,
       a.query,
       t.relation::regclass AS relation,
       (SELECT r.mode FROM rel r
         WHERE r.pid = t.pid AND r.relation = t.relation AND r.granted
         ORDER BY r.strength DESC LIMIT 1) AS mode_held,
       CASE WHEN w.pid IS NULL THEN NULL
            WHEN w.locktype = 'relation' THEN w.mode
            ELSE w.mode || ' (' || w.locktype || ')'
       END AS mode_wanted,
       w.pid IS NULL AS granted,
       CASE WHEN w.pid IS NOT NULL
            THEN coalesce(greatest(pg_catalog.clock_timestamp() - w.waitstart, interval '0'), interval '0')
       END AS waiting,
       coalesce(q.n, 0)::int AS queued_behind,
       pg_catalog.pg_blocking_pids(t.pid) AS blocked_by,
       pr.phase,
       pg_catalog.round(pr.pct, 1)::float8 AS progress_pct
  FROM target t
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = t.pid
  LEFT JOIN waits w ON w.pid = t.pid
  LEFT JOIN queued q ON q.root = t.pid
  LEFT JOIN LATERAL (SELECT p.phase, p.pct FROM progress p WHERE p.pid = t.pid LIMIT 1) pr ON true;

COMMENT ON VIEW ddl_activity IS
'ddl_activity: one row per backend running or waiting on DDL, or holding or wanting a ShareUpdateExclusive or stronger lock on a relation of this database: locks held and wanted, wait time, how many sessions queue behind it, who blocks it, progress';

REVOKE ALL ON ddl_activity FROM PUBLIC;
GRANT SELECT ON ddl_activity TO pg_monitor;
