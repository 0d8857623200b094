/*-------------------------------------------------------------------------
 *
 * slowlog.c
 *	  The slow-query log: a statement whose duration reaches
 *	  moltres_ops.slow_query_ms -- finished, failed or timed out -- is written
 *	  to the server log as one LOG message (text or JSON, optionally with its
 *	  plan) and kept in a shared ring of the last moltres_ops.slow_query_buffer
 *	  statements, which the view moltres_ops.slow_queries shows.
 *
 * Only slow statements pay: the executor hooks (exec_hooks.c) compare the
 * duration with the threshold and call mo_slow_statement_hook, which this
 * file sets, only past it.  The plan is printed after the fact from the
 * finished plan tree, without per-node instrumentation, so fast statements
 * never pay for it.  Everything is built in a private memory context that
 * is reset after each statement, so nothing outlives it.
 *
 * A successful slow statement is written at once, with interrupts held (a
 * cancel that arrives meanwhile stays pending for the hooks to service).
 * A failed one is reported from its PG_CATCH, where nothing may raise or
 * check for interrupts: its ring entry is written (bounded copies under
 * the ring's lock), its message added by emit_log_hook when the error
 * reaches the client, and its log line queued for the next safe point
 * (mo_slowlog_flush: the backend's next statement, or its exit).  A slow
 * statement that succeeded and then failed (a timeout while its result was
 * sent, an error at commit) has its ring entry amended and a second line,
 * "slow statement failed after execution", written likewise.
 *
 * Shared state and locking: the ring is a MoRing (ring.c, which describes
 * its one LWLock) of variable-size events, SLOW_AVG_BYTES of it per event
 * of moltres_ops.slow_query_buffer, so it keeps that many events or fewer
 * when their plans are long.  The message text and the strings of the
 * event are built before the lock is taken; the lock is held only for the
 * copy into one event.  Runs in backends only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
/* ExplainState and the output helpers moved out of explain.h in 18 */
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif
#include "common/ip.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "exec_hooks.h"
#include "ring.h"
#include "shmem.h"
#include "slowlog.h"

#define SLOW_AREA		"slowlog"
#define SLOW_PARAMS_MAX 1024	/* bytes of bind parameters kept */
#define SLOW_ERROR_MAX	512		/* bytes of error message kept */
#define SLOW_PLAN_MAX	8192	/* bytes of plan kept */
#define SLOW_AVG_BYTES	2048	/* the ring's bytes per slow_query_buffer */

/*
 * One event of the ring; its strings follow it, packed: the query, the
 * parameters (if any), room for an error message of SLOW_ERROR_MAX bytes
 * (always: a success can be amended into a failure later), the plan.
 */
typedef struct SlowEntry
{
	MoRingEvent ev;				/* when, who */
	uint64		queryid;
	double		duration_ms;
	int64		rows;
	int			sqlerrcode;		/* 0: succeeded */
	char		client[64];		/* numeric address; "" for a Unix socket */
	int			query_len;
	int			params_len;		/* -1: none */
	int			error_len;		/* -1: none */
	int			plan_len;		/* -1: none */
} SlowEntry;


static MoRing *ring = NULL;

/* Where a slow statement's strings are built; reset after each. */
static MemoryContext slow_cxt = NULL;

static uint64 slowlog_statement_done(const MoStatementDone *stmt);
static uint64 slowlog_write(const MoStatementDone *stmt);

/* The largest event. */
static Size
slot_size(void)
{
	return MAXALIGN(sizeof(SlowEntry) + (mo_max_query_text + 1) +
					(SLOW_PARAMS_MAX + 1) + (SLOW_ERROR_MAX + 1) +
					(SLOW_PLAN_MAX + 1));
}

static Size
slowlog_shmem_size(void)
{
	return mo_ring_size(slot_size(), mo_slow_query_buffer, SLOW_AVG_BYTES);
}

static void
slowlog_shmem_startup(void *area, bool found)
{
	ring = (MoRing *) area;
	mo_ring_attach(ring, found, SLOW_AREA, slot_size(), mo_slow_query_buffer,
				   SLOW_AVG_BYTES);
}

/*
 * mo_slowlog_init - register the ring.  Called from _PG_init while
 * preloading.
 */
void
mo_slowlog_init(void)
{
	mo_shmem_register(SLOW_AREA, slowlog_shmem_size, slowlog_shmem_startup, 1);
	mo_slow_statement_hook = slowlog_statement_done;
}

