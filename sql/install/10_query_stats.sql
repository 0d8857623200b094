-- moltres_ops install script, part 10: query timing (query_stats.c,
-- latency.c, histogram.c).  Views over shared memory; they need the library
-- in shared_preload_libraries.

CREATE FUNCTION query_stats_internal(
    showtext boolean,
    OUT userid oid,
    OUT dbid oid,
    OUT queryid bigint,
    OUT toplevel boolean,
    OUT query text,
    OUT calls bigint,
    OUT errors bigint,
    OUT timeouts bigint,
    OUT cancels bigint,
    OUT lock_timeouts bigint,
    OUT deadlocks bigint,
    OUT serialization_failures bigint,
    OUT total_ms float8,
    OUT min_ms float8,
    OUT max_ms float8,
    OUT mean_ms float8,
    OUT stddev_ms float8,
    OUT p50_ms float8,
    OUT p90_ms float8,
    OUT p95_ms float8,
    OUT p99_ms float8,
    OUT p999_ms float8,
    OUT rows bigint,
    OUT shared_blks_hit bigint,
    OUT shared_blks_read bigint,
    OUT temp_blks_written bigint,
    OUT wal_bytes numeric,
    OUT slow_calls bigint,
    OUT first_seen timestamptz,
    OUT last_seen timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_query_stats';

COMMENT ON FUNCTION query_stats_internal(boolean) IS
'query_stats_internal: the rows of the view query_stats; showtext => false skips copying query texts (cheaper for collectors)';

CREATE VIEW query_stats AS
    SELECT s.userid, r.rolname AS username, s.dbid, d.datname,
           s.queryid, s.toplevel, s.query,
           s.calls, s.errors, s.timeouts, s.cancels, s.lock_timeouts,
           s.deadlocks, s.serialization_failures,
           s.total_ms, s.min_ms, s.max_ms, s.mean_ms, s.stddev_ms,
           s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.p999_ms,
           s.rows, s.shared_blks_hit, s.shared_blks_read,
           s.temp_blks_written, s.wal_bytes, s.slow_calls,
           s.first_seen, s.last_seen
      FROM query_stats_internal(true) s
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
      LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid;

COMMENT ON VIEW query_stats IS
'query_stats: one row per (user, database, query id, top level): calls (failed ones included), errors by class, time and latency percentiles in ms, rows, blocks, WAL';

CREATE FUNCTION query_histogram_internal(
    OUT userid oid,
    OUT dbid oid,
    OUT queryid bigint,
    OUT toplevel boolean,
    OUT le_ms float8,
    OUT count bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_query_histogram';

CREATE VIEW query_histogram AS
    SELECT userid, dbid, queryid, toplevel, le_ms, count
      FROM query_histogram_internal();

COMMENT ON VIEW query_histogram IS
'query_histogram: cumulative latency bucket counts per statement (count of executions taking less than le_ms), last bound Infinity, as Prometheus histograms expect';

CREATE FUNCTION latency_internal(
    OUT dbid oid,
    OUT "window" interval,
    OUT calls bigint,
    OUT calls_per_s float8,
    OUT errors bigint,
    OUT error_rate float8,
    OUT timeouts bigint,
    OUT p50_ms float8,
    OUT p95_ms float8,
    OUT p99_ms float8)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_latency';

CREATE VIEW latency AS
    SELECT d.datname, l."window", l.calls, l.calls_per_s, l.errors,
           l.error_rate, l.timeouts, l.p50_ms, l.p95_ms, l.p99_ms
      FROM latency_internal() l
      LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
     WHERE l.dbid = 0 OR d.oid IS NOT NULL;

COMMENT ON VIEW latency IS
'latency: top-level statements over the last 1, 5 and 15 minutes, for the whole instance (datname NULL) and per database: rate, errors, timeouts, p50/p95/p99 in ms';

CREATE FUNCTION stats_info(
    OUT entries bigint,
    OUT max_entries bigint,
    OUT evictions bigint,
    OUT dropped bigint,
    OUT shmem_bytes bigint,
    OUT stats_reset timestamptz,
    OUT hist_dropped bigint,
    OUT texts_truncated bigint)
RETURNS record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_stats_info';

CREATE VIEW stats_info AS
    SELECT entries, max_entries, evictions, dropped, shmem_bytes, stats_reset,
           hist_dropped, texts_truncated
      FROM stats_info();

COMMENT ON VIEW stats_info IS
'stats_info: the statistics table itself: entries in use, capacity (max_statements), evictions and dropped measurements since the last reset, shared memory of all of moltres_ops, last full reset, durations left out of a histogram and texts cut because a pool was full';

CREATE FUNCTION reset(userid oid DEFAULT 0, dbid oid DEFAULT 0,
                      queryid bigint DEFAULT 0)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_reset';

COMMENT ON FUNCTION reset(oid, oid, bigint) IS
'reset: forget the statistics of the matching statements (0 = any user, database or query id); with no argument everything, including the latency windows and stats_info counters';

CREATE FUNCTION flush()
RETURNS bigint
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_flush';

COMMENT ON FUNCTION flush() IS
'flush: make this backend''s pending counts visible; counts are written to shared memory when each statement ends, so it returns 0 (records flushed)';

CREATE FUNCTION histogram_percentiles(durations_ms float8[], fractions float8[])
RETURNS float8[]
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_histogram_percentiles';

COMMENT ON FUNCTION histogram_percentiles(float8[], float8[]) IS
'histogram_percentiles: the percentiles that query_stats would report for these durations (ms), through the same histogram; to check its error bound';

REVOKE ALL ON FUNCTION query_stats_internal(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION query_histogram_internal() FROM PUBLIC;
REVOKE ALL ON FUNCTION latency_internal() FROM PUBLIC;
REVOKE ALL ON FUNCTION stats_info() FROM PUBLIC;
REVOKE ALL ON FUNCTION reset(oid, oid, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION query_stats_internal(boolean) TO pg_monitor;
GRANT EXECUTE ON FUNCTION query_histogram_internal() TO pg_monitor;
GRANT EXECUTE ON FUNCTION latency_internal() TO pg_monitor;
GRANT EXECUTE ON FUNCTION stats_info() TO pg_monitor;
GRANT SELECT ON query_stats, query_histogram, latency, stats_info TO pg_monitor;
