-- Health and metrics: what is wrong right now, and what Prometheus scrapes
SELECT name, status, round(value::numeric, 2) AS value, threshold, left(detail, 90) AS detail
  FROM moltres_ops.health();
\echo '--- the Prometheus text format (first lines of moltres_ops.prometheus())'
SELECT line FROM regexp_split_to_table(moltres_ops.prometheus(), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE line LIKE 'moltres_ops_health%' OR line LIKE 'moltres_ops_latency_p95%' OR line LIKE 'moltres_ops_connections%'
 ORDER BY n LIMIT 20;
