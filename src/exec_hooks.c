/*-------------------------------------------------------------------------
 *
 * exec_hooks.c
 *	  Timing of every statement: the post-parse-analyze, ExecutorStart,
 *	  ExecutorRun, ExecutorFinish, ExecutorEnd and ProcessUtility hooks,
 *	  nesting depth, and the capture of statements that fail.
 *
 * Each hook calls the previous one (or the standard function), so the
 * extension loads beside pg_stat_statements, auto_explain and others in any
 * order.  The core query id is requested with EnableQueryId() and never
 * modified, so query_stats.queryid equals pg_stat_statements.queryid.
 *
 * An executor statement is timed over its ExecutorRun and ExecutorFinish
 * calls, as pg_stat_statements does, and recorded at ExecutorEnd.  A failed
 * statement never reaches ExecutorEnd (PortalCleanup skips it for a failed
 * portal), so ExecutorRun, ExecutorFinish and ProcessUtility catch the
 * error, record the execution with its elapsed time and error class, and
 * re-throw it unchanged.  The catch path allocates nothing (the error may
 * be out-of-memory) and takes no lock that the hot path holds.
 *
 * Per-query state lives in a small backend-local array, not in palloc'd
 * memory: a QueryDesc's slot is found by pointer (normally the last one
 * used) and is released by a reset callback on the query's executor memory
 * context, which runs whether the query ends normally or is thrown away
 * with its portal on abort.  So nothing leaks and nothing is allocated per
 * statement on the hot path.
 *
 * DDL statements (mo_is_ddl: one switch on the node tag) are handed to
 * mo_ddl_statement_hook (ddl_guard.c: guard, DDL lock timeout, DDL log)
 * inside the timing, so a refused statement counts as a failed one; every
 * other utility statement, and every planned one, goes straight on.
 *
 * All state here is backend-local; shared state is in query_stats.c and
 * latency.c (see their banners for the locking).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/elog.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "ddl_guard.h"
#include "exec_hooks.h"
#include "moltres_ops.h"
#include "query_stats.h"
#include "waits.h"

#if PG_VERSION_NUM < 160000
#include "common/hashfn.h"
#endif

mo_statement_done_hook_type mo_slow_statement_hook = NULL;

/* Depth of statements being executed: 0 while running a top-level one. */
static int	nesting_level = 0;

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* State of one tracked executor statement between Start and End. */
typedef struct MoExecState
{
	QueryDesc  *qd;				/* NULL when the slot is free */
	MemoryContextCallback cb;	/* frees the slot with the query's memory */
	uint64		queryid;
	bool		toplevel;
	bool		ran;			/* ExecutorRun was called */
	bool		done;			/* already recorded (failed) */
	int64		elapsed_ns;		/* in ExecutorRun and ExecutorFinish */
	int64		blks_hit;
	int64		blks_read;
	int64		temp_written;
	int64		wal_bytes;
	instr_time	last_end;
} MoExecState;

#define MO_MAX_EXEC 64			/* open cursors + nesting, per backend */

static MoExecState exec_states[MO_MAX_EXEC];
static int	exec_high = 0;		/* slots [0, exec_high) may be in use */

/* Counters at the start of one timed interval. */
typedef struct MoSnap
{
	instr_time	t;
	int64		hit;
	int64		read;
	int64		temp;
	int64		wal;
} MoSnap;

#define mo_enabled(level) \
	(mo_track == MO_TRACK_ALL || (mo_track == MO_TRACK_TOP && (level) == 0))

static inline void
snap_take(MoSnap *s)
{
	INSTR_TIME_SET_CURRENT(s->t);
	s->hit = pgBufferUsage.shared_blks_hit;
	s->read = pgBufferUsage.shared_blks_read;
	s->temp = pgBufferUsage.temp_blks_written;
	s->wal = pgWalUsage.wal_bytes;
}

static inline void
snap_accum(MoExecState *st, const MoSnap *s)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	st->elapsed_ns += mo_instr_ns(now) - mo_instr_ns(s->t);
	st->blks_hit += pgBufferUsage.shared_blks_hit - s->hit;
	st->blks_read += pgBufferUsage.shared_blks_read - s->read;
	st->temp_written += pgBufferUsage.temp_blks_written - s->temp;
	st->wal_bytes += pgWalUsage.wal_bytes - s->wal;
	st->last_end = now;
}

