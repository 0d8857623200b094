-- moltres_ops install script, part 80: safe-migration procedures.
--
--   CALL with_lock_retry(sql, ...)        run SQL in its own transaction under
--                                         a short lock_timeout, retried with
--                                         backoff
--   CALL safe_add_column(...)             ADD COLUMN without a table rewrite
--   CALL safe_set_not_null(...)           CHECK NOT VALID -> VALIDATE ->
--                                         SET NOT NULL -> DROP the CHECK
--   CALL safe_add_foreign_key(...)        NOT VALID -> VALIDATE
--   CALL safe_add_check(...)              NOT VALID -> VALIDATE
--   CALL backfill(...)                    batched UPDATE by primary key,
--                                         committed per batch, resumable
--   backfills, backfill_progress          its progress
--
-- Each procedure COMMITs between steps, so it must be CALLed at top level
-- (autocommit), not inside BEGIN ... COMMIT and not from a function: it
-- refuses, before doing anything, with SQLSTATE 25001.  Each DDL step is
-- its own transaction run by _lock_retry: SET LOCAL lock_timeout (100 ms by
-- default), and on 55P03 roll back, sleep, try again.  A waiting ALTER
-- therefore queues the table's readers for at most one lock_timeout at a
-- time, and between attempts holds no lock at all.
--
-- Backoff schedule (the same shape as migrate()'s): after failed attempt n
-- the pause is min(100 ms * 2^(n-1), max_pause) times a random factor in
-- [0.75, 1.25): about 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10 s.  With the
-- defaults (lock_timeout 100 ms, 10 attempts, max_pause 10 s) a step gives
-- up after about 33 s (at most 42 s), having queued readers for at most
-- 100 ms at a time.
--
-- Every procedure runs with the caller's privileges (no SECURITY DEFINER):
-- the DDL needs the caller to own the table, as it would typed by hand, and
-- the server's own error says so otherwise.  Identifiers are quoted with
-- format('%I'); tables arrive as regclass.  The SQL fragments a caller
-- passes on purpose (a CHECK expression, a default, a backfill's SET list
-- and WHERE condition) are executed as given, after _fragment_problem()
-- has made sure they cannot escape the parentheses they are pasted into.
-- Nothing here is executable by PUBLIC (docs/reference.md has the GRANT a
-- deploy role needs).

-- Why a SQL fragment cannot be pasted into a statement (NULL: it can).
CREATE FUNCTION _fragment_problem(fragment text)
RETURNS text
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'moltres_ops_fragment_problem';

COMMENT ON FUNCTION _fragment_problem(text) IS
'_fragment_problem: internal to the safe-migration procedures; why a SQL fragment would escape the parentheses it is pasted into, or NULL';

CREATE FUNCTION _update_set_columns(sql text)
RETURNS text[]
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'moltres_ops_update_set_columns';

COMMENT ON FUNCTION _update_set_columns(text) IS
'_update_set_columns: internal to backfill(); the columns the SET list assigns when sql parses as one UPDATE without WITH, FROM or RETURNING, else NULL';

-- Raise a clear error for a fragment that is NULL, empty or would escape.
CREATE FUNCTION _check_fragment(fragment text, what text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    why text;
BEGIN
    IF fragment IS NULL OR pg_catalog.btrim(fragment) = '' THEN
        RAISE EXCEPTION '% must not be null or empty', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    why := @extschema@._fragment_problem(fragment);
    IF why IS NOT NULL THEN
        RAISE EXCEPTION '% % is refused: %', what, pg_catalog.quote_literal(fragment), why
            USING ERRCODE = 'syntax_error',
                  HINT = 'Pass one SQL expression; it is pasted inside parentheses of a statement built around it.';
    END IF;
END;
$$;

COMMENT ON FUNCTION _check_fragment(text, text) IS
'_check_fragment: internal; refuses a NULL or empty SQL fragment, or one that would escape its parentheses';

-- Refuse to start inside a transaction block (COMMIT would fail half-way).
CREATE FUNCTION _require_top_level(what text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF @extschema@._in_transaction_block() THEN
        RAISE EXCEPTION 'moltres_ops.%() cannot run inside a transaction block', what
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'It commits after each step, so that no step holds its lock longer than it needs.',
                  HINT = 'CALL it in autocommit mode: in psql outside BEGIN ... COMMIT; in a driver with autocommit on (psycopg: conn.autocommit = True).';
    END IF;
END;
$$;

COMMENT ON FUNCTION _require_top_level(text) IS
'_require_top_level: internal; raises 25001 inside a transaction block';

-- The pause before attempt n + 1, in seconds (see the schedule above).
CREATE FUNCTION _lock_retry_pause(attempt integer, max_pause interval)
RETURNS float8
LANGUAGE sql VOLATILE
AS $$
    SELECT least(0.1 * pg_catalog.power(2, least(attempt, 40) - 1),
                 pg_catalog.date_part('epoch', max_pause))
           * (0.75 + 0.5 * pg_catalog.random())
$$;

COMMENT ON FUNCTION _lock_retry_pause(integer, interval) IS
'_lock_retry_pause: internal; seconds to sleep after failed attempt n: min(100 ms * 2^(n-1), max_pause) * [0.75, 1.25)';

CREATE FUNCTION _check_retry_args(lock_timeout interval, max_attempts integer, max_pause interval)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF lock_timeout IS NULL OR lock_timeout <= interval '0' THEN
        RAISE EXCEPTION 'lock_timeout must be a positive interval, not %',
                coalesce(lock_timeout::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts IS NULL OR max_attempts < 1 THEN
        RAISE EXCEPTION 'max_attempts must be at least 1, not %',
                coalesce(max_attempts::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_pause IS NULL OR max_pause < interval '0' THEN
        RAISE EXCEPTION 'max_pause must be zero or a positive interval, not %',
                coalesce(max_pause::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

COMMENT ON FUNCTION _check_retry_args(interval, integer, interval) IS
'_check_retry_args: internal; validates lock_timeout, max_attempts and max_pause';

-- Raise an error again from its parts; RAISE refuses a NULL option, and an
-- empty one would print an empty DETAIL or HINT line.
CREATE FUNCTION _reraise(state text, message text, detail text, hint text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF nullif(detail, '') IS NULL AND nullif(hint, '') IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message;
    ELSIF nullif(hint, '') IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, DETAIL = detail;
    ELSIF nullif(detail, '') IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, DETAIL = detail, HINT = hint;
END;
$$;

COMMENT ON FUNCTION _reraise(text, text, text, text) IS
'_reraise: internal; raises an error from its SQLSTATE, message, detail and hint';

-- The engine of every step: sql in its own transaction (committed), under
-- SET LOCAL lock_timeout, retried on 55P03 with backoff.  what names the
-- step in messages.  An error whose SQLSTATE is in catch is rolled back and
-- returned in err_state, err_message, err_detail (all NULL on success);
-- any other is raised again as the server gave it (same SQLSTATE, message,
-- detail, hint), after a rollback.  (A procedure that COMMITs cannot be
-- called inside an exception block, hence the out-parameters.)
CREATE PROCEDURE _lock_retry(sql text, lock_timeout interval, max_attempts integer,
                             max_pause interval, what text, catch text[],
                             INOUT err_state text, INOUT err_message text,
                             INOUT err_detail text)
LANGUAGE plpgsql
AS $$
DECLARE
    lt_ms bigint;
    outcome text;
    e_hint text;
    pause float8;
    t0 timestamptz := pg_catalog.clock_timestamp();
BEGIN
    PERFORM @extschema@._check_retry_args(_lock_retry.lock_timeout, _lock_retry.max_attempts,
                                          _lock_retry.max_pause);
    err_state := NULL;
    err_message := NULL;
    err_detail := NULL;
    -- Whatever the caller did so far is committed: this step stands alone.
    -- Called from a function (an atomic context), this fails here.
    COMMIT;
    lt_ms := greatest(least(pg_catalog.ceil(pg_catalog.date_part('epoch', _lock_retry.lock_timeout) * 1000),
                            2147483647), 1)::bigint;

    FOR attempt IN 1 .. _lock_retry.max_attempts LOOP
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', lt_ms::text, true);
            EXECUTE _lock_retry.sql;
            outcome := 'ok';
        EXCEPTION
            WHEN lock_not_available THEN
                outcome := 'lock';
                GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                                        err_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            WHEN query_canceled THEN
                outcome := 'error';
                GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                                        err_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            WHEN OTHERS THEN
                outcome := 'error';
                GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                                        err_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        END;

        IF outcome = 'ok' THEN
            COMMIT;
            err_state := NULL;
            err_message := NULL;
            err_detail := NULL;
            RETURN;
        END IF;
        ROLLBACK;
        IF outcome = 'error' THEN
            IF err_state = ANY (_lock_retry.catch) THEN
                RETURN;
            END IF;
            PERFORM @extschema@._reraise(err_state, err_message, err_detail, e_hint);
        END IF;

        IF attempt < _lock_retry.max_attempts THEN
            pause := @extschema@._lock_retry_pause(attempt, _lock_retry.max_pause);
            RAISE NOTICE '%: attempt % of % could not get its lock within %; retrying in % ms',
                    _lock_retry.what, attempt, _lock_retry.max_attempts,
                    @extschema@._migration_fmt_duration(_lock_retry.lock_timeout),
                    pg_catalog.round((pause * 1000)::numeric);
            PERFORM pg_catalog.pg_sleep(pause);
            COMMIT;     -- the sleep's transaction holds nothing worth keeping
        END IF;
    END LOOP;

    RAISE EXCEPTION '%: gave up after % attempts with lock_timeout %: %',
            _lock_retry.what, _lock_retry.max_attempts,
            @extschema@._migration_fmt_duration(_lock_retry.lock_timeout), err_message
        USING ERRCODE = 'lock_not_available',
              DETAIL = pg_catalog.format('%s in all. Nothing of this step was applied; earlier steps stay committed.',
                                         @extschema@._migration_fmt_duration(pg_catalog.clock_timestamp() - t0)),
              HINT = 'Find what holds the lock in moltres_ops.ddl_activity or pg_locks, then CALL again: the procedure continues where it stopped. Prefer more attempts to a longer lock_timeout: each wait queues the table''s readers.';
END;
$$;

COMMENT ON PROCEDURE _lock_retry(text, interval, integer, interval, text, text[], text, text, text) IS
'_lock_retry: internal; runs one step in its own transaction under SET LOCAL lock_timeout, retrying on 55P03 with backoff';

-- One step that raises every error.
CREATE PROCEDURE _step(sql text, lock_timeout interval, max_attempts integer,
                       max_pause interval, what text)
LANGUAGE plpgsql
AS $$
DECLARE
    s text;
    m text;
    d text;
BEGIN
    CALL @extschema@._lock_retry(sql, lock_timeout, max_attempts, max_pause, what, NULL, s, m, d);
END;
$$;

COMMENT ON PROCEDURE _step(text, interval, integer, interval, text) IS
'_step: internal; _lock_retry that raises every error';

CREATE PROCEDURE with_lock_retry(sql text,
                                 lock_timeout interval DEFAULT '100ms',
                                 max_attempts integer DEFAULT 10,
                                 max_pause interval DEFAULT '10s')
LANGUAGE plpgsql
AS $$
BEGIN
    IF with_lock_retry.sql IS NULL OR pg_catalog.btrim(with_lock_retry.sql) = '' THEN
        RAISE EXCEPTION 'sql must not be null or empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._check_retry_args(with_lock_retry.lock_timeout,
                                          with_lock_retry.max_attempts,
                                          with_lock_retry.max_pause);
    PERFORM @extschema@._require_primary('with_lock_retry');
    PERFORM @extschema@._require_top_level('with_lock_retry');
    CALL @extschema@._step(with_lock_retry.sql, with_lock_retry.lock_timeout,
                           with_lock_retry.max_attempts, with_lock_retry.max_pause,
                           'with_lock_retry');
END;
$$;

COMMENT ON PROCEDURE with_lock_retry(text, interval, integer, interval) IS
'with_lock_retry: runs sql in its own transaction under SET LOCAL lock_timeout; on 55P03 rolls back, sleeps (100 ms doubling, up to max_pause, jittered) and tries again, up to max_attempts';

---------------------------------------------------------------------------
-- Catalog look-ups shared by the procedures.
---------------------------------------------------------------------------

-- A table's schema and name for format('%I.%I'), or a clear error: it must
-- be given, exist, and be a table.
CREATE FUNCTION _safe_table(relation regclass, what text, OUT nspname name, OUT relname name)
RETURNS record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    kind "char";
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION '% must not be null', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.nspname, c.relname, c.relkind INTO nspname, relname, kind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = relation;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% with OID % does not exist', what, relation::oid
            USING ERRCODE = 'undefined_table';
    END IF;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% % is not a table', what, relation
            USING ERRCODE = 'wrong_object_type';
    END IF;
END;
$$;

COMMENT ON FUNCTION _safe_table(regclass, text) IS
'_safe_table: internal; schema and name of a table argument, or a clear error';

-- A column's attribute row, or a clear error.
CREATE FUNCTION _safe_column(relation regclass, column_name name,
                             OUT attnum smallint, OUT attnotnull boolean, OUT typid oid)
RETURNS record
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF column_name IS NULL THEN
        RAISE EXCEPTION 'column_name must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT a.attnum, a.attnotnull, a.atttypid INTO attnum, attnotnull, typid
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = relation AND a.attname = column_name
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of table % does not exist',
                pg_catalog.quote_ident(column_name), relation
            USING ERRCODE = 'undefined_column';
    END IF;
END;
$$;

COMMENT ON FUNCTION _safe_column(regclass, name) IS
'_safe_column: internal; attnum, attnotnull and type of a column, or a clear error';

-- Validate a constraint added NOT VALID; when rows violate it, drop it
-- again (a NOT VALID constraint still binds new rows, which would change
-- the application's behaviour) and raise the server's error.
CREATE PROCEDURE _validate_or_drop(qualified text, conname name, lock_timeout interval,
                                   max_attempts integer, max_pause interval, what text,
                                   hint text)
LANGUAGE plpgsql
AS $$
DECLARE
    e_state text;
    e_msg text;
    e_detail text;
BEGIN
    CALL @extschema@._lock_retry(
        pg_catalog.format('ALTER TABLE %s VALIDATE CONSTRAINT %I', qualified, conname),
        lock_timeout, max_attempts, max_pause, what || ': VALIDATE',
        ARRAY['23514', '23503'], e_state, e_msg, e_detail);
    IF e_state IS NOT NULL THEN
        CALL @extschema@._step(
            pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', qualified, conname),
            lock_timeout, max_attempts, max_pause, what || ': DROP the unvalidated constraint');
        RAISE EXCEPTION '%: %', what, e_msg
            USING ERRCODE = e_state,
                  DETAIL = pg_catalog.concat_ws(E'\n', nullif(e_detail, ''),
                               pg_catalog.format('The NOT VALID constraint %I was dropped again: nothing changed.', conname)),
                  HINT = hint;
    END IF;
END;
$$;

COMMENT ON PROCEDURE _validate_or_drop(text, name, interval, integer, interval, text, text) IS
'_validate_or_drop: internal; VALIDATE CONSTRAINT with lock retries, dropping the constraint again when rows violate it';

---------------------------------------------------------------------------
-- The DDL procedures.
---------------------------------------------------------------------------

CREATE PROCEDURE safe_set_not_null(relation regclass, column_name name,
                                   lock_timeout interval DEFAULT '100ms',
                                   max_attempts integer DEFAULT 10,
                                   max_pause interval DEFAULT '10s')
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
    c record;
    con record;
    q text;
    cname name;
    what text;
BEGIN
    SELECT * INTO t FROM @extschema@._safe_table(safe_set_not_null.relation, 'relation');
    SELECT * INTO c FROM @extschema@._safe_column(safe_set_not_null.relation, safe_set_not_null.column_name);
    PERFORM @extschema@._check_retry_args(safe_set_not_null.lock_timeout, safe_set_not_null.max_attempts,
                                          safe_set_not_null.max_pause);
    PERFORM @extschema@._require_primary('safe_set_not_null');
    PERFORM @extschema@._require_top_level('safe_set_not_null');

    q := pg_catalog.format('%I.%I', t.nspname, t.relname);
    what := pg_catalog.format('safe_set_not_null(%s, %s)', q, pg_catalog.quote_ident(safe_set_not_null.column_name));
    IF c.attnotnull THEN
        RAISE NOTICE '%: the column is already NOT NULL; nothing to do', what;
        RETURN;
    END IF;

    -- The helper CHECK has a fixed name per column, so that a CALL after
    -- an interrupted one finds it and carries on.
    cname := ('moltres_ops_not_null_' || c.attnum)::name;
    SELECT o.contype, o.convalidated, o.conkey INTO con
      FROM pg_catalog.pg_constraint o
     WHERE o.conrelid = safe_set_not_null.relation AND o.conname = cname;
    IF FOUND AND (con.contype <> 'c' OR con.conkey IS DISTINCT FROM ARRAY[c.attnum]) THEN
        RAISE EXCEPTION '%: constraint % exists on % and is not the helper CHECK of this column',
                what, pg_catalog.quote_ident(cname), q
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Rename or drop that constraint.';
    END IF;

    IF NOT FOUND THEN
        CALL @extschema@._step(
            pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL) NOT VALID',
                              q, cname, safe_set_not_null.column_name),
            safe_set_not_null.lock_timeout, safe_set_not_null.max_attempts, safe_set_not_null.max_pause,
            what || ': ADD CHECK NOT VALID');
    END IF;
    IF NOT coalesce(con.convalidated, false) THEN
        CALL @extschema@._validate_or_drop(q, cname,
            safe_set_not_null.lock_timeout, safe_set_not_null.max_attempts, safe_set_not_null.max_pause,
            what, pg_catalog.format('Fill the NULLs first, e.g. CALL moltres_ops.backfill(%L, %L, %L), then CALL safe_set_not_null again.',
                                    q, pg_catalog.format('%I = ...', safe_set_not_null.column_name),
                                    pg_catalog.format('%I IS NULL', safe_set_not_null.column_name)));
    END IF;
    -- With a valid CHECK (col IS NOT NULL), SET NOT NULL does not scan.
    CALL @extschema@._step(
        pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', q, safe_set_not_null.column_name),
        safe_set_not_null.lock_timeout, safe_set_not_null.max_attempts, safe_set_not_null.max_pause,
        what || ': SET NOT NULL');
    CALL @extschema@._step(
        pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', q, cname),
        safe_set_not_null.lock_timeout, safe_set_not_null.max_attempts, safe_set_not_null.max_pause,
        what || ': DROP the helper CHECK');
END;
$$;

COMMENT ON PROCEDURE safe_set_not_null(regclass, name, interval, integer, interval) IS
'safe_set_not_null: SET NOT NULL without a scan under ACCESS EXCLUSIVE: CHECK (col IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL, DROP the CHECK; each step committed, with lock retries';

CREATE PROCEDURE safe_add_check(relation regclass, constraint_name name, expression text,
                                lock_timeout interval DEFAULT '100ms',
                                max_attempts integer DEFAULT 10,
                                max_pause interval DEFAULT '10s')
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
    con record;
    q text;
    what text;
BEGIN
    SELECT * INTO t FROM @extschema@._safe_table(safe_add_check.relation, 'relation');
    IF safe_add_check.constraint_name IS NULL OR safe_add_check.constraint_name = '' THEN
        RAISE EXCEPTION 'constraint_name must not be null or empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._check_fragment(safe_add_check.expression, 'expression');
    PERFORM @extschema@._check_retry_args(safe_add_check.lock_timeout, safe_add_check.max_attempts,
                                          safe_add_check.max_pause);
    PERFORM @extschema@._require_primary('safe_add_check');
    PERFORM @extschema@._require_top_level('safe_add_check');

    q := pg_catalog.format('%I.%I', t.nspname, t.relname);
    what := pg_catalog.format('safe_add_check(%s, %s)', q, pg_catalog.quote_ident(safe_add_check.constraint_name));
    SELECT o.oid, o.contype, o.convalidated INTO con
      FROM pg_catalog.pg_constraint o
     WHERE o.conrelid = safe_add_check.relation AND o.conname = safe_add_check.constraint_name;
    IF FOUND AND con.contype <> 'c' THEN
        RAISE EXCEPTION '%: constraint % already exists on % and is not a CHECK',
                what, pg_catalog.quote_ident(safe_add_check.constraint_name), q
            USING ERRCODE = 'duplicate_object';
    ELSIF FOUND AND con.convalidated THEN
        RAISE NOTICE '%: the constraint already exists and is valid (%); nothing to do',
                what, pg_catalog.pg_get_constraintdef(con.oid);
        RETURN;
    ELSIF FOUND THEN
        RAISE NOTICE '%: the constraint exists NOT VALID (%); validating it',
                what, pg_catalog.pg_get_constraintdef(con.oid);
    ELSE
        -- The newline ends a trailing -- comment in the expression.
        CALL @extschema@._step(
            pg_catalog.format(E'ALTER TABLE %s ADD CONSTRAINT %I CHECK (%s\n) NOT VALID',
                              q, safe_add_check.constraint_name, safe_add_check.expression),
            safe_add_check.lock_timeout, safe_add_check.max_attempts, safe_add_check.max_pause,
            what || ': ADD CHECK NOT VALID');
    END IF;
    CALL @extschema@._validate_or_drop(q, safe_add_check.constraint_name,
        safe_add_check.lock_timeout, safe_add_check.max_attempts, safe_add_check.max_pause,
        what, 'Fix the rows that violate it (moltres_ops.backfill can), then CALL safe_add_check again.');
END;
$$;

COMMENT ON PROCEDURE safe_add_check(regclass, name, text, interval, integer, interval) IS
'safe_add_check: ADD CONSTRAINT name CHECK (expression) NOT VALID, then VALIDATE (which blocks no reads or writes); each step committed, with lock retries; the expression is SQL, executed as given';

-- Whether constraint con is exactly the foreign key that
-- safe_add_foreign_key would add: the same columns, referenced table and
-- columns, ON DELETE action (ON UPDATE NO ACTION, MATCH SIMPLE, not
-- deferrable).  Compared in the catalog, not by name.
CREATE FUNCTION _fk_same(con oid, keys int2[], ref_relation regclass, ref_keys int2[], del_action "char")
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint o
                    WHERE o.oid = con AND o.contype = 'f'
                      AND o.conkey = keys AND o.confrelid = ref_relation AND o.confkey = ref_keys
                      AND o.confdeltype = del_action AND o.confupdtype = 'a'
                      AND o.confmatchtype = 's' AND NOT o.condeferrable)
$$;

COMMENT ON FUNCTION _fk_same(oid, int2[], regclass, int2[], "char") IS
'_fk_same: internal to safe_add_foreign_key(); whether a constraint is that foreign key (columns, referenced table and columns, actions)';

CREATE PROCEDURE safe_add_foreign_key(relation regclass, columns name[],
                                      ref_relation regclass, ref_columns name[],
                                      constraint_name name DEFAULT NULL,
                                      on_delete text DEFAULT NULL,
                                      lock_timeout interval DEFAULT '100ms',
                                      max_attempts integer DEFAULT 10,
                                      max_pause interval DEFAULT '10s')
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
    rt record;
    con record;
    found_con boolean;
    q text;
    rq text;
    cname name;
    action text;
    del_action "char";
    what text;
    def text;
    col name;
    cols text;
    ref_cols text;
    keys int2[] := '{}';
    ref_keys int2[] := '{}';
BEGIN
    SELECT * INTO t FROM @extschema@._safe_table(safe_add_foreign_key.relation, 'relation');
    SELECT * INTO rt FROM @extschema@._safe_table(safe_add_foreign_key.ref_relation, 'ref_relation');
    IF safe_add_foreign_key.columns IS NULL OR pg_catalog.cardinality(safe_add_foreign_key.columns) = 0
       OR pg_catalog.array_position(safe_add_foreign_key.columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'columns must be a non-empty array without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF safe_add_foreign_key.ref_columns IS NULL
       OR pg_catalog.cardinality(safe_add_foreign_key.ref_columns) <> pg_catalog.cardinality(safe_add_foreign_key.columns)
       OR pg_catalog.array_position(safe_add_foreign_key.ref_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'ref_columns must be an array without NULLs, as long as columns (%)',
                pg_catalog.cardinality(safe_add_foreign_key.columns)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH col IN ARRAY safe_add_foreign_key.columns LOOP
        keys := keys || (SELECT c.attnum FROM @extschema@._safe_column(safe_add_foreign_key.relation, col) c);
    END LOOP;
    FOREACH col IN ARRAY safe_add_foreign_key.ref_columns LOOP
        ref_keys := ref_keys || (SELECT c.attnum FROM @extschema@._safe_column(safe_add_foreign_key.ref_relation, col) c);
    END LOOP;
    IF safe_add_foreign_key.on_delete IS NOT NULL THEN
        action := pg_catalog.upper(pg_catalog.regexp_replace(pg_catalog.btrim(safe_add_foreign_key.on_delete), '\s+', ' ', 'g'));
        IF action NOT IN ('NO ACTION', 'RESTRICT', 'CASCADE', 'SET NULL', 'SET DEFAULT') THEN
            RAISE EXCEPTION 'on_delete must be NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT, not %',
                    pg_catalog.quote_literal(safe_add_foreign_key.on_delete)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    -- pg_constraint.confdeltype's letters.
    del_action := CASE coalesce(action, 'NO ACTION')
                      WHEN 'NO ACTION' THEN 'a' WHEN 'RESTRICT' THEN 'r' WHEN 'CASCADE' THEN 'c'
                      WHEN 'SET NULL' THEN 'n' WHEN 'SET DEFAULT' THEN 'd' END;
    IF safe_add_foreign_key.constraint_name = '' THEN
        RAISE EXCEPTION 'constraint_name must not be empty; pass NULL for the default name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._check_retry_args(safe_add_foreign_key.lock_timeout, safe_add_foreign_key.max_attempts,
                                          safe_add_foreign_key.max_pause);
    PERFORM @extschema@._require_primary('safe_add_foreign_key');
    PERFORM @extschema@._require_top_level('safe_add_foreign_key');

    q := pg_catalog.format('%I.%I', t.nspname, t.relname);
    rq := pg_catalog.format('%I.%I', rt.nspname, rt.relname);
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x), ', ' ORDER BY o) INTO cols
      FROM pg_catalog.unnest(safe_add_foreign_key.columns) WITH ORDINALITY u(x, o);
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x), ', ' ORDER BY o) INTO ref_cols
      FROM pg_catalog.unnest(safe_add_foreign_key.ref_columns) WITH ORDINALITY u(x, o);
    def := pg_catalog.format('FOREIGN KEY (%s) REFERENCES %s (%s)%s',
                             cols, rq, ref_cols, coalesce(' ON DELETE ' || action, ''));

    IF safe_add_foreign_key.constraint_name IS NOT NULL THEN
        -- A constraint of that name must be this foreign key, or nothing.
        cname := safe_add_foreign_key.constraint_name;
        SELECT o.oid, o.convalidated,
               @extschema@._fk_same(o.oid, keys, safe_add_foreign_key.ref_relation, ref_keys, del_action) AS same
          INTO con
          FROM pg_catalog.pg_constraint o
         WHERE o.conrelid = safe_add_foreign_key.relation AND o.conname = cname;
        found_con := FOUND;
        IF found_con AND NOT con.same THEN
            RAISE EXCEPTION 'safe_add_foreign_key(%, %): constraint % already exists on % with another definition',
                    q, pg_catalog.quote_ident(cname), pg_catalog.quote_ident(cname), q
                USING ERRCODE = 'duplicate_object',
                      DETAIL = pg_catalog.format('It is %s; asked for %s. Nothing was changed.',
                                                 pg_catalog.pg_get_constraintdef(con.oid), def),
                      HINT = 'Pass another constraint_name, or drop that constraint first.';
        END IF;
    ELSE
        -- No name given: the same foreign key under any name is this one;
        -- otherwise the server names the new one itself, as ALTER TABLE
        -- ... ADD FOREIGN KEY without a name does (<table>_<columns>_fkey,
        -- shortened and numbered its own way when long or taken).
        SELECT o.oid, o.conname, o.convalidated INTO con
          FROM pg_catalog.pg_constraint o
         WHERE o.conrelid = safe_add_foreign_key.relation AND o.contype = 'f'
           AND @extschema@._fk_same(o.oid, keys, safe_add_foreign_key.ref_relation, ref_keys, del_action)
         ORDER BY o.convalidated DESC, o.conname
         LIMIT 1;
        found_con := FOUND;
        cname := con.conname;
    END IF;
    what := pg_catalog.format('safe_add_foreign_key(%s, %s)', q, coalesce(pg_catalog.quote_ident(cname), def));

    IF found_con AND con.convalidated THEN
        RAISE NOTICE '%: the foreign key already exists and is valid (%); nothing to do',
                what, pg_catalog.pg_get_constraintdef(con.oid);
        RETURN;
    ELSIF found_con THEN
        RAISE NOTICE '%: the foreign key exists NOT VALID (%); validating it',
                what, pg_catalog.pg_get_constraintdef(con.oid);
    ELSE
        CALL @extschema@._step(
            pg_catalog.format('ALTER TABLE %s ADD %s%s NOT VALID',
                              q, CASE WHEN cname IS NOT NULL THEN pg_catalog.format('CONSTRAINT %I ', cname) ELSE '' END, def),
            safe_add_foreign_key.lock_timeout, safe_add_foreign_key.max_attempts, safe_add_foreign_key.max_pause,
            what || ': ADD FOREIGN KEY NOT VALID');
        IF cname IS NULL THEN
            -- The name the server chose: the one unvalidated copy just added.
            SELECT o.conname INTO cname
              FROM pg_catalog.pg_constraint o
             WHERE o.conrelid = safe_add_foreign_key.relation AND o.contype = 'f' AND NOT o.convalidated
               AND @extschema@._fk_same(o.oid, keys, safe_add_foreign_key.ref_relation, ref_keys, del_action)
             ORDER BY o.oid DESC
             LIMIT 1;
            what := pg_catalog.format('safe_add_foreign_key(%s, %s)', q, pg_catalog.quote_ident(cname));
        END IF;
    END IF;
    CALL @extschema@._validate_or_drop(q, cname,
        safe_add_foreign_key.lock_timeout, safe_add_foreign_key.max_attempts, safe_add_foreign_key.max_pause,
        what, 'Fix or delete the rows without a referenced row, then CALL safe_add_foreign_key again.');
END;
$$;

COMMENT ON PROCEDURE safe_add_foreign_key(regclass, name[], regclass, name[], name, text, interval, integer, interval) IS
'safe_add_foreign_key: ADD FOREIGN KEY ... NOT VALID (brief SHARE ROW EXCLUSIVE on both tables), then VALIDATE (blocks no reads or writes); each step committed, with lock retries';

---------------------------------------------------------------------------
-- Backfills: batched by primary key, committed per batch, resumable.
---------------------------------------------------------------------------

CREATE TABLE backfills (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relid         oid NOT NULL,
    relation      text NOT NULL,
    set_clause    text NOT NULL,
    where_clause  text,
    key_column    name NOT NULL,
    batch_size    integer NOT NULL,
    last_key      text,
    rows_done     bigint NOT NULL DEFAULT 0,
    batches       bigint NOT NULL DEFAULT 0,
    state         text NOT NULL
                  CHECK (state IN ('running', 'interrupted', 'failed', 'finished')),
    started_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    started_by    name NOT NULL,
    pid           integer,
    error         text
);

-- One row per (table, SET, WHERE): hashed, so that long clauses fit.
CREATE UNIQUE INDEX backfills_job ON backfills
    (relid, pg_catalog.md5(set_clause), pg_catalog.md5(coalesce(where_clause, '')));

COMMENT ON TABLE backfills IS
'backfills: one row per backfill (table, SET, WHERE): the last committed key, rows and batches done, state; CALL backfill() continues after last_key';

REVOKE ALL ON backfills FROM PUBLIC;
GRANT SELECT ON backfills TO pg_monitor;

-- Whether a running row's backend is still alive (not a newer backend that
-- reuses the pid).  backend_start is hidden from unprivileged roles for
-- other users' sessions; the pid alone decides then.
CREATE FUNCTION _backfill_live(row_pid integer, row_updated timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                    WHERE a.pid = row_pid
                      AND (a.backend_start IS NULL OR a.backend_start <= row_updated))