/*
 * The strings of an event, in order: query, parameters, error, plan; each
 * placed after the one before, so they are filled in this order.
 */
static inline char *
slot_query(SlowEntry *e)
{
	return (char *) e + sizeof(SlowEntry);
}
static inline char *
slot_params(SlowEntry *e)
{
	return slot_query(e) + Max(e->query_len, 0) + 1;
}
static inline char *
slot_error(SlowEntry *e)
{
	return slot_params(e) + (e->params_len >= 0 ? e->params_len + 1 : 0);
}
static inline char *
slot_plan(SlowEntry *e)
{
	return slot_error(e) + SLOW_ERROR_MAX + 1;
}

/* The client's numeric address, or "" for a Unix socket or no client. */
static void
client_address(char *buf, size_t size)
{
	buf[0] = '\0';
	if (MyProcPort == NULL)
		return;
	if (MyProcPort->raddr.addr.ss_family != AF_INET
#ifdef HAVE_IPV6
		&& MyProcPort->raddr.addr.ss_family != AF_INET6
#endif
		)
		return;
	if (pg_getnameinfo_all(&MyProcPort->raddr.addr, MyProcPort->raddr.salen,
						   buf, size, NULL, 0, NI_NUMERICHOST) != 0)
		buf[0] = '\0';
}

/* EXPLAIN of the finished plan tree, without instrumentation. */
static char *
plan_text(QueryDesc *queryDesc, bool json)
{
	ExplainState *es = NewExplainState();

	es->format = json ? EXPLAIN_FORMAT_JSON : EXPLAIN_FORMAT_TEXT;
	es->verbose = false;
	es->costs = true;
	ExplainBeginOutput(es);
	ExplainPrintPlan(es, queryDesc);
	ExplainEndOutput(es);
	/* The text format ends in a newline. */
	if (es->str->len > 0 && es->str->data[es->str->len - 1] == '\n')
		es->str->data[--es->str->len] = '\0';

	/*
	 * JSON output is a one-element array holding the members of one object
	 * ("[ "Plan": {...} ]"): turn the brackets into braces to get an object.
	 */
	if (json && es->str->len >= 2 && es->str->data[0] == '[' &&
		es->str->data[es->str->len - 1] == ']')
	{
		es->str->data[0] = '{';
		es->str->data[es->str->len - 1] = '}';
	}
	return es->str->data;
}

/* JSON has no room for raw newlines in a plan object: fold whitespace. */
static void
append_compact_json(StringInfo buf, const char *json)
{
	bool		in_string = false;

	for (const char *p = json; *p; p++)
	{
		if (in_string)
		{
			appendStringInfoChar(buf, *p);
			if (*p == '\\' && p[1])
				appendStringInfoChar(buf, *++p);
			else if (*p == '"')
				in_string = false;
		}
		else if (*p == '"')
		{
			in_string = true;
			appendStringInfoChar(buf, *p);
		}
		else if (*p == '\n')
			continue;
		else if (*p == ' ' && (p[1] == ' ' || p[-1] == '\n' || p[-1] == ' '))
			continue;
		else
			appendStringInfoChar(buf, *p);
	}
}

