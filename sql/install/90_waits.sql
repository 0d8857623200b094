-- moltres_ops install script, part 90: where the time goes (wait_sampler.c).
-- Wait profiles per statement, per database, the load in average active
-- sessions, raw samples, and the sampler itself.  Views over shared memory;
-- they need the library in shared_preload_libraries.

CREATE FUNCTION query_waits_internal(
    OUT userid oid,
    OUT dbid oid,
    OUT queryid bigint,
    OUT toplevel boolean,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT samples bigint,
    OUT seconds float8)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_query_waits';

COMMENT ON FUNCTION query_waits_internal() IS
'query_waits_internal: the rows of the view query_waits, without the statement''s text and statistics';

CREATE VIEW query_waits AS
    SELECT w.userid, r.rolname AS username, w.dbid, d.datname,
           w.queryid, w.toplevel, w.wait_event_type, w.wait_event,
           w.samples, w.seconds,
           w.samples::float8 / pg_catalog.sum(w.samples)
               OVER (PARTITION BY w.userid, w.dbid, w.queryid, w.toplevel)
               AS fraction,
           s.calls, s.total_ms, s.query
      FROM query_waits_internal() w
      LEFT JOIN query_stats_internal(true) s
             ON s.userid = w.userid AND s.dbid = w.dbid
            AND s.queryid = w.queryid AND s.toplevel = w.toplevel
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = w.userid
      LEFT JOIN pg_catalog.pg_database d ON d.oid = w.dbid;

COMMENT ON VIEW query_waits IS
'query_waits: per statement (the key of query_stats) and wait event (CPU = active, not waiting): samples of the wait sampler, estimated seconds, fraction of the statement''s samples, and the statement''s calls, total_ms and text from query_stats';

CREATE FUNCTION db_waits_internal(
    OUT dbid oid,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT samples bigint,
    OUT seconds float8)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_db_waits';

CREATE VIEW db_waits AS
    SELECT w.dbid, d.datname, w.wait_event_type, w.wait_event,
           w.samples, w.seconds
      FROM db_waits_internal() w
      LEFT JOIN pg_catalog.pg_database d ON d.oid = w.dbid;

COMMENT ON VIEW db_waits IS
'db_waits: cumulative samples and estimated seconds of active sessions per database and wait event (CPU = not waiting), statements or not; counters for Prometheus';

CREATE FUNCTION db_load_internal(
    OUT dbid oid,
    OUT "window" interval,
    OUT wait_class text,
    OUT active_sessions float8)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_db_load';

CREATE VIEW db_load AS
    SELECT d.datname, l."window", l.wait_class, l.active_sessions
      FROM db_load_internal() l
      LEFT JOIN pg_catalog.pg_database d ON d.oid = l.dbid
     WHERE l.dbid = 0 OR d.oid IS NOT NULL;

COMMENT ON VIEW db_load IS
'db_load: average active sessions over the last 1, 5 and 15 minutes, per wait class (CPU = not waiting), for the whole instance (datname NULL) and per database';

CREATE FUNCTION session_history_internal(
    OUT sample_time timestamptz,
    OUT pid integer,
    OUT dbid oid,
    OUT userid oid,
    OUT application_name text,
    OUT backend_type text,
    OUT state text,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT queryid bigint,
    OUT top_queryid bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_session_history';

CREATE VIEW session_history AS
    SELECT h.sample_time, h.pid, d.datname, r.rolname AS username,
           h.application_name, h.backend_type, h.state,
           h.wait_event_type, h.wait_event, h.queryid, h.top_queryid,
           h.dbid, h.userid
      FROM session_history_internal() h
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = h.userid
      LEFT JOIN pg_catalog.pg_database d ON d.oid = h.dbid;

COMMENT ON VIEW session_history IS
'session_history: raw samples of active sessions, newest first, one per backend every session_history_interval, as many as session_history_size: time, pid, database, user, application, state, wait event, query ids';

CREATE FUNCTION wait_sampler(
    OUT pid integer,
    OUT interval_ms integer,
    OUT started_at timestamptz,
    OUT samples bigint,
    OUT sampled_seconds float8,
    OUT mean_interval_ms float8,
    OUT max_interval_ms float8,
    OUT last_sample timestamptz,
    OUT entries bigint,
    OUT max_entries bigint,
    OUT dropped bigint,
    OUT stats_reset timestamptz)
RETURNS record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_wait_sampler';

CREATE VIEW wait_sampler AS
    SELECT pid, interval_ms, started_at, samples, sampled_seconds,
           mean_interval_ms, max_interval_ms, last_sample, entries,
           max_entries, dropped, stats_reset
      FROM wait_sampler();

COMMENT ON VIEW wait_sampler IS
'wait_sampler: the wait sampler itself: its pid (NULL when not running), setting, samples taken and the time they covered since the last reset, mean and longest time between two samples, table entries in use and capacity, increments dropped because the table was full';

CREATE FUNCTION reset_waits()
RETURNS void
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_reset_waits';

COMMENT ON FUNCTION reset_waits() IS
'reset_waits: forget the wait profiles, per-database wait counters, load windows, raw samples and the sampler''s counters';

REVOKE ALL ON FUNCTION query_waits_internal(), db_waits_internal(),
    db_load_internal(), session_history_internal(), wait_sampler(),
    reset_waits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION query_waits_internal(), db_waits_internal(),
    db_load_internal(), session_history_internal(), wait_sampler()
    TO pg_monitor;
GRANT SELECT ON query_waits, db_waits, db_load, session_history,
    wait_sampler TO pg_monitor;