/*
 * Whether the query-cancel error being handled was raised by
 * statement_timeout rather than by a cancel request: both are SQLSTATE
 * 57014.  A statement timeout that fired is inactive with its finish time
 * passed; one that was armed for this statement but has not fired is still
 * active, and with statement_timeout = 0 none was armed.
 */
static bool
statement_timeout_fired(void)
{
	return StatementTimeout > 0 &&
		!get_timeout_active(STATEMENT_TIMEOUT) &&
		get_timeout_finish_time(STATEMENT_TIMEOUT) <= GetCurrentTimestamp();
}

/* Class of the error being handled (in PG_CATCH); sets *code. */
static MoErrClass
classify_error(int *code)
{
	*code = geterrcode();
	switch (*code)
	{
		case ERRCODE_QUERY_CANCELED:
			return statement_timeout_fired() ? MO_ERR_TIMEOUT : MO_ERR_CANCEL;
		case ERRCODE_LOCK_NOT_AVAILABLE:
			return MO_ERR_LOCK_TIMEOUT;
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return MO_ERR_DEADLOCK;
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
			return MO_ERR_SERIALIZATION;
		default:
			return MO_ERR_OTHER;
	}
}

/* Tell the slow-statement subscriber, if any and if slow. */
static inline void
report_if_slow(QueryDesc *qd, const char *text, int loc, int len,
			   const MoStatsKey *key, const MoExecResult *res, int code)
{
	MoStatementDone done;

	if (likely(mo_slow_statement_hook == NULL) || mo_slow_query_ms < 0 ||
		res->duration_ns < (int64) mo_slow_query_ms * 1000000)
		return;
	done.queryDesc = qd;
	done.source_text = text;
	done.stmt_location = loc;
	done.stmt_len = len;
	done.queryid = key->queryid;
	done.toplevel = key->toplevel;
	done.nesting_level = nesting_level;
	done.duration_ms = (double) res->duration_ns / 1000000.0;
	done.rows = res->rows;
	done.failed = (res->err != MO_OK);
	done.sqlerrcode = code;
	done.err_class = res->err;
	mo_slow_statement_hook(&done);
}

/* Record one execution of a statement in the table and the windows. */
static void
record(uint64 queryid, bool toplevel, const MoExecResult *res, QueryDesc *qd,
	   const char *text, int loc, int len, int code, bool in_error)
{
	MoStatsKey	key;

	key.userid = GetUserId();
	key.dbid = MyDatabaseId;
	key.queryid = queryid;
	key.toplevel = toplevel;
	mo_stats_record(&key, res, text, loc, len, in_error);
	if (toplevel)
		mo_latency_record(res);
	report_if_slow(qd, text, loc, len, &key, res, code);
}

static void
exec_record(MoExecState *st, QueryDesc *qd, MoErrClass err, int code,
			bool in_error)
{
	MoExecResult res;

	res.duration_ns = st->elapsed_ns;
	res.rows = qd->estate ? qd->estate->es_processed : 0;
	res.shared_blks_hit = st->blks_hit;
	res.shared_blks_read = st->blks_read;
	res.temp_blks_written = st->temp_written;
	res.wal_bytes = (uint64) st->wal_bytes;
	res.err = err;
	res.end_time = st->last_end;
	record(st->queryid, st->toplevel, &res, qd, qd->sourceText,
		   qd->plannedstmt->stmt_location, qd->plannedstmt->stmt_len,
		   code, in_error);
}

/* Record a statement that failed in Run or Finish (in PG_CATCH). */
static void
exec_failed(MoExecState *st, QueryDesc *qd, const MoSnap *s)
{
	int			code;
	MoErrClass	err;

	snap_accum(st, s);
	st->ran = true;
	if (st->done)
		return;
	st->done = true;
	err = classify_error(&code);
	exec_record(st, qd, err, code, true);
}

static void
exec_state_release(void *arg)
{
	MoExecState *st = (MoExecState *) arg;

	st->qd = NULL;
	while (exec_high > 0 && exec_states[exec_high - 1].qd == NULL)
		exec_high--;
}

static inline MoExecState *
exec_find(QueryDesc *qd)
{
	for (int i = exec_high - 1; i >= 0; i--)
		if (exec_states[i].qd == qd)
			return &exec_states[i];
	return NULL;
}

