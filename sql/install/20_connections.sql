-- moltres_ops install script, part 20: connections and pools.
--
-- Live views (pools, connections, lock_waits) are plain SQL over
-- pg_stat_activity and pg_locks: they run with the privileges of the role
-- that queries them, so other roles' query texts, states and addresses are
-- visible only to members of pg_read_all_stats (pg_monitor is one), exactly
-- as in pg_stat_activity.  They need no preload.  The lifecycle counters
-- (session_stats, and the counter columns of pool_status) are kept in shared
-- memory by src/connections.c and need shared_preload_libraries.
--
-- Only client backends count as connections (backend_type 'client
-- backend'): autovacuum, WAL senders and background workers do not take
-- max_connections slots.  Ages are measured against statement_timestamp(),
-- so they stay right inside a long monitoring transaction.

-- connection_slots_reserved: the slots of max_connections that an ordinary
-- role cannot use: superuser_reserved_connections, plus reserved_connections
-- on PostgreSQL 16 and later (the setting does not exist before, hence the
-- missing_ok lookup rather than a version test).
CREATE FUNCTION connection_slots_reserved()
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.current_setting('superuser_reserved_connections')::integer
         + COALESCE(pg_catalog.current_setting('reserved_connections', true)::integer, 0)
$$;

COMMENT ON FUNCTION connection_slots_reserved() IS
'connection_slots_reserved: connection slots reserved for superusers (and, on 16+, for roles with pg_use_reserved_connections); max_connections minus this is what ordinary clients can use';

-- pools: the server side of a pooler's SHOW POOLS, one row per (database,
-- user), in PostgreSQL's own state vocabulary, with the connection limit
-- that binds first.
CREATE VIEW pools AS
WITH act AS (
    SELECT a.datid, a.datname, a.usesysid, a.usename, a.state,
           a.wait_event_type, w.waitstart
      FROM pg_catalog.pg_stat_activity a
      LEFT JOIN (SELECT l.pid, min(l.waitstart) AS waitstart
                   FROM pg_catalog.pg_locks l
                  WHERE NOT l.granted
                  GROUP BY l.pid) w ON w.pid = a.pid
     WHERE a.backend_type = 'client backend'
), per_pool AS (
    SELECT datid, datname, usesysid, usename,
           count(*) AS connections,
           count(*) FILTER (WHERE state = 'active') AS active,
           count(*) FILTER (WHERE state = 'idle') AS idle,
           count(*) FILTER (WHERE state IN ('idle in transaction',
                                            'idle in transaction (aborted)')) AS idle_in_transaction,
           count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_on_lock,
           COALESCE(max(pg_catalog.statement_timestamp() - waitstart)
                        FILTER (WHERE wait_event_type = 'Lock'),
                    '0'::interval) AS max_wait
      FROM act
     GROUP BY datid, datname, usesysid, usename
), per_role AS (
    SELECT usesysid, count(*) AS n FROM act GROUP BY usesysid
), per_db AS (
    SELECT datid, count(*) AS n FROM act GROUP BY datid
), server AS (
    SELECT pg_catalog.current_setting('max_connections')::integer AS max_connections,
           @extschema@.connection_slots_reserved() AS reserved,
           (SELECT count(*) FROM act) AS n
)
SELECT p.datname, p.usename, p.connections, p.active, p.idle,
       p.idle_in_transaction, p.waiting_on_lock, p.max_wait,
       lim.conn_limit, lim.limit_source,
       round(100.0 * lim.used / NULLIF(lim.conn_limit, 0), 1) AS utilization_pct
  FROM per_pool p
  CROSS JOIN server s
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = p.usesysid
  LEFT JOIN pg_catalog.pg_database d ON d.oid = p.datid
  LEFT JOIN per_role pr ON pr.usesysid IS NOT DISTINCT FROM p.usesysid
  LEFT JOIN per_db pd ON pd.datid IS NOT DISTINCT FROM p.datid
  CROSS JOIN LATERAL (
      -- Role and database limits are not enforced for superusers, who may
      -- also use the reserved slots.  Of the limits that apply, the one with
      -- the least headroom is the one a new connection hits first.
      SELECT v.conn_limit, v.limit_source, v.used
        FROM (VALUES
                (CASE WHEN NOT r.rolsuper AND r.rolconnlimit >= 0
                      THEN r.rolconnlimit END, 'role', pr.n, 1),
                (CASE WHEN NOT r.rolsuper AND d.datconnlimit >= 0
                      THEN d.datconnlimit END, 'database', pd.n, 2),
                (CASE WHEN r.rolsuper THEN s.max_connections
                      ELSE s.max_connections - s.reserved END, 'server', s.n, 3)
             ) AS v(conn_limit, limit_source, used, ord)
       WHERE v.conn_limit IS NOT NULL
       ORDER BY v.conn_limit - v.used, v.ord
       LIMIT 1
  ) lim;

