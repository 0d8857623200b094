-- Query timing: counts, normalised text, error classes, percentiles, the
-- views, reset and privacy.  Runs in the preloaded instance.
SELECT moltres_ops.reset();
SELECT entries, evictions, dropped FROM moltres_ops.stats_info;

CREATE TABLE qs_t (id int PRIMARY KEY, v text);
INSERT INTO qs_t SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT v FROM qs_t WHERE id = 1;
SELECT v FROM qs_t WHERE id = 2;
SELECT v FROM qs_t WHERE id = 3 AND v <> 'secret-literal';
SET work_mem = '8MB';
RESET work_mem;

-- One row per statement, constants replaced by $n, never the literals.
SELECT query, calls, rows, errors, toplevel
  FROM moltres_ops.query_stats
 WHERE query ~ 'qs_t|work_mem'
 ORDER BY query COLLATE "C";
SELECT count(*) AS literal_leaks FROM moltres_ops.query_stats
 WHERE query LIKE '%secret%' OR query LIKE '%8MB%' OR query LIKE '%''v''%';
SELECT wal_bytes > 0 AS wrote_wal, shared_blks_hit + shared_blks_read > 0 AS read_blocks
  FROM moltres_ops.query_stats WHERE query LIKE 'INSERT INTO qs_t%';
-- The same query id as the server's own (EXPLAIN VERBOSE shows it).
CREATE FUNCTION qs_explain_id(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->>'Query Identifier')::bigint;
END $$;
SELECT count(*) AS same_queryid FROM moltres_ops.query_stats
 WHERE queryid = qs_explain_id('SELECT v FROM qs_t WHERE id = 1')
   AND query = 'SELECT v FROM qs_t WHERE id = $1';

-- Failed executions are counted with their class and time.
SELECT 1 / (id - id) FROM qs_t WHERE id = 1;
SET statement_timeout = '150ms';
SELECT pg_sleep(3);
SET statement_timeout = '10s';
SELECT pg_cancel_backend(pg_backend_pid()) AND pg_sleep(3) IS NULL;
RESET statement_timeout;
SELECT pg_cancel_backend(pg_backend_pid()) AND pg_sleep(3) IS NULL;
SELECT query, calls, errors, timeouts, cancels, lock_timeouts, deadlocks,
       serialization_failures
  FROM moltres_ops.query_stats
 WHERE query LIKE '%(id - id)%' OR query LIKE '%pg_sleep%'
 ORDER BY query COLLATE "C";
SELECT min_ms >= 140 AND max_ms < 2000 AS timeout_time_recorded
  FROM moltres_ops.query_stats WHERE query = 'SELECT pg_sleep($1)';

-- Percentiles: 100 sleeps of known durations (nested in a DO block, so
-- tracked with track = all), each also measured from outside; the
-- estimates must be within 1/48 (2.08 %) of the exact percentiles of what was
-- measured, plus 0.5 ms of timer slack (the outer measurement includes the
-- PL/pgSQL statement around the sleep, and the machine may be busy).
SET moltres_ops.track = 'all';
SET moltres_ops.slow_query_ms = 20;
CREATE TEMP TABLE qs_sleeps (ms float8);
DO $$
DECLARE
  d float8;
  t0 timestamptz;
BEGIN
  FOR i IN 1..100 LOOP
    d := CASE WHEN i % 100 < 60 THEN 0.002 WHEN i % 100 < 96 THEN 0.010 ELSE 0.030 END;
    t0 := clock_timestamp();
    PERFORM pg_sleep(d);
    INSERT INTO qs_sleeps VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
END $$;
RESET moltres_ops.track;
RESET moltres_ops.slow_query_ms;
WITH exact AS (
  SELECT percentile_disc(ARRAY[0.5, 0.9, 0.95, 0.99, 0.999]) WITHIN GROUP (ORDER BY ms) AS p
    FROM qs_sleeps),
