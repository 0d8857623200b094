/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Every moltres_ops.* setting, in alphabetical order, with its unit.
 *
 * Settings that size shared memory are PGC_POSTMASTER and are defined only
 * while the library is preloaded (the server refuses to define them later).
 * Switches that decide what is tracked are PGC_SUSET, as in
 * pg_stat_statements, so that an ordinary session cannot hide its own
 * statements.  docs/reference.md documents each one; keep the two in step.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "ddl_guard.h"
#include "moltres_ops.h"

int			mo_avg_query_text = 512;
int			mo_ddl_guard = MO_DDL_GUARD_OFF;
int			mo_ddl_lock_timeout = 0;
int			mo_ddl_log_buffer = 1000;
int			mo_health_archive_age_s = 86400;
int			mo_health_autovacuum_min_rows = 10000;
char	   *mo_health_database = NULL;
double		mo_health_dead_tuple_pct = 20.0;
double		mo_health_disk_free_pct = 20.0;
double		mo_health_error_rate_pct = 1.0;
int			mo_health_for_s = 60;
int			mo_health_history_size = 500;
int			mo_health_idle_in_transaction_s = 60;
int			mo_health_interval_s = 10;
int			mo_health_lock_queue = 1;
int			mo_health_lock_wait_s = 30;
int			mo_health_long_running_s = 300;
int			mo_health_long_transaction_s = 600;
int			mo_health_migration_running_s = 600;
int			mo_health_p95_ms = 5000;
int			mo_health_p99_ms = 1000;
int			mo_health_pool_min_connections = 2;
int			mo_health_prepared_xact_s = 60;
int			mo_health_replication_lag_mb = 1024;
int			mo_health_replication_lag_s = 60;
double		mo_health_sequence_pct = 75.0;
int			mo_health_slot_retained_mb = 10240;
double		mo_health_timeout_rate_pct = 0.1;
int			mo_health_utilization_critical_pct = 95;
int			mo_health_utilization_warn_pct = 80;
double		mo_health_wraparound_pct = 50.0;
int			mo_lint_large_table_rows = 100000;
int			mo_log_format = MO_LOG_FORMAT_TEXT;
bool		mo_log_parameters = false;
int			mo_log_plan = MO_LOG_PLAN_OFF;
bool		mo_log_slow = true;
int			mo_max_query_text = 2048;
int			mo_metrics_min_calls = 100;
int			mo_metrics_statements = 100;
int			mo_max_session_stats = 1000;
int			mo_max_statements = 5000;
int			mo_sample_interval = 10;
bool		mo_save = true;
int			mo_session_history_interval = 1000;
int			mo_session_history_size = 10000;
int			mo_slow_query_buffer = 1000;
int			mo_slow_query_ms = 1000;
int			mo_trace_lock_timeout = 100;
int			mo_trace_statement_timeout = 5000;
int			mo_track = MO_TRACK_TOP;
bool		mo_track_utility = true;

static const struct config_enum_entry ddl_guard_options[] = {
	{"off", MO_DDL_GUARD_OFF, false},
	{"warn", MO_DDL_GUARD_WARN, false},
	{"block", MO_DDL_GUARD_BLOCK, false},
	{"false", MO_DDL_GUARD_OFF, true},
	{"no", MO_DDL_GUARD_OFF, true},
	{"0", MO_DDL_GUARD_OFF, true},
	{NULL, 0, false}
};

static const struct config_enum_entry log_format_options[] = {
	{"text", MO_LOG_FORMAT_TEXT, false},
	{"json", MO_LOG_FORMAT_JSON, false},
	{NULL, 0, false}
};

static const struct config_enum_entry log_plan_options[] = {
	{"off", MO_LOG_PLAN_OFF, false},
	{"text", MO_LOG_PLAN_TEXT, false},
	{"json", MO_LOG_PLAN_JSON, false},
	{"false", MO_LOG_PLAN_OFF, true},
	{"no", MO_LOG_PLAN_OFF, true},
	{"0", MO_LOG_PLAN_OFF, true},
	{NULL, 0, false}
};

