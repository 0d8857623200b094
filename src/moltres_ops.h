/*-------------------------------------------------------------------------
 *
 * moltres_ops.h
 *	  Declarations shared by every moltres_ops source file: the settings,
 *	  and the entry points that _PG_init calls for each subsystem.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MOLTRES_OPS_H
#define MOLTRES_OPS_H

#include "compat.h"

#define MO_EXTNAME		"moltres_ops"

/* guc.c: values of the moltres_ops.* settings */
typedef enum MoTrackLevel
{
	MO_TRACK_NONE,				/* track nothing */
	MO_TRACK_TOP,				/* only statements issued by clients */
	MO_TRACK_ALL				/* also statements nested in functions */
} MoTrackLevel;

typedef enum MoLogFormat
{
	MO_LOG_FORMAT_TEXT,
	MO_LOG_FORMAT_JSON
} MoLogFormat;

typedef enum MoLogPlan
{
	MO_LOG_PLAN_OFF,
	MO_LOG_PLAN_TEXT,
	MO_LOG_PLAN_JSON
} MoLogPlan;

extern int	mo_health_archive_age_s;
extern int	mo_health_autovacuum_min_rows;
extern char *mo_health_database;
extern double mo_health_dead_tuple_pct;
extern double mo_health_disk_free_pct;
extern double mo_health_error_rate_pct;
extern int	mo_health_for_s;
extern int	mo_health_history_size;
extern int	mo_health_idle_in_transaction_s;
extern int	mo_health_interval_s;
extern int	mo_health_lock_queue;
extern int	mo_health_lock_wait_s;
extern int	mo_health_long_running_s;
extern int	mo_health_long_transaction_s;
extern int	mo_health_migration_running_s;
extern int	mo_health_p95_ms;
extern int	mo_health_p99_ms;
extern int	mo_health_pool_min_connections;
extern int	mo_health_prepared_xact_s;
extern int	mo_health_replication_lag_mb;
extern int	mo_health_replication_lag_s;
extern double mo_health_sequence_pct;
extern int	mo_health_slot_retained_mb;
extern double mo_health_timeout_rate_pct;
extern int	mo_health_utilization_critical_pct;
extern int	mo_health_utilization_warn_pct;
extern double mo_health_wraparound_pct;
extern int	mo_log_format;
extern bool mo_log_parameters;
extern int	mo_log_plan;
extern bool mo_log_slow;
extern int	mo_lint_large_table_rows;
extern int	mo_track;
extern bool mo_track_utility;
extern int	mo_max_statements;
extern int	mo_avg_query_text;
extern int	mo_max_query_text;
extern int	mo_metrics_min_calls;
extern int	mo_metrics_statements;
extern int	mo_max_session_stats;
extern bool mo_save;
extern int	mo_sample_interval;
extern int	mo_session_history_interval;
extern int	mo_session_history_size;
extern int	mo_slow_query_ms;
extern int	mo_trace_lock_timeout;
extern int	mo_trace_statement_timeout;

/* hard cap of moltres_ops.metrics_statements (sizes shared memory) */
#define MO_METRICS_STATEMENTS_MAX	1000

extern void mo_guc_init(void);

/* moltres_ops.c: refuse writing functions on a standby */
extern void mo_require_primary(const char *what);

/* connections.c: connection lifecycle counters */
extern void mo_connections_init(void);

/* errors.c: the errors clients saw */
extern void mo_errors_init(void);

/* health_worker.c: the health checks evaluated on an interval */
extern void mo_health_worker_init(void);

/* index_worker.c: CONCURRENTLY index builds and drops in a worker */
extern void mo_index_worker_init(void);

/* worker_common.c: what the background workers share */
struct BackgroundWorker;
extern void mo_worker_describe(struct BackgroundWorker *worker,
							   const char *function, const char *type,
							   int flags, int start, int restart_s);
extern ErrorData *mo_worker_recover(MemoryContext cxt);

/* shmem.c: shared memory shared by all subsystems */
extern void mo_shmem_init(void);
extern bool mo_shmem_available(void);
extern void mo_require_shmem(void);
extern Size mo_shmem_total_bytes(void);

#endif							/* MOLTRES_OPS_H */
