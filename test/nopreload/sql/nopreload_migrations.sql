-- The migration ledger, migrate(), migration_status, ready() and
-- ddl_activity are plain SQL: they work without shared_preload_libraries.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS moltres_ops;
RESET client_min_messages;
SELECT moltres_ops.preloaded();
CALL moltres_ops.migrate('np-1', 'create widgets', 'CREATE TABLE np_widgets (id int)');
SELECT moltres_ops.migration_begin('np-2', 'index widgets');
CREATE INDEX np_widgets_id ON np_widgets (id);
SELECT moltres_ops.migration_finish('np-2');
SELECT version, name, status, error FROM moltres_ops.migrations ORDER BY version;
SELECT tool, ledger, current_version, applied_count, state FROM moltres_ops.migration_status;
SELECT moltres_ops.ready('np-2') AS ready_np2, moltres_ops.ready() AS nothing_wrong;
SELECT count(*) AS ddl_rows FROM moltres_ops.ddl_activity;
DROP TABLE np_widgets;
TRUNCATE moltres_ops.migrations;
