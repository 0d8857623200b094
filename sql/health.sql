-- Health and metrics: the checks, their thresholds as settings, statuses
-- that follow the thresholds, and the Prometheus text format.
SELECT name, threshold FROM moltres_ops.health() ORDER BY name;
SELECT count(*) FILTER (WHERE status NOT IN ('ok', 'warn', 'critical')) AS bad_status,
       count(*) FILTER (WHERE detail IS NULL) AS no_detail
  FROM moltres_ops.health();

-- ok below the threshold, warn at it, critical at twice it (sessions idle in
-- a transaction, long statements and the lock queue are tested by TAP).
SELECT moltres_ops._health_status(0.5, 1) AS below, moltres_ops._health_status(1, 1) AS at,
       moltres_ops._health_status(2, 1) AS twice, moltres_ops._health_status(NULL, 1) AS no_value;

-- Utilisation: everything in use is critical with the thresholds at 1 %.
SET moltres_ops.health_utilization_warn_pct = 1;
SET moltres_ops.health_utilization_critical_pct = 1;
SELECT name, status, value > 0 AS has_value FROM moltres_ops.health() WHERE name = 'connection_utilization';
RESET moltres_ops.health_utilization_warn_pct;
RESET moltres_ops.health_utilization_critical_pct;
SET moltres_ops.health_utilization_warn_pct = 0;   -- out of range

-- A failed migration makes the migrations check critical and names it.
SELECT moltres_ops.migration_begin('health_1');
SELECT moltres_ops.migration_fail('health_1', 'boom');
SELECT name, status, value, detail FROM moltres_ops.health() WHERE name = 'migrations';
SELECT moltres_ops.migration_resolve('health_1', 'rolled_back');
DELETE FROM moltres_ops.migrations WHERE version = 'health_1';
SELECT name, status, detail FROM moltres_ops.health() WHERE name = 'migrations';

-- Only monitoring roles may read it.
CREATE ROLE mo_health_plain;
SET ROLE mo_health_plain;
SELECT * FROM moltres_ops.health();
SELECT count(*) FROM moltres_ops.metrics;
RESET ROLE;
GRANT pg_monitor TO mo_health_plain;
SET ROLE mo_health_plain;
SELECT count(*) > 0 AS monitor_reads_health FROM moltres_ops.health();
RESET ROLE;
DROP ROLE mo_health_plain;
