-- Where the time goes: the wait sampler runs in a preloaded server, and
-- its views have the documented columns; only pg_monitor reads them and
-- only a superuser resets them.  What the sampler attributes, to which
-- statement and when, is timing and is tested in test/t/090_waits.pl.
SELECT pid IS NOT NULL AS sampler_running, interval_ms, max_entries
  FROM moltres_ops.wait_sampler;
SELECT * FROM moltres_ops.query_waits WHERE false;
SELECT * FROM moltres_ops.db_waits WHERE false;
SELECT * FROM moltres_ops.db_load WHERE false;
SELECT * FROM moltres_ops.session_history WHERE false;
SELECT DISTINCT "window" FROM moltres_ops.db_load_internal() ORDER BY 1;
SELECT area, bytes > 0 AS has_bytes FROM moltres_ops.shmem_usage
 WHERE area IN ('waits', 'session_history') ORDER BY area;
SELECT moltres_ops.reset_waits();
SELECT stats_reset > now() - interval '1 minute' AS just_reset
  FROM moltres_ops.wait_sampler;
-- The sample interval is a server-wide setting.
SET moltres_ops.sample_interval = 0;
CREATE ROLE mo_waits_plain;
SET ROLE mo_waits_plain;
SELECT count(*) FROM moltres_ops.query_waits;
SELECT count(*) FROM moltres_ops.session_history;
SELECT moltres_ops.reset_waits();
RESET ROLE;
GRANT pg_monitor TO mo_waits_plain;
SET ROLE mo_waits_plain;
SELECT count(*) >= 0 AS monitor_can_read FROM moltres_ops.query_waits;
SELECT count(*) >= 0 AS monitor_can_read FROM moltres_ops.db_load;
SELECT moltres_ops.reset_waits();
RESET ROLE;
DROP ROLE mo_waits_plain;
