-- moltres_ops install script, part 70: the DDL risk linter and the dry-run
-- lock tracer (src/lint/, src/lock_trace.c).  Neither needs
-- shared_preload_libraries.

CREATE FUNCTION lint(
    sql text,
    OUT stmt integer,
    OUT statement text,
    OUT command text,
    OUT risk text,
    OUT rule text,
    OUT lock_mode text,
    OUT rewrites boolean,
    OUT scans boolean,
    OUT message text,
    OUT hint text)
RETURNS SETOF record
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_lint';

COMMENT ON FUNCTION lint(text) IS
'lint: judges each statement of a migration as safe, review or dangerous from the server''s own parser and the catalogs (table size, valid CHECKs, volatility, binary coercibility); one row per finding, with the lock taken and the safe alternative';

-- Reading parse trees and catalogs reveals nothing a role cannot already
-- see, so lint is for everyone.
GRANT EXECUTE ON FUNCTION lint(text) TO PUBLIC;

CREATE FUNCTION trace(
    sql text,
    OUT stmt integer,
    OUT statement text,
    OUT relation regclass,
    OUT lock_mode text,
    OUT rewrote boolean,
    OUT duration_ms double precision,
    OUT note text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_trace';

COMMENT ON FUNCTION trace(text) IS
'trace: dry run of a migration; executes each statement with the caller''s privileges under moltres_ops.trace_lock_timeout and trace_statement_timeout, reports every relation lock taken and every relation rewritten, then rolls everything back';

-- trace executes arbitrary statements (with the caller's privileges):
-- only roles an administrator grants it to may call it.
REVOKE ALL ON FUNCTION trace(text) FROM PUBLIC;
