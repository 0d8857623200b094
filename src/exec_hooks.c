/*-------------------------------------------------------------------------
 *
 * exec_hooks.c
 *	  Timing of every statement: the post-parse-analyze, planner,
 *	  ExecutorStart, ExecutorRun, ExecutorFinish, ExecutorEnd and
 *	  ProcessUtility hooks, nesting depth, the capture of statements that
 *	  fail, and which statement a client's error belongs to.
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
 * re-throw it unchanged.
 *
 * The rule on the statement path.  These hooks run inside every client's
 * statement, so they must never change what the client sees:
 *
 *	- Never catch and discard an error we did not raise.  A PG_CATCH here
 *	  records numbers and re-throws; FlushErrorState() after someone else's
 *	  error would eat a cancel or a statement timeout.
 *	- Inside PG_CATCH and in emit_log_hook, do nothing that can raise or
 *	  process interrupts: no ereport, no palloc, no catalog access, no
 *	  EXPLAIN.  An interrupt check there can throw a different error (a
 *	  parallel worker's death, a cancel) in place of the user's.  Counters
 *	  are updated (spinlocks, atomics, LWLocks); whatever must be written
 *	  (the slow-query log line of a failed statement) is queued and written
 *	  at the next safe point, the start of the backend's next statement or
 *	  its exit (mo_slowlog_flush).
 *	- On the success path, work that may check for interrupts (printing a
 *	  slow statement's plan) runs with interrupts held, so a cancel or
 *	  timeout that arrives meanwhile stays pending; it is serviced right
 *	  after, once the executor has been shut down, and reaches the client
 *	  as the statement's error.
 *	- The hot path allocates nothing and takes no lock shared by all
 *	  backends.  Per-query state lives in blocks of a backend-local array,
 *	  allocated once and never moved: a QueryDesc's slot is found by
 *	  pointer (normally the last one used) and is released by a reset
 *	  callback on the query's executor memory context, which runs whether
 *	  the query ends normally or is thrown away with its portal on abort.
 *
 * Errors raised outside the executor.  A client also sees errors that no
 * executor hook catches: while its statement is parsed, analysed, planned
 * or started, and after the executor has finished (a statement timeout
 * while the result is sent, a deferred constraint or a serialization
 * failure at commit).  errors.c's emit_log_hook sees every error that
 * reaches a client and calls mo_exec_error_seen(), which uses what the
 * hooks noted of the client's current top-level statement (`top` below:
 * its phase and key, and the statement-start timestamp of the protocol
 * message it belongs to) to charge the error to it: an error before
 * execution counts as a failed execution of the planned statement; an
 * error after a success turns that success into a failure (its rows are
 * taken back, its slow-query log entry marked).  An error with no
 * statement in flight (a syntax error) is counted only by errors.c.
 *
 * DDL statements (mo_is_ddl: one switch on the node tag) are handed to
 * mo_ddl_statement_hook (ddl_guard.c: guard, DDL lock timeout, DDL log)
 * inside the timing, so a refused statement counts as a failed one; every
 * other utility statement, and every planned one, goes straight on.  The
 * subcommands a utility statement runs for itself (CREATE TABLE's
 * indexes and foreign keys) are part of it and not counted on their own.
 *
 * All state here is backend-local; shared state is in query_stats.c and
 * latency.c (see their banners for the locking).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/scansup.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/elog.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "ddl_guard.h"
#include "exec_hooks.h"
#include "moltres_ops.h"
#include "query_stats.h"
#include "slowlog.h"
#include "waits.h"

#if PG_VERSION_NUM < 160000
#include "common/hashfn.h"
#else
#include "utils/memutils.h"
#endif

mo_statement_done_hook_type mo_slow_statement_hook = NULL;

/* Depth of statements being executed: 0 while running a top-level one. */
static int	nesting_level = 0;

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static planner_hook_type prev_planner = NULL;
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
	Oid			userid;			/* GetUserId() at ExecutorStart */
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

/*
 * Slots in blocks that never move (a registered callback points into its
 * slot): block b holds slots [b * MO_EXEC_BLOCK, (b + 1) * MO_EXEC_BLOCK).
 * A block is allocated, once, when nesting or open cursors first need it.
 */
