-- moltres_ops install script, part 45: the DDL log (and, in the library,
-- the DDL guard and DDL lock timeout, which need no SQL objects).

CREATE FUNCTION ddl_log(
    OUT ts timestamptz,
    OUT pid int,
    OUT username name,
    OUT datname name,
    OUT application_name text,
    OUT command text,
    OUT object text,
    OUT toplevel boolean,
    OUT statement text,
    OUT duration_ms float8,
    OUT outcome text,
    OUT error_code text,
    OUT error text,
    OUT risk text,
    OUT rules text[],
    OUT rewrote boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_ddl_log';

COMMENT ON FUNCTION ddl_log() IS
'ddl_log: the shared ring of recent DDL statements, newest first; other users'' rows only for superusers and pg_read_all_stats members';

CREATE VIEW ddl_log AS
    SELECT * FROM ddl_log();

COMMENT ON VIEW ddl_log IS
'ddl_log: the last moltres_ops.ddl_log_buffer DDL statements of every client, newest first: who, what, object, duration, outcome (ok / error / blocked), lint risk and rules, whether the table was rewritten';

CREATE FUNCTION reset_ddl_log()
RETURNS void
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_reset_ddl_log';

COMMENT ON FUNCTION reset_ddl_log() IS
'reset_ddl_log: empty the DDL log; superusers and roles granted EXECUTE only';

-- Every role may read its own DDL (the function filters rows);
-- pg_read_all_stats members and superusers see all.
GRANT SELECT ON ddl_log TO PUBLIC;
REVOKE ALL ON FUNCTION reset_ddl_log() FROM PUBLIC;
