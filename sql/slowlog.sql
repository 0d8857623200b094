-- Slow-query log: statements at or over moltres_ops.slow_query_ms are kept
-- in the ring (newest first) with their duration, rows, error and plan;
-- statements under it are not.  On a busy machine a read of the ring may
-- itself take longer than the threshold and be logged: every read here
-- leaves out statements that read slow_queries, and no result depends on
-- how fast the machine is.
SET moltres_ops.slow_query_ms = 100;
SET moltres_ops.log_slow = off;          -- the log lines are checked by TAP
SELECT moltres_ops.reset_slow_queries();

SELECT pg_sleep(0.15) AS slow;
SET moltres_ops.slow_query_ms = 60000;
SELECT pg_sleep(0.01) AS fast;
SET moltres_ops.slow_query_ms = 100;
SELECT count(*) AS slow_rows, min(duration_ms) >= 150 AS long_enough,
       max(duration_ms) < 60000 AS not_too_long, min(rows) AS rows,
       bool_and(error_code IS NULL) AS no_error, bool_and(plan IS NULL) AS no_plan,
       bool_and(pid = pg_backend_pid()) AS my_pid,
       bool_and(username = current_user AND datname = current_database()) AS who
  FROM moltres_ops.slow_queries WHERE query = 'SELECT pg_sleep(0.15) AS slow';
SELECT count(*) AS fast_rows FROM moltres_ops.slow_queries WHERE query LIKE '%AS fast';

-- A slow statement that fails, and one that hits statement_timeout.
SELECT CASE WHEN pg_sleep(0.12) IS NOT NULL THEN 1 / (random() * 0)::int END AS fails;
SET statement_timeout = '150ms';
SELECT pg_sleep(2) AS times_out;
RESET statement_timeout;
SELECT query, error_code, error, duration_ms >= 100 AS slow, duration_ms < 1900 AS bounded
  FROM moltres_ops.slow_queries WHERE error_code IS NOT NULL ORDER BY ts;

-- Newest first.
SELECT array_agg(left(query, 22) ORDER BY ord) AS newest_first
  FROM (SELECT query, row_number() OVER () AS ord FROM moltres_ops.slow_queries
         WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%') s;

-- Plans: only when asked, as text or as a JSON object.
SET moltres_ops.log_plan = text;
SELECT pg_sleep(0.12) FROM generate_series(1, 1) AS g;
SELECT plan LIKE '%Function Scan on generate_series g%' AS text_plan
  FROM moltres_ops.slow_queries WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%'
 ORDER BY ts DESC LIMIT 1;
SET moltres_ops.log_plan = json;
SELECT pg_sleep(0.12) FROM generate_series(1, 1) AS g;
SELECT left(plan, 1) AS starts, plan::json -> 'Plan' ->> 'Node Type' AS json_plan_node
  FROM moltres_ops.slow_queries WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%' LIMIT 1;
SET moltres_ops.log_plan = off;

-- Bind parameters only with log_parameters.
PREPARE slow_p(int, text) AS SELECT pg_sleep(0.12), $1, $2;
EXECUTE slow_p(42, 'it''s');
SELECT parameters FROM moltres_ops.slow_queries
 WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%' ORDER BY ts DESC LIMIT 1;
SET moltres_ops.log_parameters = on;
EXECUTE slow_p(43, 'it''s');
SELECT query, parameters FROM moltres_ops.slow_queries
 WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%' ORDER BY ts DESC LIMIT 1;
RESET moltres_ops.log_parameters;
DEALLOCATE slow_p;

-- -1 turns it off.
SET moltres_ops.slow_query_ms = -1;
SELECT moltres_ops.reset_slow_queries();
SELECT pg_sleep(0.12) AS while_off;
SELECT count(*) AS rows_while_off FROM moltres_ops.slow_queries;  -- nothing, not even this
SET moltres_ops.slow_query_ms = 100;

-- Privacy: an ordinary role sees its own rows only and cannot reset.
CREATE ROLE mo_slow_a;
CREATE ROLE mo_slow_b;
SELECT moltres_ops.reset_slow_queries();
SET ROLE mo_slow_a;
SELECT pg_sleep(0.12) AS by_a;
RESET ROLE;
SET ROLE mo_slow_b;
SELECT pg_sleep(0.12) AS by_b;
SELECT array_agg(username ORDER BY username) AS b_sees FROM moltres_ops.slow_queries
 WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%';
SELECT moltres_ops.reset_slow_queries();
RESET ROLE;
SELECT array_agg(username::text ORDER BY username) AS superuser_sees FROM moltres_ops.slow_queries
 WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%';
GRANT pg_read_all_stats TO mo_slow_b;
SET ROLE mo_slow_b;
SELECT count(*) AS reader_sees FROM moltres_ops.slow_queries
 WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%slow_queries%';
RESET ROLE;
DROP ROLE mo_slow_a;
DROP ROLE mo_slow_b;
RESET moltres_ops.slow_query_ms;
RESET moltres_ops.log_slow;
