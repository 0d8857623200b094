-- Connections and pools: slots, who holds them, who blocks whom, lifecycle counters
-- Live load for the views: pgbench for a few seconds, a session that sits
-- idle in a transaction holding a row lock, an ALTER TABLE queued behind it
-- and a reader queued behind the ALTER.  Everything ends by itself.
\! pgbench -n -c 6 -j 2 -T 5 demo >/dev/null 2>&1 &
\! (echo "BEGIN; UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1;"; sleep 4) | psql -X -q "dbname=demo application_name=demo_holder" >/dev/null 2>&1 &
\! sleep 1
\! psql -X -q "dbname=demo application_name=demo_migration" -c "SET lock_timeout = '3s'" -c "ALTER TABLE pgbench_branches ADD COLUMN note text" >/dev/null 2>&1 &
\! sleep 0.5
\! psql -X -q "dbname=demo application_name=demo_report" -c "SELECT count(*) FROM pgbench_branches" >/dev/null 2>&1 &
\! sleep 0.5

\echo '--- pool_status: one row for the whole server'
\x on
SELECT * FROM moltres_ops.pool_status;
\x off
\echo '--- pools: per database and user, and the limit that binds first'
SELECT * FROM moltres_ops.pools ORDER BY connections DESC;
\echo '--- connections: who holds them'
SELECT datname, usename, application_name, client_addr, connections, active,
       idle, idle_in_transaction, waiting_on_lock, longest_state_age
  FROM moltres_ops.connections ORDER BY connections DESC;
\echo '--- lock_waits: who blocks whom; the root blocker is the one to end'
SELECT pid, application_name, waiting, lock_type, mode, relation,
       blocking_pids, root_blocker, root_blocker_state,
       left(root_blocker_query, 60) AS root_blocker_query, left(query, 50) AS query
  FROM moltres_ops.lock_waits ORDER BY waiting DESC;

\! sleep 5
-- Two refused logins: a role at its connection limit (a rejection, as for a
-- full server) and a role that may not log in (an authentication failure).
CREATE ROLE demo_limited LOGIN CONNECTION LIMIT 0;
CREATE ROLE demo_nologin;
\! psql -X -q "dbname=demo user=demo_limited application_name=demo_app" -c 'SELECT 1' >/dev/null 2>&1
\! psql -X -q "dbname=demo user=demo_nologin application_name=demo_app" -c 'SELECT 1' >/dev/null 2>&1
\echo '--- session_stats: connection churn and session lengths per application'
SELECT datname, usename, application_name, connects, disconnects,
       auth_failures, rejected, round(session_p50_ms::numeric, 1) AS p50_ms,
       round(session_p95_ms::numeric, 1) AS p95_ms,
       round(total_session_s::numeric, 1) AS total_s
  FROM moltres_ops.session_stats ORDER BY connects DESC;
DROP ROLE demo_limited, demo_nologin;
