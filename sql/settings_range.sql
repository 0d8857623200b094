-- Settings with a unit are refused outside their range, with a clear error,
-- and keep their value.  (Moved here from core and ddl_guard: PostgreSQL 18
-- prints the unit with the bounds, so this file has a second expected
-- output, settings_range_1.out, as PostgreSQL's own suites do.)
SET moltres_ops.slow_query_ms = -2;
SHOW moltres_ops.slow_query_ms;
SET moltres_ops.ddl_lock_timeout = -1;
SHOW moltres_ops.ddl_lock_timeout;