est AS (
  SELECT ARRAY[p50_ms, p90_ms, p95_ms, p99_ms, p999_ms] AS p, calls, slow_calls, toplevel
    FROM moltres_ops.query_stats WHERE query = 'SELECT pg_sleep(d)')
SELECT est.calls, est.toplevel, f.pct,
       -- slow: at least the four 30 ms sleeps, at most those measured
       -- over 20 ms from outside (a busy machine makes more 10 ms ones so)
       est.slow_calls BETWEEN 4 AND (SELECT count(*) FROM qs_sleeps WHERE ms >= 20)
         AS slow_counted,
       abs(est.p[f.i] - exact.p[f.i]) <= exact.p[f.i] / 48 + 0.5 AS within_bound
  FROM exact, est,
       (VALUES (1, 'p50'), (2, 'p90'), (3, 'p95'), (4, 'p99'), (5, 'p99.9')) AS f(i, pct)
 ORDER BY f.i;

-- The histogram behind it, Prometheus-style: cumulative, ending at +Inf.
WITH h AS (
  SELECT h.le_ms, h.count
    FROM moltres_ops.query_histogram h
    JOIN moltres_ops.query_stats s USING (userid, dbid, queryid, toplevel)
   WHERE s.query = 'SELECT pg_sleep(d)')
