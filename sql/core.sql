-- Core: the extension installs into its schema, reports that it is
-- preloaded, its settings have their documented defaults, units and
-- contexts, and bad settings are refused.
DROP EXTENSION moltres_ops;
CREATE EXTENSION moltres_ops;
SELECT n.nspname, e.extversion, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'moltres_ops';
SELECT moltres_ops.preloaded();
SELECT moltres_ops.library_version() = extversion AS versions_match
  FROM pg_extension WHERE extname = 'moltres_ops';

-- Settings: defaults, units and who may change them.
SELECT name, setting, unit, context, vartype, boot_val = reset_val AS at_default
  FROM pg_settings WHERE name LIKE 'moltres_ops.%' ORDER BY name;
SELECT enumvals FROM pg_settings WHERE name = 'moltres_ops.track';

-- Shared memory is set up and reported.
SELECT area, bytes > 0 AS has_bytes, started_at <= now() AS started
  FROM moltres_ops.shmem_usage WHERE area = 'core';

-- Bad settings are refused with a clear error and change nothing.
SET moltres_ops.track = 'sometimes';
SHOW moltres_ops.track;
SET moltres_ops.max_statements = 10;
SET moltres_ops.no_such_setting = 1;

-- An ordinary role cannot change tracking for its own session nor read
-- shared memory views that are reserved to pg_monitor.
CREATE ROLE mo_core_plain;
SET ROLE mo_core_plain;
SET moltres_ops.track = 'none';
-- nor move the size from which the DDL guard blocks.
SET moltres_ops.lint_large_table_rows = 1000000000;
SELECT count(*) FROM moltres_ops.shmem_usage;
RESET ROLE;
GRANT pg_monitor TO mo_core_plain;
SET ROLE mo_core_plain;
SELECT count(*) > 0 AS monitor_can_read FROM moltres_ops.shmem_usage;
RESET ROLE;
DROP ROLE mo_core_plain;
