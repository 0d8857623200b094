-- moltres_ops install script, part 65: metrics.
--
-- One catalogue names every metric family that moltres_ops exports: its
-- type, unit and help text (metric_catalogue), and the query each family
-- comes from (_metric_sources).  Everything else is made from the two:
--
--   metrics            one row per sample (the view and the function);
--   prometheus()       the same samples in the Prometheus text format;
--   postgres_exporter_queries()
--                      contrib/postgres_exporter/moltres_ops.yaml, the
--                      queries file for Prometheus' postgres_exporter, which
--                      is generated from it and checked by test/t/065_metrics.pl.
--
-- postgres_exporter names a metric <query name>_<column>, so a source is
-- named by the prefix of its families and each family by its column; a
-- histogram column x carries its bounds (float8[], seconds, +Inf last) and
-- is followed by x_bucket (cumulative counts), x_sum and x_count, the shape
-- postgres_exporter's HISTOGRAM usage reads.
--
-- The naming follows Prometheus: base units (seconds, bytes) in the name,
-- _total on counters, no percentages and no pre-computed rates or
-- percentiles (PromQL computes those from counters and histograms, across a
-- fleet).  Everything runs with the caller's privileges; sources that need
-- shared memory are left out when the library is not preloaded.  The
-- samples come from _metric_samples(), whose body is generated from the
-- catalogue when the extension is created, as static queries that a
-- scraper's session plans once.  The functions run with jit = off: their
-- queries are cheap, and the planner's estimates for the views they read
-- (ddl_activity's recursive query) would otherwise make every scrape pay
-- for JIT compilation.
--
-- Where to add a family: a column to a source query (or a new source) and
-- a row to metric_catalogue(), then regenerate the exporter's file
-- (make exporter-queries).

-- Running totals per database since the last reset (src/latency.c): top-level
-- statements on the fixed Prometheus bounds, rows, errors by class.
CREATE FUNCTION statement_totals_internal(
    OUT dbid oid,
    OUT calls bigint,
    OUT rows bigint,
    OUT duration_sum float8,
    OUT le float8[],
    OUT buckets bigint[],
    OUT statement_timeouts bigint,
    OUT cancels bigint,
    OUT lock_timeouts bigint,
    OUT deadlocks bigint,
    OUT serialization_failures bigint,
    OUT other_errors bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
ROWS 33
AS 'MODULE_PATHNAME', 'moltres_ops_statement_totals';

COMMENT ON FUNCTION statement_totals_internal() IS
'statement_totals_internal: per database (dbid 0: databases beyond the 32 tracked one by one), top-level statements since the last reset on the Prometheus bounds (le, seconds; buckets cumulative, +Inf last), rows, errors by class';

-- The statements exported one by one (src/query_stats.c): a bounded,
-- stable set, read without scanning the statistics table.
CREATE FUNCTION metrics_statements_internal(
    OUT userid oid,
    OUT dbid oid,
    OUT queryid bigint,
    OUT toplevel boolean,
    OUT errors bigint,
    OUT timeouts bigint,
    OUT rows bigint,
    OUT duration_sum float8,
    OUT duration_count bigint,
    OUT le float8[],
    OUT buckets bigint[])
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
ROWS 100
AS 'MODULE_PATHNAME', 'moltres_ops_metrics_statements';

COMMENT ON FUNCTION metrics_statements_internal() IS
'metrics_statements_internal: the statements with their own metrics (the first moltres_ops.metrics_statements to reach moltres_ops.metrics_min_calls calls, until evicted or reset), with their histogram folded onto the Prometheus bounds';

-- The sources: one query per group of families that share labels.  Keep
-- each query on one line of SQL (it is copied into the exporter's YAML).
CREATE FUNCTION _metric_sources(
    OUT source text,
    OUT labels text[],
    OUT needs_preload boolean,
    OUT query text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $src$
    VALUES
    ('moltres_ops_health', '{check}'::text[], false,
     $q$SELECT h.check_name AS check, CASE h.status WHEN 'ok' THEN 0 WHEN 'warn' THEN 1 WHEN 'critical' THEN 2 END AS status FROM @extschema@.health() AS h(check_name, status)$q$),
    ('moltres_ops', '{}', false,
     $q$SELECT (SELECT pg_catalog.current_setting('max_connections')::integer - @extschema@.connection_slots_reserved()) AS connection_slots, (SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'client backend' AND a.wait_event_type = 'Lock') AS lock_waiting_sessions, (SELECT coalesce(max(d.queued_behind), 0) FROM @extschema@.ddl_activity d WHERE NOT d.granted) AS ddl_lock_queue$q$),
    ('moltres_ops_client', '{state}', false,
     $q$SELECT s.state, count(a.pid) AS connections FROM unnest(ARRAY['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'disabled']) AS s(state) LEFT JOIN pg_catalog.pg_stat_activity a ON a.state = s.state AND a.backend_type = 'client backend' GROUP BY s.state$q$),
    ('moltres_ops_pool', '{datname,usename}', false,
     $q$SELECT coalesce(a.datname::text, '') AS datname, coalesce(a.usename::text, '') AS usename, count(*) AS connections, count(*) FILTER (WHERE a.state = 'idle') AS idle_connections FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'client backend' GROUP BY 1, 2$q$),
    ('moltres_ops_database', '{datname}', false,
     $q$SELECT d.datname::text AS datname, pg_catalog.age(d.datfrozenxid) AS frozen_xid_age FROM pg_catalog.pg_database d WHERE d.datallowconn$q$),
    ('moltres_ops_replication', '{application_name}', false,
     $q$SELECT r.application_name, extract(epoch FROM coalesce(r.replay_lag, interval '0')) AS lag_seconds FROM pg_catalog.pg_stat_replication r$q$),
    ('moltres_ops_standby', '{}', false,
     $q$SELECT CASE WHEN pg_catalog.pg_last_wal_receive_lsn() IS NULL OR pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0 ELSE extract(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()) END AS replay_delay_seconds WHERE pg_catalog.pg_is_in_recovery()$q$),
    ('moltres_ops_wal', '{}', false,
     $q$SELECT extract(epoch FROM s.last_archived_time) AS last_archive_timestamp_seconds, s.failed_count AS archive_failures_total FROM pg_catalog.pg_stat_archiver s WHERE pg_catalog.current_setting('archive_mode') <> 'off'$q$),
    ('moltres_ops_migration', '{tool,ledger,state}', false,
     $q$SELECT m.tool, m.ledger, coalesce(m.state, 'unreadable') AS state, 1 AS ledger_state FROM @extschema@.migration_status m$q$),
    ('moltres_ops_connections', '{}', true,
     $q$SELECT t.connects_total AS opened_total, t.disconnects_total AS closed_total, t.rejected_total AS refused_total, t.auth_failures_total FROM @extschema@.session_totals() t$q$),
    ('moltres_ops_statistics', '{}', true,
     $q$SELECT s.entries, s.max_entries, s.evictions AS evictions_total, s.dropped AS dropped_total, s.shmem_bytes AS shared_memory_bytes, extract(epoch FROM s.stats_reset) AS reset_timestamp_seconds FROM @extschema@.stats_info() s$q$),
    ('moltres_ops_statement', '{datname}', true,
     $q$SELECT coalesce(d.datname::text, '') AS datname, t.rows AS rows_total, t.le AS duration_seconds, t.buckets AS duration_seconds_bucket, t.duration_sum AS duration_seconds_sum, t.calls AS duration_seconds_count FROM @extschema@.statement_totals_internal() t LEFT JOIN pg_catalog.pg_database d ON d.oid = t.dbid WHERE (t.dbid = 0 AND t.calls > 0) OR d.oid IS NOT NULL$q$),
    ('moltres_ops_statement_errors', '{datname,class}', true,
     $q$SELECT coalesce(d.datname::text, '') AS datname, e.class, e.n AS total FROM @extschema@.statement_totals_internal() t LEFT JOIN pg_catalog.pg_database d ON d.oid = t.dbid CROSS JOIN LATERAL (VALUES ('statement_timeout', t.statement_timeouts), ('cancel', t.cancels), ('lock_timeout', t.lock_timeouts), ('deadlock', t.deadlocks), ('serialization_failure', t.serialization_failures), ('other', t.other_errors)) AS e(class, n) WHERE (t.dbid = 0 AND t.calls > 0) OR d.oid IS NOT NULL$q$),
    ('moltres_ops_query', '{queryid,datname,userid,toplevel}', true,
     $q$SELECT s.queryid::text AS queryid, d.datname::text AS datname, s.userid::text AS userid, s.toplevel::text AS toplevel, s.errors AS errors_total, s.timeouts AS timeouts_total, s.rows AS rows_total, s.le AS duration_seconds, s.buckets AS duration_seconds_bucket, s.duration_sum AS duration_seconds_sum, s.duration_count AS duration_seconds_count FROM @extschema@.metrics_statements_internal() s JOIN pg_catalog.pg_database d ON d.oid = s.dbid$q$),
    ('moltres_ops_errors', '{datname,sqlstate,phase}', true,
     $q$SELECT coalesce(d.datname::text, '') AS datname, coalesce(e.sqlstate, '') AS sqlstate, p.phase, sum(p.n) AS total FROM @extschema@.errors_internal() e LEFT JOIN pg_catalog.pg_database d ON d.oid = e.dbid CROSS JOIN LATERAL (VALUES ('before_execution', e.before_execution), ('during_execution', e.during_execution), ('after_execution', e.after_execution)) AS p(phase, n) WHERE e.dbid IS NULL OR e.dbid = 0 OR d.oid IS NOT NULL GROUP BY 1, 2, 3$q$),
    ('moltres_ops_wait', '{wait_event_type,wait_event}', true,
     $q$SELECT w.wait_event_type, w.wait_event, sum(w.seconds) AS seconds_total FROM @extschema@.db_waits_internal() w GROUP BY 1, 2$q$),
    ('moltres_ops_database_wait', '{datname,wait_event_type,wait_event}', true,
     $q$SELECT coalesce(d.datname::text, '') AS datname, w.wait_event_type, w.wait_event, w.seconds AS seconds_total FROM @extschema@.db_waits_internal() w LEFT JOIN pg_catalog.pg_database d ON d.oid = w.dbid WHERE w.dbid = 0 OR d.oid IS NOT NULL$q$),
    ('moltres_ops_wait_sampler', '{}', true,
     $q$SELECT s.samples AS samples_total, s.dropped AS dropped_total, extract(epoch FROM s.stats_reset) AS reset_timestamp_seconds FROM @extschema@.wait_sampler() s$q$)
$src$;

-- What each label means (docs/reference.md says more).
CREATE FUNCTION _metric_labels(OUT label text, OUT description text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES
    ('check', 'Name of the health() check'),
    ('state', 'pg_stat_activity state'),
    ('datname', 'Database; empty for the databases beyond the 32 counted one by one (statement totals), processes connected to none (waits) or the keys beyond the table (errors)'),
    ('sqlstate', 'SQLSTATE of the error; empty for the keys beyond the table of moltres_ops.errors'),
    ('phase', 'Where the error arose: before_execution (parse, analysis, planning, start-up), during_execution, after_execution (result sent, COMMIT)'),
    ('wait_event_type', 'pg_stat_activity wait_event_type, CPU for an active session not waiting'),
    ('wait_event', 'pg_stat_activity wait_event, CPU for an active session not waiting'),
    ('usename', 'Role of the connections'),
    ('application_name', 'application_name of the standby'),
    ('tool', 'Migration tool'),
    ('ledger', 'Schema-qualified ledger table'),
    ('class', 'Class of error: statement_timeout, cancel, lock_timeout, deadlock, serialization_failure, other'),
    ('queryid', 'Query id (as in pg_stat_statements)'),
    ('userid', 'OID of the role that ran the statement'),
    ('toplevel', 'true for statements sent by a client, false for nested ones')
$$;

-- The catalogue: every family, in export order within its source.
CREATE FUNCTION metric_catalogue(
    OUT name text,
    OUT type text,
    OUT unit text,
    OUT labels text[],
    OUT help text,
    OUT source text,
    OUT "column" text,
    OUT needs_preload boolean)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT c.source || '_' || c.col, c.type, c.unit, s.labels, c.help, c.source, c.col, s.needs_preload
      FROM (VALUES
        (1, 'moltres_ops_health', 'status', 'gauge', '',
         'Status of each check of moltres_ops.health(): 0 ok, 1 warn, 2 critical'),
        (2, 'moltres_ops', 'connection_slots', 'gauge', '',
         'Connection slots a client can use: max_connections minus the reserved ones'),
        (3, 'moltres_ops', 'lock_waiting_sessions', 'gauge', '',
         'Client sessions waiting for a heavyweight lock'),
        (4, 'moltres_ops', 'ddl_lock_queue', 'gauge', '',
         'Most sessions queued behind one DDL statement that waits for its lock'),
        (5, 'moltres_ops_client', 'connections', 'gauge', '',
         'Client connections by state'),
        (6, 'moltres_ops_pool', 'connections', 'gauge', '',
         'Client connections per database and role (the server side of an application pool)'),
        (7, 'moltres_ops_pool', 'idle_connections', 'gauge', '',
         'Idle client connections per database and role'),
        (8, 'moltres_ops_database', 'frozen_xid_age', 'gauge', 'transactions',
         'Age of the database''s datfrozenxid: transaction IDs consumed towards wraparound (2^31)'),
        (9, 'moltres_ops_replication', 'lag_seconds', 'gauge', 'seconds',
         'On a primary, replay lag of each standby (pg_stat_replication.replay_lag, 0 when caught up)'),
        (10, 'moltres_ops_standby', 'replay_delay_seconds', 'gauge', 'seconds',
         'On a standby, age of the last replayed transaction while received WAL waits for replay, else 0'),
        (11, 'moltres_ops_wal', 'last_archive_timestamp_seconds', 'gauge', 'seconds',
         'Unix time of the last WAL segment archived successfully (archive_mode on only)'),
        (12, 'moltres_ops_wal', 'archive_failures_total', 'counter', '',
         'Failed attempts to archive a WAL segment (pg_stat_archiver.failed_count)'),
        (13, 'moltres_ops_migration', 'ledger_state', 'gauge', '',
         'Migration ledgers found, labelled with their state (1 per ledger)'),
        (14, 'moltres_ops_connections', 'opened_total', 'counter', '',
         'Sessions established'),
        (15, 'moltres_ops_connections', 'closed_total', 'counter', '',
         'Sessions ended'),
        (16, 'moltres_ops_connections', 'refused_total', 'counter', '',
         'Logins refused for lack of connection slots'),
        (17, 'moltres_ops_connections', 'auth_failures_total', 'counter', '',
         'Failed authentications'),
        (18, 'moltres_ops_statistics', 'entries', 'gauge', '',
         'Entries in use in the statement statistics table'),
        (19, 'moltres_ops_statistics', 'max_entries', 'gauge', '',
         'Capacity of the statement statistics table (moltres_ops.max_statements)'),
        (20, 'moltres_ops_statistics', 'evictions_total', 'counter', '',
         'Entries evicted to make room for new statements'),
        (21, 'moltres_ops_statistics', 'dropped_total', 'counter', '',
         'Executions that could not be recorded'),
        (22, 'moltres_ops_statistics', 'shared_memory_bytes', 'gauge', 'bytes',
         'Shared memory taken by the statistics table and the latency windows'),
        (23, 'moltres_ops_statistics', 'reset_timestamp_seconds', 'gauge', 'seconds',
         'Unix time of the last full moltres_ops.reset() (or of the first start)'),
        (24, 'moltres_ops_statement', 'rows_total', 'counter', '',
         'Rows returned or affected by top-level statements that succeeded'),
        (25, 'moltres_ops_statement', 'duration_seconds', 'histogram', 'seconds',
         'Duration of top-level statements, failed ones included'),
        (26, 'moltres_ops_statement_errors', 'total', 'counter', '',
         'Top-level statements that failed, by class of error'),
        (27, 'moltres_ops_query', 'errors_total', 'counter', '',
         'Failed executions of the statement'),
        (28, 'moltres_ops_query', 'timeouts_total', 'counter', '',
         'Executions of the statement cancelled by statement_timeout'),
        (29, 'moltres_ops_query', 'rows_total', 'counter', '',
         'Rows returned or affected by the statement'),
        (30, 'moltres_ops_query', 'duration_seconds', 'histogram', 'seconds',
         'Duration of the statement, failed executions included'),
        (31, 'moltres_ops_wait', 'seconds_total', 'counter', 'seconds',
         'Time active sessions spent in each wait event (CPU: not waiting), estimated by the wait sampler; rate() is the average number of active sessions in that state'),
        (32, 'moltres_ops_database_wait', 'seconds_total', 'counter', 'seconds',
         'Time active sessions of each database spent in each wait event (CPU: not waiting), estimated by the wait sampler'),
        (33, 'moltres_ops_wait_sampler', 'samples_total', 'counter', '',
         'Samples taken by the wait sampler (one per tick, all backends at once)'),
        (34, 'moltres_ops_wait_sampler', 'dropped_total', 'counter', '',
         'Wait-profile increments dropped because the per-statement wait table was full'),
        (35, 'moltres_ops_wait_sampler', 'reset_timestamp_seconds', 'gauge', 'seconds',
         'Unix time of the last moltres_ops.reset_waits() (or of the sampler''s first start)'),
        (36, 'moltres_ops_errors', 'total', 'counter', '',
         'Errors clients saw (ERROR or FATAL), by SQLSTATE and where they arose, whether or not a statement was running (moltres_ops.errors)')
      ) AS c(ord, source, col, type, unit, help)
      JOIN @extschema@._metric_sources() s ON s.source = c.source
     ORDER BY c.ord
$$;

COMMENT ON FUNCTION metric_catalogue() IS
'metric_catalogue: every metric family moltres_ops exports (metrics, prometheus(), the postgres_exporter queries file): name, type, unit, labels, help, and the source query and column it comes from';

-- Escape a label value for the exposition format.
CREATE FUNCTION _prometheus_label(v text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT replace(replace(replace($1, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
$$;

-- The query that turns one source's rows into samples: one row per
-- sample, histograms expanded to _bucket (with le), _sum and _count.
-- The query that turns one source's rows into samples: one row per sample,
-- histograms expanded to _bucket (with le), _sum and _count.  Columns:
-- name, labels (jsonb, only when with_json), series (the label set in the
-- exposition format, without le), lbl (with le), value, family (the
-- catalogue's name), ord (orders the samples of one series: buckets by
-- le, then _sum and _count).
CREATE FUNCTION _metric_source_sql(src text, with_json boolean)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('SELECT v.name, CASE WHEN %s THEN %s || v.extra END, l.series, l.series || CASE WHEN v.le IS NULL THEN %L WHEN l.series = %L THEN %L || v.le || %L ELSE %L || v.le || %L END, v.value::float8, v.family, v.ord FROM (%s) q CROSS JOIN LATERAL (SELECT %s AS series) l CROSS JOIN LATERAL (%s) v(name, extra, le, value, type, help, family, ord) WHERE v.value IS NOT NULL',
                  $2::text,
                  CASE WHEN cardinality(s.labels) = 0 THEN $l$'{}'::jsonb$l$
                       ELSE 'jsonb_build_object(' ||
                            (SELECT string_agg(format('%L, coalesce(q.%I::text, %L)', l, l, ''), ', ' ORDER BY i)
                               FROM unnest(s.labels) WITH ORDINALITY AS x(l, i)) || ')' END,
                  '', '', 'le="', '"', ',le="', '"',
                  s.query,
                  CASE WHEN cardinality(s.labels) = 0 THEN $l$''$l$
                       ELSE (SELECT string_agg(format('%L || @extschema@._prometheus_label(coalesce(q.%I::text, %L)) || %L', l || '="', l, '', '"'), $l$ || ',' || $l$ ORDER BY l)
                               FROM unnest(s.labels) AS x(l)) END,
                  (SELECT string_agg(
                       CASE WHEN c.type <> 'histogram'
                            THEN format($f$SELECT %1$L, '{}'::jsonb, NULL::text, q.%2$I::float8, %3$L, %4$L, %1$L, 0$f$,
                                        c.name, c."column", c.type, c.help)
                            ELSE format($f$SELECT %1$L || '_bucket', CASE WHEN %7$s THEN jsonb_build_object('le', l.le) END, l.le, b.n::float8, 'histogram', %2$L, %1$L, b.i::int FROM unnest(q.%3$I, q.%4$I) WITH ORDINALITY AS b(bound, n, i) CROSS JOIN LATERAL (SELECT CASE WHEN b.bound = 'Infinity' THEN '+Inf' ELSE b.bound::text END AS le) l UNION ALL SELECT %1$L || '_sum', '{}'::jsonb, NULL, q.%5$I::float8, 'histogram', %2$L, %1$L, 1000 UNION ALL SELECT %1$L || '_count', '{}'::jsonb, NULL, q.%6$I::float8, 'histogram', %2$L, %1$L, 1001$f$,
                                        c.name, c.help, c."column", c."column" || '_bucket',
                                        c."column" || '_sum', c."column" || '_count', $2::text) END,
                       ' UNION ALL ')
                     FROM @extschema@.metric_catalogue() c WHERE c.source = s.source))
      FROM @extschema@._metric_sources() s
     WHERE s.source = $1
$$;

-- The samples of every source.  Its body is generated here, once, from
-- the catalogue, so that it is static SQL: a scraper that keeps its
-- connection plans it once, not at every scrape.
DO $do$
DECLARE
    body text;
BEGIN
    -- one static RETURN QUERY per source, without parameters (with or
    -- without JSON labels are two copies), so that each is planned once
    -- per session: a parameter would make PL/pgSQL replan it.
    SELECT string_agg(format(E'    IF %s THEN\n        IF with_json THEN\n            RETURN QUERY %s;\n        ELSE\n            RETURN QUERY %s;\n        END IF;\n    END IF;\n',
                             CASE WHEN s.needs_preload THEN 'preloaded' ELSE 'true' END,
                             @extschema@._metric_source_sql(s.source, true),
                             @extschema@._metric_source_sql(s.source, false)),
                      '' ORDER BY s.source)
      INTO body
      FROM @extschema@._metric_sources() s;
    EXECUTE format($f$
CREATE FUNCTION @extschema@._metric_samples(
    with_json boolean,
    OUT name text,
    OUT labels jsonb,
    OUT series text,
    OUT lbl text,
    OUT value float8,
    OUT family text,
    OUT ord int)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS %L$f$,
        E'DECLARE\n    preloaded boolean := @extschema@.preloaded();\nBEGIN\n' || body || 'END');
END
$do$;

COMMENT ON FUNCTION _metric_samples(boolean) IS
'_metric_samples: every sample of the catalogue (generated from it at installation); with_json => false leaves labels NULL, for prometheus()';

CREATE FUNCTION metrics(
    OUT name text,
    OUT labels jsonb,
    OUT value float8,
    OUT type text,
    OUT help text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT s.name, s.labels, s.value, c.type, c.help
      FROM @extschema@._metric_samples(true) s
      JOIN @extschema@.metric_catalogue() c ON c.name = s.family
$$;

COMMENT ON FUNCTION metrics() IS
'metrics: the rows of the view metrics';

CREATE VIEW metrics AS
    SELECT name, labels, value, type, help FROM metrics();

COMMENT ON VIEW metrics IS
'metrics: every sample moltres_ops exports, one row per sample (name, labels, value), with the Prometheus metric type and help text; the families are listed in metric_catalogue()';

CREATE FUNCTION prometheus()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH family AS (
        -- the samples of a series stay together, buckets in le order
        SELECT m.family,
               string_agg(m.name || CASE WHEN m.lbl = '' THEN ' ' ELSE '{' || m.lbl || '} ' END ||
                          CASE WHEN m.value = 'Infinity' THEN '+Inf'
                               WHEN m.value = '-Infinity' THEN '-Inf'
                               WHEN m.value = 'NaN' THEN 'NaN'
                               ELSE m.value::text END,
                          E'\n' ORDER BY m.series COLLATE "C", m.ord) AS body
          FROM @extschema@._metric_samples(false) m
         GROUP BY m.family
    )
    SELECT coalesce(string_agg(
               format(E'# HELP %s %s\n# TYPE %s %s\n', c.name, replace(replace(c.help, E'\\', E'\\\\'), E'\n', E'\\n'), c.name, c.type) ||
               f.body || E'\n',
               '' ORDER BY c.name), '')
      FROM family f
      JOIN @extschema@.metric_catalogue() c ON c.name = f.family
$$;

COMMENT ON FUNCTION prometheus() IS
'prometheus: the metrics view in the Prometheus text exposition format (version 0.0.4), for a scrape endpoint or a file collector';

-- postgres_exporter_queries: the queries file for Prometheus'
-- postgres_exporter (--extend.query-path), made from the catalogue.  The
-- file shipped in contrib/postgres_exporter is this function's output.
CREATE FUNCTION postgres_exporter_queries()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT E'# moltres_ops queries for Prometheus'' postgres_exporter.\n'
        || E'#\n'
        || E'#   postgres_exporter --extend.query-path=contrib/postgres_exporter/moltres_ops.yaml\n'
        || E'#\n'
        || E'# Generated by SELECT moltres_ops.postgres_exporter_queries(); do not edit:\n'
        || E'# change the catalogue in sql/install/65_metrics.sql and regenerate.\n'
        || E'# Connect the exporter as a role granted pg_monitor, to a database where\n'
        || E'# CREATE EXTENSION moltres_ops was run.  The families and their meaning are\n'
        || E'# listed in moltres_ops.metric_catalogue() and docs/reference.md; the same\n'
        || E'# samples come from moltres_ops.prometheus().  Sources that need\n'
        || E'# shared_preload_libraries fail (and are skipped) without it.\n'
        || string_agg(
               format(E'\n%s:\n  query: "%s"\n  metrics:\n', s.source,
                      replace(replace(s.query, E'\\', E'\\\\'), '"', E'\\"'))
            || coalesce((SELECT string_agg(format(E'    - %s:\n        usage: "LABEL"\n        description: "%s"\n', x.l, d.description), '' ORDER BY x.i)
                           FROM unnest(s.labels) WITH ORDINALITY AS x(l, i)
                           JOIN @extschema@._metric_labels() d ON d.label = x.l), '')
            || (SELECT string_agg(format(E'    - %s:\n        usage: "%s"\n        description: "%s"\n',
                                         c."column", upper(c.type), replace(c.help, '"', E'\\"')), '')
                  FROM @extschema@.metric_catalogue() c WHERE c.source = s.source),
               '' ORDER BY s.source)
      FROM @extschema@._metric_sources() s
$$;

COMMENT ON FUNCTION postgres_exporter_queries() IS
'postgres_exporter_queries: the queries file for Prometheus'' postgres_exporter (contrib/postgres_exporter/moltres_ops.yaml), generated from metric_catalogue()';

-- Scrapes must not pay for JIT compilation: health() reads views whose
-- estimates are large (see docs/performance.md).
ALTER FUNCTION health() SET jit = off;

REVOKE ALL ON FUNCTION statement_totals_internal() FROM PUBLIC;
REVOKE ALL ON FUNCTION metrics_statements_internal() FROM PUBLIC;
REVOKE ALL ON FUNCTION _metric_samples(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION metrics() FROM PUBLIC;
REVOKE ALL ON FUNCTION prometheus() FROM PUBLIC;
REVOKE ALL ON metrics FROM PUBLIC;
GRANT EXECUTE ON FUNCTION statement_totals_internal() TO pg_monitor;
GRANT EXECUTE ON FUNCTION metrics_statements_internal() TO pg_monitor;
GRANT EXECUTE ON FUNCTION _metric_samples(boolean) TO pg_monitor;
GRANT EXECUTE ON FUNCTION metrics() TO pg_monitor;
GRANT EXECUTE ON FUNCTION prometheus() TO pg_monitor;
GRANT SELECT ON metrics TO pg_monitor;