/* Start tracking qd (after standard_ExecutorStart: estate exists). */
static void
exec_begin(QueryDesc *qd)
{
	MoExecState *st = NULL;

	for (int i = 0; i < exec_high; i++)
		if (exec_states[i].qd == NULL)
		{
			st = &exec_states[i];
			break;
		}
	if (st == NULL)
	{
		if (exec_high >= MO_MAX_EXEC)
		{
			mo_stats_count_dropped();
			return;
		}
		st = &exec_states[exec_high++];
	}
	st->qd = qd;
	st->queryid = qd->plannedstmt->queryId;
	st->toplevel = (nesting_level == 0);
	st->ran = false;
	st->done = false;
	st->elapsed_ns = 0;
	st->blks_hit = st->blks_read = st->temp_written = st->wal_bytes = 0;
	st->cb.func = exec_state_release;
	st->cb.arg = st;
	MemoryContextRegisterResetCallback(qd->estate->es_query_cxt, &st->cb);
}

/*
 * Post-parse-analyze: make sure the statement has an entry with its
 * normalised text, while the constants' locations are known.  In steady
 * state one lock-free probe.
 */
static void
mo_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	MoStatsKey	key;

	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);

	if (query->queryId == UINT64CONST(0) || query->utilityStmt != NULL ||
		!mo_enabled(nesting_level) || IsParallelWorker() ||
		!mo_query_stats_ready())
		return;

	key.userid = GetUserId();
	key.dbid = MyDatabaseId;
	key.queryid = query->queryId;
	key.toplevel = (nesting_level == 0);
	if (!mo_stats_has_text(&key))
		mo_stats_create(&key, pstate->p_sourcetext, query->stmt_location,
						query->stmt_len, jstate);
}

static void
mo_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (queryDesc->plannedstmt->queryId != UINT64CONST(0) &&
		mo_enabled(nesting_level) &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		!IsParallelWorker() && mo_query_stats_ready())
		exec_begin(queryDesc);
}

static void
mo_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
			   bool execute_once)
{
	MoExecState *st = exec_high > 0 ? exec_find(queryDesc) : NULL;
	MoSnap		s;
	MoWaitSaved ws;

	if (st)
		snap_take(&s);
	mo_waits_publish_start(&ws, queryDesc->plannedstmt->queryId,
						   nesting_level == 0);
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_CATCH();
	{
		nesting_level--;
		mo_waits_publish_end(&ws, nesting_level == 0);
		if (st)
			exec_failed(st, queryDesc, &s);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
	mo_waits_publish_end(&ws, nesting_level == 0);
	if (st)
	{
		snap_accum(st, &s);
		st->ran = true;
	}
}

static void
mo_ExecutorFinish(QueryDesc *queryDesc)
{
	MoExecState *st;
	MoSnap		s;
	MoWaitSaved ws;

	/*
	 * A SELECT without data-modifying CTEs has nothing to do here (no AFTER
	 * triggers, nothing nested): skip the timing and the nesting.
	 */
	if (queryDesc->operation == CMD_SELECT &&
		queryDesc->estate->es_auxmodifytables == NIL)
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
		return;
	}

	st = exec_high > 0 ? exec_find(queryDesc) : NULL;
	if (st)
		snap_take(&s);
	mo_waits_publish_start(&ws, queryDesc->plannedstmt->queryId,
						   nesting_level == 0);
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		nesting_level--;
		mo_waits_publish_end(&ws, nesting_level == 0);
		if (st)
			exec_failed(st, queryDesc, &s);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
	mo_waits_publish_end(&ws, nesting_level == 0);
	if (st)
		snap_accum(st, &s);
}

