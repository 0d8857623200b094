/*-------------------------------------------------------------------------
 *
 * query_stats.h
 *	  The statistics table of moltres_ops (query_stats.c) and the latency
 *	  windows (latency.c): what the executor hooks record into them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_QUERY_STATS_H
#define MO_QUERY_STATS_H

#include "portability/instr_time.h"
#include "compat.h"			/* JumbleState */

/* Identity of a statistics entry, as in pg_stat_statements. */
typedef struct MoStatsKey
{
	Oid			userid;
	Oid			dbid;
	uint64		queryid;
	bool		toplevel;
} MoStatsKey;

/* How an execution ended. */
typedef enum MoErrClass
{
	MO_OK = 0,
	MO_ERR_OTHER,				/* any other error */
	MO_ERR_TIMEOUT,				/* 57014 raised by statement_timeout */
	MO_ERR_CANCEL,				/* 57014 otherwise: cancel request */
	MO_ERR_LOCK_TIMEOUT,		/* 55P03: lock_timeout, NOWAIT */
	MO_ERR_DEADLOCK,			/* 40P01 */
	MO_ERR_SERIALIZATION,		/* 40001 */
	MO_ERR_NCLASSES				/* number of values above */
} MoErrClass;

/* One execution, as measured by the hooks. */
typedef struct MoExecResult
{
	int64		duration_ns;
	uint64		rows;
	int64		shared_blks_hit;
	int64		shared_blks_read;
	int64		temp_blks_written;
	uint64		wal_bytes;
	MoErrClass	err;
	instr_time	end_time;		/* when it ended (for the latency windows) */
} MoExecResult;

/* query_stats.c */
extern void mo_query_stats_init(void);
extern bool mo_query_stats_ready(void);
extern bool mo_stats_has_text(const MoStatsKey *key);
extern void mo_stats_create(const MoStatsKey *key, const char *query,
							int location, int len, const JumbleState *jstate);
extern void mo_stats_record(const MoStatsKey *key, const MoExecResult *res,
							const char *query, int location, int len,
							bool in_error);
extern void mo_stats_reclassify(const MoStatsKey *key,
								const MoExecResult *res, MoErrClass err);
extern void mo_stats_count_dropped(void);
extern MoErrClass mo_err_class(int sqlerrcode);

/* latency.c */
extern void mo_latency_init(void);
extern void mo_latency_record(const MoExecResult *res);
extern void mo_latency_reclassify(const MoExecResult *res, MoErrClass err);
extern void mo_latency_record_failure(MoErrClass err);
extern void mo_latency_reset(void);

#endif							/* MO_QUERY_STATS_H */
