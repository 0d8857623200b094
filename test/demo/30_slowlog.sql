-- Slow-query log: statements over moltres_ops.slow_query_ms (500 ms in this demo), failed ones included
SELECT to_char(ts, 'HH24:MI:SS.MS') AS started, username, round(duration_ms::numeric, 1) AS ms,
       rows, error_code, left(query, 60) AS query
  FROM moltres_ops.slow_queries;