static void
json_key_string(StringInfo buf, const char *key, const char *value, bool first)
{
	if (!first)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

/*
 * A timestamp as the server log writes its own (log_line_prefix %m, and
 * the jsonlog format): in log_timezone, whatever the session's TimeZone.
 */
static void
format_log_ts(TimestampTz ts, char *buf, size_t size)
{
	pg_time_t	stamp = timestamptz_to_time_t(ts);
	char		sec[64];
	char		zone[16];
	struct pg_tm *tm = pg_localtime(&stamp, log_timezone);

	pg_strftime(sec, sizeof(sec), "%Y-%m-%d %H:%M:%S", tm);
	pg_strftime(zone, sizeof(zone), "%Z", tm);
	snprintf(buf, size, "%s.%03d %s", sec,
			 (int) ((ts % USECS_PER_SEC + USECS_PER_SEC) % USECS_PER_SEC / 1000),
			 zone);
}

/* Everything one log line says. */
typedef struct SlowLine
{
	TimestampTz started;
	const char *user;
	const char *db;
	const char *app;
	const char *client;			/* "" for a Unix socket */
	uint64		queryid;
	double		duration_ms;
	uint64		rows;
	const char *query;
	int			query_len;
	const char *params;
	const char *errcode;		/* NULL on success */
	const char *message;
	const char *plan;
	bool		after_execution;	/* failed after it had been logged */
} SlowLine;

/* Write one slow statement to the server log.  Not on an error path. */
static void
log_line(const SlowLine *l)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (mo_log_format == MO_LOG_FORMAT_JSON)
	{
		char		ts[128];
		char	   *q = pnstrdup(l->query, l->query_len);

		format_log_ts(l->started, ts, sizeof(ts));
		appendStringInfoChar(&buf, '{');
		json_key_string(&buf, "ts", ts, true);
		appendStringInfo(&buf, ",\"pid\":%d", MyProcPid);
		json_key_string(&buf, "user", l->user, false);
		json_key_string(&buf, "db", l->db, false);
		json_key_string(&buf, "application", l->app, false);
		json_key_string(&buf, "client", l->client[0] ? l->client : NULL, false);
		appendStringInfo(&buf, ",\"queryid\":%lld,\"duration_ms\":%.3f,\"rows\":" UINT64_FORMAT,
						 (long long) (int64) l->queryid, l->duration_ms,
						 l->rows);
		json_key_string(&buf, "query", q, false);
		if (mo_log_parameters)
			json_key_string(&buf, "parameters", l->params, false);
		json_key_string(&buf, "error_code", l->errcode, false);
		json_key_string(&buf, "error", l->message, false);
		appendStringInfoString(&buf, ",\"plan\":");
		if (l->plan == NULL)
			appendStringInfoString(&buf, "null");
		else if (mo_log_plan == MO_LOG_PLAN_JSON)
			append_compact_json(&buf, l->plan);
		else
			escape_json(&buf, l->plan);
		if (l->after_execution)
			appendStringInfoString(&buf, ",\"failed_after_execution\":true");
		appendStringInfoChar(&buf, '}');
	}
	else
	{
		appendStringInfo(&buf, "%s: duration: %.3f ms  rows: " UINT64_FORMAT "  queryid: %lld",
						 l->after_execution ? "slow statement failed after execution" : "slow statement",
						 l->duration_ms, l->rows, (long long) (int64) l->queryid);
		if (l->errcode)
			appendStringInfo(&buf, "  error: %s %s", l->errcode,
							 l->message ? l->message : "");
		appendStringInfo(&buf, "  statement: %.*s", l->query_len, l->query);
		if (l->params)
			appendStringInfo(&buf, "\nparameters: %s", l->params);
		if (l->plan)
			appendStringInfo(&buf, "\nplan:\n%s", l->plan);
	}
	ereport(LOG_SERVER_ONLY,
			(errmsg_internal("%s", buf.data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf.data);
}

/*
 * Put one statement into the ring; returns its event number.  No
 * allocation, no interrupt check: also used from PG_CATCH.
 */
static uint64
ring_put(const SlowLine *l, int sqlerrcode)
{
	SlowEntry  *e;
	Size		len;

	if (ring == NULL || ring->nslots <= 0)
		return 0;
	len = sizeof(SlowEntry) + Max(Min(l->query_len, mo_max_query_text), 0) + 1 +
		(l->params ? Min(strlen(l->params), SLOW_PARAMS_MAX) + 1 : 0) +
		SLOW_ERROR_MAX + 1 +
		(l->plan ? Min(strlen(l->plan), SLOW_PLAN_MAX) + 1 : 0);
	e = mo_ring_write_begin(ring, len);
	mo_ring_event_fill(&e->ev, l->started, l->user);
	e->queryid = l->queryid;
	e->duration_ms = l->duration_ms;
	e->rows = (int64) l->rows;
	e->sqlerrcode = sqlerrcode;
	strlcpy(e->client, l->client, sizeof(e->client));
	e->query_len = mo_copy_clipped(slot_query(e), l->query, l->query_len, mo_max_query_text);
	e->params_len = l->params ? mo_copy_clipped(slot_params(e), l->params, strlen(l->params), SLOW_PARAMS_MAX) : -1;
	e->error_len = l->message ? mo_copy_clipped(slot_error(e), l->message, strlen(l->message), SLOW_ERROR_MAX) : -1;
	e->plan_len = l->plan ? mo_copy_clipped(slot_plan(e), l->plan, strlen(l->plan), SLOW_PLAN_MAX) : -1;
	return mo_ring_write_end(ring);
}

/*
 * The queue of log lines that could not be written where they arose: a
 * failed statement (its PG_CATCH may neither allocate nor ereport) and a
 * success that failed afterwards.  Their ring entries are written at once;
 * the lines wait for mo_slowlog_flush(), at the start of the backend's
 * next statement or at its exit.  Fixed buffers, allocated at the first
 * flush (mo_slowlog_pending starts true in every backend for that).
 */
#define SLOW_QUEUE_MAX	8

typedef struct SlowQueued
{
	TimestampTz started;
	Oid			userid;
	uint64		queryid;
	double		duration_ms;
	uint64		rows;
	int			sqlerrcode;
	bool		has_message;
	bool		after_execution;
	int			query_len;
	char	   *query;			/* mo_max_query_text + 1 bytes */
	char		message[SLOW_ERROR_MAX + 1];
} SlowQueued;

bool		mo_slowlog_pending = true;
static SlowQueued *queue = NULL;
static int	queue_len = 0;
static uint64 queue_lost = 0;	/* lines that found the queue full */
static bool exit_flush_registered = false;

static SlowQueued *
queue_add(void)
{
	SlowQueued *q;

	if (queue == NULL || queue_len >= SLOW_QUEUE_MAX)
	{
		queue_lost++;
		return NULL;
	}
	q = &queue[queue_len++];
	q->has_message = false;
	q->after_execution = false;
	mo_slowlog_pending = true;
	return q;
}

static void
slowlog_exit_flush(int code, Datum arg)
{
	mo_slowlog_flush();
}

/*
 * mo_slowlog_flush - write the queued log lines.  Called by the hooks at
 * the start of a statement (a safe point: anything may raise there, as in
 * any statement) and at backend exit.
 */
void
mo_slowlog_flush(void)
{
	MemoryContext oldcxt;
	int			n = queue_len;

	mo_slowlog_pending = false;
	if (queue == NULL)
	{
		queue = MemoryContextAllocZero(TopMemoryContext,
									   sizeof(SlowQueued) * SLOW_QUEUE_MAX);
		for (int i = 0; i < SLOW_QUEUE_MAX; i++)
			queue[i].query = MemoryContextAlloc(TopMemoryContext,
												mo_max_query_text + 1);
	}
	if (!exit_flush_registered && IsUnderPostmaster)
	{
		before_shmem_exit(slowlog_exit_flush, (Datum) 0);
		exit_flush_registered = true;
	}
	if (n == 0 && queue_lost == 0)
		return;
	queue_len = 0;

	if (slow_cxt == NULL)
		slow_cxt = AllocSetContextCreate(TopMemoryContext, "moltres_ops slowlog",
										 ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(slow_cxt);
	if (mo_log_slow)
	{
		char		client[64];
		const char *user = NULL;

		client_address(client, sizeof(client));
		for (int i = 0; i < n; i++)
		{
			SlowQueued *q = &queue[i];
			SlowLine	l = {0};

			if (IsTransactionState())
				user = GetUserNameFromId(q->userid, true);
			l.started = q->started;
			l.user = user ? user : (MyProcPort ? MyProcPort->user_name : NULL);
			l.db = MyProcPort ? MyProcPort->database_name : NULL;
			l.app = application_name ? application_name : "";
			l.client = client;
			l.queryid = q->queryid;
			l.duration_ms = q->duration_ms;
			l.rows = q->rows;
			l.query = q->query;
			l.query_len = q->query_len;
			l.errcode = unpack_sql_state(q->sqlerrcode);
			l.message = q->has_message ? q->message : NULL;
			l.after_execution = q->after_execution;
			log_line(&l);
		}
		if (queue_lost > 0)
			ereport(LOG_SERVER_ONLY,
					(errmsg("moltres_ops: " UINT64_FORMAT " slow-query log lines of failed statements were not written",
							queue_lost),
					 errdetail("More than %d statements failed in one statement before the log could be written.",
							   SLOW_QUEUE_MAX)));
	}
	queue_lost = 0;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(slow_cxt);
}

/*
 * A failed statement, from its PG_CATCH: into the ring now (without its
 * message, which only emit_log_hook can read without allocating), its log
 * line queued.
 */
static uint64
slowlog_failed(const MoStatementDone *stmt)
{
	int			qlen;
	const char *query = mo_statement_text(stmt->source_text,
										  stmt->stmt_location,
										  stmt->stmt_len, &qlen);
	char		client[64];
	SlowLine	l = {0};
	SlowQueued *q;
	TimestampTz now = GetCurrentTimestamp();

	client_address(client, sizeof(client));
	l.started = now - (TimestampTz) (stmt->duration_ms * 1000.0);
	l.user = MyProcPort ? MyProcPort->user_name : NULL;
	l.client = client;
	l.queryid = stmt->queryid;
	l.duration_ms = stmt->duration_ms;
	l.rows = 0;
	l.query = query;
	l.query_len = qlen;

	q = queue_add();
	if (q != NULL)
	{
		q->started = l.started;
		q->userid = GetUserId();
		q->queryid = stmt->queryid;
		q->duration_ms = stmt->duration_ms;
		q->rows = 0;
		q->sqlerrcode = stmt->sqlerrcode;
		q->query_len = mo_copy_clipped(q->query, query, qlen, mo_max_query_text);
	}
	(void) ring_put(&l, stmt->sqlerrcode);
	return 0;
}

/* Set a ring entry's error.  No allocation: from emit_log_hook. */
static void
ring_set_error(uint64 event, int sqlerrcode, const char *message,
			   SlowQueued *copy_to)
{
	SlowEntry  *e = ring ? mo_ring_lock_event(ring, event) : NULL;

	if (e == NULL)
		return;
	e->sqlerrcode = sqlerrcode;
	e->rows = 0;
	if (message)
		e->error_len = mo_copy_clipped(slot_error(e), message, strlen(message),
									   SLOW_ERROR_MAX);
	if (copy_to)
	{
		copy_to->started = e->ev.ts;
		copy_to->duration_ms = e->duration_ms;
		copy_to->query_len = mo_copy_clipped(copy_to->query, slot_query(e),
											 e->query_len, mo_max_query_text);
	}
	mo_ring_unlock(ring);
}

/*
 * mo_slowlog_error_seen - an error reaches the client (errors.c's
 * emit_log_hook): the queued failed statements it ended get its message,
 * in the queue and in the ring.  No allocation, no interrupt check.
 */
void
mo_slowlog_error_seen(const ErrorData *edata)
{
	for (int i = 0; i < queue_len; i++)
	{
		SlowQueued *q = &queue[i];

		if (q->has_message || q->sqlerrcode != edata->sqlerrcode ||
			edata->message == NULL)
			continue;
		strlcpy(q->message, edata->message, sizeof(q->message));
		q->has_message = true;
		if (ring && ring->nslots > 0)
		{
			/* the failed statements' entries are the newest of this pid */
			SlowEntry  *e;

			LWLockAcquire(ring->lock, LW_EXCLUSIVE);
			for (uint64 ev = ring->next; ring->next - ev < 64; ev--)
			{
				e = (SlowEntry *) mo_ring_event(ring, ev);
				if (e == NULL)
					break;
				if (e->ev.pid == MyProcPid && e->queryid == q->queryid &&
					e->sqlerrcode == q->sqlerrcode && e->error_len < 0)
				{
					e->error_len = mo_copy_clipped(slot_error(e), q->message,
												   strlen(q->message),
												   SLOW_ERROR_MAX);
					break;
				}
			}
			LWLockRelease(ring->lock);
		}
	}
}

/*
 * mo_slowlog_failed_after - a statement logged as a slow success (event)
 * failed afterwards (a timeout while its result was sent, an error at
 * commit): mark its ring entry and queue a second log line that says so.
 * No allocation, no interrupt check: from emit_log_hook.
 */
void
mo_slowlog_failed_after(uint64 event, uint64 queryid, double duration_ms,
						const ErrorData *edata)
{
	SlowQueued *q = queue_add();

	if (q != NULL)
	{
		q->userid = GetUserId();
		q->queryid = queryid;
		q->rows = 0;
		q->sqlerrcode = edata->sqlerrcode;
		q->after_execution = true;
		q->query_len = 0;
		q->query[0] = '\0';
		q->started = GetCurrentStatementStartTimestamp();
		q->duration_ms = duration_ms;
		if (edata->message)
		{
			strlcpy(q->message, edata->message, sizeof(q->message));
			q->has_message = true;
		}
	}
	ring_set_error(event, edata->sqlerrcode, edata->message, q);
}

/*
 * slowlog_statement_done - a slow statement.  On success (queryDesc alive,
 * before ExecutorEnd; or a utility statement that returned) the line is
 * written to the server log and the ring now, with interrupts held: a
 * cancel or statement timeout that arrives while the plan is printed stays
 * pending, and the hooks service it as soon as the executor is shut down
 * (exec_hooks.c).  A failed statement (we are in its PG_CATCH) is only
 * queued.  Returns the ring event number of a success, else 0.
 */
static uint64
slowlog_statement_done(const MoStatementDone *stmt)
{
	MemoryContext oldcxt;
	uint64		event;

	if (stmt->failed)
	{
		/* Out of memory: building a log line would only make it worse. */
		if (stmt->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
			return 0;
		return slowlog_failed(stmt);
	}
	if (slow_cxt == NULL)
		slow_cxt = AllocSetContextCreate(TopMemoryContext, "moltres_ops slowlog",
										 ALLOCSET_SMALL_SIZES);
	HOLD_INTERRUPTS();
	oldcxt = MemoryContextSwitchTo(slow_cxt);
	event = slowlog_write(stmt);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(slow_cxt);
	RESUME_INTERRUPTS();
	return event;
}

static uint64
slowlog_write(const MoStatementDone *stmt)
{
	SlowLine	l = {0};
	char		client[64];
	ParamListInfo bind = stmt->queryDesc ? stmt->queryDesc->params : NULL;
	TimestampTz now = GetCurrentTimestamp();

	l.query = mo_statement_text(stmt->source_text, stmt->stmt_location,
								stmt->stmt_len, &l.query_len);
	client_address(client, sizeof(client));
	l.client = client;
	l.started = now - (TimestampTz) (stmt->duration_ms * 1000.0);
	l.user = GetUserNameFromId(GetUserId(), true);
	if (l.user == NULL && MyProcPort)
		l.user = MyProcPort->user_name;
	l.db = MyProcPort ? MyProcPort->database_name : NULL;
	l.app = application_name ? application_name : "";
	l.queryid = stmt->queryid;
	l.duration_ms = stmt->duration_ms;
	l.rows = stmt->rows;
	if (mo_log_parameters && bind && bind->numParams > 0)
		l.params = BuildParamLogString(bind, NULL, 64);
	if (mo_log_plan != MO_LOG_PLAN_OFF && stmt->queryDesc &&
		stmt->queryDesc->planstate)
		l.plan = plan_text(stmt->queryDesc, mo_log_plan == MO_LOG_PLAN_JSON);

	if (mo_log_slow)
		log_line(&l);
	return ring_put(&l, 0);
}

PG_FUNCTION_INFO_V1(moltres_ops_slow_queries);

/*
 * moltres_ops_slow_queries - the ring, newest first.  Rows of other users
 * only for superusers and members of pg_read_all_stats: the text is the
 * statement as it ran, literals included.
 */
Datum
moltres_ops_slow_queries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MoRingCopy	copy;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	if (ring->nslots <= 0)
		return (Datum) 0;

	/* Copy the ring out under the lock; build the rows without it. */
	mo_ring_copy(ring, &copy);
	for (int i = 0; i < copy.count; i++)
	{
		SlowEntry  *e = mo_ring_copy_entry(&copy, i);
		Datum		values[14];
		bool		nulls[14] = {0};

		if (!mo_ring_event_visible(&e->ev))
			continue;

		values[0] = TimestampTzGetDatum(e->ev.ts);
		values[1] = Int32GetDatum(e->ev.pid);
		values[2] = mo_ring_event_username(&e->ev);
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(e->ev.datname));
		values[4] = CStringGetTextDatum(e->ev.appname);
		if (e->client[0])
			values[5] = DirectFunctionCall1(inet_in, CStringGetDatum(e->client));
		else
			nulls[5] = true;
		values[6] = Int64GetDatum((int64) e->queryid);
		values[7] = Float8GetDatum(e->duration_ms);
		values[8] = Int64GetDatum(e->rows);
		values[9] = CStringGetTextDatum(slot_query(e));
		if (e->params_len >= 0)
			values[10] = CStringGetTextDatum(slot_params(e));
		else
			nulls[10] = true;
		if (e->sqlerrcode != 0)
			values[11] = CStringGetTextDatum(unpack_sql_state(e->sqlerrcode));
		else
			nulls[11] = true;
		if (e->error_len >= 0)
			values[12] = CStringGetTextDatum(slot_error(e));
		else
			nulls[12] = true;
		if (e->plan_len >= 0)
			values[13] = CStringGetTextDatum(slot_plan(e));
		else
			nulls[13] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy.data);

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_reset_slow_queries);

/*
 * moltres_ops_reset_slow_queries - empty the ring.  Execution is granted by
 * the install script, not to PUBLIC.
 */
Datum
moltres_ops_reset_slow_queries(PG_FUNCTION_ARGS)
{
	mo_require_shmem();
	mo_ring_reset(ring);

	PG_RETURN_VOID();
}