#define MO_EXEC_BLOCK	64
#define MO_EXEC_BLOCKS	1024	/* 65,536 executor statements open at once */

static MoExecState exec_block0[MO_EXEC_BLOCK];
static MoExecState *exec_blocks[MO_EXEC_BLOCKS] = {exec_block0};
static int	exec_high = 0;		/* slots [0, exec_high) may be in use */

#define EXEC_SLOT(i) (&exec_blocks[(i) / MO_EXEC_BLOCK][(i) % MO_EXEC_BLOCK])

/*
 * The client's current top-level statement, as far as the hooks saw it,
 * for charging errors raised outside the executor (mo_exec_error_seen).
 * stmt_ts is GetCurrentStatementStartTimestamp() when the phase was set:
 * the server sets it for each protocol message (Query, Parse, Bind,
 * Execute), so an error under another timestamp is not this statement's.
 */
typedef enum TopPhase
{
	TOP_NONE,					/* nothing to charge an error to */
	TOP_BEFORE,					/* analysed or being planned or started */
	TOP_RUNNING,				/* executing */
	TOP_FAILED,					/* failed; the PG_CATCH recorded it */
	TOP_SUCCEEDED				/* recorded as a success */
} TopPhase;

typedef struct TopStmt
{
	TopPhase	phase;
	TimestampTz stmt_ts;
	MoStatsKey	key;
	MoExecState *st;			/* TOP_RUNNING executor statement, or NULL */
	MoExecResult res;			/* TOP_SUCCEEDED: what was recorded */
	uint64		slow_event;		/* TOP_SUCCEEDED: its slow-log event, or 0 */
} TopStmt;

static TopStmt top;

/*
 * Whether the client's statement of this protocol message has ended.  SQL
 * that still runs at level 0 under the same message -- deferred triggers
 * and foreign-key checks at COMMIT, the closing of cursors -- is the
 * statement's own doing: it must not take the statement's place in top,
 * or an error at commit would be charged to a foreign-key check.  (In a
 * message of several statements only the last one's success is kept in
 * top; see last_in_message.)
 */
static inline bool
top_ended(void)
{
	return (top.phase == TOP_SUCCEEDED || top.phase == TOP_FAILED) &&
		top.stmt_ts == GetCurrentStatementStartTimestamp();
}

static inline void
top_set(TopPhase phase, uint64 queryid)
{
	if (top_ended())
		return;
	top.phase = phase;
	top.stmt_ts = GetCurrentStatementStartTimestamp();
	top.key.userid = GetUserId();
	top.key.dbid = MyDatabaseId;
	top.key.queryid = queryid;
	top.key.toplevel = true;
	top.st = NULL;
}

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

/*
 * mo_err_class - the class of an error by its SQLSTATE.  For 57014, whether
 * statement_timeout raised it: valid while the error is being handled,
 * before the next statement arms the timeout again.
 */
