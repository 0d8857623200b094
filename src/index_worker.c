/*-------------------------------------------------------------------------
 *
 * index_worker.c
 *	  safe_create_index() and safe_drop_index(): CREATE INDEX CONCURRENTLY
 *	  and DROP INDEX CONCURRENTLY run by a dynamic background worker, so that
 *	  they can be asked for from anywhere -- inside a transaction block, a
 *	  function, a migration tool that wraps every file in BEGIN/COMMIT --
 *	  while the statement itself runs top-level, outside any transaction
 *	  block, as the CONCURRENTLY forms require.
 *
 * The calling backend checks its arguments, builds the statement with
 * quoted identifiers, parses it with the raw parser (it must be exactly one
 * CREATE INDEX on that table, so a definition cannot smuggle in a second
 * statement), claims a job slot and starts a worker.  The worker connects
 * to the caller's database as the caller's session user, then takes the
 * caller's current role, so it has the caller's privileges and never more;
 * it takes the table's SHARE UPDATE EXCLUSIVE lock under a short
 * lock_timeout, retried with backoff, then runs the statement through a
 * portal as exec_simple_query does (CREATE INDEX CONCURRENTLY commits
 * internally), bounded by the job's timeout.  When a build fails, the
 * invalid index it leaves behind is dropped concurrently.  The outcome
 * (SQLSTATE, message, detail) goes back into the slot.  The worker takes
 * over the caller's search_path, maintenance_work_mem and
 * max_parallel_maintenance_workers, so the statement means and costs what
 * it would in the caller's session.
 *
 * A concurrent build must wait for every transaction whose snapshot is
 * older than its own, and the caller's transaction is one of them.  So a
 * caller that waits (wait = true) waits until the job ends, or until the
 * worker is waiting for a lock the caller's own transaction holds; then it
 * returns with a NOTICE and the build finishes once that transaction ends.
 * Everything that fails before that point -- bad definitions, privileges,
 * lock timeouts, duplicate keys found by the build -- is raised in the
 * caller with the worker's SQLSTATE.
 *
 * Shared state and locking: an array of INDEX_JOB_SLOTS job slots and a job
 * counter, protected by one LWLock (the "moltres_ops index_jobs" tranche).
 * Callers take it exclusively to claim a slot, workers to report their
 * state; readers (the caller's wait loop, the index_jobs view) take it
 * shared and copy what they need.  Nobody raises an error or does I/O
 * while holding it.  A slot that is starting or running is never reused;
 * a finished one is reused oldest first.  Runs in backends (the SQL
 * functions) and in the index workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "moltres_ops.h"
#include "shmem.h"

#define JOB_AREA			"index_jobs"
#define INDEX_JOB_SLOTS		16
#define JOB_COMMAND_MAX		4096	/* bytes of statement text */
#define JOB_ERROR_MAX		1024	/* bytes of message, and of detail */
#define JOB_LOCK_TIMEOUT_MS 2000	/* per attempt at the table's lock */
#define JOB_LOCK_ATTEMPTS	5		/* then the job fails with 55P03 */
#define JOB_SETTING_MAX		1024	/* bytes of a caller's setting */

/*
 * The caller's settings that shape the statement, which the worker takes
 * over: names in the definition resolve as in the caller's session, and a
 * build gets the memory and parallel workers the caller set for it.
 */
static const char *const passed_settings[] = {
	"search_path",
	"maintenance_work_mem",
	"max_parallel_maintenance_workers",
};
#define NUM_PASSED_SETTINGS lengthof(passed_settings)

typedef enum JobState
{
	JOB_FREE = 0,
	JOB_STARTING,				/* slot claimed, worker not yet running */
	JOB_RUNNING,
	JOB_DONE,
	JOB_FAILED
} JobState;

typedef struct IndexJob
{
	int64		id;				/* 1, 2, ... since start-up */
	JobState	state;
	bool		is_drop;
	bool		is_unique;
	bool		existed;		/* worker: the index was there before */
	int			pid;			/* the worker's; 0 until it runs */
	int			attempts;		/* tries at the table's lock so far */
	Oid			dbid;
	Oid			session_userid; /* whom the worker connects as */
	Oid			userid;			/* whose privileges it runs with */
	Oid			relid;			/* the table */
	Oid			indexid;		/* drop: the index */
	int64		timeout_ms;		/* 0: none */
	TimestampTz started_at;
	TimestampTz finished_at;
	int			sqlerrcode;		/* 0: none */
	char		username[NAMEDATALEN];
	char		datname[NAMEDATALEN];
	char		index_name[NAMEDATALEN];	/* create: the new index */
	char		command[JOB_COMMAND_MAX];
	char		error[JOB_ERROR_MAX];
	char		detail[JOB_ERROR_MAX];
	char		settings[NUM_PASSED_SETTINGS][JOB_SETTING_MAX];
} IndexJob;