$$;

COMMENT ON FUNCTION _backfill_live(integer, timestamptz) IS
'_backfill_live: internal; whether the backend of a running backfill is still there';

CREATE VIEW backfill_progress AS
SELECT b.id,
       b.relation,
       b.set_clause,
       b.where_clause,
       CASE WHEN b.state = 'running' AND NOT @extschema@._backfill_live(b.pid, b.updated_at)
            THEN 'interrupted' ELSE b.state END AS state,
       b.rows_done,
       b.batches,
       b.last_key,
       b.batch_size,
       b.started_at,
       b.updated_at,
       b.finished_at,
       coalesce(b.finished_at, pg_catalog.clock_timestamp()) - b.started_at AS elapsed,
       CASE WHEN b.updated_at > b.started_at
            THEN pg_catalog.round((b.rows_done / pg_catalog.date_part('epoch', b.updated_at - b.started_at))::numeric, 1)::float8
       END AS rows_per_second,
       CASE WHEN b.state = 'running' THEN pg_catalog.clock_timestamp() - b.updated_at END AS since_last_batch,
       b.pid,
       b.started_by,
       b.error
  FROM @extschema@.backfills b;

COMMENT ON VIEW backfill_progress IS
'backfill_progress: backfills with a live state (a running row whose backend is gone is interrupted), elapsed time, rate and time since the last batch';