MoErrClass
mo_err_class(int sqlerrcode)
{
	switch (sqlerrcode)
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

/* Class of the error being handled (in PG_CATCH); sets *code. */
static MoErrClass
classify_error(int *code)
{
	*code = geterrcode();
	return mo_err_class(*code);
}

/*
 * Whether the statement at loc/len is the last of its query string.  In a
 * simple-query message of several statements, an error after one of them
 * succeeded may be the next one's parse error: only the last statement's
 * success is open to being turned into a failure.
 */
static bool
last_in_message(const char *text, int loc, int len)
{
	const char *p;

	if (len <= 0 || text == NULL || loc < 0)
		return true;
	for (p = text + loc + len; *p; p++)
		if (!scanner_isspace(*p) && *p != ';')
			return false;
	return true;
}

/*
 * Tell the slow-statement subscriber, if any and if slow.  Returns its
 * event number (0: none).  On the error path the subscriber only queues.
 */
static inline uint64
report_if_slow(QueryDesc *qd, const char *text, int loc, int len,
			   const MoStatsKey *key, const MoExecResult *res, int code)
{
	MoStatementDone done;

	if (likely(mo_slow_statement_hook == NULL) || mo_slow_query_ms < 0 ||
		res->duration_ns < (int64) mo_slow_query_ms * 1000000)
		return 0;
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
	return mo_slow_statement_hook(&done);
}

/*
 * Record one execution of a statement in the table and the windows.  For
 * a client's own statement, note the outcome in top.  Returns the slow-log
 * event number, 0 if none (or if only queued).
 */
static uint64
record(uint64 queryid, Oid userid, bool toplevel, const MoExecResult *res,
	   QueryDesc *qd, const char *text, int loc, int len, int code,
	   bool in_error)
{
	MoStatsKey	key;
	uint64		event;

	key.userid = userid;
	key.dbid = MyDatabaseId;
	key.queryid = queryid;
	key.toplevel = toplevel;
	mo_stats_record(&key, res, text, loc, len, in_error);
	if (toplevel)
		mo_latency_record(res);
	event = report_if_slow(qd, text, loc, len, &key, res, code);
	if (toplevel && nesting_level == 0 && !top_ended())
	{
		if (res->err != MO_OK)
			top.phase = TOP_FAILED;
		else if (last_in_message(text, loc, len))
			top.phase = TOP_SUCCEEDED;
		else
			top.phase = TOP_NONE;
		top.key = key;
		top.res = *res;
		top.st = NULL;
		top.slow_event = event;
	}
	return event;
}

static uint64
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
	return record(st->queryid, st->userid, st->toplevel, &res, qd,
				  qd->sourceText,
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
	(void) exec_record(st, qd, err, code, true);
}

static void
exec_state_release(void *arg)
{
	MoExecState *st = (MoExecState *) arg;

	st->qd = NULL;
	if (top.st == st)
		top.st = NULL;
	while (exec_high > 0 && EXEC_SLOT(exec_high - 1)->qd == NULL)
		exec_high--;
}

static inline MoExecState *
exec_find(QueryDesc *qd)
{
	for (int i = exec_high - 1; i >= 0; i--)
	{
		MoExecState *st = EXEC_SLOT(i);

		if (st->qd == qd)
			return st;
	}
	return NULL;
}

/*
 * Start tracking qd (after standard_ExecutorStart: estate exists).  Not on
 * an error path, so a new block may be allocated; it is kept for the
 * backend's life.
 */
static MoExecState *
exec_begin(QueryDesc *qd)
{
	MoExecState *st = NULL;

	for (int i = 0; i < exec_high; i++)
		if (EXEC_SLOT(i)->qd == NULL)
		{
			st = EXEC_SLOT(i);
			break;
		}
	if (st == NULL)
	{
		int			b = exec_high / MO_EXEC_BLOCK;

		if (b >= MO_EXEC_BLOCKS)
		{
			mo_stats_count_dropped();
			return NULL;
		}
		if (exec_blocks[b] == NULL)
			exec_blocks[b] = MemoryContextAllocZero(TopMemoryContext,
													sizeof(MoExecState) * MO_EXEC_BLOCK);
		st = EXEC_SLOT(exec_high);
		exec_high++;
	}
	st->qd = qd;
	st->queryid = qd->plannedstmt->queryId;
	st->userid = GetUserId();
	st->toplevel = (nesting_level == 0);
	st->ran = false;
	st->done = false;
	st->elapsed_ns = 0;
	st->blks_hit = st->blks_read = st->temp_written = st->wal_bytes = 0;
	st->cb.func = exec_state_release;
	st->cb.arg = st;
	MemoryContextRegisterResetCallback(qd->estate->es_query_cxt, &st->cb);
	return st;
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

	if (unlikely(mo_slowlog_pending))
		mo_slowlog_flush();

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
	if (nesting_level == 0)
		top_set(TOP_BEFORE, query->queryId);
}

/*
 * Planner: only notes which client statement is being planned, so that a
 * planner error (constant folding of 1/0, say) is charged to it.  Nothing
 * is undone on return: ExecutorStart moves the phase on.
 */
static PlannedStmt *
mo_planner(Query *parse, const char *query_string, int cursorOptions,
		   ParamListInfo boundParams)
{
	if (nesting_level == 0 && parse->queryId != UINT64CONST(0) &&
		mo_track != MO_TRACK_NONE && !IsParallelWorker())
		top_set(TOP_BEFORE, parse->queryId);

	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

static void
mo_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	bool		track;

	if (unlikely(mo_slowlog_pending))
		mo_slowlog_flush();

	track = queryDesc->plannedstmt->queryId != UINT64CONST(0) &&
		mo_enabled(nesting_level) &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		!IsParallelWorker() && mo_query_stats_ready();
	if (track && nesting_level == 0)
		top_set(TOP_BEFORE, queryDesc->plannedstmt->queryId);

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (track)
	{
		MoExecState *st = exec_begin(queryDesc);

		if (nesting_level == 0 && st != NULL && !top_ended())
		{
			top.phase = TOP_RUNNING;
			top.st = st;
		}
	}
}

static void
mo_ExecutorRun(MO_EXECUTORRUN_PARAMS)
{
	MoExecState *st = exec_high > 0 ? exec_find(queryDesc) : NULL;
	MoSnap		s;
	MoWaitSaved ws;

	if (st)
	{
		snap_take(&s);
		if (st == top.st)
			top.stmt_ts = GetCurrentStatementStartTimestamp();
	}
	mo_waits_publish_start(&ws, queryDesc->plannedstmt->queryId,
						   st ? st->userid : GetUserId(), nesting_level == 0);
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(MO_EXECUTORRUN_ARGS);
		else
			standard_ExecutorRun(MO_EXECUTORRUN_ARGS);
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

/*
 * ExecutorFinish of a statement that may run something (AFTER triggers,
 * data-modifying CTEs): timed, and published as a step that can wait.  Out
 * of line so that the hook's path for a plain SELECT keeps a small frame.
 */
static pg_noinline void
executor_finish_timed(QueryDesc *queryDesc)
{
	MoExecState *st;
	MoSnap		s;
	MoWaitSaved ws;

	st = exec_high > 0 ? exec_find(queryDesc) : NULL;
	if (st)
		snap_take(&s);
	mo_waits_publish_start(&ws, queryDesc->plannedstmt->queryId,
						   st ? st->userid : GetUserId(), nesting_level == 0);
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
mo_ExecutorFinish(QueryDesc *queryDesc)
{
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
	executor_finish_timed(queryDesc);
}

static void
mo_ExecutorEnd(QueryDesc *queryDesc)
{
	MoExecState *st = exec_high > 0 ? exec_find(queryDesc) : NULL;
	uint64		slow = 0;

	if (st && st->ran && !st->done)
	{
		st->done = true;
		slow = exec_record(st, queryDesc, MO_OK, 0, false);
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);

	/*
	 * A cancel or timeout that came while the slow-query log held
	 * interrupts reaches the client now, as this statement's error (and
	 * mo_exec_error_seen turns the success just recorded into a failure).
	 */
	if (unlikely(slow != 0))
		CHECK_FOR_INTERRUPTS();
}

/*
 * The query id of a utility statement when another module (such as
 * pg_stat_statements, loaded after us so its hook runs first) zeroed it
 * before calling us: recomputed exactly as the core computed it at parse
 * analysis, so it equals pg_stat_statements.queryid.  In 14 and 15 that is
 * a hash of the statement's text.  From 16 it is the jumble of the Query
 * that parse analysis wraps around the statement (commandType utility, the
 * statement as utilityStmt, every other jumbled field empty), which is
 * rebuilt here; the jumble's memory goes with a context reset each time.
 */
static uint64
utility_query_id(PlannedStmt *pstmt, const char *query)
{
	int			location = pstmt->stmt_location;
	int			len = pstmt->stmt_len;
	uint64		id;
#if PG_VERSION_NUM < 160000
	const char *sql;

	if (query == NULL || !IsQueryIdEnabled())
		return 0;
	sql = CleanQuerytext(query, &location, &len);
	id = DatumGetUInt64(hash_any_extended((const unsigned char *) sql, len, 0));
	return id != 0 ? id : UINT64CONST(2);
#else
	static MemoryContext jumble_cxt = NULL;
	MemoryContext old;
	Query	   *q;

	if (!IsQueryIdEnabled() || pstmt->utilityStmt == NULL)
		return 0;
	if (jumble_cxt == NULL)
		jumble_cxt = AllocSetContextCreate(TopMemoryContext,
										   "moltres_ops utility query id",
										   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(jumble_cxt);
	q = makeNode(Query);
	q->commandType = CMD_UTILITY;
	q->utilityStmt = pstmt->utilityStmt;
	q->stmt_location = location;
	q->stmt_len = len;
	(void) JumbleQuery(q);
	id = q->queryId;
	MemoryContextSwitchTo(old);
	MemoryContextReset(jumble_cxt);
	return id;
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

	if (unlikely(mo_slowlog_pending))
		mo_slowlog_flush();

	/*
	 * A subcommand (CREATE TABLE's index or foreign key, ALTER TABLE's
	 * parts) is part of the statement that runs it, which is timed whole;
	 * its wrapper carries no query id of its own.
	 */
	if (!mo_track_utility || !mo_enabled(nesting_level) ||
		context == PROCESS_UTILITY_SUBCOMMAND ||
		IsParallelWorker() || !mo_query_stats_ready())
		queryid = 0;
	else if (queryid == UINT64CONST(0))
		queryid = utility_query_id(pstmt, queryString);

	if (queryid == UINT64CONST(0))
	{
		mo_waits_publish_start(&ws, pstmt->queryId, GetUserId(), toplevel);
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
	if (nesting_level == 0 && !top_ended())
	{
		top_set(TOP_RUNNING, queryid);
		top.key.toplevel = toplevel;
	}
	snap_take(&s);
	mo_waits_publish_start(&ws, queryid, GetUserId(), toplevel);
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
		(void) record(queryid, GetUserId(), toplevel, &res, NULL,
					  queryString, loc, len, code, true);
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
	if (unlikely(record(queryid, GetUserId(), toplevel, &res, NULL,
						queryString, loc, len, 0, false) != 0))
		CHECK_FOR_INTERRUPTS();
}

/*
 * mo_exec_error_seen - an error is being reported to the client (errors.c's
 * emit_log_hook, in a client backend).  Charge it to the client's current
 * top-level statement if it is this request's: a failure before execution
 * is recorded as a failed execution (its time counted from the start of
 * the protocol message, as the client waited it); one during execution was recorded by the PG_CATCH, or, for
 * a FATAL that skips PG_CATCH, is recorded here; a success that fails
 * afterwards is turned into a failure.  Sets *queryid (0: no statement)
 * and returns where the error arose.  Runs while the error is reported:
 * spinlocks, atomics and LWLocks only, no allocation, nothing that raises.
 */
MoErrPhase
mo_exec_error_seen(const ErrorData *edata, uint64 *queryid)
{
	TopPhase	phase = top.phase;
	MoErrClass	err;
	MoExecResult res;
	instr_time	now;

	*queryid = 0;
	top.phase = TOP_NONE;
	if (phase == TOP_NONE || !mo_query_stats_ready() ||
		top.stmt_ts != GetCurrentStatementStartTimestamp() ||
		top.key.dbid != MyDatabaseId)
		return MO_PHASE_BEFORE;

	*queryid = top.key.queryid;
	err = mo_err_class(edata->sqlerrcode);
	switch (phase)
	{
		case TOP_BEFORE:
		case TOP_RUNNING:
			if (phase == TOP_RUNNING && top.st != NULL)
			{
				if (top.st->done)
					return MO_PHASE_DURING;
				top.st->done = true;
			}
			INSTR_TIME_SET_CURRENT(now);
			memset(&res, 0, sizeof(res));
			res.duration_ns = Max(GetCurrentTimestamp() - top.stmt_ts, 0) *
				INT64CONST(1000);
			res.err = err;
			res.end_time = now;
			mo_stats_record(&top.key, &res, NULL, 0, 0, true);
			if (top.key.toplevel)
				mo_latency_record(&res);
			return phase == TOP_BEFORE ? MO_PHASE_BEFORE : MO_PHASE_DURING;
		case TOP_FAILED:
			return MO_PHASE_DURING;
		case TOP_SUCCEEDED:
			mo_stats_reclassify(&top.key, &top.res, err);
			mo_latency_reclassify(&top.res, err);
			if (top.slow_event != 0)
				mo_slowlog_failed_after(top.slow_event, top.key.queryid,
										(double) top.res.duration_ns / 1000000.0,
										edata);
			return MO_PHASE_AFTER;
		case TOP_NONE:
			break;
	}
	return MO_PHASE_BEFORE;
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
	prev_planner = planner_hook;
	planner_hook = mo_planner;
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
