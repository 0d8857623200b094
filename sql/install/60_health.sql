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

-- Metrics: one row per sample, with Prometheus' metric type and help.
CREATE FUNCTION metrics(
    OUT name text,
    OUT labels jsonb,
    OUT value float8,
    OUT type text,
    OUT help text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    preloaded boolean := @extschema@.preloaded();
BEGIN
    -- Health, one gauge per check: 0 ok, 1 warn, 2 critical.
    RETURN QUERY
    SELECT 'moltres_ops_health_status', jsonb_build_object('check', h.name),
           CASE h.status WHEN 'ok' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END::float8,
           'gauge', 'Health check status: 0 ok, 1 warn, 2 critical (moltres_ops.health())'
      FROM @extschema@.health() h;

    -- Connections by state, from pg_stat_activity.
    RETURN QUERY
    SELECT 'moltres_ops_connections', jsonb_build_object('state', s.state),
           count(a.pid)::float8, 'gauge', 'Client connections by state'
      FROM unnest(ARRAY['active', 'idle', 'idle in transaction',
                        'idle in transaction (aborted)', 'fastpath function call', 'disabled']) AS s(state)
      LEFT JOIN pg_stat_activity a ON a.state = s.state AND a.backend_type = 'client backend'
     GROUP BY s.state;
    RETURN QUERY
    SELECT 'moltres_ops_connection_slots', '{}'::jsonb,
           (current_setting('max_connections')::int - @extschema@.connection_slots_reserved())::float8,
           'gauge', 'Connection slots a client can use (max_connections minus reserved)';
    RETURN QUERY
    SELECT 'moltres_ops_lock_waiting_sessions', '{}'::jsonb, count(*)::float8,
           'gauge', 'Client sessions waiting for a heavyweight lock'
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.wait_event_type = 'Lock';
    RETURN QUERY
    SELECT 'moltres_ops_ddl_lock_queue', '{}'::jsonb, coalesce(max(d.queued_behind), 0)::float8,
           'gauge', 'Most sessions queued behind one DDL statement waiting for its lock'
      FROM @extschema@.ddl_activity d WHERE NOT d.granted;

    -- Migration ledgers: one sample per ledger and state.
    RETURN QUERY
    SELECT 'moltres_ops_migration_ledger_state',
           jsonb_build_object('tool', m.tool, 'ledger', m.ledger, 'state', coalesce(m.state, 'unreadable')),
           1::float8, 'gauge', 'Migration ledgers found, labelled with their state (1 per ledger)'
      FROM @extschema@.migration_status m;

    IF NOT preloaded THEN
        RETURN;
    END IF;

    -- Latency windows, per database and for the whole instance ('').
    RETURN QUERY
    SELECT 'moltres_ops_latency_' || m.metric,
           jsonb_build_object('datname', coalesce(l.datname::text, ''),
                              'window', extract(epoch FROM l."window")::int || 's'),
           m.v, 'gauge', m.help
      FROM @extschema@.latency l,
           LATERAL (VALUES ('calls_per_second', l.calls_per_s, 'Statements per second over the window'),
                           ('error_ratio', l.error_rate, 'Failed statements per statement over the window'),
                           ('p50_ms', l.p50_ms, 'Median statement latency over the window, ms'),
                           ('p95_ms', l.p95_ms, '95th percentile statement latency over the window, ms'),
                           ('p99_ms', l.p99_ms, '99th percentile statement latency over the window, ms'))
               AS m(metric, v, help)
     WHERE m.v IS NOT NULL;

    -- Connection lifecycle counters (kept by moltres_ops).
    RETURN QUERY
    SELECT 'moltres_ops_' || m.metric, '{}'::jsonb, m.v::float8, 'counter', m.help
      FROM @extschema@.pool_status p,
           LATERAL (VALUES ('connects_total', p.connects_total, 'Sessions established since server start or reset'),
                           ('disconnects_total', p.disconnects_total, 'Sessions ended since server start or reset'),
                           ('auth_failures_total', p.auth_failures_total, 'Failed authentications since server start or reset'),
                           ('rejected_connections_total', p.rejected_total, 'Logins refused for lack of connection slots'))
               AS m(metric, v, help);

    -- The statistics table itself.
    RETURN QUERY
    SELECT 'moltres_ops_' || m.metric, '{}'::jsonb, m.v::float8, m.type, m.help
      FROM @extschema@.stats_info s,
           LATERAL (VALUES ('statements_tracked', s.entries::float8, 'gauge', 'Entries in the statement statistics table'),
                           ('statements_max', s.max_entries::float8, 'gauge', 'Capacity of the statement statistics table (moltres_ops.max_statements)'),
                           ('statement_evictions_total', s.evictions::float8, 'counter', 'Entries evicted to make room since the last reset'),
                           ('shared_memory_bytes', s.shmem_bytes::float8, 'gauge', 'Shared memory taken by moltres_ops'))
               AS m(metric, v, type, help);

    -- The 20 statements with the most total time: enough to see what
    -- dominates, bounded so that a scrape stays small.
    RETURN QUERY
    WITH top AS (
        SELECT q.* FROM @extschema@.query_stats q ORDER BY q.total_ms DESC LIMIT 20
    )
    SELECT 'moltres_ops_statement_' || m.metric,
           jsonb_build_object('queryid', t.queryid::text, 'datname', coalesce(t.datname::text, ''),
                              'usename', coalesce(t.username::text, ''), 'toplevel', t.toplevel::text),
           m.v, m.type, m.help
      FROM top t,
           LATERAL (VALUES ('calls_total', t.calls::float8, 'counter', 'Executions of the statement, failed ones included'),
                           ('errors_total', t.errors::float8, 'counter', 'Failed executions of the statement'),
                           ('timeouts_total', t.timeouts::float8, 'counter', 'Executions cancelled by statement_timeout'),
                           ('time_ms_total', t.total_ms, 'counter', 'Total execution time of the statement, ms'),
                           ('p95_ms', t.p95_ms, 'gauge', '95th percentile latency of the statement since reset, ms'))
               AS m(metric, v, type, help)
     WHERE m.v IS NOT NULL;
END
$$;

CREATE VIEW metrics AS
    SELECT name, labels, value, type, help FROM metrics();

COMMENT ON VIEW metrics IS
'metrics: the numbers a dashboard needs, one row per sample (name, labels, value), with the Prometheus metric type and help text';

-- Escape a label value for the exposition format.
CREATE FUNCTION _prometheus_label(v text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT replace(replace(replace($1, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
$$;

CREATE FUNCTION prometheus()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH m AS (SELECT * FROM @extschema@.metrics()),
    sample AS (
        SELECT m.name,
               m.name || coalesce('{' || (
                   SELECT string_agg(format('%s="%s"', k.key, @extschema@._prometheus_label(k.value)), ',' ORDER BY k.key)
                     FROM jsonb_each_text(m.labels) k) || '}', '') || ' ' ||
               CASE WHEN m.value = 'Infinity' THEN '+Inf'
                    WHEN m.value = '-Infinity' THEN '-Inf'
                    WHEN m.value = 'NaN' THEN 'NaN'
                    ELSE m.value::text END AS line
          FROM m
    ),
    family AS (
        SELECT m.name, min(m.type) AS type, min(m.help) AS help FROM m GROUP BY m.name
    )
    SELECT coalesce(string_agg(
               format(E'# HELP %s %s\n# TYPE %s %s\n', f.name, replace(replace(f.help, E'\\', E'\\\\'), E'\n', E'\\n'), f.name, f.type) ||
               (SELECT string_agg(s.line, E'\n' ORDER BY s.line) FROM sample s WHERE s.name = f.name) || E'\n',
               '' ORDER BY f.name), '')
      FROM family f
$$;

COMMENT ON FUNCTION prometheus() IS
'prometheus: the metrics view in the Prometheus text exposition format (version 0.0.4), for a scrape endpoint or a file collector';

REVOKE ALL ON FUNCTION health() FROM PUBLIC;
REVOKE ALL ON FUNCTION metrics() FROM PUBLIC;
REVOKE ALL ON FUNCTION prometheus() FROM PUBLIC;
REVOKE ALL ON metrics FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health() TO pg_monitor;
GRANT EXECUTE ON FUNCTION metrics() TO pg_monitor;
GRANT EXECUTE ON FUNCTION prometheus() TO pg_monitor;
GRANT SELECT ON metrics TO pg_monitor;