REVOKE ALL ON backfill_progress FROM PUBLIC;
GRANT SELECT ON backfill_progress TO pg_monitor;

CREATE PROCEDURE backfill(relation regclass, set_clause text,
                          where_clause text DEFAULT NULL,
                          batch_size integer DEFAULT 1000,
                          pause interval DEFAULT '0',
                          lock_timeout interval DEFAULT '1s',
                          max_attempts integer DEFAULT 10,
                          max_pause interval DEFAULT '10s',
                          restart boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
    k record;
    r record;
    q text;
    what text;
    ktype text;
    cond text;
    sel text;
    upd text;
    bid bigint;
    cur_key text;
    upper_key text;
    n bigint;
    done_rows bigint;
    lt_ms bigint;
    outcome text;
    e_state text;
    e_msg text;
    e_detail text;
    e_hint text;
    me integer := pg_catalog.pg_backend_pid();
    pause_s float8;
    assigned text[];
BEGIN
    SELECT * INTO t FROM @extschema@._safe_table(backfill.relation, 'relation');
    PERFORM @extschema@._check_fragment(backfill.set_clause, 'set_clause');
    IF backfill.where_clause IS NOT NULL THEN
        PERFORM @extschema@._check_fragment(backfill.where_clause, 'where_clause');
    END IF;
    IF backfill.batch_size IS NULL OR backfill.batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', coalesce(backfill.batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF backfill.pause IS NULL OR backfill.pause < interval '0' THEN
        RAISE EXCEPTION 'pause must be zero or a positive interval, not %', coalesce(backfill.pause::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF backfill.restart IS NULL THEN
        RAISE EXCEPTION 'restart must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._check_retry_args(backfill.lock_timeout, backfill.max_attempts, backfill.max_pause);

    -- The batches walk a single-column primary key.
    SELECT a.attname, a.atttypid, a.attnum, a.attgenerated INTO k
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = backfill.relation AND i.indisprimary AND i.indnkeyatts = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'backfill needs a single-column primary key, and table % has %', backfill.relation,
                CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                                   WHERE i.indrelid = backfill.relation AND i.indisprimary)
                     THEN 'a primary key of several columns' ELSE 'no primary key' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Batch by hand on an indexed unique column, or add a single-column primary key.';
    END IF;

    q := pg_catalog.format('%I.%I', t.nspname, t.relname);
    what := pg_catalog.format('backfill of %s', q);
    ktype := pg_catalog.format_type(k.atttypid, NULL);
    cond := coalesce(backfill.where_clause, 'true');
    -- The next batch: up to batch_size matching keys after the last one.
    sel := pg_catalog.format(E'SELECT max(k)::text FROM (SELECT %1$I AS k FROM %2$s WHERE ($1::%3$s IS NULL OR %1$I > $1::%3$s) AND (%4$s\n) ORDER BY %1$I LIMIT $2) s',
                             k.attname, q, ktype, cond);
    upd := pg_catalog.format(E'UPDATE %2$s SET %5$s\nWHERE ($1::%3$s IS NULL OR %1$I > $1::%3$s) AND %1$I <= $2::%3$s AND (%4$s\n)',
                             k.attname, q, ktype, cond, backfill.set_clause);
    BEGIN
        assigned := @extschema@._update_set_columns(upd);
    EXCEPTION WHEN syntax_error THEN
        GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT;
        RAISE EXCEPTION 'set_clause % or where_clause % is not valid SQL: %',
                pg_catalog.quote_literal(backfill.set_clause),
                coalesce(pg_catalog.quote_literal(backfill.where_clause), 'NULL'), e_msg
            USING ERRCODE = 'syntax_error',
                  HINT = 'set_clause is a list of assignments (column = expression, ...), where_clause one boolean expression.';
    END;
    IF assigned IS NULL THEN
        RAISE EXCEPTION 'set_clause % must be a list of assignments (column = expression, ...)',
                pg_catalog.quote_literal(backfill.set_clause)
            USING ERRCODE = 'syntax_error',
                  HINT = 'FROM, WHERE and RETURNING are not allowed in it; put the condition in where_clause, other tables in subqueries.';
    END IF;
    -- The batches walk the primary key in order: a row whose key the SET
    -- list changes (directly, or through a generated key column) moves
    -- ahead of the walk and is met again, batch after batch, for ever.
    IF k.attname::text = ANY (assigned)
       OR EXISTS (SELECT 1
                    FROM pg_catalog.pg_attrdef d
                    JOIN pg_catalog.pg_depend dep
                      ON dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid
                    JOIN pg_catalog.pg_attribute a
                      ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
                   WHERE d.adrelid = backfill.relation AND d.adnum = k.attnum
                     AND k.attgenerated <> ''
                     AND dep.refclassid = 'pg_catalog.pg_class'::regclass
                     AND dep.refobjid = backfill.relation
                     AND a.attname::text = ANY (assigned)) THEN
        RAISE EXCEPTION 'set_clause % changes primary key column % of %, which the batches walk',
                pg_catalog.quote_literal(backfill.set_clause), pg_catalog.quote_ident(k.attname), q
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A row whose key changes moves ahead of the batches and would be updated again and again; nothing was done.',
                  HINT = 'Change a key with one UPDATE (or batch it yourself on another unique column); backfill() is for the other columns.';
    END IF;

    PERFORM @extschema@._require_primary('backfill');

    PERFORM @extschema@._require_top_level('backfill');
    -- Plan both statements once (EXPLAIN runs nothing): an unknown column,
    -- a type error or a missing privilege is the server's own error now,
    -- before any progress row is written.
    PERFORM pg_catalog.set_config('lock_timeout',
        greatest(least(pg_catalog.ceil(pg_catalog.date_part('epoch', backfill.lock_timeout) * 1000),
                       2147483647), 1)::bigint::text, true);
    EXECUTE 'EXPLAIN ' || sel USING NULL::text, 1;
    EXECUTE 'EXPLAIN ' || upd USING NULL::text, NULL::text;
    COMMIT;     -- fails here, before anything is written, in a function

    -- Claim the job: resume it, or start it.
    SELECT * INTO r
      FROM @extschema@.backfills b
     WHERE b.relid = backfill.relation
       AND pg_catalog.md5(b.set_clause) = pg_catalog.md5(backfill.set_clause)
       AND pg_catalog.md5(coalesce(b.where_clause, '')) = pg_catalog.md5(coalesce(backfill.where_clause, ''))
       FOR UPDATE;
    IF FOUND THEN
        bid := r.id;
        IF r.state = 'running' AND r.pid <> me AND @extschema@._backfill_live(r.pid, r.updated_at) THEN
            RAISE EXCEPTION '%: already running in another session', what
                USING ERRCODE = 'object_in_use',
                      DETAIL = pg_catalog.format('Pid %s; %s rows done, last key %s.', r.pid, r.rows_done, coalesce(r.last_key, 'none')),
                      HINT = 'Watch it in moltres_ops.backfill_progress; to stop it, pg_cancel_backend(' || r.pid || '); a later CALL continues after its last committed key.';
        END IF;
        IF r.state = 'finished' AND NOT backfill.restart THEN
            RAISE NOTICE '%: already finished (% rows); nothing to do. Pass restart => true to run it again.',
                    what, r.rows_done;
            COMMIT;
            RETURN;
        END IF;
        IF backfill.restart THEN
            UPDATE @extschema@.backfills b
               SET last_key = NULL, rows_done = 0, batches = 0,
                   started_at = pg_catalog.clock_timestamp(), finished_at = NULL,
                   started_by = current_user
             WHERE b.id = bid;
        ELSIF r.last_key IS NOT NULL THEN
            RAISE NOTICE '%: resuming after key % (% rows done)', what, r.last_key, r.rows_done;
        END IF;
        UPDATE @extschema@.backfills b
           SET state = 'running', pid = me, error = NULL, batch_size = backfill.batch_size,
               key_column = k.attname, relation = q, updated_at = pg_catalog.clock_timestamp()
         WHERE b.id = bid
        RETURNING b.last_key, b.rows_done INTO cur_key, done_rows;
    ELSE
        BEGIN
            INSERT INTO @extschema@.backfills
                   (relid, relation, set_clause, where_clause, key_column, batch_size,
                    state, started_at, updated_at, started_by, pid)
            VALUES (backfill.relation, q, backfill.set_clause, backfill.where_clause, k.attname,
                    backfill.batch_size, 'running', pg_catalog.clock_timestamp(),
                    pg_catalog.clock_timestamp(), current_user, me)
            RETURNING id INTO bid;
        EXCEPTION WHEN unique_violation THEN
            -- Another session started the same backfill at the same moment.
            RAISE EXCEPTION '%: already running in another session', what
                USING ERRCODE = 'object_in_use',
                      DETAIL = 'Another session started the same backfill just now.',
                      HINT = 'Watch it in moltres_ops.backfill_progress.';
        END;
        cur_key := NULL;
        done_rows := 0;
    END IF;
    COMMIT;     -- the job is visible as running

    lt_ms := greatest(least(pg_catalog.ceil(pg_catalog.date_part('epoch', backfill.lock_timeout) * 1000),
                            2147483647), 1)::bigint;
    LOOP
        -- One batch (and its progress row) in one transaction, retried
        -- under the lock timeout.
        FOR attempt IN 1 .. backfill.max_attempts LOOP
            BEGIN
                -- The sleeps are in here too, so that a cancel during one
                -- is recorded like a cancel during a batch.  They hold no
                -- lock.
                IF attempt > 1 THEN
                    PERFORM pg_catalog.pg_sleep(pause_s);
                ELSIF cur_key IS NOT NULL AND backfill.pause > interval '0' THEN
                    PERFORM pg_catalog.pg_sleep(pg_catalog.date_part('epoch', backfill.pause));
                END IF;
                PERFORM pg_catalog.set_config('lock_timeout', lt_ms::text, true);
                EXECUTE sel INTO upper_key USING cur_key, backfill.batch_size;
                IF upper_key IS NULL THEN
                    outcome := 'done';
                ELSE
                    EXECUTE upd USING cur_key, upper_key;
                    GET DIAGNOSTICS n = ROW_COUNT;
                    UPDATE @extschema@.backfills b
                       SET last_key = upper_key, rows_done = b.rows_done + n, batches = b.batches + 1,
                           updated_at = pg_catalog.clock_timestamp()
                     WHERE b.id = bid;
                    outcome := 'ok';
                END IF;
            EXCEPTION
                WHEN lock_not_available THEN
                    outcome := 'lock';
                    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                WHEN query_canceled THEN
                    outcome := 'interrupted';
                    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                WHEN OTHERS THEN
                    outcome := 'failed';
                    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            END;
            EXIT WHEN outcome <> 'lock';
            ROLLBACK;
            IF attempt = backfill.max_attempts THEN
                outcome := 'failed';
                e_msg := pg_catalog.format('gave up after %s attempts with lock_timeout %s: %s',
                                           backfill.max_attempts,
                                           @extschema@._migration_fmt_duration(backfill.lock_timeout), e_msg);
                EXIT;
            END IF;
            pause_s := @extschema@._lock_retry_pause(attempt, backfill.max_pause);
            RAISE NOTICE '%: batch after key % could not get its locks within % (attempt % of %); retrying in % ms',
                    what, coalesce(cur_key, '(start)'),
                    @extschema@._migration_fmt_duration(backfill.lock_timeout),
                    attempt, backfill.max_attempts, pg_catalog.round((pause_s * 1000)::numeric);
        END LOOP;

        IF outcome = 'ok' THEN
            COMMIT;
            cur_key := upper_key;
            done_rows := done_rows + n;
            CONTINUE;
        END IF;

        IF outcome = 'done' THEN
            UPDATE @extschema@.backfills b
               SET state = 'finished', finished_at = pg_catalog.clock_timestamp(),
                   updated_at = pg_catalog.clock_timestamp()
             WHERE b.id = bid
            RETURNING b.rows_done, b.batches INTO r;
            COMMIT;
            RAISE NOTICE '%: finished, % rows in % batches', what, r.rows_done, r.batches;
            RETURN;
        END IF;

        -- Failed or cancelled: the batch is rolled back, the earlier ones
        -- stay; record why (committed), then raise.
        ROLLBACK;
        UPDATE @extschema@.backfills b
           SET state = outcome, updated_at = pg_catalog.clock_timestamp(),
               error = pg_catalog.format('%s (SQLSTATE %s) in the batch after key %s',
                                         e_msg, e_state, coalesce(cur_key, '(start)'))
         WHERE b.id = bid;
        COMMIT;
        RAISE EXCEPTION '%: the batch after key % failed: %', what, coalesce(cur_key, '(start)'), e_msg
            USING ERRCODE = e_state,
                  DETAIL = pg_catalog.concat_ws(E'\n', nullif(e_detail, ''),
                               pg_catalog.format('%s rows in earlier batches are committed; that batch was rolled back.', done_rows)),
                  HINT = pg_catalog.format('Fix the cause and CALL backfill again with the same table, set_clause and where_clause: it continues after key %s.',
                                           coalesce(cur_key, '(start)'));
    END LOOP;
END;
$$;

COMMENT ON PROCEDURE backfill(regclass, text, text, integer, interval, interval, integer, interval, boolean) IS
'backfill: UPDATE relation SET set_clause WHERE where_clause in batches of batch_size primary-key values, each committed with its progress row in moltres_ops.backfills; a later CALL with the same arguments continues after the last committed key';

CREATE PROCEDURE safe_add_column(relation regclass, column_name name, type_name text,
                                 default_value text DEFAULT NULL,
                                 not_null boolean DEFAULT false,
                                 lock_timeout interval DEFAULT '100ms',
                                 max_attempts integer DEFAULT 10,
                                 max_pause interval DEFAULT '10s',
                                 batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    t record;
    typ regtype;
    q text;
    what text;
    existing record;
    volatile_default boolean := false;
    why text;
    fresh boolean := false;
    is_null boolean;
BEGIN
    SELECT * INTO t FROM @extschema@._safe_table(safe_add_column.relation, 'relation');
    IF safe_add_column.column_name IS NULL OR safe_add_column.column_name = '' THEN
        RAISE EXCEPTION 'column_name must not be null or empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._check_fragment(safe_add_column.type_name, 'type_name');
    BEGIN
        typ := pg_catalog.to_regtype(safe_add_column.type_name);
    EXCEPTION WHEN syntax_error OR invalid_name OR invalid_parameter_value THEN
        typ := NULL;
    END;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'type_name % is not a type', pg_catalog.quote_literal(safe_add_column.type_name)
            USING ERRCODE = 'undefined_object';
    END IF;
    IF safe_add_column.default_value IS NOT NULL THEN
        PERFORM @extschema@._check_fragment(safe_add_column.default_value, 'default_value');
    END IF;
    IF safe_add_column.not_null IS NULL THEN
        RAISE EXCEPTION 'not_null must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF safe_add_column.not_null AND safe_add_column.default_value IS NULL THEN
        RAISE EXCEPTION 'a NOT NULL column needs a default_value'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Existing rows would have NULL in it.',
                  HINT = 'Pass default_value, or add the column nullable, fill it with moltres_ops.backfill, then CALL moltres_ops.safe_set_not_null.';
    END IF;
    PERFORM @extschema@._check_retry_args(safe_add_column.lock_timeout, safe_add_column.max_attempts,
                                          safe_add_column.max_pause);
    IF safe_add_column.batch_size IS NULL OR safe_add_column.batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', coalesce(safe_add_column.batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    q := pg_catalog.format('%I.%I', t.nspname, t.relname);
    what := pg_catalog.format('safe_add_column(%s, %s)', q, pg_catalog.quote_ident(safe_add_column.column_name));

    SELECT a.atttypid, a.attnotnull INTO existing
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = safe_add_column.relation AND a.attname = safe_add_column.column_name
       AND NOT a.attisdropped;
    IF FOUND AND existing.atttypid <> typ THEN
        RAISE EXCEPTION '%: column already exists with type %', what, existing.atttypid::regtype
            USING ERRCODE = 'duplicate_column';
    END IF;

    -- Would ADD COLUMN ... DEFAULT rewrite the table?  The linter resolves
    -- the default as the server would and says whether it is volatile.
    IF safe_add_column.default_value IS NOT NULL THEN
        SELECT bool_or(l.rewrites),
               pg_catalog.string_agg(l.message, ' ') FILTER (WHERE l.rule = 'add_column_volatile_default')
          INTO volatile_default, why
          FROM @extschema@.lint(pg_catalog.format(E'ALTER TABLE %s ADD COLUMN %I %s DEFAULT (%s\n)',
                                                  q, safe_add_column.column_name,
                                                  safe_add_column.type_name,
                                                  safe_add_column.default_value)) l;
        volatile_default := coalesce(volatile_default, false);
        why := coalesce(why, pg_catalog.format('ADD COLUMN %I ... DEFAULT (%s) would rewrite %s.',
                                               safe_add_column.column_name, safe_add_column.default_value, q));
        IF volatile_default AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_index i
                WHERE i.indrelid = safe_add_column.relation AND i.indisprimary AND i.indnkeyatts = 1) THEN
            RAISE EXCEPTION '%: a volatile default needs a table rewrite or a backfill, and backfill needs a single-column primary key', what
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = why,
                      HINT = 'Use a non-volatile default, or add the column without one and fill it in batches by hand.';
        END IF;
    END IF;

    -- A non-volatile default for a NOT NULL column must not be NULL: the
    -- server would then scan the whole table under ACCESS EXCLUSIVE to
    -- find out.  Evaluating it has no side effects (it is not volatile).
    IF safe_add_column.not_null AND NOT volatile_default THEN
        EXECUTE pg_catalog.format(E'SELECT (%s\n)::%s IS NULL', safe_add_column.default_value,
                                  safe_add_column.type_name)
           INTO is_null;
        IF is_null THEN
            RAISE EXCEPTION 'default_value % of a NOT NULL column is NULL',
                    pg_catalog.quote_literal(safe_add_column.default_value)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    PERFORM @extschema@._require_primary('safe_add_column');

    PERFORM @extschema@._require_top_level('safe_add_column');

    IF existing.atttypid IS NOT NULL THEN
        RAISE NOTICE '%: the column exists already; continuing with the remaining steps', what;
    ELSIF safe_add_column.default_value IS NULL THEN
        CALL @extschema@._step(
            pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', q, safe_add_column.column_name,
                              safe_add_column.type_name),
            safe_add_column.lock_timeout, safe_add_column.max_attempts, safe_add_column.max_pause,
            what || ': ADD COLUMN');
        fresh := true;
    ELSIF NOT volatile_default THEN
        -- Stored once in the catalog: existing rows read it, no rewrite.
        -- A non-NULL stored default also proves NOT NULL for them, so the
        -- server adds the constraint in the same statement without a scan.
        CALL @extschema@._step(
            pg_catalog.format(E'ALTER TABLE %s ADD COLUMN %I %s%s DEFAULT (%s\n)', q,
                              safe_add_column.column_name, safe_add_column.type_name,
                              CASE WHEN safe_add_column.not_null THEN ' NOT NULL' ELSE '' END,
                              safe_add_column.default_value),
            safe_add_column.lock_timeout, safe_add_column.max_attempts, safe_add_column.max_pause,
            what || ': ADD COLUMN with a non-volatile DEFAULT');
        fresh := true;
    ELSE
        -- Volatile: add the column without a default and give it the
        -- default for later rows in the same statement (no rewrite); the
        -- existing rows are filled in batches below.
        CALL @extschema@._step(
            pg_catalog.format(E'ALTER TABLE %1$s ADD COLUMN %2$I %3$s, ALTER COLUMN %2$I SET DEFAULT (%4$s\n)', q,
                              safe_add_column.column_name, safe_add_column.type_name,
                              safe_add_column.default_value),
            safe_add_column.lock_timeout, safe_add_column.max_attempts, safe_add_column.max_pause,
            what || ': ADD COLUMN, SET DEFAULT');
        fresh := true;
    END IF;

    IF volatile_default THEN
        CALL @extschema@.backfill(safe_add_column.relation,
                                  pg_catalog.format('%I = DEFAULT', safe_add_column.column_name),
                                  pg_catalog.format('%I IS NULL', safe_add_column.column_name),
                                  batch_size => safe_add_column.batch_size,
                                  restart => fresh);
    END IF;
    IF safe_add_column.not_null AND NOT (fresh AND NOT volatile_default) THEN
        CALL @extschema@.safe_set_not_null(safe_add_column.relation, safe_add_column.column_name,
                                           safe_add_column.lock_timeout, safe_add_column.max_attempts,
                                           safe_add_column.max_pause);
    END IF;