typedef struct IndexJobs
{
	LWLock	   *lock;
	int64		next_id;
	IndexJob	slots[INDEX_JOB_SLOTS];
} IndexJobs;

static IndexJobs *jobs = NULL;

/* Worker: which slot is ours, for the exit callback. */
static int	my_slot = -1;
static int64 my_job_id = 0;

PGDLLEXPORT void mo_index_worker_main(Datum main_arg);

static Size
jobs_shmem_size(void)
{
	return sizeof(IndexJobs);
}

static void
jobs_shmem_startup(void *area, bool found)
{
	jobs = (IndexJobs *) area;
	if (!found)
	{
		memset(jobs, 0, sizeof(IndexJobs));
		jobs->next_id = 1;
	}
	jobs->lock = &(mo_shmem_locks(JOB_AREA)[0].lock);
}

/*
 * mo_index_worker_init - register the job slots.  Called from _PG_init
 * while preloading; the workers themselves are dynamic.
 */
void
mo_index_worker_init(void)
{
	mo_shmem_register(JOB_AREA, jobs_shmem_size, jobs_shmem_startup, 1);
}

/* ---------------------------------------------------------------------
 * Caller side
 * ---------------------------------------------------------------------
 */

/* A timeout argument in milliseconds; 0 means none. */
static int64
interval_ms(Interval *iv)
{
	double		secs;

	secs = DatumGetFloat8(DirectFunctionCall2(interval_part,
											  CStringGetTextDatum("epoch"),
											  IntervalPGetDatum(iv)));
	if (secs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	if (secs * 1000.0 > (double) INT_MAX)
		return INT_MAX;
	return (int64) (secs * 1000.0 + 0.5);
}

/*
 * claim_slot - take a free slot, or the one that finished longest ago, and
 * fill it in.  Returns the slot number; the job id goes to *job_id.
 */
static int
claim_slot(const IndexJob *job, int64 *job_id)
{
	int			best = -1;

	LWLockAcquire(jobs->lock, LW_EXCLUSIVE);
	for (int i = 0; i < INDEX_JOB_SLOTS; i++)
	{
		IndexJob   *s = &jobs->slots[i];

		if (s->state == JOB_FREE)
		{
			best = i;
			break;
		}
		if ((s->state == JOB_DONE || s->state == JOB_FAILED) &&
			(best < 0 || s->finished_at < jobs->slots[best].finished_at))
			best = i;
	}
	if (best >= 0)
	{
		IndexJob   *s = &jobs->slots[best];

		memcpy(s, job, sizeof(IndexJob));
		s->id = jobs->next_id++;
		s->state = JOB_STARTING;
		s->started_at = GetCurrentTimestamp();
		*job_id = s->id;
	}
	LWLockRelease(jobs->lock);

	if (best < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many index jobs are running"),
				 errdetail("All %d job slots of moltres_ops are taken by jobs that have not finished.",
						   INDEX_JOB_SLOTS),
				 errhint("See moltres_ops.index_jobs, and retry when one has finished.")));
	return best;
}

/* Mark a job that never ran, or whose worker vanished, as failed. */
static void
fail_slot(int slotno, int64 job_id, int sqlerrcode, const char *msg)
{
	LWLockAcquire(jobs->lock, LW_EXCLUSIVE);
	if (jobs->slots[slotno].id == job_id &&
		(jobs->slots[slotno].state == JOB_STARTING ||
		 jobs->slots[slotno].state == JOB_RUNNING))
	{
		IndexJob   *s = &jobs->slots[slotno];

		s->state = JOB_FAILED;
		s->sqlerrcode = sqlerrcode;
		strlcpy(s->error, msg, JOB_ERROR_MAX);
		s->detail[0] = '\0';
		s->finished_at = GetCurrentTimestamp();
	}
	LWLockRelease(jobs->lock);
}

