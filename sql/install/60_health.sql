-- moltres_ops install script, part 60: health checks and metrics.
--
-- health() answers "what is wrong right now" against the alert thresholds
-- (moltres_ops.health_* settings); metrics and prometheus() give the same
-- numbers in the shape dashboards and Prometheus expect.  Everything runs
-- with the caller's privileges and reads the other areas' views; checks that
-- need shared memory say so instead of failing when the library is not
-- preloaded.

-- The numeric value of a setting in its base unit (pg_settings.setting),
-- whatever unit SHOW would print it with.
CREATE FUNCTION _setting(name text)
RETURNS float8
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT s.setting::float8 FROM pg_catalog.pg_settings s WHERE s.name = $1
$$;

-- ok below the threshold, warn at it, critical at twice it.
CREATE FUNCTION _health_status(value float8, threshold float8)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN $1 IS NULL THEN 'ok'
                WHEN $1 >= 2 * $2 THEN 'critical'
                WHEN $1 >= $2 THEN 'warn'
                ELSE 'ok' END
$$;

CREATE FUNCTION health(
    OUT name text,
    OUT status text,
    OUT value float8,
    OUT threshold float8,
    OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slots       int;
    used        int;
    n_active    int;
    n_idle      int;
    n_idle_tx   int;
    warn_pct    float8 := @extschema@._setting('moltres_ops.health_utilization_warn_pct');
    crit_pct    float8 := @extschema@._setting('moltres_ops.health_utilization_critical_pct');
    lat         record;
    oldest      record;
    t           float8;
    n           bigint;
    msg         text;
    preloaded   boolean := @extschema@.preloaded();
    no_preload  constant text :=
        'needs moltres_ops in shared_preload_libraries (add it and restart the server)';
BEGIN
    -- Connection utilisation against the slots a client can use.
    slots := current_setting('max_connections')::int - @extschema@.connection_slots_reserved();
    SELECT count(*),
           count(*) FILTER (WHERE a.state = 'active'),
           count(*) FILTER (WHERE a.state = 'idle'),
           count(*) FILTER (WHERE a.state LIKE 'idle in transaction%')
      INTO used, n_active, n_idle, n_idle_tx
      FROM pg_stat_activity a WHERE a.backend_type = 'client backend';
    name := 'connection_utilization';
    value := round(100.0 * used / GREATEST(slots, 1), 1);
    threshold := warn_pct;
    status := CASE WHEN value >= crit_pct THEN 'critical'
                   WHEN value >= warn_pct THEN 'warn' ELSE 'ok' END;
    detail := format('%s of %s client connection slots in use (%s active, %s idle, %s idle in transaction); critical at %s %%',
                     used, slots, n_active, n_idle, n_idle_tx, crit_pct);
    RETURN NEXT;

    -- Latency, errors and timeouts over the last 5 minutes, whole instance.
    IF preloaded THEN
        SELECT l.calls, l.errors, l.timeouts, l.p95_ms INTO lat
          FROM @extschema@.latency l
         WHERE l.datname IS NULL AND l."window" = interval '5 min';
    END IF;

    name := 'latency_p95';
    threshold := @extschema@._setting('moltres_ops.health_p95_ms');
    IF preloaded THEN
        value := lat.p95_ms;
        status := @extschema@._health_status(value, threshold);
        detail := format('p95 over 5 minutes %s ms over %s statements', coalesce(round(value::numeric, 3)::text, '-'), coalesce(lat.calls, 0));
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;

    name := 'error_rate';
    threshold := @extschema@._setting('moltres_ops.health_error_rate_pct');
    IF preloaded THEN
        value := CASE WHEN lat.calls > 0 THEN round(100.0 * lat.errors / lat.calls, 3) END;
        status := @extschema@._health_status(value, threshold);
        detail := format('%s of %s statements failed in the last 5 minutes (%%)', coalesce(lat.errors, 0), coalesce(lat.calls, 0));
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;

    name := 'timeout_rate';
    threshold := @extschema@._setting('moltres_ops.health_timeout_rate_pct');
    IF preloaded THEN
        value := CASE WHEN lat.calls > 0 THEN round(100.0 * lat.timeouts / lat.calls, 3) END;
        status := @extschema@._health_status(value, threshold);
        detail := format('%s of %s statements hit statement_timeout in the last 5 minutes (%%)', coalesce(lat.timeouts, 0), coalesce(lat.calls, 0));
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;

    -- Sessions idle in a transaction: they hold locks and snapshots.
    SELECT a.pid, a.usename, a.application_name, now() - a.state_change AS age INTO oldest
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.state LIKE 'idle in transaction%'
     ORDER BY a.state_change LIMIT 1;
    name := 'idle_in_transaction';
    threshold := @extschema@._setting('moltres_ops.health_idle_in_transaction_s');
    value := round(extract(epoch FROM coalesce(oldest.age, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.pid IS NULL THEN 'no session is idle in a transaction'
                   ELSE format('pid %s (%s, %s) idle in transaction for %s s',
                               oldest.pid, oldest.usename, nullif(oldest.application_name, ''), value) END;
    RETURN NEXT;

    -- The oldest running statement of a client.
    oldest := NULL;
    SELECT a.pid, a.usename, a.application_name, now() - a.query_start AS age INTO oldest
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.state = 'active' AND a.pid <> pg_backend_pid()
     ORDER BY a.query_start LIMIT 1;
    name := 'long_running_statement';
    threshold := @extschema@._setting('moltres_ops.health_long_running_s');
    value := round(extract(epoch FROM coalesce(oldest.age, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.pid IS NULL THEN 'no other statement is running'
                   ELSE format('pid %s (%s, %s) has run one statement for %s s',
                               oldest.pid, oldest.usename, nullif(oldest.application_name, ''), value) END;
    RETURN NEXT;

    -- The lock-queue outage: sessions waiting behind a DDL statement that
    -- itself waits for its lock.
    oldest := NULL;
    SELECT d.pid, d.relation, d.queued_behind INTO oldest
      FROM @extschema@.ddl_activity d
     WHERE NOT d.granted ORDER BY d.queued_behind DESC NULLS LAST LIMIT 1;
    name := 'lock_queue';
    threshold := @extschema@._setting('moltres_ops.health_lock_queue');
    value := coalesce(oldest.queued_behind, 0);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.pid IS NULL THEN 'no DDL statement is waiting for a lock'
                   ELSE format('pid %s waits for a lock on %s with %s sessions queued behind it (see moltres_ops.ddl_activity)',
                               oldest.pid, oldest.relation, value) END;
    RETURN NEXT;

    -- Migrations: failed, dirty or abandoned ledgers are critical; a lock
    -- left behind, or a moltres_ops migration running too long, warns.
    name := 'migrations';
    threshold := @extschema@._setting('moltres_ops.health_migration_running_s');
    SELECT count(*) FILTER (WHERE m.state IN ('failed', 'dirty', 'abandoned')),
           string_agg(format('%s %s: %s', m.tool, m.ledger, m.state), '; ' ORDER BY m.tool, m.ledger)
               FILTER (WHERE m.state IN ('failed', 'dirty', 'abandoned', 'locked'))
      INTO n, msg
      FROM @extschema@.migration_status m;
    t := (SELECT max(extract(epoch FROM now() - r.started_at))
            FROM @extschema@.migrations r WHERE r.status = 'running');
    value := n;
    status := CASE WHEN n > 0 THEN 'critical'
                   WHEN msg IS NOT NULL OR t >= threshold THEN 'warn' ELSE 'ok' END;
    detail := concat_ws('; ', msg,
                        CASE WHEN t IS NOT NULL THEN format('a moltres_ops migration has been running for %s s', round(t::numeric)) END,
                        CASE WHEN msg IS NULL AND t IS NULL THEN 'every ledger is clean' END);
    RETURN NEXT;

    -- The statistics table: evictions mean moltres_ops.max_statements is
    -- too small for the workload, and numbers of evicted statements restart.
    name := 'statistics_evictions';
    threshold := 1;
    IF preloaded THEN
        SELECT s.evictions, s.dropped, s.entries, s.max_entries INTO lat FROM @extschema@.stats_info s;
        value := lat.evictions;
        status := CASE WHEN lat.evictions > 0 OR lat.dropped > 0 THEN 'warn' ELSE 'ok' END;
        detail := format('%s evictions and %s dropped since the last reset; %s of %s entries in use',
                         lat.evictions, lat.dropped, lat.entries, lat.max_entries);
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION health() IS
'health: one row per check (connection utilisation, latency, error and timeout rates, idle in transaction, long statements, the lock queue behind DDL, migrations, statistics evictions) with status ok, warn or critical against the moltres_ops.health_* thresholds';

REVOKE ALL ON FUNCTION health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health() TO pg_monitor;
