-- Without preload the live connection views still work (they read
-- pg_stat_activity and pg_locks), while the lifecycle counters, which live
-- in shared memory, raise the standard error.
CREATE EXTENSION moltres_ops;
SELECT count(*) >= 1 AS sees_me FROM moltres_ops.connections
 WHERE datname = current_database() AND usename = current_user;
SELECT connections >= 1 AS sees_me, limit_source FROM moltres_ops.pools
 WHERE datname = current_database() AND usename = current_user;
SELECT count(*) AS waits FROM moltres_ops.lock_waits;
\set VERBOSITY default
SELECT * FROM moltres_ops.pool_status;
SELECT * FROM moltres_ops.session_stats;
SELECT moltres_ops.reset_session_stats();
\set VERBOSITY sqlstate
SELECT * FROM moltres_ops.session_totals();
\set VERBOSITY default
-- Leave the database as the next file expects it.
DROP EXTENSION moltres_ops;