COMMENT ON VIEW pools IS
'pools: client connections per (database, user) by state, the connection limit that binds first (role, database or server) and its utilisation';

-- connections: who holds the connections, by database, user, application
-- and client address.
CREATE VIEW connections AS
SELECT a.datname, a.usename, a.application_name, a.client_addr,
       count(*) AS connections,
       count(*) FILTER (WHERE a.state = 'active') AS active,
       count(*) FILTER (WHERE a.state = 'idle') AS idle,
       count(*) FILTER (WHERE a.state IN ('idle in transaction',
                                          'idle in transaction (aborted)')) AS idle_in_transaction,
       count(*) FILTER (WHERE a.wait_event_type = 'Lock') AS waiting_on_lock,
       min(a.backend_start) AS oldest_backend_start,
       GREATEST(max(pg_catalog.statement_timestamp() - a.state_change),
                '0'::interval) AS longest_state_age
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'client backend'
 GROUP BY a.datname, a.usename, a.application_name, a.client_addr;

COMMENT ON VIEW connections IS
'connections: client connections grouped by database, user, application_name and client address, with state counts and ages';

-- lock_waits: one row per backend waiting for a heavyweight lock, with the
-- blocking tree walked up to its root: the blocker that is not itself
-- waiting, which is the session an operator would end.
CREATE VIEW lock_waits AS
WITH RECURSIVE locks AS (
    -- One snapshot of the lock table, read once.
    SELECT l.pid, l.locktype, l.mode, l.granted, l.database, l.relation,
           l.waitstart
      FROM pg_catalog.pg_locks l
     WHERE l.pid IS NOT NULL
), act AS (
    SELECT a.pid, a.usename, a.application_name, a.state, a.query,
           a.xact_start
      FROM pg_catalog.pg_stat_activity a
), waiting AS (
    SELECT DISTINCT ON (l.pid)
           l.pid, l.locktype, l.mode, l.database, l.relation, l.waitstart
      FROM locks l
     WHERE NOT l.granted
     ORDER BY l.pid, l.waitstart NULLS LAST
), blocked AS (
    -- pg_blocking_pids() takes the lock manager's locks briefly: call it
    -- once, and only for backends that wait.  It may list a pid twice; 0
    -- stands for a prepared transaction.
    SELECT w.*, pg_catalog.pg_blocking_pids(w.pid) AS blocking_pids
      FROM waiting w
), edges AS (
    SELECT DISTINCT b.pid, x.blocker
      FROM blocked b
     CROSS JOIN LATERAL pg_catalog.unnest(b.blocking_pids) AS x(blocker)
), walk AS (
    SELECT e.pid AS waiter, e.blocker AS node, ARRAY[e.pid, e.blocker] AS path
      FROM edges e
    UNION ALL
    SELECT w.waiter, e.blocker, w.path || e.blocker
      FROM walk w
      JOIN edges e ON e.pid = w.node
     WHERE e.blocker <> ALL (w.path)      -- a cycle is a deadlock in the making
), roots AS (
    -- The roots are the blockers that do not wait themselves.  A waiter
    -- can have several; the one with the oldest transaction is the
    -- likeliest culprit.
    SELECT DISTINCT ON (w.waiter) w.waiter, w.node AS root
      FROM walk w
      LEFT JOIN act ra ON ra.pid = w.node
     WHERE NOT EXISTS (SELECT 1 FROM edges x WHERE x.pid = w.node)
     ORDER BY w.waiter, ra.xact_start NULLS LAST, w.node
), tuple_held AS (
    -- A row-lock waiter waits on a transaction id, not on the relation;
    -- the tuple lock it holds on the row it wants names the table.
    SELECT DISTINCT ON (l.pid) l.pid, l.database, l.relation
      FROM locks l
     WHERE l.locktype = 'tuple' AND l.granted
     ORDER BY l.pid
)
SELECT b.pid, a.usename, a.application_name,
       b.waitstart AS wait_started,
       pg_catalog.statement_timestamp() - b.waitstart AS waiting,
       b.locktype AS lock_type, b.mode,
       -- An oid names a relation only in its own database (or, for a
       -- shared catalog, in every database).
       CASE WHEN ro.db IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                                WHERE d.datname = pg_catalog.current_database()))
            THEN ro.rel::pg_catalog.regclass
       END AS relation,
       b.blocking_pids,
       r.root AS root_blocker,
       CASE WHEN r.root = 0 THEN 'prepared transaction' ELSE ra.state END AS root_blocker_state,
       ra.query AS root_blocker_query,
       a.query
  FROM blocked b
  LEFT JOIN act a ON a.pid = b.pid
  LEFT JOIN roots r ON r.waiter = b.pid
  LEFT JOIN act ra ON ra.pid = r.root
  LEFT JOIN tuple_held t ON t.pid = b.pid AND b.locktype = 'transactionid'
  CROSS JOIN LATERAL (SELECT CASE WHEN b.relation IS NOT NULL THEN b.database
                                  ELSE t.database END AS db,
                             COALESCE(b.relation, t.relation) AS rel) ro;

