/*-------------------------------------------------------------------------
 *
 * errors.c
 *	  The errors clients saw: every ERROR or FATAL that reaches a client,
 *	  counted per (database, user, application_name, SQLSTATE) whether or
 *	  not a statement was running, and charged to the statement it belongs
 *	  to.  PostgreSQL keeps no such counter (pg_stat_database has only
 *	  rollbacks), and the executor hooks alone miss the errors raised while
 *	  a statement is parsed, analysed or planned, and after the executor has
 *	  finished (a timeout while the result is sent, a deferred constraint
 *	  or a serialization failure at commit).
 *
 * How it sees them.  emit_log_hook is called for every message that goes
 * to the server log; an ERROR gets there only once it has reached the top
 * level of a backend (an error caught by a PL/pgSQL EXCEPTION block never
 * does), i.e. when it is about to be sent to the client.  So only
 * messages at ERROR or above in client backends in normal processing are
 * counted (logins that fail are counted by connections.c).  The hook sees
 * a message only when log_min_messages lets ERROR through (the default).
 * For each one it lets the slow-query log attach the message to the failed
 * statements it queued (mo_slowlog_error_seen), lets exec_hooks.c charge
 * the error to the client's statement (mo_exec_error_seen: before, during
 * or after execution), counts a request that failed before any statement
 * ran in the latency windows, and counts the error here.
 *
 * The rule of the error path holds here (see exec_hooks.c): the hook runs
 * while the error is reported, so it allocates nothing, raises nothing and
 * checks no interrupt.  It takes this area's LWLock exclusively for one
 * probe and a few stores; errors are not a hot path.
 *
 * Shared state and locking.  One area, "client_errors": a fixed table of
 * MO_ERR_ENTRIES entries with open addressing (linear probing; entries are
 * never deleted but by a reset, which empties the table), and counters of
 * the errors that found it full.  One LWLock protects all of it; readers
 * copy the table under it in shared mode and build rows without it.
 *
 * Processes: client backends record and read; the postmaster initialises.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/lwlock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "exec_hooks.h"
#include "moltres_ops.h"
#include "query_stats.h"
#include "shmem.h"
#include "slowlog.h"

#define ERR_AREA		"client_errors"
#define MO_ERR_ENTRIES	1024
#define ERR_MESSAGE_MAX 160

typedef struct ErrKey
{
	Oid			dbid;
	Oid			userid;
	int			sqlerrcode;
	char		appname[NAMEDATALEN];
} ErrKey;

typedef struct ErrEntry
{
	bool		used;
	ErrKey		key;
	int64		phase[3];		/* by MoErrPhase */
	uint64		last_queryid;
	TimestampTz first_seen;
	TimestampTz last_seen;
	char		message[ERR_MESSAGE_MAX];
} ErrEntry;

typedef struct ErrShared
{
	LWLock	   *lock;
	TimestampTz reset_at;
	int64		overflow[3];	/* errors that found the table full */
	ErrEntry	entries[MO_ERR_ENTRIES];
} ErrShared;

static ErrShared *errs = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

static void mo_errors_emit_log_hook(ErrorData *edata);

static Size
errors_shmem_size(void)
{
	return sizeof(ErrShared);
}

static void
errors_shmem_startup(void *area, bool found)
{
	errs = (ErrShared *) area;
	if (found)
		return;
	memset(errs, 0, sizeof(ErrShared));
	errs->lock = &(mo_shmem_locks(ERR_AREA))[0].lock;
	errs->reset_at = GetCurrentTimestamp();
}

/*
 * mo_errors_init - register the area and the hook.  Called from _PG_init
 * while preloading.
 */
void
mo_errors_init(void)
{
	mo_shmem_register(ERR_AREA, errors_shmem_size, errors_shmem_startup, 1);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = mo_errors_emit_log_hook;
}

/* Count one error.  No allocation; the LWLock for a probe and stores. */
static void
errors_count(const ErrorData *edata, MoErrPhase phase, uint64 queryid)
{
	ErrKey		key;
	uint32		h;
	TimestampTz now = GetCurrentTimestamp();

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.userid = GetOuterUserId();
	key.sqlerrcode = edata->sqlerrcode;
	/* the server made application_name plain ASCII: no character to split */
	if (application_name)
		strlcpy(key.appname, application_name, NAMEDATALEN);
	h = hash_bytes((const unsigned char *) &key, sizeof(key));

	LWLockAcquire(errs->lock, LW_EXCLUSIVE);
	for (int n = 0; n < MO_ERR_ENTRIES; n++)
	{
		ErrEntry   *e = &errs->entries[(h + n) % MO_ERR_ENTRIES];

		if (e->used && memcmp(&e->key, &key, sizeof(key)) != 0)
			continue;
		if (!e->used)
		{
			e->used = true;
			e->key = key;
			memset(e->phase, 0, sizeof(e->phase));
			e->first_seen = now;
		}
		e->phase[phase]++;
		e->last_seen = now;
		if (queryid != 0)
			e->last_queryid = queryid;
		strlcpy(e->message, edata->message ? edata->message : "",
				sizeof(e->message));
		LWLockRelease(errs->lock);
		return;
	}
	errs->overflow[phase]++;
	LWLockRelease(errs->lock);
}