static const struct config_enum_entry track_options[] = {
	{"none", MO_TRACK_NONE, false},
	{"top", MO_TRACK_TOP, false},
	{"all", MO_TRACK_ALL, false},
	{NULL, 0, false}
};

/*
 * mo_guc_init - define the settings.  Called for every load of the library,
 * preloaded or not, so that SHOW and SET work wherever the library is.
 */
void
mo_guc_init(void)
{
	bool		preload = process_shared_preload_libraries_in_progress;

	if (preload)
		DefineCustomIntVariable("moltres_ops.avg_query_text",
								"Average bytes of normalised text per statement that the shared text pool is sized for.",
								"The pool holds max_statements x this many bytes; a text that does not fit in what is free is cut at a character boundary (stats_info.texts_truncated).",
								&mo_avg_query_text,
								512, 64, 32768,
								PGC_POSTMASTER,
								GUC_UNIT_BYTE,
								NULL, NULL, NULL);

	DefineCustomEnumVariable("moltres_ops.ddl_guard",
							 "What to do with a DDL statement that lint() rates dangerous: off, warn or block.",
							 "Needs shared_preload_libraries; warn raises a WARNING per dangerous finding, block refuses the statement (SQLSTATE 55000).",
							 &mo_ddl_guard,
							 MO_DDL_GUARD_OFF,
							 ddl_guard_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.ddl_lock_timeout",
							"lock_timeout given to each DDL statement of a session whose lock_timeout is 0.",
							"0 turns it off.  Needs shared_preload_libraries.",
							&mo_ddl_lock_timeout,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.ddl_log_buffer",
								"Number of recent DDL statements kept in shared memory for moltres_ops.ddl_log.",
								"0 keeps none.",
								&mo_ddl_log_buffer,
								1000, 0, 100000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	/*
	 * Alert thresholds of the health checks (docs/reference.md says how each
	 * one grades).  They are user settings so that health_evaluate() can be
	 * tried with other values in a session; the health worker uses the
	 * server's values (configuration file, ALTER SYSTEM, ALTER DATABASE on
	 * moltres_ops.health_database), re-read on reload.
	 */
	DefineCustomIntVariable("moltres_ops.health_archive_age_s",
							"health: age of the last archived WAL segment, while segments wait, that is critical.",
							NULL,
							&mo_health_archive_age_s,
							86400, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_autovacuum_min_rows",
							"health: live plus dead rows from which a table's dead-row share is checked.",
							NULL,
							&mo_health_autovacuum_min_rows,
							10000, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	if (preload)
		DefineCustomStringVariable("moltres_ops.health_database",
								   "Database the health worker connects to.",
								   "moltres_ops must be installed there; the per-database checks look at this database.",
								   &mo_health_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

	DefineCustomRealVariable("moltres_ops.health_dead_tuple_pct",
							 "health: dead rows, in percent of a table's rows, at which to warn.",
							 NULL,
							 &mo_health_dead_tuple_pct,
							 20.0, 0.0, 100.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomRealVariable("moltres_ops.health_disk_free_pct",
							 "health: free space, in percent of a file system holding data, WAL or a tablespace, below which to warn.",
							 "Critical below half of it.",
							 &mo_health_disk_free_pct,
							 20.0, 0.0, 100.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomRealVariable("moltres_ops.health_error_rate_pct",
							 "health(): error rate over 5 minutes, in percent of calls, at which to warn.",
							 NULL,
							 &mo_health_error_rate_pct,
							 1.0, 0.0, 100.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_for",
							"health(): how long a check must stay at warn or critical before health() reports it.",
							"Evaluated by the health worker; a return to ok is reported at once.",
							&mo_health_for_s,
							60, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.health_history_size",
								"Number of health status changes kept in shared memory for moltres_ops.health_history.",
								"0 keeps none.",
								&mo_health_history_size,
								500, 0, 100000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_idle_in_transaction_s",
							"health(): time a session may sit idle in a transaction before a warning.",
							NULL,
							&mo_health_idle_in_transaction_s,
							60, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_interval",
							"Time between two evaluations of the health checks by the health worker.",
							NULL,
							&mo_health_interval_s,
							10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_lock_queue",
							"health(): sessions queued behind a waiting DDL statement at which to warn.",
							NULL,
							&mo_health_lock_queue,
							1, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_lock_wait_s",
							"health: time a session may wait for a lock before a warning.",
							NULL,
							&mo_health_lock_wait_s,
							30, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_long_running_s",
							"health(): age of a running statement at which to warn.",
							NULL,
							&mo_health_long_running_s,
							300, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_long_transaction_s",
							"health: age of the oldest open client transaction at which to warn.",
							NULL,
							&mo_health_long_transaction_s,
							600, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_migration_running_s",
							"health(): time a migration may run before a warning.",
							NULL,
							&mo_health_migration_running_s,
							600, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_p95_ms",
							"health(): instance-wide p95 latency over 5 minutes at which to warn.",
							NULL,
							&mo_health_p95_ms,
							5000, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_p99_ms",
							"health: instance-wide p99 latency over 5 minutes at which to warn.",
							NULL,
							&mo_health_p99_ms,
							1000, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_pool_min_connections",
							"health: connections an application (name and role) must hold for none idle to count as an exhausted pool.",
							NULL,
							&mo_health_pool_min_connections,
							2, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_prepared_xact_s",
							"health: age of the oldest prepared transaction at which to warn.",
							NULL,
							&mo_health_prepared_xact_s,
							60, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_replication_lag_mb",
							"health: WAL a standby has not replayed yet at which to warn.",
							NULL,
							&mo_health_replication_lag_mb,
							1024, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MB, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_replication_lag_s",
							"health: replication lag at which to warn.",
							NULL,
							&mo_health_replication_lag_s,
							60, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomRealVariable("moltres_ops.health_sequence_pct",
							 "health: share of its range a sequence (or the column it feeds) may use before a warning.",
							 "Critical halfway between it and 100 %.",
							 &mo_health_sequence_pct,
							 75.0, 0.0, 100.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_slot_retained_mb",
							"health: WAL a replication slot may hold back before a warning.",
							NULL,
							&mo_health_slot_retained_mb,
							10240, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MB, NULL, NULL, NULL);

	DefineCustomRealVariable("moltres_ops.health_timeout_rate_pct",
							 "health(): statement timeouts over 5 minutes, in percent of calls, at which to warn.",
							 NULL,
							 &mo_health_timeout_rate_pct,
							 0.1, 0.0, 100.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_utilization_critical_pct",
							"health(): connection utilisation, in percent of the client slots, that is critical.",
							NULL,
							&mo_health_utilization_critical_pct,
							95, 1, 1000,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.health_utilization_warn_pct",
							"health(): connection utilisation, in percent of the client slots, at which to warn.",
							NULL,
							&mo_health_utilization_warn_pct,
							80, 1, 1000,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomRealVariable("moltres_ops.health_wraparound_pct",
							 "health: transaction ID or multixact age, in percent of the 2^31 limit, at which to warn.",
							 "Critical halfway between it and 100 %.",
							 &mo_health_wraparound_pct,
							 50.0, 0.0, 100.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.lint_large_table_rows",
							"Estimated row count from which lint() treats a table as large.",
							"Rules whose cost grows with the table (rewrites, validation scans, index builds, unbatched DML) fire from this size on.",
							&mo_lint_large_table_rows,
							100000, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("moltres_ops.log_format",
							 "Format of slow-statement lines in the server log: text or json.",
							 NULL,
							 &mo_log_format,
							 MO_LOG_FORMAT_TEXT,
							 log_format_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("moltres_ops.log_parameters",
							 "Include bind parameter values of slow statements in the log and the view.",
							 "Each value is truncated to 64 bytes.",
							 &mo_log_parameters,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("moltres_ops.log_plan",
							 "Include the plan of slow statements: off, text or json.",
							 "The plan is printed from the finished plan tree, without per-node timing.",
							 &mo_log_plan,
							 MO_LOG_PLAN_OFF,
							 log_plan_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("moltres_ops.log_slow",
							 "Write slow statements to the server log.",
							 "They are kept in moltres_ops.slow_queries either way.",
							 &mo_log_slow,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.max_query_text",
								"Longest normalised query text kept per statement.",
								"Longer texts are truncated at a character boundary.",
								&mo_max_query_text,
								2048, 64, 32768,
								PGC_POSTMASTER,
								GUC_UNIT_BYTE,
								NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.max_session_stats",
								"Number of (database, user, application) entries of connection statistics.",
								"When the table is full, further keys are counted in one \"other\" entry.",
								&mo_max_session_stats,
								1000, 10, 10000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.max_statements",
								"Number of distinct statements tracked.",
								"When the table is full, the least valuable entries are evicted.",
								&mo_max_statements,
								5000, 100, 100000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.metrics_min_calls",
							"Executions after which a statement joins the per-statement metrics.",
							"A statement that reaches this many calls is exported by metrics and prometheus() until it is evicted or reset, while fewer than moltres_ops.metrics_statements are.",
							&mo_metrics_min_calls,
							100, 1, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.metrics_statements",
							"Most statements exported with their own metrics.",
							"Statements join in the order they reach moltres_ops.metrics_min_calls and stay until evicted or reset; 0 exports none.",
							&mo_metrics_statements,
							100, 0, MO_METRICS_STATEMENTS_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.sample_interval",
							"Time between two samples of the wait sampler.",
							"0 turns sampling off.  Needs shared_preload_libraries.",
							&mo_sample_interval,
							10, 0, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("moltres_ops.save",
							 "Save statement statistics across server shutdowns.",
							 NULL,
							 &mo_save,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.session_history_interval",
							"Shortest time between two samples kept in moltres_ops.session_history.",
							"0 keeps every sample.  Needs shared_preload_libraries.",
							&mo_session_history_interval,
							1000, 0, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.session_history_size",
								"Number of raw samples (one per active backend and kept sample) in moltres_ops.session_history.",
								"0 keeps none.",
								&mo_session_history_size,
								10000, 0, 1000000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	if (preload)
		DefineCustomIntVariable("moltres_ops.slow_query_buffer",
								"Number of recent slow statements kept in shared memory.",
								"0 keeps none (the server log still gets them).",
								&mo_slow_query_buffer,
								1000, 0, 100000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.slow_query_ms",
							"Duration at or above which a statement counts as slow.",
							"-1 turns slow-statement handling off.",
							&mo_slow_query_ms,
							1000, -1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.trace_lock_timeout",
							"lock_timeout under which trace() runs each statement.",
							"A statement that would wait longer for a lock is reported instead of waiting.",
							&mo_trace_lock_timeout,
							100, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("moltres_ops.trace_statement_timeout",
							"statement_timeout under which trace() runs each statement.",
							"A statement that runs longer is cancelled, rolled back and reported.",
							&mo_trace_statement_timeout,
							5000, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("moltres_ops.track",
							 "Which statements are tracked: none, top (issued by clients) or all (nested too).",
							 NULL,
							 &mo_track,
							 MO_TRACK_TOP,
							 track_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("moltres_ops.track_utility",
							 "Track utility statements (DDL, COPY, VACUUM, ...).",
							 NULL,
							 &mo_track_utility,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved(MO_EXTNAME);
}

PG_FUNCTION_INFO_V1(moltres_ops_setting_value);

/*
 * moltres_ops_setting_value - the numeric value of a setting in its base
 * unit (what pg_settings.setting shows), NULL when there is no such setting
 * or it is not a number.  The health checks read some thirty thresholds per
 * evaluation; reading pg_settings costs milliseconds each, this does not.
 * Settings the caller may not read raise the usual error.
 */
Datum
moltres_ops_setting_value(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *value = GetConfigOption(name, true, true);
	char	   *end;
	double		result;

	if (value == NULL)
		PG_RETURN_NULL();
	errno = 0;
	result = strtod(value, &end);
	if (end == value || *end != '\0' || errno != 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(result);
}