/*
 * blocked_by_me - whether the worker is waiting for a lock that this
 * backend holds: its transaction ID lock (a concurrent build waits for
 * older snapshots) or a table lock.  Waiting longer would never end.
 */
static bool
blocked_by_me(int pid)
{
	PGPROC	   *proc = BackendPidGetProc(pid);
	BlockedProcsData *data;
	bool		mine = false;

	if (proc == NULL || (proc->wait_event_info & 0xFF000000) != PG_WAIT_LOCK)
		return false;

	data = GetBlockerStatusData(pid);
	for (int i = 0; i < data->nprocs && !mine; i++)
	{
		BlockedProcData *bp = &data->procs[i];

		if (bp->pid != pid)
			continue;
		for (int j = bp->first_lock; j < bp->first_lock + bp->num_locks; j++)
		{
			if (data->locks[j].pid == MyProcPid && data->locks[j].holdMask != 0)
			{
				mine = true;
				break;
			}
		}
	}
	return mine;
}

/*
 * The waits of this file, named from 17 on (pg_stat_activity.wait_event
 * shows MoltresIndexJob while a caller waits for its job's worker,
 * MoltresIndexLockRetry while a worker backs off before retrying the
 * table's lock); "Extension" before.  Registered at the first use in each
 * process, before anything is started, so that a failure there changes
 * nothing.
 */
static uint32 wait_index_job = 0;
static uint32 wait_lock_retry = 0;

/*
 * run_job - claim a slot, start the worker, and either return its pid at
 * once or wait for the outcome and raise the worker's error as our own.
 * A cancel of the caller while it waits cancels the worker too, which then
 * cleans up.
 */
static int
run_job(IndexJob *job, bool wait)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid = 0;
	int64		job_id;
	int			slotno;
	IndexJob	result;
	bool		early = false;

	mo_require_primary(job->is_drop ? "safe_drop_index" : "safe_create_index");
	if (wait_index_job == 0)
		wait_index_job = mo_wait_event("MoltresIndexJob");

	slotno = claim_slot(job, &job_id);

	mo_worker_describe(&worker, "mo_index_worker_main", "moltres_ops index worker",
					   BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION,
					   BgWorkerStart_RecoveryFinished, BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "moltres_ops index worker (job %lld)",
			 (long long) job_id);
	worker.bgw_main_arg = Int32GetDatum(slotno);
	memcpy(worker.bgw_extra, &job_id, sizeof(job_id));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		fail_slot(slotno, job_id, ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
				  "could not start an index worker: no background worker slot is free");
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start an index worker"),
				 errdetail("All background worker slots are in use."),
				 errhint("Raise max_worker_processes (a restart is needed), or retry later.")));
	}

	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status != BGWH_STARTED && status != BGWH_STOPPED)
	{
		fail_slot(slotno, job_id, ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
				  "could not start an index worker");
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start an index worker")));
	}

	if (!wait)
		return (int) pid;

	PG_TRY();
	{
		for (;;)
		{
			JobState	state;

			status = GetBackgroundWorkerPid(handle, &pid);
			LWLockAcquire(jobs->lock, LW_SHARED);
			state = jobs->slots[slotno].state;
			if (pid == 0)
				pid = jobs->slots[slotno].pid;
			LWLockRelease(jobs->lock);

			if (state == JOB_DONE || state == JOB_FAILED)
				break;
			if (status == BGWH_STOPPED)
			{
				/* the exit callback normally reports; this is the fallback */
				fail_slot(slotno, job_id, ERRCODE_INTERNAL_ERROR,
						  "the index worker exited without reporting; see the server log");
				break;
			}
			if (status == BGWH_STARTED && blocked_by_me(pid))
			{
				early = true;
				break;
			}

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 100L, wait_index_job);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/* Our statement is being cancelled: cancel the build as well. */
		if (pid > 0 && GetBackgroundWorkerPid(handle, &pid) == BGWH_STARTED)
			kill(pid, SIGINT);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (early)
	{
		ereport(NOTICE,
				(errmsg("the index job is waiting for this transaction to end"),
				 errdetail("Job %lld, worker %d: a concurrent index build or drop waits for every older transaction, this one included.",
						   (long long) job_id, (int) pid),
				 errhint("It finishes in the background once this transaction ends; see moltres_ops.index_jobs.")));
		return (int) pid;
	}

	LWLockAcquire(jobs->lock, LW_SHARED);
	memcpy(&result, &jobs->slots[slotno], sizeof(IndexJob));
	LWLockRelease(jobs->lock);

	if (result.state == JOB_FAILED)
		ereport(ERROR,
				(errcode(result.sqlerrcode),
				 errmsg("%s", result.error),
				 result.detail[0] ? errdetail("%s", result.detail) : 0,
				 errcontext("moltres_ops index job %lld: %s",
							(long long) job_id, result.command)));
	return (int) pid;
}

