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
 * is reset after each statement, so nothing outlives it; on the error path
 * nothing touches the catalogs and nothing raises.
 *
 * Shared state and locking: the ring is a MoRing (ring.c, which describes
 * its one LWLock) of fixed-size slots.  The message text and the strings of
 * the slot are built before the lock is taken; the lock is held only for the
 * copy into one slot.  Runs in backends only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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

/* One slot of the ring; the strings follow it in the slot. */
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

static void slowlog_statement_done(const MoStatementDone *stmt);
static void slowlog_write(const MoStatementDone *stmt);

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
	return mo_ring_size(slot_size(), mo_slow_query_buffer);
}

static void
slowlog_shmem_startup(void *area, bool found)
{
	ring = (MoRing *) area;
	mo_ring_attach(ring, found, SLOW_AREA, slot_size(), mo_slow_query_buffer);
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

/* The strings of a slot, in order: query, parameters, error, plan. */
static inline char *
slot_query(SlowEntry *e)
{
	return (char *) e + sizeof(SlowEntry);
}
static inline char *
slot_params(SlowEntry *e)
{
	return slot_query(e) + mo_max_query_text + 1;
}
static inline char *
slot_error(SlowEntry *e)
{
	return slot_params(e) + SLOW_PARAMS_MAX + 1;
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
 * slowlog_statement_done - write one slow statement to the server log and
 * to the ring.  Called by the executor hooks past the threshold, on success
 * (queryDesc alive, before ExecutorEnd) or from the error path of a failed
 * statement, with the error still on the error stack.  Never raises.
 */
static void
slowlog_statement_done(const MoStatementDone *stmt)
{
	MemoryContext oldcxt;

	/* Out of memory: building a log line would only make it worse. */
	if (stmt->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
		return;
	if (slow_cxt == NULL)
		slow_cxt = AllocSetContextCreate(TopMemoryContext, "moltres_ops slowlog",
										 ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(slow_cxt);
	slowlog_write(stmt);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(slow_cxt);
}

static void
slowlog_write(const MoStatementDone *stmt)
{
	int			qlen;
	const char *query = mo_statement_text(stmt->source_text,
										  stmt->stmt_location,
										  stmt->stmt_len, &qlen);
	char	   *params = NULL;
	char	   *plan = NULL;
	char	   *message = NULL;
	char		client[64];
	const char *user = NULL;
	const char *db = NULL;
	const char *app = application_name ? application_name : "";
	char		errcode[6] = {0};
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz started = now - (TimestampTz) (stmt->duration_ms * 1000.0);


	client_address(client, sizeof(client));
	if (MyProcPort)
	{
		user = MyProcPort->user_name;
		db = MyProcPort->database_name;
	}
	if (stmt->failed)
	{
		/* The error being handled: copied here, in our own context. */
		ErrorData  *edata = CopyErrorData();

		message = edata->message;
		strlcpy(errcode, unpack_sql_state(edata->sqlerrcode), sizeof(errcode));
	}

	/*
	 * Parameters and plan need output functions and catalog lookups: only on
	 * success, and an error there must not reach the user's statement.
	 */
	if (!stmt->failed)
	{
		MemoryContext oldcxt = CurrentMemoryContext;
		ParamListInfo bind = stmt->queryDesc ? stmt->queryDesc->params : NULL;

		PG_TRY();
		{
			user = GetUserNameFromId(GetUserId(), true);
			if (mo_log_parameters && bind && bind->numParams > 0)
				params = BuildParamLogString(bind, NULL, 64);
			if (mo_log_plan != MO_LOG_PLAN_OFF && stmt->queryDesc &&
				stmt->queryDesc->planstate)
				plan = plan_text(stmt->queryDesc, mo_log_plan == MO_LOG_PLAN_JSON);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcxt);
			FlushErrorState();
			params = NULL;
			plan = NULL;
			user = MyProcPort ? MyProcPort->user_name : NULL;
		}
		PG_END_TRY();
	}

	if (mo_log_slow)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (mo_log_format == MO_LOG_FORMAT_JSON)
		{
			char	   *q = pnstrdup(query, qlen);

			appendStringInfoChar(&buf, '{');
			json_key_string(&buf, "ts", timestamptz_to_str(started), true);
			appendStringInfo(&buf, ",\"pid\":%d", MyProcPid);
			json_key_string(&buf, "user", user, false);
			json_key_string(&buf, "db", db, false);
			json_key_string(&buf, "application", app, false);
			json_key_string(&buf, "client", client[0] ? client : NULL, false);
			appendStringInfo(&buf, ",\"queryid\":%lld,\"duration_ms\":%.3f,\"rows\":" UINT64_FORMAT,
							 (long long) (int64) stmt->queryid, stmt->duration_ms,
							 stmt->rows);
			json_key_string(&buf, "query", q, false);
			if (mo_log_parameters)
				json_key_string(&buf, "parameters", params, false);
			json_key_string(&buf, "error_code", errcode[0] ? errcode : NULL, false);
			json_key_string(&buf, "error", message, false);
			appendStringInfoString(&buf, ",\"plan\":");
			if (plan == NULL)
				appendStringInfoString(&buf, "null");
			else if (mo_log_plan == MO_LOG_PLAN_JSON)
				append_compact_json(&buf, plan);
			else
				escape_json(&buf, plan);
			appendStringInfoChar(&buf, '}');
		}
		else
		{
			appendStringInfo(&buf, "slow statement: duration: %.3f ms  rows: " UINT64_FORMAT "  queryid: %lld",
							 stmt->duration_ms, stmt->rows,
							 (long long) (int64) stmt->queryid);
			if (errcode[0])
				appendStringInfo(&buf, "  error: %s %s", errcode,
								 message ? message : "");
			appendStringInfo(&buf, "  statement: %.*s", qlen, query);
			if (params)
				appendStringInfo(&buf, "\nparameters: %s", params);
			if (plan)
				appendStringInfo(&buf, "\nplan:\n%s", plan);
		}
		ereport(LOG,
				(errmsg_internal("%s", buf.data),
				 errhidestmt(true),
				 errhidecontext(true)));
		pfree(buf.data);
	}

	if (ring == NULL || ring->nslots <= 0)
		return;

	{
		SlowEntry  *e = mo_ring_write_begin(ring);

		mo_ring_event_fill(&e->ev, started, user);
		e->queryid = stmt->queryid;
		e->duration_ms = stmt->duration_ms;
		e->rows = (int64) stmt->rows;
		e->sqlerrcode = stmt->failed ? stmt->sqlerrcode : 0;
		strlcpy(e->client, client, sizeof(e->client));
		e->query_len = mo_copy_clipped(slot_query(e), query, qlen, mo_max_query_text);
		e->params_len = params ? mo_copy_clipped(slot_params(e), params, strlen(params), SLOW_PARAMS_MAX) : -1;
		e->error_len = message ? mo_copy_clipped(slot_error(e), message, strlen(message), SLOW_ERROR_MAX) : -1;
		e->plan_len = plan ? mo_copy_clipped(slot_plan(e), plan, strlen(plan), SLOW_PLAN_MAX) : -1;
		mo_ring_write_end(ring);
	}
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
