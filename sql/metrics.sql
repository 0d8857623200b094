-- Metrics: the catalogue, the samples made from it, the Prometheus text,
-- histograms and the stable per-statement set.

-- The catalogue: every family with its type, unit and labels.
SELECT name, type, unit, labels FROM moltres_ops.metric_catalogue() ORDER BY name;

-- Prometheus naming: counters end in _total and nothing else does; units in
-- the name are base units; no percentages, no pre-computed percentiles.
SELECT name FROM moltres_ops.metric_catalogue()
 WHERE (type = 'counter') <> (name LIKE '%\_total')
    OR name ~ '_(ms|us|pct|percent|p[0-9]+|per_second|kb|mb)(_|$)'
    OR (unit = 'seconds' AND name NOT LIKE '%\_seconds' AND name NOT LIKE '%\_seconds\_total')
    OR (unit = 'bytes' AND name NOT LIKE '%\_bytes' AND name NOT LIKE '%\_bytes\_total')
    OR help IS NULL OR help = '';

-- Every sample belongs to a catalogued family; every label is catalogued.
SELECT count(*) AS uncatalogued FROM moltres_ops.metrics m
 WHERE NOT EXISTS (SELECT FROM moltres_ops.metric_catalogue() c
                    WHERE m.name = c.name
                       OR (c.type = 'histogram' AND m.name IN (c.name || '_bucket', c.name || '_sum', c.name || '_count')));
SELECT DISTINCT k AS unknown_label FROM moltres_ops.metrics m, jsonb_object_keys(m.labels) k
 WHERE k <> 'le' AND k NOT IN (SELECT label FROM moltres_ops._metric_labels());

-- One sample per health check, 0 ok / 1 warn / 2 critical (whatever the
-- list of checks).
SELECT count(*) = (SELECT count(*) FROM moltres_ops.health()) AS one_per_check,
       bool_and(m.value = CASE h.status WHEN 'ok' THEN 0 WHEN 'warn' THEN 1 WHEN 'critical' THEN 2 END) AS mapped
  FROM moltres_ops.metrics m
  JOIN moltres_ops.health() AS h(check_name, status) ON h.check_name = m.labels ->> 'check'
 WHERE m.name = 'moltres_ops_health_status';

-- Per-database histogram: statements below run in this database; buckets
-- are cumulative, +Inf equals _count, and _count moves with the statements.
SELECT moltres_ops.reset();
SELECT 1 AS one;
SELECT pg_sleep(0.002);
CREATE TEMP TABLE h AS
SELECT m.name, m.labels ->> 'le' AS le, m.value FROM moltres_ops.metrics m
 WHERE m.name LIKE 'moltres_ops_statement_duration_seconds%'
   AND m.labels ->> 'datname' = current_database();
SELECT count(*) FILTER (WHERE name LIKE '%\_bucket') AS buckets,
       max(value) FILTER (WHERE le = '+Inf') = max(value) FILTER (WHERE name LIKE '%\_count') AS inf_is_count,
       max(value) FILTER (WHERE name LIKE '%\_count') >= 3 AS counted,
       max(value) FILTER (WHERE name LIKE '%\_sum') > 0.002 AS summed
  FROM h;
SELECT string_agg(le, ' ' ORDER BY ord) AS bounds
  FROM (SELECT le, CASE le WHEN '+Inf' THEN 'Infinity'::float8 ELSE le::float8 END AS ord
          FROM h WHERE name LIKE '%\_bucket') b;
-- monotone
SELECT count(*) AS decreasing FROM (
    SELECT value < lag(value) OVER (ORDER BY CASE le WHEN '+Inf' THEN 'Infinity'::float8 ELSE le::float8 END) AS down
      FROM h WHERE name LIKE '%\_bucket') d WHERE down;

-- Errors by class: a division by zero in the executor is "other", a
-- statement timeout is "statement_timeout".
SELECT 1 / (g - 1) FROM generate_series(1, 1) g;
SET statement_timeout = '10ms';
SELECT pg_sleep(1);
RESET statement_timeout;
SELECT labels ->> 'class' AS class, value FROM moltres_ops.metrics
 WHERE name = 'moltres_ops_statement_errors_total' AND labels ->> 'datname' = current_database()
 ORDER BY 1;