/* Fill in who and where for a new job. */
static void
job_init(IndexJob *job)
{
	char	   *dbname;

	memset(job, 0, sizeof(IndexJob));
	job->dbid = MyDatabaseId;
	job->session_userid = GetSessionUserId();
	job->userid = GetUserId();
	strlcpy(job->username, GetUserNameFromId(job->userid, false), NAMEDATALEN);
	dbname = get_database_name(MyDatabaseId);
	strlcpy(job->datname, dbname ? dbname : "", NAMEDATALEN);

	for (int i = 0; i < NUM_PASSED_SETTINGS; i++)
	{
		const char *value = GetConfigOption(passed_settings[i], false, false);

		if (strlen(value) >= JOB_SETTING_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s is too long to pass to an index worker",
							passed_settings[i]),
					 errdetail("At most %d bytes are passed.", JOB_SETTING_MAX - 1)));
		strlcpy(job->settings[i], value, JOB_SETTING_MAX);
	}
}

static void
set_command(IndexJob *job, const char *sql)
{
	if (strlen(sql) >= JOB_COMMAND_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("index statement is too long"),
				 errdetail("The statement is %zu bytes; at most %d are allowed.",
						   strlen(sql), JOB_COMMAND_MAX - 1)));
	strlcpy(job->command, sql, JOB_COMMAND_MAX);
}

#define ARG_NOT_NULL(n, what) \
	do { \
		if (PG_ARGISNULL(n)) \
			ereport(ERROR, \
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
					 errmsg("%s must not be NULL", (what)))); \
	} while (0)

PG_FUNCTION_INFO_V1(moltres_ops_safe_create_index);

/*
 * moltres_ops_safe_create_index - CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT
 * EXISTS index_name ON table definition, in a background worker.  The
 * definition is the text after the table name; the whole statement must
 * parse as exactly one CREATE INDEX of that name on that table.
 */
Datum
moltres_ops_safe_create_index(PG_FUNCTION_ARGS)
{
	IndexJob	job;
	Name		index_name;
	Oid			relid;
	char	   *definition;
	char		relkind;
	char	   *nspname;
	char	   *relname;
	StringInfoData sql;
	List	   *parsed;
	IndexStmt  *stmt = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	mo_require_shmem();
	ARG_NOT_NULL(0, "index_name");
	ARG_NOT_NULL(1, "table");
	ARG_NOT_NULL(2, "definition");
	ARG_NOT_NULL(3, "wait");
	ARG_NOT_NULL(4, "timeout");
	ARG_NOT_NULL(5, "is_unique");

	index_name = PG_GETARG_NAME(0);
	relid = PG_GETARG_OID(1);
	definition = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (NameStr(*index_name)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("index_name must not be empty")));

	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table or materialized view",
						get_rel_name(relid))));

	nspname = get_namespace_name(get_rel_namespace(relid));
	relname = get_rel_name(relid);

	/*
	 * A table created in this transaction is invisible to the worker until
	 * we commit, and has no readers to protect anyway.
	 */
	{
		Relation	rel = RelationIdGetRelation(relid);
		bool		is_new = RelationIsValid(rel) &&
			rel->rd_createSubid != InvalidSubTransactionId;

		if (RelationIsValid(rel))
			RelationClose(rel);
		if (is_new)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" was created in this transaction", relname),
					 errhint("A new table has no readers to protect: use CREATE INDEX without CONCURRENTLY.")));
	}

	job_init(&job);
	job.relid = relid;
	job.is_unique = PG_GETARG_BOOL(5);
	job.timeout_ms = interval_ms(PG_GETARG_INTERVAL_P(4));
	strlcpy(job.index_name, NameStr(*index_name), NAMEDATALEN);

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %s ON %s %s",
					 job.is_unique ? "UNIQUE " : "",
					 quote_identifier(NameStr(*index_name)),
					 quote_qualified_identifier(nspname, relname),
					 definition);

	/*
	 * One statement, a CREATE INDEX of our name on our table: anything else
	 * means the definition carried more than an index definition.
	 */
	PG_TRY();
	{
		parsed = raw_parser(sql.data, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid index definition: %s", edata->message),
				 errdetail("The statement would be: %s", sql.data)));
		parsed = NIL;			/* keep the compiler quiet */
	}
	PG_END_TRY();

	if (list_length(parsed) == 1 &&
		IsA(linitial_node(RawStmt, parsed)->stmt, IndexStmt))
		stmt = (IndexStmt *) linitial_node(RawStmt, parsed)->stmt;
	if (stmt == NULL || !stmt->concurrent || !stmt->if_not_exists ||
		stmt->idxname == NULL || strcmp(stmt->idxname, NameStr(*index_name)) != 0 ||
		stmt->relation == NULL || stmt->relation->schemaname == NULL ||
		strcmp(stmt->relation->schemaname, nspname) != 0 ||
		strcmp(stmt->relation->relname, relname) != 0 ||
		stmt->unique != job.is_unique)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("definition must be a single index definition"),
				 errdetail("The statement would be: %s", sql.data),
				 errhint("Pass what follows \"ON table\", e.g. '(customer_id)' or 'USING btree (customer_id) WHERE deleted_at IS NULL'.")));

	set_command(&job, sql.data);
	PG_RETURN_INT32(run_job(&job, PG_GETARG_BOOL(3)));
}

