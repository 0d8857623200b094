-- moltres_ops install script, part 00: core objects shared by every area.
--
-- This file and the others in sql/install/ are concatenated, in name order,
-- into sql/moltres_ops--<version>.sql by the Makefile.  The extension's
-- schema is moltres_ops (moltres_ops.control); every object below is created
-- in it.  Catalog objects are schema-qualified with pg_catalog.

\echo Use "CREATE EXTENSION moltres_ops" to load this file. \quit

CREATE FUNCTION library_version()
RETURNS text
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_library_version';

COMMENT ON FUNCTION library_version() IS
'library_version: version of the loaded moltres_ops shared library; differs from the extension version when ALTER EXTENSION moltres_ops UPDATE is due';

CREATE FUNCTION preloaded()
RETURNS boolean
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_preloaded';

COMMENT ON FUNCTION preloaded() IS
'preloaded: true when moltres_ops is in shared_preload_libraries, so its hooks and shared memory are live';

CREATE FUNCTION shmem_usage(
    OUT area text,
    OUT bytes bigint,
    OUT started_at timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_shmem_usage';

CREATE VIEW shmem_usage AS
    SELECT area, bytes, started_at FROM shmem_usage();

COMMENT ON VIEW shmem_usage IS
'shmem_usage: shared memory taken by each moltres_ops area, in bytes, and when it was set up (server start)';

-- Monitoring views are for pg_monitor; nothing here is granted to PUBLIC
-- beyond schema USAGE, which lets any role call the pure-SQL helpers it is
-- granted.
GRANT USAGE ON SCHEMA moltres_ops TO PUBLIC;
REVOKE ALL ON FUNCTION shmem_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shmem_usage() TO pg_monitor;
GRANT SELECT ON shmem_usage TO pg_monitor;

-- Every function that writes (the migration ledger, the safe-migration
-- procedures, the index builds) asks this first: on a standby it raises
-- 25006 saying so, instead of failing on whatever its first write is.
CREATE FUNCTION _require_primary(what text)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'moltres_ops_require_primary';

COMMENT ON FUNCTION _require_primary(text) IS
'_require_primary: internal; raises 25006 (read_only_sql_transaction) when this server is a standby, naming the function what';
