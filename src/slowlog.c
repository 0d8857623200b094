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
 * Shared state and locking: the ring is an array of fixed-size slots plus a
 * header, protected by one LWLock (the "moltres_ops slowlog" tranche).  A
 * backend that records takes it exclusively for the copy into one slot; a
 * reader takes it shared to copy the ring out, and builds its result after
 * releasing it.  Slow statements are rare by definition, so one lock is not
 * a point of contention.  The message text is built before the lock is
 * taken.  Runs in backends only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "commands/explain.h"
#include "common/ip.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "parser/scansup.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "exec_hooks.h"
#include "shmem.h"
#include "slowlog.h"

#define SLOW_AREA		"slowlog"
#define SLOW_PARAMS_MAX 1024	/* bytes of bind parameters kept */
#define SLOW_ERROR_MAX	512		/* bytes of error message kept */
#define SLOW_PLAN_MAX	8192	/* bytes of plan kept */

/* One slot of the ring; the strings follow it in the slot. */
typedef struct SlowEntry
{
	TimestampTz ts;				/* when the statement started */
	int			pid;
	Oid			userid;			/* current user, for the privacy rule */
	uint64		queryid;
	double		duration_ms;
	int64		rows;
	int			sqlerrcode;		/* 0: succeeded */
	char		username[NAMEDATALEN];	/* fallback if the role is gone */
	char		datname[NAMEDATALEN];
	char		appname[NAMEDATALEN];
	char		client[64];		/* numeric address; "" for a Unix socket */
	int			query_len;
	int			params_len;		/* -1: none */
	int			error_len;		/* -1: none */
	int			plan_len;		/* -1: none */
} SlowEntry;

typedef struct SlowRing
{
	LWLock	   *lock;
	uint64		next;			/* how many were recorded since reset */
	int			nslots;
	Size		slot_size;
	TimestampTz reset_at;
	char		slots[FLEXIBLE_ARRAY_MEMBER];
} SlowRing;

static SlowRing *ring = NULL;

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
	return add_size(offsetof(SlowRing, slots),
					mul_size(slot_size(), mo_slow_query_buffer));
}

static void
slowlog_shmem_startup(void *area, bool found)
{
	ring = (SlowRing *) area;
	if (!found)
	{
		ring->next = 0;
		ring->nslots = mo_slow_query_buffer;
		ring->slot_size = slot_size();
		ring->reset_at = GetCurrentTimestamp();
	}
	ring->lock = &(mo_shmem_locks(SLOW_AREA)[0].lock);
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

static inline SlowEntry *
ring_slot(SlowRing *r, uint64 n)
{
	return (SlowEntry *) (r->slots + (n % r->nslots) * r->slot_size);
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

/* Copy at most max bytes of src, cut at a character boundary. */
static int
copy_clipped(char *dst, const char *src, int len, int max)
{
	if (src == NULL || len < 0)
		return -1;
	if (len > max)
		len = pg_mbcliplen(src, len, max);
	memcpy(dst, src, len);
	dst[len] = '\0';
	return len;
}

/*
 * This statement's own text out of a query string that may hold several,
 * without the surrounding blanks.
 */
static const char *
statement_text(const MoStatementDone *stmt, int *len)
{
	const char *s = stmt->source_text;
	int			loc = stmt->stmt_location;
	int			n = stmt->stmt_len;

	if (s == NULL)
	{
		*len = 0;
		return "";
	}
	if (loc < 0 || loc > (int) strlen(s))
		loc = 0, n = 0;
	s += loc;
	if (n <= 0)
		n = strlen(s);
	while (n > 0 && scanner_isspace(*s))
		s++, n--;
	while (n > 0 && (scanner_isspace(s[n - 1]) || s[n - 1] == ';'))
		n--;
	*len = n;
	return s;
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
	const char *query = statement_text(stmt, &qlen);
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

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	{
		SlowEntry  *e = ring_slot(ring, ring->next);

		e->ts = started;
		e->pid = MyProcPid;
		e->userid = GetUserId();
		e->queryid = stmt->queryid;
		e->duration_ms = stmt->duration_ms;
		e->rows = (int64) stmt->rows;
		e->sqlerrcode = stmt->failed ? stmt->sqlerrcode : 0;
		strlcpy(e->username, user ? user : "", NAMEDATALEN);
		strlcpy(e->datname, db ? db : "", NAMEDATALEN);
		strlcpy(e->appname, app, NAMEDATALEN);
		strlcpy(e->client, client, sizeof(e->client));
		e->query_len = copy_clipped(slot_query(e), query, qlen, mo_max_query_text);
		e->params_len = params ? copy_clipped(slot_params(e), params, strlen(params), SLOW_PARAMS_MAX) : -1;
		e->error_len = message ? copy_clipped(slot_error(e), message, strlen(message), SLOW_ERROR_MAX) : -1;
		e->plan_len = plan ? copy_clipped(slot_plan(e), plan, strlen(plan), SLOW_PLAN_MAX) : -1;
		ring->next++;
	}
	LWLockRelease(ring->lock);
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
	Oid			me = GetUserId();
	bool		see_all = superuser() ||
		has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
	char	   *copy;
	uint64		next;
	int			n;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);

	/* Copy the ring out under the lock; build the rows without it. */
	copy = palloc(ring->slot_size * ring->nslots);
	LWLockAcquire(ring->lock, LW_SHARED);
	next = ring->next;
	memcpy(copy, ring->slots, ring->slot_size * ring->nslots);
	LWLockRelease(ring->lock);

	n = (int) Min(next, (uint64) ring->nslots);
	for (int i = 0; i < n; i++)
	{
		uint64		k = (next - 1 - i) % ring->nslots;
		SlowEntry  *e = (SlowEntry *) (copy + k * ring->slot_size);
		Datum		values[14];
		bool		nulls[14] = {0};

		if (!see_all && e->userid != me)
			continue;

		values[0] = TimestampTzGetDatum(e->ts);
		values[1] = Int32GetDatum(e->pid);
		{
			/* the role that ran it, by its current name */
			char	   *name = GetUserNameFromId(e->userid, true);

			values[2] = DirectFunctionCall1(namein,
											CStringGetDatum(name ? name : e->username));
		}
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(e->datname));
		values[4] = CStringGetTextDatum(e->appname);
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
	pfree(copy);

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

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	ring->next = 0;
	ring->reset_at = GetCurrentTimestamp();
	LWLockRelease(ring->lock);

	PG_RETURN_VOID();
}