PG_FUNCTION_INFO_V1(moltres_ops_safe_drop_index);

/*
 * moltres_ops_safe_drop_index - DROP INDEX CONCURRENTLY IF EXISTS, in a
 * background worker.
 */
Datum
moltres_ops_safe_drop_index(PG_FUNCTION_ARGS)
{
	IndexJob	job;
	Oid			indexid;
	char		relkind;
	StringInfoData sql;

	mo_require_shmem();
	ARG_NOT_NULL(0, "index");
	ARG_NOT_NULL(1, "wait");
	ARG_NOT_NULL(2, "timeout");

	indexid = PG_GETARG_OID(0);
	relkind = get_rel_relkind(indexid);
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index with OID %u does not exist", indexid)));
	if (relkind != RELKIND_INDEX && relkind != RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", get_rel_name(indexid))));

	job_init(&job);
	job.is_drop = true;
	job.indexid = indexid;
	job.relid = IndexGetRelation(indexid, false);
	job.timeout_ms = interval_ms(PG_GETARG_INTERVAL_P(2));
	strlcpy(job.index_name, get_rel_name(indexid), NAMEDATALEN);

	initStringInfo(&sql);
	appendStringInfo(&sql, "DROP INDEX CONCURRENTLY IF EXISTS %s",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(indexid)),
												get_rel_name(indexid)));
	set_command(&job, sql.data);
	PG_RETURN_INT32(run_job(&job, PG_GETARG_BOOL(1)));
}

/* ---------------------------------------------------------------------
 * Worker side
 * ---------------------------------------------------------------------
 */

/* Copy a finished job's outcome into our slot. */
static void
report(JobState state, int sqlerrcode, const char *error, const char *detail)
{
	IndexJob   *s = &jobs->slots[my_slot];

	LWLockAcquire(jobs->lock, LW_EXCLUSIVE);
	if (s->id == my_job_id)
	{
		s->state = state;
		s->sqlerrcode = sqlerrcode;
		strlcpy(s->error, error ? error : "", JOB_ERROR_MAX);
		strlcpy(s->detail, detail ? detail : "", JOB_ERROR_MAX);
		s->finished_at = GetCurrentTimestamp();
	}
	LWLockRelease(jobs->lock);
}

/*
 * worker_exit - before the worker's shared memory goes, make sure its job
 * does not stay "running": a FATAL (cannot connect, terminated) ends here.
 */
static void
worker_exit(int code, Datum arg)
{
	IndexJob   *s;

	if (my_slot < 0 || jobs == NULL)
		return;
	s = &jobs->slots[my_slot];
	LWLockAcquire(jobs->lock, LW_EXCLUSIVE);
	if (s->id == my_job_id && (s->state == JOB_STARTING || s->state == JOB_RUNNING))
	{
		s->state = JOB_FAILED;
		s->sqlerrcode = ERRCODE_ADMIN_SHUTDOWN;
		strlcpy(s->error, "the index worker exited before it finished; see the server log",
				JOB_ERROR_MAX);
		s->finished_at = GetCurrentTimestamp();
	}
	LWLockRelease(jobs->lock);
}

