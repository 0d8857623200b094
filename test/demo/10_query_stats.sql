-- Query timing: top statements with latency percentiles and failed executions
-- A little more failure for the columns to show: a lock timeout (a second
-- session holds the row), and a cancel from another session.
\! (echo "BEGIN; UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 2; SELECT pg_sleep(2);") | psql -X -q "dbname=demo" >/dev/null 2>&1 &
\! sleep 0.5
\! psql -X -q "dbname=demo" -c "SET lock_timeout = '300ms'" -c "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 2" >/dev/null 2>&1
\! psql -X -q "dbname=demo application_name=demo_cancelled" -c "SELECT pg_sleep(5) AS cancelled_by_operator" >/dev/null 2>&1 &
\! sleep 0.5
SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity WHERE application_name = 'demo_cancelled';
\! sleep 0.3

\echo '--- top statements by total time, with percentiles (ms)'
SELECT left(query, 60) AS query, calls, round(total_ms::numeric, 1) AS total_ms,
       round(p50_ms::numeric, 3) AS p50, round(p95_ms::numeric, 3) AS p95,
       round(p99_ms::numeric, 3) AS p99, round(max_ms::numeric, 1) AS max, rows
  FROM moltres_ops.query_stats ORDER BY total_ms DESC LIMIT 8;

\echo '--- statements that failed, by class (pg_stat_statements has none of these)'
SELECT left(query, 50) AS query, calls, errors, timeouts, cancels, lock_timeouts,
       deadlocks, serialization_failures AS serialization, round(max_ms::numeric, 1) AS max_ms
  FROM moltres_ops.query_stats WHERE errors > 0 ORDER BY errors DESC, query;

\echo '--- the same statements seen by pg_stat_statements: the failed runs are missing'
SELECT left(m.query, 50) AS query, m.calls AS moltres_calls, p.calls AS pgss_calls
  FROM moltres_ops.query_stats m
  LEFT JOIN pg_stat_statements p USING (userid, dbid, queryid, toplevel)
 WHERE m.errors > 0 ORDER BY m.query;

\echo '--- slow statements (over moltres_ops.slow_query_ms)'
SELECT left(query, 50) AS query, calls, slow_calls, round(max_ms::numeric, 1) AS max_ms
  FROM moltres_ops.query_stats WHERE slow_calls > 0 ORDER BY slow_calls DESC;

\echo '--- latency of the whole instance and per database'
SELECT coalesce(datname, '(instance)') AS datname, "window", calls,
       round(calls_per_s::numeric, 1) AS calls_per_s, errors,
       round(error_rate::numeric, 4) AS error_rate, timeouts,
       round(p50_ms::numeric, 3) AS p50, round(p95_ms::numeric, 3) AS p95,
       round(p99_ms::numeric, 3) AS p99
  FROM moltres_ops.latency ORDER BY "window", datname NULLS FIRST;

\echo '--- histogram of the pgbench UPDATE, as Prometheus reads it'
SELECT round(h.le_ms::numeric, 4) AS le_ms, h.count
  FROM moltres_ops.query_histogram h
  JOIN moltres_ops.query_stats s USING (userid, dbid, queryid, toplevel)
 WHERE s.query LIKE 'UPDATE pgbench_accounts%'
 ORDER BY h.le_ms LIMIT 12;

\echo '--- the table itself'
SELECT entries, max_entries, evictions, dropped, pg_size_pretty(shmem_bytes) AS shmem,
       stats_reset FROM moltres_ops.stats_info;
