-- Health and metrics: the checks, their thresholds as settings, statuses
-- that follow the thresholds, and the Prometheus text format.  The health
-- worker runs in database postgres, where this test does not install the
-- extension: health() says so in its health_worker row and evaluates the
-- checks in the session (the worker itself is tested by TAP).
SELECT name, threshold FROM moltres_ops.health_evaluate() ORDER BY name;
SELECT count(*) FILTER (WHERE status NOT IN ('ok', 'warn', 'critical')) AS bad_status,
       count(*) FILTER (WHERE detail IS NULL) AS no_detail
  FROM moltres_ops.health();
SELECT name, status, since IS NULL AS no_since FROM moltres_ops.health() WHERE name = 'health_worker';
SELECT (SELECT array_agg(name ORDER BY name) FROM moltres_ops.health() WHERE name <> 'health_worker')
     = (SELECT array_agg(name ORDER BY name) FROM moltres_ops.health_evaluate()) AS same_checks;

-- ok below the threshold, warn at it, critical at twice it (sessions idle in
-- a transaction, long statements and the lock queue are tested by TAP).
SELECT moltres_ops._health_status(0.5, 1) AS below, moltres_ops._health_status(1, 1) AS at,
       moltres_ops._health_status(2, 1) AS twice, moltres_ops._health_status(NULL, 1) AS no_value;
-- Free space: warn below the threshold, critical below half of it.
SELECT moltres_ops._health_status_below(30, 20) AS above, moltres_ops._health_status_below(15, 20) AS below,
       moltres_ops._health_status_below(9, 20) AS under_half, moltres_ops._health_status_below(NULL, 20) AS no_value;
-- Shares of a hard limit: warn at the threshold, critical halfway to 100 %.
SELECT moltres_ops._health_status_pct(74, 75) AS below, moltres_ops._health_status_pct(80, 75) AS at,
       moltres_ops._health_status_pct(87.5, 75) AS halfway, moltres_ops._health_status_pct(NULL, 75) AS no_value;
-- Settings in their base unit; NULL for no such setting or no number.
SET moltres_ops.health_replication_lag_s = '2min';
SELECT moltres_ops._setting('moltres_ops.health_replication_lag_s') AS lag_s,
       moltres_ops._setting('moltres_ops.health_replication_lag_mb') AS lag_mb,
       moltres_ops._setting('moltres_ops.health_disk_free_pct') AS disk_pct,
       moltres_ops._setting('moltres_ops.no_such') AS missing,
       moltres_ops._setting('search_path') AS not_a_number;
RESET moltres_ops.health_replication_lag_s;

-- Utilisation: everything in use is critical with the thresholds at 1 %.
SET moltres_ops.health_utilization_warn_pct = 1;
SET moltres_ops.health_utilization_critical_pct = 1;
SELECT name, status, value > 0 AS has_value FROM moltres_ops.health_evaluate() WHERE name = 'connection_utilization';
RESET moltres_ops.health_utilization_warn_pct;
RESET moltres_ops.health_utilization_critical_pct;
SET moltres_ops.health_utilization_warn_pct = 0;   -- out of range

-- A failed migration makes the migrations check critical and names it.
SELECT moltres_ops.migration_begin('health_1');
SELECT moltres_ops.migration_fail('health_1', 'boom');
SELECT name, status, value, detail FROM moltres_ops.health_evaluate() WHERE name = 'migrations';
SELECT moltres_ops.migration_resolve('health_1', 'rolled_back');
DELETE FROM moltres_ops.migrations WHERE version = 'health_1';
SELECT name, status, detail FROM moltres_ops.health_evaluate() WHERE name = 'migrations';

-- Wraparound: quiet at the default, warns when every age counts (0 %).
SELECT name, status, value < 1 AS tiny FROM moltres_ops.health_evaluate() WHERE name = 'wraparound';
SET moltres_ops.health_wraparound_pct = 0;
SELECT name, status, detail ~ '^database \S+: transaction ID age \d+' AS says_age
  FROM moltres_ops.health_evaluate() WHERE name = 'wraparound';
RESET moltres_ops.health_wraparound_pct;

-- Disk space, read with statvfs(): quiet at 0 %, fires at 100 %.
SELECT location, size_bytes > 0 AS has_size, free_bytes BETWEEN 0 AND size_bytes AS free_fits
  FROM moltres_ops._disk_usage() ORDER BY location;
SET moltres_ops.health_disk_free_pct = 0;
SELECT name, status, value BETWEEN 0 AND 100 AS pct FROM moltres_ops.health_evaluate() WHERE name = 'disk_space';
SET moltres_ops.health_disk_free_pct = 100;
SELECT name, status <> 'ok' AS fires FROM moltres_ops.health_evaluate() WHERE name = 'disk_space';
RESET moltres_ops.health_disk_free_pct;

-- Sequences: an integer key fed by a bigint sequence is measured against
-- the integer's range; quiet while young, critical near the end.
CREATE TABLE health_seq (id serial PRIMARY KEY, v int);
INSERT INTO health_seq (v) VALUES (1);
SELECT name, status FROM moltres_ops.health_evaluate() WHERE name = 'sequences';
SELECT setval('health_seq_id_seq', 2000000000);
SELECT name, status, round(value::numeric, 1) AS pct, detail
  FROM moltres_ops.health_evaluate() WHERE name = 'sequences';
SET moltres_ops.health_sequence_pct = 95;
SELECT name, status FROM moltres_ops.health_evaluate() WHERE name = 'sequences';
RESET moltres_ops.health_sequence_pct;
DROP TABLE health_seq;

-- Invalid indexes: a unique build that failed on duplicates leaves one.
CREATE TABLE health_idx (v int);
INSERT INTO health_idx VALUES (1), (1);
SELECT name, status, value FROM moltres_ops.health_evaluate() WHERE name = 'invalid_indexes';
CREATE UNIQUE INDEX CONCURRENTLY health_idx_v ON health_idx (v);
SELECT name, status, value, detail FROM moltres_ops.health_evaluate() WHERE name = 'invalid_indexes';
DROP TABLE health_idx;

-- Checks that apply only elsewhere say so: no standby, no archiving here.
SELECT name, status, detail FROM moltres_ops.health_evaluate()
 WHERE name IN ('wal_receiver', 'archiver', 'replication_lag', 'replication_slots', 'pending_restart', 'prepared_transactions')
 ORDER BY name;

-- The worker's views exist; the history is empty without a worker here.
SELECT database, interval_s FROM moltres_ops.health_worker;
SELECT count(*) AS transitions FROM moltres_ops.health_history;

-- Only monitoring roles may read it.
CREATE ROLE mo_health_plain;
SET ROLE mo_health_plain;
SELECT * FROM moltres_ops.health();
SELECT count(*) FROM moltres_ops.metrics;
SELECT * FROM moltres_ops.health_history;
SELECT * FROM moltres_ops._disk_usage();
RESET ROLE;
GRANT pg_monitor TO mo_health_plain;
SET ROLE mo_health_plain;
SELECT count(*) > 0 AS monitor_reads_health FROM moltres_ops.health();
SELECT count(*) >= 0 AS monitor_reads_history FROM moltres_ops.health_history;
RESET ROLE;
DROP ROLE mo_health_plain;