static void
set_timeout_guc(const char *name, int64 ms)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long) ms);
	SetConfigOption(name, buf, PGC_SUSET, PGC_S_SESSION);
}

/*
 * run_statement - run one utility statement top-level, the way
 * exec_simple_query does, inside the transaction the caller started.  A
 * CONCURRENTLY statement commits and starts transactions of its own.
 */
static void
run_statement(const char *sql)
{
	MemoryContext stmt_cxt;
	List	   *parsed;
	RawStmt    *raw;
	List	   *queries;
	List	   *plans;
	Portal		portal;
	DestReceiver *dest;
	QueryCompletion qc;

	/*
	 * The trees must outlive the transactions that the statement commits,
	 * as MessageContext does for exec_simple_query.  On an error the
	 * context stays until the worker exits, soon after.
	 */
	stmt_cxt = AllocSetContextCreate(TopMemoryContext, "moltres_ops index statement",
									 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(stmt_cxt);
	parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	raw = linitial_node(RawStmt, parsed);
	queries = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
	plans = pg_plan_queries(queries, sql, CURSOR_OPT_PARALLEL_OK, NULL);

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, CreateCommandTag(raw->stmt), plans, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	dest = CreateDestReceiver(DestNone);
	InitializeQueryCompletion(&qc);
	(void) mo_PortalRun(portal, FETCH_ALL, true, dest, dest, &qc);
	dest->rDestroy(dest);
	PortalDrop(portal, false);

	/* old may have gone with a transaction that the statement committed */
	MemoryContextSwitchTo(TopTransactionContext);
	MemoryContextDelete(stmt_cxt);
}

/*
 * check_owner - refuse, with the server's own message, before taking any
 * lock on a relation the role may not build or drop an index on; the
 * statement checks again itself.  A build needs the table's owner, a drop
 * the index's or its schema's.
 */
static void
check_owner(IndexJob *job)
{
	Oid			relid = job->is_drop ? job->indexid : job->relid;
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		return;					/* gone: the statement will say so */
	if (pg_class_ownercheck(relid, GetUserId()))
		return;
	if (job->is_drop &&
		pg_namespace_ownercheck(get_rel_namespace(relid), GetUserId()))
		return;
	aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind),
				   get_rel_name(relid));
}

/*
 * attempt - one try at the job's statement: the table's lock (and the
 * index's, for a drop) under the short lock_timeout, then the statement
 * with no lock_timeout and the rest of the job's timeout.  Returns false
 * when there was nothing to do (the index already exists and is valid, or
 * the index to drop is gone), with the reason in *note.
 */
static bool
attempt(IndexJob *job, int64 remaining_ms, const char *sql, const char **note)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	check_owner(job);
	set_timeout_guc("lock_timeout", JOB_LOCK_TIMEOUT_MS);
	LockRelationOid(job->relid, ShareUpdateExclusiveLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(job->relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table of the index no longer exists")));

	if (job->is_drop)
	{
		LockRelationOid(job->indexid, ShareUpdateExclusiveLock);
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(job->indexid)))
		{
			*note = "the index no longer exists";
			CommitTransactionCommand();
			return false;
		}
	}
	else
	{
		Oid			existing = get_relname_relid(job->index_name,
												 get_rel_namespace(job->relid));

		job->existed = OidIsValid(existing);
		if (OidIsValid(existing))
		{
			HeapTuple	tup;
			Form_pg_index idx;
			bool		valid;

			tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(existing));
			if (!HeapTupleIsValid(tup))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_TABLE),
						 errmsg("relation \"%s\" already exists and is not an index",
								job->index_name)));
			idx = (Form_pg_index) GETSTRUCT(tup);
			if (idx->indrelid != job->relid)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_TABLE),
						 errmsg("index \"%s\" already exists on another table",
								job->index_name)));
			valid = idx->indisvalid;
			ReleaseSysCache(tup);
			if (!valid)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("index \"%s\" already exists but is invalid",
								job->index_name),
						 errhint("A failed or running concurrent build left it; drop it with moltres_ops.safe_drop_index() and retry.")));
			*note = "the index already exists";
			CommitTransactionCommand();
			return false;
		}
	}

	set_timeout_guc("lock_timeout", 0);
	if (remaining_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(remaining_ms, INT_MAX));
	pgstat_report_activity(STATE_RUNNING, sql);
	run_statement(sql);
	disable_timeout(STATEMENT_TIMEOUT, false);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}

