-- Connections and pools: the views have exactly the documented columns and
-- types, count real connections (made here with dblink) in the right
-- states, keep lifecycle counters, and are reserved to pg_monitor; the
-- reset is not executable by PUBLIC.
CREATE EXTENSION IF NOT EXISTS moltres_ops;
CREATE EXTENSION dblink;

-- Columns and types, view by view.
SELECT c.relname AS view, a.attnum, a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'moltres_ops'::regnamespace
   AND c.relname IN ('pool_status', 'pools', 'connections', 'session_stats', 'lock_waits')
   AND a.attnum > 0
 ORDER BY c.relname, a.attnum;

-- The server's slots, as pool_status reports them.
SELECT max_connections = current_setting('max_connections')::int AS max_ok,
       reserved_connections = current_setting('superuser_reserved_connections')::int AS reserved_ok,
       utilization_pct = round(100.0 * client_connections
                               / (max_connections - reserved_connections), 1) AS pct_ok,
       client_connections >= 1 AS sees_me,
       active >= 1 AS me_active,
       longest_running_statement >= '0' AS age_ok
  FROM moltres_ops.pool_status;

-- Open connections of known states, to ourselves.
CREATE FUNCTION mo_conn_open(name text, app text) RETURNS text
LANGUAGE sql AS $$
    SELECT dblink_connect(name, format('host=%s port=%s dbname=%s application_name=%s',
                          split_part(current_setting('unix_socket_directories'), ',', 1),
                          current_setting('port'), current_database(), app))
$$;
SELECT moltres_ops.reset_session_stats();
SELECT mo_conn_open('i1', 'mo_reg_idle'), mo_conn_open('i2', 'mo_reg_idle'),
       mo_conn_open('x1', 'mo_reg_xact'), mo_conn_open('a1', 'mo_reg_abort');
SELECT dblink_exec('x1', 'BEGIN'), dblink_exec('a1', 'BEGIN');
SELECT dblink_exec('a1', 'SELECT 1/0', false);

SELECT application_name, connections, active, idle, idle_in_transaction,
       waiting_on_lock, oldest_backend_start <= now() AS started,
       longest_state_age >= '0' AS age_ok
  FROM moltres_ops.connections
 WHERE application_name LIKE 'mo_reg_%'
 ORDER BY application_name;

SELECT state, count(*) FROM pg_stat_activity
 WHERE application_name LIKE 'mo_reg_%' GROUP BY state ORDER BY state;
SELECT idle >= 2 AS idle_ok, idle_in_transaction >= 1 AS iit_ok,
       idle_in_transaction_aborted >= 1 AS aborted_ok,
       longest_idle_in_transaction > '0' AS iit_age_ok,
       longest_transaction >= longest_idle_in_transaction AS xact_age_ok
  FROM moltres_ops.pool_status;

-- Our own pool: this session and the four above (no one else connects as
-- the test user while this file runs).
SELECT connections >= 5 AS all_there, idle >= 2 AS idle_ok,
       idle_in_transaction >= 2 AS iit_ok, conn_limit, limit_source
  FROM moltres_ops.pools
 WHERE datname = current_database() AND usename = current_user;

-- Each connection was counted once, when its session was established.
SELECT datname = current_database() AS db_ok, usename = current_user AS user_ok,
       application_name, connects, disconnects, auth_failures, rejected,
       session_p50_ms
  FROM moltres_ops.session_stats
 WHERE application_name LIKE 'mo_reg_%'
 ORDER BY application_name;

-- Disconnects arrive when the backends have exited.
SELECT dblink_disconnect('i1'), dblink_disconnect('i2'),
       dblink_disconnect('x1'), dblink_disconnect('a1');
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN (SELECT sum(disconnects) FROM moltres_ops.session_stats
                    WHERE application_name LIKE 'mo_reg_%') = 4;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT application_name, connects, disconnects,
       session_p50_ms > 0 AS has_p50,
       session_p50_ms <= session_p95_ms AND session_p95_ms <= session_p99_ms AS ordered,
       total_session_s > 0 AS has_total
  FROM moltres_ops.session_stats
 WHERE application_name LIKE 'mo_reg_%'
 ORDER BY application_name;

-- The totals are the sums of the rows.
SELECT t.connects_total = s.connects AS connects_ok,
       t.disconnects_total = s.disconnects AS disconnects_ok,
       t.connects_per_min >= 4 AS rate_ok,
       t.session_p50_ms IS NOT NULL AS has_p50
  FROM moltres_ops.pool_status t,
       (SELECT sum(connects) AS connects, sum(disconnects) AS disconnects
          FROM moltres_ops.session_stats) s;