-- (pg_sleep never returns early, so no sleep lies below what it asked for)
SELECT (SELECT count FROM h WHERE le_ms = 'Infinity') AS total,
       coalesce((SELECT max(count) FROM h WHERE le_ms < 1.95), 0) AS below_2ms,
       -- every 2 ms sleep measured under 4.5 ms from outside (how many
       -- depends on the machine's load) is in a bucket below 5 ms
       coalesce((SELECT max(count) FROM h WHERE le_ms < 5), 0) >=
         (SELECT count(*) FROM qs_sleeps WHERE ms < 4.5) AS fast_2ms_below_5ms,
       (SELECT max(count) FROM h WHERE le_ms < 9.9) <= 60 AS none_10ms_below_10ms,
       (SELECT max(count) FROM h WHERE le_ms < 29.5) <= 96 AS none_30ms_below_30ms,
       (SELECT bool_and(c >= lag_c) FROM (
          SELECT count AS c, lag(count, 1, 0::bigint) OVER (ORDER BY le_ms) AS lag_c FROM h) x)
         AS cumulative;

-- The error bound of the histogram itself, on 20,000 log-uniform values
-- from 10 us to 100 s: every percentile within 1/48 (2.08 %), plus the
-- 1 ns that converting milliseconds to whole nanoseconds may cost.
SELECT setseed(0.42);
CREATE TEMP TABLE qs_vals AS
  SELECT 0.01 * power(10, 7 * random()) AS ms FROM generate_series(1, 20000);
WITH f AS (SELECT array_agg(x / 1000.0 ORDER BY x) AS fr FROM generate_series(10, 990, 10) x),
exact AS (SELECT percentile_disc((SELECT fr FROM f)) WITHIN GROUP (ORDER BY ms) AS p FROM qs_vals),
est AS (SELECT moltres_ops.histogram_percentiles(array_agg(ms), (SELECT fr FROM f)) AS p FROM qs_vals)
SELECT count(*) AS percentiles_checked,
       bool_and(abs(est.p[i] - exact.p[i]) <= exact.p[i] / 48 + 0.000001) AS max_error_within_2_08pct
  FROM exact, est, generate_subscripts(exact.p, 1) i;
SELECT moltres_ops.histogram_percentiles('{1,2,3,4,100}', '{0,0.5,1}');
SELECT moltres_ops.histogram_percentiles('{}', '{0.5}');
SELECT moltres_ops.histogram_percentiles(NULL, '{0.5}');
SELECT moltres_ops.histogram_percentiles('{-1}', '{0.5}');
SELECT moltres_ops.histogram_percentiles('{1}', '{1.5}');
SELECT moltres_ops.histogram_percentiles('{1,NULL}', '{0.5}');

-- Tracking levels: nested statements only with track = all, none with none.
SELECT moltres_ops.reset();
CREATE FUNCTION qs_nested() RETURNS int LANGUAGE sql AS 'SELECT count(*)::int FROM qs_t WHERE id < 50';
SELECT qs_nested();
SET moltres_ops.track = 'all';
SELECT qs_nested();
SET moltres_ops.track = 'none';
SELECT qs_nested();
SELECT 'invisible' AS not_tracked;
RESET moltres_ops.track;
SELECT query, toplevel, calls FROM moltres_ops.query_stats
 WHERE query LIKE '%qs_nested%' OR query LIKE '%id < %' OR query LIKE '%not_tracked%'
 ORDER BY query COLLATE "C", toplevel;

-- The windows: the instance row and this database's, for 1, 5, 15 min.
SELECT datname IS NULL AS instance, "window", calls > 0 AS has_calls,
       calls_per_s > 0 AS has_rate, errors, error_rate IS NOT NULL AS has_rate2,
       p50_ms > 0 AND p50_ms <= p95_ms AND p95_ms <= p99_ms AS ordered
  FROM moltres_ops.latency
 WHERE datname IS NULL OR datname = current_database()
 ORDER BY "window", instance;

SELECT entries > 0 AS has_entries, max_entries, evictions, shmem_bytes > 5000000 AS sized,
       stats_reset > now() - interval '1 hour' AS recently_reset
  FROM moltres_ops.stats_info;
SELECT moltres_ops.flush();

-- reset by query id forgets that statement only; bad input changes nothing.
SELECT count(*) > 1 AS several FROM moltres_ops.query_stats;
SELECT moltres_ops.reset(queryid => (SELECT queryid FROM moltres_ops.query_stats
                                     WHERE query LIKE 'SELECT qs_nested()%'));
SELECT count(*) AS gone FROM moltres_ops.query_stats WHERE query LIKE 'SELECT qs_nested()%';
SELECT count(*) > 0 AS others_kept FROM moltres_ops.query_stats;
SELECT moltres_ops.reset(NULL);
SELECT moltres_ops.reset(0, NULL, 0);
SELECT count(*) > 0 AS still_kept FROM moltres_ops.query_stats;

-- Privacy: a plain role can neither read the views nor reset; granted the
-- view, it sees its own texts and not others'.
CREATE ROLE mo_qs_plain;
SET ROLE mo_qs_plain;
SELECT count(*) FROM moltres_ops.query_stats;
SELECT moltres_ops.reset();
SELECT 'plain' AS plain_probe;
RESET ROLE;
GRANT SELECT ON moltres_ops.query_stats TO mo_qs_plain;
GRANT EXECUTE ON FUNCTION moltres_ops.query_stats_internal(boolean) TO mo_qs_plain;
SET ROLE mo_qs_plain;
SELECT username = current_user AS own, query, queryid IS NOT NULL AS sees_queryid
  FROM moltres_ops.query_stats
 WHERE query LIKE '%plain_probe%' OR query = '<insufficient privilege>'
 GROUP BY 1, 2, 3 ORDER BY 1, 2;
SELECT moltres_ops.reset();
RESET ROLE;
GRANT pg_read_all_stats TO mo_qs_plain;
SET ROLE mo_qs_plain;
SELECT count(*) AS hidden_for_stats_reader FROM moltres_ops.query_stats
 WHERE query = '<insufficient privilege>';
RESET ROLE;
REVOKE ALL ON moltres_ops.query_stats FROM mo_qs_plain;
REVOKE ALL ON FUNCTION moltres_ops.query_stats_internal(boolean) FROM mo_qs_plain;
DROP ROLE mo_qs_plain;

DROP FUNCTION qs_nested();
DROP FUNCTION qs_explain_id(text);
DROP TABLE qs_t;