/*
 * run_with_retries - attempt() until it succeeds, fails with anything but
 * a lock timeout, or runs out of tries or time.  Returns NULL on success,
 * else the error (allocated in cxt).
 */
static ErrorData *
run_with_retries(IndexJob *job, const char *sql, TimestampTz deadline,
				 MemoryContext cxt, const char **note, bool count_attempts)
{
	if (wait_lock_retry == 0)
		wait_lock_retry = mo_wait_event("MoltresIndexLockRetry");
	for (int n = 1;; n++)
	{
		ErrorData  *edata = NULL;
		int64		remaining_ms = 0;

		if (deadline != 0)
		{
			remaining_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (remaining_ms <= 0)
				remaining_ms = 1;
		}
		if (count_attempts)
		{
			LWLockAcquire(jobs->lock, LW_EXCLUSIVE);
			if (jobs->slots[my_slot].id == my_job_id)
				jobs->slots[my_slot].attempts = n;
			LWLockRelease(jobs->lock);
		}

		PG_TRY();
		{
			(void) attempt(job, remaining_ms, sql, note);
		}
		PG_CATCH();
		{
			edata = mo_worker_recover(cxt);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(cxt);

		if (edata == NULL)
			return NULL;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE || n >= JOB_LOCK_ATTEMPTS ||
			(deadline != 0 && GetCurrentTimestamp() >= deadline))
			return edata;

		/* back off 0.5 s, 1 s, 2 s, ... before the next try */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 500L << (n - 1), wait_lock_retry);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * cleanup_invalid - after a failed build, drop the invalid index it left,
 * if one of that name on that table exists now and did not before.
 * Returns a sentence for the job's detail.
 */
static const char *
cleanup_invalid(IndexJob *job, MemoryContext cxt)
{
	Oid			leftover = InvalidOid;
	bool		invalid = false;
	char	   *qualified = NULL;
	IndexJob	drop;
	ErrorData  *edata;
	const char *note = NULL;

	if (job->existed)
		return NULL;			/* not ours to drop */

	StartTransactionCommand();
	leftover = get_relname_relid(job->index_name, get_rel_namespace(job->relid));
	if (OidIsValid(leftover))
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(leftover));

		if (HeapTupleIsValid(tup))
		{
			Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);

			invalid = (idx->indrelid == job->relid && !idx->indisvalid);
			ReleaseSysCache(tup);
		}
		if (invalid)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			qualified = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
								 quote_qualified_identifier(get_namespace_name(get_rel_namespace(leftover)),
															job->index_name));
			MemoryContextSwitchTo(old);
		}
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	if (!invalid)
		return NULL;

	memcpy(&drop, job, sizeof(IndexJob));
	drop.is_drop = true;
	drop.indexid = leftover;
	edata = run_with_retries(&drop, qualified, 0, cxt, &note, false);
	if (edata == NULL)
		return psprintf("The invalid index \"%s\" that the failed build left was dropped.",
						job->index_name);
	return psprintf("The invalid index \"%s\" that the failed build left could not be dropped: %s",
					job->index_name, edata->message);
}

/*
 * mo_index_worker_main - entry point of an index worker.  main_arg is the
 * slot number; bgw_extra holds the job id, so that a worker started for a
 * slot that has since been reused does nothing.
 */