-- A prepared transaction at the root of a blocking tree is pid 0.
CREATE TABLE mo_conn_t (id int);
BEGIN;
LOCK TABLE mo_conn_t IN SHARE MODE;
PREPARE TRANSACTION 'mo_conn_prepared';
SELECT mo_conn_open('w1', 'mo_reg_waiter');
SELECT dblink_send_query('w1', 'ALTER TABLE mo_conn_t ADD COLUMN v int');
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM moltres_ops.lock_waits
                           WHERE application_name = 'mo_reg_waiter');
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT application_name, lock_type, mode, relation, blocking_pids,
       root_blocker, root_blocker_state, root_blocker_query, query
  FROM moltres_ops.lock_waits WHERE application_name = 'mo_reg_waiter';
COMMIT PREPARED 'mo_conn_prepared';
SELECT * FROM dblink_get_result('w1') AS r(status text);
SELECT dblink_disconnect('w1');
DROP TABLE mo_conn_t;
-- Its disconnect is counted when the backend exits, which dblink does not
-- wait for: wait for it here, or it may land after the reset below.
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN (SELECT disconnects FROM moltres_ops.session_stats
                    WHERE application_name = 'mo_reg_waiter') = 1;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

-- Reset forgets everything.
SELECT moltres_ops.reset_session_stats();
SELECT count(*) FROM moltres_ops.session_stats WHERE application_name LIKE 'mo_reg_%';
SELECT connects_total, disconnects_total, auth_failures_total, rejected_total,
       session_p50_ms FROM moltres_ops.pool_status;
SELECT stats_reset > now() - interval '1 minute' AS just_reset
  FROM moltres_ops.session_totals();

-- Privileges: nothing for PUBLIC; the views for pg_monitor; the reset for
-- neither.
CREATE ROLE mo_conn_plain;
CREATE ROLE mo_conn_monitor IN ROLE pg_monitor;
SET ROLE mo_conn_plain;
SELECT count(*) FROM moltres_ops.pool_status;
SELECT count(*) FROM moltres_ops.pools;
SELECT count(*) FROM moltres_ops.connections;
SELECT count(*) FROM moltres_ops.session_stats;
SELECT count(*) FROM moltres_ops.lock_waits;
SELECT moltres_ops.reset_session_stats();
RESET ROLE;
SET ROLE mo_conn_monitor;
SELECT count(*) = 1 AS one_row FROM moltres_ops.pool_status;
SELECT count(*) >= 1 AS has_rows FROM moltres_ops.pools;
SELECT count(*) >= 1 AS has_rows FROM moltres_ops.connections;
SELECT count(*) >= 0 AS readable FROM moltres_ops.session_stats;
SELECT count(*) AS waits FROM moltres_ops.lock_waits;
SELECT moltres_ops.reset_session_stats();
RESET ROLE;
-- A role granted the views directly, without pg_read_all_stats: as in
-- pg_stat_activity it cannot see other roles' sessions, whose backend type
-- is hidden too, so they are not counted at all -- here not even this
-- session, whose session user is the role running the test.
CREATE ROLE mo_conn_granted;
GRANT SELECT ON moltres_ops.connections, moltres_ops.pools TO mo_conn_granted;
SELECT count(*) > 0 AS test_role_counts_itself FROM moltres_ops.connections;
SET ROLE mo_conn_granted;
SELECT count(*) AS hidden_backend_types FROM pg_stat_activity
 WHERE backend_type IS NULL AND pid = pg_backend_pid();
SELECT count(*) AS groups, coalesce(sum(connections), 0) AS counted FROM moltres_ops.connections;
SELECT count(*) AS pools FROM moltres_ops.pools;
RESET ROLE;
REVOKE SELECT ON moltres_ops.connections, moltres_ops.pools FROM mo_conn_granted;
DROP ROLE mo_conn_granted;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS monitor_exec
  FROM pg_proc p
 WHERE p.pronamespace = 'moltres_ops'::regnamespace
   AND p.proname IN ('session_stats', 'session_totals', 'reset_session_stats')
 ORDER BY p.proname;

DROP ROLE mo_conn_plain;
DROP ROLE mo_conn_monitor;
DROP FUNCTION mo_conn_open(text, text);
DROP EXTENSION dblink;