COMMENT ON VIEW lock_waits IS
'lock_waits: each backend waiting for a lock, what it waits for, who blocks it (pg_blocking_pids) and the root of its blocking tree, with both queries';

GRANT SELECT ON pools, connections, lock_waits TO pg_monitor;

-- Lifecycle counters kept in shared memory by src/connections.c.

CREATE FUNCTION session_stats(
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT connects bigint,
    OUT disconnects bigint,
    OUT auth_failures bigint,
    OUT rejected bigint,
    OUT session_p50_ms float8,
    OUT session_p95_ms float8,
    OUT session_p99_ms float8,
    OUT total_session_s float8)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'moltres_ops_session_stats';

CREATE FUNCTION session_totals(
    OUT connects_total bigint,
    OUT disconnects_total bigint,
    OUT auth_failures_total bigint,
    OUT rejected_total bigint,
    OUT connects_per_min float8,
    OUT session_p50_ms float8,
    OUT session_p95_ms float8,
    OUT stats_reset timestamptz)
RETURNS record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'moltres_ops_session_totals';

COMMENT ON FUNCTION session_totals() IS
'session_totals: instance-wide sums of session_stats, connects in the last 60 s, session duration percentiles over all sessions, and when the counters were last reset';

CREATE FUNCTION reset_session_stats()
RETURNS void
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'moltres_ops_reset_session_stats';

COMMENT ON FUNCTION reset_session_stats() IS
'reset_session_stats: forget every connection lifecycle counter (session_stats and the counter columns of pool_status)';

CREATE VIEW session_stats AS
    SELECT datname, usename, application_name, connects, disconnects,
           auth_failures, rejected, session_p50_ms, session_p95_ms,
           session_p99_ms, total_session_s
      FROM session_stats();

COMMENT ON VIEW session_stats IS
'session_stats: connects, disconnects, authentication failures, rejections and session duration percentiles per (database, user, application_name) as sent at login; a row with NULL names collects keys that did not fit';

-- pool_status: the one row a dashboard needs to tell whether the server's
-- connection slots are running out and why.
CREATE VIEW pool_status AS
SELECT s.max_connections, s.reserved_connections, c.client_connections,
       round(100.0 * c.client_connections
             / NULLIF(s.max_connections - s.reserved_connections, 0), 1) AS utilization_pct,
       c.active, c.idle, c.idle_in_transaction, c.idle_in_transaction_aborted,
       c.waiting_on_lock, c.longest_idle_in_transaction,
       c.longest_running_statement, c.longest_transaction,
       t.connects_total, t.disconnects_total, t.auth_failures_total,
       t.rejected_total, t.connects_per_min, t.session_p50_ms, t.session_p95_ms
  FROM (SELECT pg_catalog.current_setting('max_connections')::integer AS max_connections,
               @extschema@.connection_slots_reserved() AS reserved_connections) s
 CROSS JOIN (
    SELECT count(*) AS client_connections,
           count(*) FILTER (WHERE a.state = 'active') AS active,
           count(*) FILTER (WHERE a.state = 'idle') AS idle,
           count(*) FILTER (WHERE a.state = 'idle in transaction') AS idle_in_transaction,
           count(*) FILTER (WHERE a.state = 'idle in transaction (aborted)') AS idle_in_transaction_aborted,
           count(*) FILTER (WHERE a.wait_event_type = 'Lock') AS waiting_on_lock,
           GREATEST(COALESCE(max(pg_catalog.statement_timestamp() - a.state_change)
                                 FILTER (WHERE a.state IN ('idle in transaction',
                                                           'idle in transaction (aborted)')),
                             '0'::interval), '0'::interval) AS longest_idle_in_transaction,
           GREATEST(COALESCE(max(pg_catalog.statement_timestamp() - a.query_start)
                                 FILTER (WHERE a.state = 'active'),
                             '0'::interval), '0'::interval) AS longest_running_statement,
           GREATEST(COALESCE(max(pg_catalog.statement_timestamp() - a.xact_start),
                             '0'::interval), '0'::interval) AS longest_transaction
      FROM pg_catalog.pg_stat_activity a
     WHERE a.backend_type = 'client backend') c
 CROSS JOIN @extschema@.session_totals() t;

COMMENT ON VIEW pool_status IS
'pool_status: one row: connection slots, client connections by state, utilisation of the slots ordinary roles can use, the longest idle transaction, statement and transaction, and the lifecycle counters';

REVOKE ALL ON FUNCTION session_stats(), session_totals(), reset_session_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION session_stats(), session_totals() TO pg_monitor;
GRANT SELECT ON session_stats, pool_status TO pg_monitor;