void
mo_index_worker_main(Datum main_arg)
{
	IndexJob	job;
	MemoryContext cxt;
	TimestampTz deadline = 0;
	ErrorData  *edata;
	const char *note = NULL;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	my_slot = DatumGetInt32(main_arg);
	memcpy(&my_job_id, MyBgworkerEntry->bgw_extra, sizeof(my_job_id));
	if (jobs == NULL || my_slot < 0 || my_slot >= INDEX_JOB_SLOTS)
		proc_exit(0);

	LWLockAcquire(jobs->lock, LW_EXCLUSIVE);
	if (jobs->slots[my_slot].id != my_job_id ||
		jobs->slots[my_slot].state != JOB_STARTING)
	{
		LWLockRelease(jobs->lock);
		proc_exit(0);
	}
	jobs->slots[my_slot].state = JOB_RUNNING;
	jobs->slots[my_slot].pid = MyProcPid;
	memcpy(&job, &jobs->slots[my_slot], sizeof(IndexJob));
	LWLockRelease(jobs->lock);

	before_shmem_exit(worker_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(job.dbid, job.session_userid, 0);
	SetConfigOption("application_name", "moltres_ops index worker",
					PGC_USERSET, PGC_S_SESSION);
	for (int i = 0; i < NUM_PASSED_SETTINGS; i++)
		SetConfigOption(passed_settings[i], job.settings[i],
						PGC_USERSET, PGC_S_SESSION);

	/* Take the caller's current role, as SET ROLE would. */
	if (job.userid != job.session_userid)
	{
		bool		is_super;

		StartTransactionCommand();
		is_super = superuser_arg(job.userid);
		CommitTransactionCommand();
		SetCurrentRoleId(job.userid, is_super);
	}

	cxt = AllocSetContextCreate(TopMemoryContext, "moltres_ops index worker",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);
	if (job.timeout_ms > 0)
		deadline = TimestampTzPlusMilliseconds(job.started_at, job.timeout_ms);

	edata = run_with_retries(&job, job.command, deadline, cxt, &note, true);
	if (edata == NULL)
		report(JOB_DONE, 0, NULL, note);
	else
	{
		const char *cleaned = NULL;
		StringInfoData detail;

		if (!job.is_drop)
			cleaned = cleanup_invalid(&job, cxt);
		initStringInfo(&detail);
		if (edata->detail)
			appendStringInfoString(&detail, edata->detail);
		if (cleaned)
			appendStringInfo(&detail, "%s%s", detail.len > 0 ? "\n" : "", cleaned);
		report(JOB_FAILED, edata->sqlerrcode, edata->message, detail.data);
		ereport(LOG,
				(errmsg("moltres_ops index job %lld failed: %s",
						(long long) my_job_id, edata->message),
				 detail.len > 0 ? errdetail("%s", detail.data) : 0));
	}
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * The index_jobs view
 * ---------------------------------------------------------------------
 */

static const char *
state_name(JobState s)
{
	switch (s)
	{
		case JOB_STARTING:
			return "starting";
		case JOB_RUNNING:
			return "running";
		case JOB_DONE:
			return "done";
		case JOB_FAILED:
			return "failed";
		default:
			return "free";
	}
}

PG_FUNCTION_INFO_V1(moltres_ops_index_jobs);

/*
 * moltres_ops_index_jobs - the job slots, newest first.  Other roles' jobs
 * only for superusers and pg_read_all_stats members.
 */
Datum
moltres_ops_index_jobs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			me = GetUserId();
	bool		see_all = superuser() || has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
	IndexJob   *copy;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(jobs->slots));
	LWLockAcquire(jobs->lock, LW_SHARED);
	memcpy(copy, jobs->slots, sizeof(jobs->slots));
	LWLockRelease(jobs->lock);

	for (int i = 0; i < INDEX_JOB_SLOTS; i++)
	{
		IndexJob   *j = &copy[i];
		Datum		values[12];
		bool		nulls[12] = {0};

		if (j->state == JOB_FREE || (!see_all && j->userid != me))
			continue;
		values[0] = Int64GetDatum(j->id);
		values[1] = Int32GetDatum(j->pid);
		nulls[1] = (j->pid == 0);
		values[2] = DirectFunctionCall1(namein, CStringGetDatum(j->username));
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(j->datname));
		values[4] = CStringGetTextDatum(j->command);
		values[5] = CStringGetTextDatum(state_name(j->state));
		values[6] = Int32GetDatum(j->attempts);
		values[7] = TimestampTzGetDatum(j->started_at);
		values[8] = TimestampTzGetDatum(j->finished_at);
		nulls[8] = (j->finished_at == 0);
		values[9] = CStringGetTextDatum(unpack_sql_state(j->sqlerrcode));
		nulls[9] = (j->sqlerrcode == 0);
		values[10] = CStringGetTextDatum(j->error);
		nulls[10] = (j->error[0] == '\0');
		values[11] = CStringGetTextDatum(j->detail);
		nulls[11] = (j->detail[0] == '\0');
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
	return (Datum) 0;
}
