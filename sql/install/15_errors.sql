-- moltres_ops install script, part 15: the errors clients saw (errors.c).
-- Needs the library in shared_preload_libraries.

CREATE FUNCTION errors_internal(
    OUT dbid oid,
    OUT userid oid,
    OUT application_name text,
    OUT sqlstate text,
    OUT errors bigint,
    OUT before_execution bigint,
    OUT during_execution bigint,
    OUT after_execution bigint,
    OUT last_queryid bigint,
    OUT last_message text,
    OUT first_seen timestamptz,
    OUT last_seen timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_errors';

COMMENT ON FUNCTION errors_internal() IS
'errors_internal: the rows of the view errors';

CREATE VIEW errors AS
    SELECT e.dbid, d.datname, e.userid, r.rolname AS username,
           e.application_name, e.sqlstate, e.errors,
           e.before_execution, e.during_execution, e.after_execution,
           e.last_queryid, e.last_message, e.first_seen, e.last_seen
      FROM errors_internal() e
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = e.userid
      LEFT JOIN pg_catalog.pg_database d ON d.oid = e.dbid;

COMMENT ON VIEW errors IS
'errors: every error clients saw, per (database, user, application_name, SQLSTATE), by where it arose: before execution (parse, analysis, planning), during it, or after it (result sent, COMMIT)';

CREATE FUNCTION reset_errors()
RETURNS void
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_reset_errors';

COMMENT ON FUNCTION reset_errors() IS
'reset_errors: empty the view errors';

REVOKE ALL ON FUNCTION errors_internal() FROM PUBLIC;
REVOKE ALL ON FUNCTION reset_errors() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION errors_internal() TO pg_monitor;
GRANT SELECT ON errors TO pg_monitor;
