-- moltres_ops install script, part 65: metrics.
--
-- The metrics view and prometheus() give the numbers of health() and of the
-- other areas in the shape dashboards and Prometheus expect.  They run with
-- the caller's privileges; the parts that need shared memory are left out
-- when the library is not preloaded.

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

REVOKE ALL ON FUNCTION metrics() FROM PUBLIC;
REVOKE ALL ON FUNCTION prometheus() FROM PUBLIC;
REVOKE ALL ON metrics FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrics() TO pg_monitor;
GRANT EXECUTE ON FUNCTION prometheus() TO pg_monitor;
GRANT SELECT ON metrics TO pg_monitor;