static void
mo_ExecutorEnd(QueryDesc *queryDesc)
{
	MoExecState *st = exec_high > 0 ? exec_find(queryDesc) : NULL;

	if (st && st->ran && !st->done)
	{
		st->done = true;
		exec_record(st, queryDesc, MO_OK, 0, false);
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * The query id of a utility statement when another module (such as
 * pg_stat_statements, listed after us) zeroed it before calling us: in
 * PostgreSQL 14 and 15 it is a hash of the statement's text, so it can be
 * recomputed exactly.
 */
static uint64
utility_query_id(const char *query, int location, int len)
{
#if PG_VERSION_NUM < 160000
	const char *sql;
	uint64		id;

	if (query == NULL || !IsQueryIdEnabled())
		return 0;
	sql = CleanQuerytext(query, &location, &len);
	id = DatumGetUInt64(hash_any_extended((const unsigned char *) sql, len, 0));
	return id != 0 ? id : UINT64CONST(2);
#else
	return 0;
#endif
}

static inline void
call_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/* The same, out of line, for the DDL subscriber to call back. */
static void
next_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	call_process_utility(pstmt, queryString, readOnlyTree, context,
						 params, queryEnv, dest, qc);
}

/*
 * Run a utility statement: DDL through the DDL subscriber (guard, lock
 * timeout, log) when there is one, anything else straight on.
 */
static pg_attribute_always_inline void
run_utility(PlannedStmt *pstmt, const char *queryString,
			bool readOnlyTree, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *queryEnv,
			DestReceiver *dest, QueryCompletion *qc)
{
	if (mo_ddl_statement_hook != NULL && mo_is_ddl(pstmt->utilityStmt))
		mo_ddl_statement_hook(pstmt, queryString, readOnlyTree, context,
							  params, queryEnv, dest, qc,
							  next_process_utility);
	else
		call_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
}

/*
 * ProcessUtility: time the utility statement as a whole.  EXECUTE, PREPARE
 * and DEALLOCATE are not tracked (the prepared statement itself is, through
 * the executor hooks).  pstmt is not touched after the call: it may be gone
 * (ROLLBACK).
 */
static void
mo_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	uint64		queryid = pstmt->queryId;
	int			loc = pstmt->stmt_location;
	int			len = pstmt->stmt_len;
	bool		toplevel = (nesting_level == 0);
	MoExecState st;
	MoSnap		s;
	MoExecResult res;
	MoWaitSaved ws;

	/*
	 * EXECUTE, PREPARE and DEALLOCATE are not timed themselves, and do not
	 * count as a level of nesting: the prepared statement that EXECUTE runs
	 * is charged at the caller's level, as pg_stat_statements does, so that
	 * with track = top a client's EXECUTE is seen.
	 */
	if (IsA(parsetree, ExecuteStmt) || IsA(parsetree, PrepareStmt) ||
		IsA(parsetree, DeallocateStmt))
	{
		call_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
		return;
	}

	if (!mo_track_utility || !mo_enabled(nesting_level) ||
		IsParallelWorker() || !mo_query_stats_ready())
		queryid = 0;
	else if (queryid == UINT64CONST(0))
		queryid = utility_query_id(queryString, loc, len);

	if (queryid == UINT64CONST(0))
	{
		mo_waits_publish_start(&ws, pstmt->queryId, toplevel);
		nesting_level++;
		PG_TRY();
		{
			run_utility(pstmt, queryString, readOnlyTree, context,
						params, queryEnv, dest, qc);
		}
		PG_FINALLY();
		{
			nesting_level--;
			mo_waits_publish_end(&ws, toplevel);
		}
		PG_END_TRY();
		return;
	}

	memset(&st, 0, sizeof(st));
	snap_take(&s);
	mo_waits_publish_start(&ws, queryid, toplevel);
	nesting_level++;
	PG_TRY();
	{
		run_utility(pstmt, queryString, readOnlyTree, context,
					params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		int			code;

		nesting_level--;
		mo_waits_publish_end(&ws, toplevel);
		snap_accum(&st, &s);
		memset(&res, 0, sizeof(res));
		res.duration_ns = st.elapsed_ns;
		res.shared_blks_hit = st.blks_hit;
		res.shared_blks_read = st.blks_read;
		res.temp_blks_written = st.temp_written;
		res.wal_bytes = (uint64) st.wal_bytes;
		res.end_time = st.last_end;
		res.err = classify_error(&code);
		record(queryid, toplevel, &res, NULL, queryString, loc, len, code, true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
	mo_waits_publish_end(&ws, toplevel);

	snap_accum(&st, &s);
	res.duration_ns = st.elapsed_ns;
	res.rows = 0;
	if (qc && (qc->commandTag == CMDTAG_COPY ||
			   qc->commandTag == CMDTAG_FETCH ||
			   qc->commandTag == CMDTAG_SELECT ||
			   qc->commandTag == CMDTAG_REFRESH_MATERIALIZED_VIEW))
		res.rows = qc->nprocessed;
	res.shared_blks_hit = st.blks_hit;
	res.shared_blks_read = st.blks_read;
	res.temp_blks_written = st.temp_written;
	res.wal_bytes = (uint64) st.wal_bytes;
	res.end_time = st.last_end;
	res.err = MO_OK;
	record(queryid, toplevel, &res, NULL, queryString, loc, len, 0, false);
}

/*
 * mo_exec_hooks_init - request the core query id and install the hooks.
 * Called from _PG_init while the library is preloaded.
 */
void
mo_exec_hooks_init(void)
{
	EnableQueryId();

	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = mo_post_parse_analyze;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = mo_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = mo_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = mo_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = mo_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = mo_ProcessUtility;
}
