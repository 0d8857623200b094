-- moltres_ops install script, part 30: the slow-query log.

CREATE FUNCTION slow_queries(
    OUT ts timestamptz,
    OUT pid int,
    OUT username name,
    OUT datname name,
    OUT application_name text,
    OUT client_addr inet,
    OUT queryid bigint,
    OUT duration_ms float8,
    OUT rows bigint,
    OUT query text,
    OUT parameters text,
    OUT error_code text,
    OUT error text,
    OUT plan text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_slow_queries';

COMMENT ON FUNCTION slow_queries() IS
'slow_queries: the shared ring of recent slow statements, newest first; other users'' rows only for superusers and pg_read_all_stats members';

CREATE VIEW slow_queries AS
    SELECT * FROM slow_queries();

COMMENT ON VIEW slow_queries IS
'slow_queries: the last moltres_ops.slow_query_buffer statements that reached moltres_ops.slow_query_ms, newest first, failed and timed-out ones included';

CREATE FUNCTION reset_slow_queries()
RETURNS void
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_reset_slow_queries';

COMMENT ON FUNCTION reset_slow_queries() IS
'reset_slow_queries: empty the slow-statement ring; superusers and roles granted EXECUTE only';

-- Every role may read its own slow statements (the function filters rows);
-- pg_read_all_stats members and superusers see all.
GRANT SELECT ON slow_queries TO PUBLIC;
REVOKE ALL ON FUNCTION reset_slow_queries() FROM PUBLIC;