END;
$$;

COMMENT ON PROCEDURE safe_add_column(regclass, name, text, text, boolean, interval, integer, interval, integer) IS
'safe_add_column: ADD COLUMN without a table rewrite: a non-volatile default in the catalog (with NOT NULL in the same statement, no scan); a volatile one as SET DEFAULT plus a batched backfill, then NOT NULL through safe_set_not_null; each step committed, with lock retries';

-- Not executable by PUBLIC: a deploy role needs EXECUTE on the procedures
-- it calls and on the internal ones below, which they call (docs/reference.md
-- has the GRANT), plus SELECT, INSERT, UPDATE on backfills for backfill().
REVOKE EXECUTE ON PROCEDURE with_lock_retry(text, interval, integer, interval) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE _lock_retry(text, interval, integer, interval, text, text[], text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE _step(text, interval, integer, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE _validate_or_drop(text, name, interval, integer, interval, text, text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE safe_set_not_null(regclass, name, interval, integer, interval) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE safe_add_check(regclass, name, text, interval, integer, interval) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE safe_add_foreign_key(regclass, name[], regclass, name[], name, text, interval, integer, interval) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE backfill(regclass, text, text, integer, interval, interval, integer, interval, boolean) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE safe_add_column(regclass, name, text, text, boolean, interval, integer, interval, integer) FROM PUBLIC;