-- Per-statement series: a statement joins once it reaches
-- moltres_ops.metrics_min_calls (100) calls.  Two roles run the same
-- statement and are dropped: their series stay apart (userid, not a name).
CREATE ROLE mo_metrics_a;
CREATE ROLE mo_metrics_b;
GRANT pg_monitor TO mo_metrics_a, mo_metrics_b;
\set ECHO none
\o /dev/null
SET ROLE mo_metrics_a;
SELECT 'SELECT 42 AS answer' FROM generate_series(1, 100) \gexec
SET ROLE mo_metrics_b;
SELECT 'SELECT 42 AS answer' FROM generate_series(1, 100) \gexec
RESET ROLE;
SELECT 'SELECT 43 AS below_threshold' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
DROP ROLE mo_metrics_a;
DROP ROLE mo_metrics_b;
SELECT count(*) AS series, count(DISTINCT labels) AS distinct_label_sets,
       min(value) AS min_count
  FROM moltres_ops.metrics m
 WHERE m.name = 'moltres_ops_query_duration_seconds_count'
   AND m.labels ->> 'queryid' IN (SELECT queryid::text FROM moltres_ops.query_stats WHERE query LIKE 'SELECT $1 AS answer%');
SELECT count(*) AS below_threshold_series FROM moltres_ops.metrics m
 WHERE m.name LIKE 'moltres_ops_query_%'
   AND m.labels ->> 'queryid' IN (SELECT queryid::text FROM moltres_ops.query_stats WHERE query LIKE 'SELECT $1 AS below_threshold%');

-- Every histogram series, per database or per statement: 17 buckets that
-- never decrease, the +Inf one equal to _count.
WITH b AS (
    SELECT regexp_replace(name, '_bucket$', '') AS family, labels - 'le' AS series,
           CASE labels ->> 'le' WHEN '+Inf' THEN 'Infinity'::float8 ELSE (labels ->> 'le')::float8 END AS le,
           value
      FROM moltres_ops.metrics WHERE name LIKE '%\_seconds\_bucket'
), s AS (
    SELECT family, series, count(*) AS buckets,
           max(value) FILTER (WHERE le = 'Infinity') AS inf,
           bool_and(value >= coalesce(prev, 0)) AS monotone
      FROM (SELECT *, lag(value) OVER (PARTITION BY family, series ORDER BY le) AS prev FROM b) x
     GROUP BY family, series
)
SELECT s.family, count(*) > 0 AS has_series, bool_and(s.buckets = 17) AS all_buckets,
       bool_and(s.monotone) AS monotone,
       bool_and(s.inf = c.value) AS inf_is_count
  FROM s
  JOIN moltres_ops.metrics c ON c.name = s.family || '_count' AND c.labels = s.series
 GROUP BY s.family ORDER BY 1;

-- Prometheus text: every line is a comment or a well-formed sample, each
-- family has one HELP and one TYPE, and no series appears twice.
WITH l AS (SELECT line FROM regexp_split_to_table(moltres_ops.prometheus(), E'\n') AS line WHERE line <> '')
SELECT count(*) FILTER (WHERE line !~ '^(# (HELP|TYPE) [a-z_][a-z0-9_]* .+|[a-z_][a-z0-9_]*(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN))$') AS malformed,
       count(*) FILTER (WHERE line LIKE '# TYPE %') = count(DISTINCT split_part(line, ' ', 3)) FILTER (WHERE line LIKE '# TYPE %') AS one_type_per_family,
       count(*) FILTER (WHERE line LIKE '# HELP %') = count(*) FILTER (WHERE line LIKE '# TYPE %') AS help_per_type,
       count(*) FILTER (WHERE line NOT LIKE '#%') = count(DISTINCT regexp_replace(line, ' [^ ]*$', '')) FILTER (WHERE line NOT LIKE '#%') AS unique_series
  FROM l;
SELECT moltres_ops._prometheus_label(E'a"b\\c\nd') AS escaped;

-- Scrapes are never JIT-compiled.
SELECT p.proname, p.proconfig FROM pg_proc p
 WHERE p.pronamespace = 'moltres_ops'::regnamespace
   AND p.proname IN ('health', 'metrics', '_metric_samples', 'prometheus')
 ORDER BY 1;

-- The settings of the per-statement set.
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'moltres_ops.metrics%' ORDER BY 1;