/*
 * mo_errors_emit_log_hook - an error is reported.  Counted only for a
 * client backend in normal processing (not a login, a WAL sender, a
 * background or parallel worker), and never re-entered.
 */
static void
mo_errors_emit_log_hook(ErrorData *edata)
{
	static bool busy = false;

	if (edata->elevel >= ERROR && edata->elevel <= FATAL && !busy &&
		errs != NULL && MyBackendType == B_BACKEND && !am_walsender &&
		IsNormalProcessingMode() && OidIsValid(MyDatabaseId))
	{
		MoErrPhase	phase;
		uint64		queryid;

		busy = true;
		mo_slowlog_error_seen(edata);
		phase = mo_exec_error_seen(edata, &queryid);
		if (queryid == 0)
			mo_latency_record_failure(mo_err_class(edata->sqlerrcode));
		errors_count(edata, phase, queryid);
		busy = false;
	}

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

PG_FUNCTION_INFO_V1(moltres_ops_errors);

/*
 * moltres_ops_errors - rows of the view errors.  The last message may hold
 * values from the statement, so other users' messages only for superusers
 * and members of pg_read_all_stats (as pg_stat_statements does with
 * texts); their counts for everyone who may read the view.
 */
Datum
moltres_ops_errors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ErrShared  *copy;
	Oid			me = GetUserId();
	bool		sees_all;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	sees_all = superuser() || has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);

	copy = palloc(sizeof(ErrShared));
	LWLockAcquire(errs->lock, LW_SHARED);
	memcpy(copy, errs, sizeof(ErrShared));
	LWLockRelease(errs->lock);

	for (int i = 0; i <= MO_ERR_ENTRIES; i++)
	{
		Datum		values[12];
		bool		nulls[12] = {0};
		const int64 *phase;

		if (i < MO_ERR_ENTRIES)
		{
			ErrEntry   *e = &copy->entries[i];

			if (!e->used)
				continue;
			phase = e->phase;
			values[0] = ObjectIdGetDatum(e->key.dbid);
			values[1] = ObjectIdGetDatum(e->key.userid);
			values[2] = CStringGetTextDatum(e->key.appname);
			values[3] = CStringGetTextDatum(unpack_sql_state(e->key.sqlerrcode));
			if (e->last_queryid != 0)
				values[8] = Int64GetDatum((int64) e->last_queryid);
			else
				nulls[8] = true;
			if (sees_all || e->key.userid == me)
				values[9] = CStringGetTextDatum(e->message);
			else
				nulls[9] = true;
			values[10] = TimestampTzGetDatum(e->first_seen);
			values[11] = TimestampTzGetDatum(e->last_seen);
		}
		else
		{
			/* the errors that found the table full, if any */
			phase = copy->overflow;
			if (phase[0] + phase[1] + phase[2] == 0)
				continue;
			for (int k = 0; k < 12; k++)
				nulls[k] = true;
			nulls[4] = nulls[5] = nulls[6] = nulls[7] = false;
		}
		values[4] = Int64GetDatum(phase[0] + phase[1] + phase[2]);
		values[5] = Int64GetDatum(phase[MO_PHASE_BEFORE]);
		values[6] = Int64GetDatum(phase[MO_PHASE_DURING]);
		values[7] = Int64GetDatum(phase[MO_PHASE_AFTER]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_reset_errors);

/*
 * moltres_ops_reset_errors - empty the table.  Execution is granted by the
 * install script, not to PUBLIC.
 */
Datum
moltres_ops_reset_errors(PG_FUNCTION_ARGS)
{
	mo_require_shmem();
	LWLockAcquire(errs->lock, LW_EXCLUSIVE);
	memset(errs->entries, 0, sizeof(errs->entries));
	memset(errs->overflow, 0, sizeof(errs->overflow));
	errs->reset_at = GetCurrentTimestamp();
	LWLockRelease(errs->lock);
	PG_RETURN_VOID();
}
