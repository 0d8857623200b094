/*-------------------------------------------------------------------------
 *
 * health_worker.c
 *	  The health worker: a background worker that evaluates the health
 *	  checks every moltres_ops.health_interval, keeps each check's status
 *	  and since-when in shared memory with a bounded history of status
 *	  changes, and applies moltres_ops.health_for, so that health() reads
 *	  state instead of recomputing it, and a threshold can carry a duration
 *	  ("critical when lag > 60 s for 1 min").
 *
 * The checks themselves are SQL (moltres_ops.health_evaluate(), in
 * sql/install/60_health.sql).  The worker connects to
 * moltres_ops.health_database as the bootstrap superuser and runs that
 * function through SPI, in a transaction of its own, with jit off, a
 * statement_timeout and a lock_timeout of its own, so that it can never
 * pile up behind a lock; its statements are not tracked by moltres_ops.
 * Only reads: it runs on hot standbys too (start at consistent state).
 *
 * Durations: for each check the worker keeps when it last became "warn or
 * worse" and "critical" (level_since).  The status health() reports is the
 * highest level held without a break for moltres_ops.health_for; a return
 * to a lower level is reported at once.  Every change of that status goes
 * into a ring of moltres_ops.health_history_size transitions.
 *
 * Persistence: after an evaluation that changed a status or a level_since,
 * the worker writes checks and history to HEALTH_FILE (temporary file, then
 * durable_rename); the postmaster reads it back when it creates the area,
 * at start and after a crash, so since-when, pending durations and the
 * history survive restarts and crashes.
 *
 * Shared state and locking: one struct (the "moltres_ops health" area) and
 * one LWLock.  The worker takes it exclusively to store an evaluation and
 * its own pid; readers (health(), health_history, health_worker) take it
 * shared and copy.  Nobody raises an error or does I/O while holding it.
 * Runs in the postmaster (area creation, file load), the health worker,
 * and backends (the SQL functions).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "moltres_ops.h"
#include "shmem.h"

#define HEALTH_AREA				"health"
#define HEALTH_MAX_CHECKS		48
#define HEALTH_NAME_LEN			64
#define HEALTH_DETAIL_LEN		512
#define HEALTH_HIST_DETAIL_LEN	256
#define HEALTH_ERROR_LEN		256
#define HEALTH_STATEMENT_TIMEOUT_MS 5000
#define HEALTH_LOCK_TIMEOUT_MS	1000
#define HEALTH_RESTART_S		60

#define HEALTH_FILE				"pg_stat/moltres_ops_health.stat"
#define HEALTH_FILE_TMP			HEALTH_FILE ".tmp"
#define HEALTH_FILE_MAGIC		0x4d4f4831	/* "MOH1" */

/* Status levels, in order of gravity. */
#define LEVEL_OK		0
#define LEVEL_WARN		1
#define LEVEL_CRITICAL	2

static const char *const level_names[] = {"ok", "warn", "critical"};

typedef struct HealthCheck
{
	char		name[HEALTH_NAME_LEN];
	int			status;			/* reported level, after health_for */
	int			raw;			/* level of the latest evaluation */
	TimestampTz since;			/* when status took its value */
	TimestampTz level_since[3]; /* [L]: raw >= L without a break since; 0 if
								 * not */
	TimestampTz checked_at;
	uint64		generation;		/* evaluation that last returned it */
	bool		value_isnull;
	bool		threshold_isnull;
	double		value;
	double		threshold;
	char		detail[HEALTH_DETAIL_LEN];
} HealthCheck;

typedef struct HealthTransition
{
	char		name[HEALTH_NAME_LEN];
	int			from;
	int			to;
	TimestampTz at;
	bool		value_isnull;
	double		value;
	char		detail[HEALTH_HIST_DETAIL_LEN];
} HealthTransition;

typedef struct HealthShared
{
	LWLock	   *lock;
	pid_t		pid;			/* worker, 0 when none */
	TimestampTz worker_started;
	TimestampTz last_run;		/* end of the last successful evaluation */
	int64		last_duration_us;
	uint64		generation;		/* successful evaluations */
	uint64		failures;
	TimestampTz last_error_at;
	char		last_error[HEALTH_ERROR_LEN];
	int			nchecks;
	HealthCheck checks[HEALTH_MAX_CHECKS];
	int			history_size;
	uint64		history_next;	/* transitions ever stored; slot = n % size */
	HealthTransition history[FLEXIBLE_ARRAY_MEMBER];
} HealthShared;

/* What the file holds after its header: checks, then transitions, oldest first. */
typedef struct HealthFileHeader
{
	uint32		magic;
	uint32		check_size;
	uint32		transition_size;
	int32		nchecks;
	int32		ntransitions;
} HealthFileHeader;

/* One row of health_evaluate(), as the worker reads it. */
typedef struct EvalRow
{
	char		name[HEALTH_NAME_LEN];
	int			level;
	bool		value_isnull;
	bool		threshold_isnull;
	double		value;
	double		threshold;
	char		detail[HEALTH_DETAIL_LEN];
} EvalRow;

static HealthShared *hs = NULL;

PGDLLEXPORT void mo_health_worker_main(Datum main_arg);

static Size
health_shmem_size(void)
{
	return add_size(offsetof(HealthShared, history),
					mul_size(sizeof(HealthTransition), mo_health_history_size));
}

static void health_load_file(void);

static void
health_shmem_startup(void *area, bool found)
{
	hs = (HealthShared *) area;
	if (found)
		return;
	memset(hs, 0, health_shmem_size());
	hs->lock = &(mo_shmem_locks(HEALTH_AREA)[0].lock);
	hs->history_size = mo_health_history_size;

	/* The postmaster owns the file at start and after a crash. */
	if (!IsUnderPostmaster)
		health_load_file();
}

/*
 * mo_health_worker_init - register the area and the worker; called from
 * _PG_init while the library is preloaded.
 */
void
mo_health_worker_init(void)
{
	BackgroundWorker worker;

	mo_shmem_register(HEALTH_AREA, health_shmem_size, health_shmem_startup, 1);

	mo_worker_describe(&worker, "mo_health_worker_main", "moltres_ops health worker",
					   BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION,
					   BgWorkerStart_ConsistentState, HEALTH_RESTART_S);
	RegisterBackgroundWorker(&worker);
}

/* ---------- persistence ---------- */

static void
history_append(const HealthTransition *t)
{
	if (hs->history_size <= 0)
		return;
	hs->history[hs->history_next % hs->history_size] = *t;
	hs->history_next++;
}

/* Number of transitions held, and the index of the oldest. */
static int
history_count(uint64 *first)
{
	uint64		n;

	if (hs->history_size <= 0)
	{
		*first = 0;
		return 0;
	}
	n = Min(hs->history_next, (uint64) hs->history_size);
	*first = hs->history_next - n;
	return (int) n;
}

/*
 * health_write_file - save checks and history (worker, after a change).  The
 * state is copied under the lock, written outside it.
 */
static void
health_write_file(void)
{
	HealthFileHeader hdr;
	HealthCheck *checks;
	HealthTransition *trans;
	uint64		first;
	FILE	   *f;
	pg_crc32c	crc;
	bool		ok = false;

	checks = palloc(sizeof(HealthCheck) * HEALTH_MAX_CHECKS);
	trans = palloc(sizeof(HealthTransition) * Max(hs->history_size, 1));

	LWLockAcquire(hs->lock, LW_SHARED);
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = HEALTH_FILE_MAGIC;
	hdr.check_size = sizeof(HealthCheck);
	hdr.transition_size = sizeof(HealthTransition);
	hdr.nchecks = hs->nchecks;
	memcpy(checks, hs->checks, sizeof(HealthCheck) * hs->nchecks);
	hdr.ntransitions = history_count(&first);
	for (int i = 0; i < hdr.ntransitions; i++)
		trans[i] = hs->history[(first + i) % hs->history_size];
	LWLockRelease(hs->lock);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &hdr, sizeof(hdr));
	COMP_CRC32C(crc, checks, sizeof(HealthCheck) * hdr.nchecks);
	COMP_CRC32C(crc, trans, sizeof(HealthTransition) * hdr.ntransitions);
	FIN_CRC32C(crc);

	f = AllocateFile(HEALTH_FILE_TMP, PG_BINARY_W);
	if (f != NULL)
	{
		ok = fwrite(&hdr, sizeof(hdr), 1, f) == 1 &&
			(hdr.nchecks == 0 ||
			 fwrite(checks, sizeof(HealthCheck), hdr.nchecks, f) == (size_t) hdr.nchecks) &&
			(hdr.ntransitions == 0 ||
			 fwrite(trans, sizeof(HealthTransition), hdr.ntransitions, f) == (size_t) hdr.ntransitions) &&
			fwrite(&crc, sizeof(crc), 1, f) == 1;
		if (FreeFile(f) != 0)
			ok = false;
	}
	if (!ok)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not write moltres_ops health file \"%s\": %m",
						HEALTH_FILE_TMP)));
		unlink(HEALTH_FILE_TMP);
	}
	else
		(void) durable_rename(HEALTH_FILE_TMP, HEALTH_FILE, LOG);

	pfree(checks);
	pfree(trans);
}

/*
 * health_load_file - read HEALTH_FILE into the fresh area (postmaster, no
 * other process attached yet).  A file that does not check out whole
 * (magic, layout, CRC) is ignored.
 */
static void
health_load_file(void)
{
	FILE	   *f;
	HealthFileHeader hdr;
	HealthCheck *checks = NULL;
	HealthTransition *trans = NULL;
	pg_crc32c	crc;
	pg_crc32c	stored;
	const char *why = NULL;

	f = AllocateFile(HEALTH_FILE, PG_BINARY_R);
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read moltres_ops health file \"%s\": %m",
							HEALTH_FILE)));
		return;
	}
	if (fread(&hdr, sizeof(hdr), 1, f) != 1 || hdr.magic != HEALTH_FILE_MAGIC ||
		hdr.check_size != sizeof(HealthCheck) ||
		hdr.transition_size != sizeof(HealthTransition) ||
		hdr.nchecks < 0 || hdr.nchecks > HEALTH_MAX_CHECKS ||
		hdr.ntransitions < 0 || hdr.ntransitions > 100000)
		why = "not a health file of this version";
	else
	{
		checks = palloc(sizeof(HealthCheck) * Max(hdr.nchecks, 1));
		trans = palloc(sizeof(HealthTransition) * Max(hdr.ntransitions, 1));
		if ((hdr.nchecks > 0 &&
			 fread(checks, sizeof(HealthCheck), hdr.nchecks, f) != (size_t) hdr.nchecks) ||
			(hdr.ntransitions > 0 &&
			 fread(trans, sizeof(HealthTransition), hdr.ntransitions, f) != (size_t) hdr.ntransitions) ||
			fread(&stored, sizeof(stored), 1, f) != 1)
			why = "it is truncated";
		else
		{
			INIT_CRC32C(crc);
			COMP_CRC32C(crc, &hdr, sizeof(hdr));
			COMP_CRC32C(crc, checks, sizeof(HealthCheck) * hdr.nchecks);
			COMP_CRC32C(crc, trans, sizeof(HealthTransition) * hdr.ntransitions);
			FIN_CRC32C(crc);
			if (!EQ_CRC32C(crc, stored))
				why = "its checksum does not match";
		}
	}
	FreeFile(f);

	if (why != NULL)
		ereport(LOG,
				(errmsg("ignoring moltres_ops health file \"%s\": %s",
						HEALTH_FILE, why)));
	else
	{
		hs->nchecks = hdr.nchecks;
		for (int i = 0; i < hdr.nchecks; i++)
		{
			hs->checks[i] = checks[i];
			hs->checks[i].name[HEALTH_NAME_LEN - 1] = '\0';
			hs->checks[i].detail[HEALTH_DETAIL_LEN - 1] = '\0';
			hs->checks[i].generation = 0;
		}
		for (int i = 0; i < hdr.ntransitions; i++)
			history_append(&trans[i]);
	}
	if (checks)
		pfree(checks);
	if (trans)
		pfree(trans);
}

/* ---------- evaluation ---------- */

static int
level_of(const char *status)
{
	if (strcmp(status, "ok") == 0)
		return LEVEL_OK;
	if (strcmp(status, "critical") == 0)
		return LEVEL_CRITICAL;
	return LEVEL_WARN;			/* "warn", or anything unexpected */
}

static void
copy_text(char *dst, Size dstlen, HeapTuple tup, TupleDesc desc, int col)
{
	char	   *s = SPI_getvalue(tup, desc, col);
	int			len;

	if (s == NULL)
	{
		dst[0] = '\0';
		return;
	}
	/* never cut a multibyte character in half */
	len = pg_mbcliplen(s, strlen(s), dstlen - 1);
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static double
get_float(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? 0.0 : DatumGetFloat8(d);
}

/*
 * run_checks - one evaluation: find the extension's schema, run
 * health_evaluate() there, copy its rows into *rows.  Raises on failure
 * (the caller catches, in the worker's own loop).  The rows are allocated
 * in cxt.
 */
static int
run_checks(EvalRow **rows, MemoryContext cxt)
{
	int			ret;
	int			n = 0;
	char	   *schema;
	char	   *sql;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "moltres_ops health checks");
	enable_timeout_after(STATEMENT_TIMEOUT, HEALTH_STATEMENT_TIMEOUT_MS);

	ret = SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e "
					  "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
					  "WHERE e.extname = '" MO_EXTNAME "'", true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"%s\" is not installed in database \"%s\"",
						MO_EXTNAME, mo_health_database),
				 errhint("Run CREATE EXTENSION %s there, or set moltres_ops.health_database to a database that has it.",
						 MO_EXTNAME)));
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	sql = psprintf("SELECT name, status, value, threshold, detail FROM %s.health_evaluate()",
				   quote_identifier(schema));

	ret = SPI_execute(sql, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));

	*rows = MemoryContextAllocZero(cxt, sizeof(EvalRow) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed && n < HEALTH_MAX_CHECKS; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		EvalRow    *r = &(*rows)[n];
		char		status[16];

		copy_text(r->name, sizeof(r->name), tup, desc, 1);
		if (r->name[0] == '\0')
			continue;
		copy_text(status, sizeof(status), tup, desc, 2);
		r->level = level_of(status);
		r->value = get_float(tup, desc, 3, &r->value_isnull);
		r->threshold = get_float(tup, desc, 4, &r->threshold_isnull);
		copy_text(r->detail, sizeof(r->detail), tup, desc, 5);
		n++;
	}

	disable_timeout(STATEMENT_TIMEOUT, false);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return n;
}

/*
 * store_results - fold one evaluation into the shared state: durations,
 * reported status, transitions.  Returns whether anything that the file
 * keeps changed.
 */
static bool
store_results(EvalRow *rows, int n, TimestampTz started)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		for_us = (int64) mo_health_for_s * USECS_PER_SEC;
	bool		changed = false;

	LWLockAcquire(hs->lock, LW_EXCLUSIVE);
	hs->generation++;
	for (int i = 0; i < n; i++)
	{
		EvalRow    *r = &rows[i];
		HealthCheck *c = NULL;
		int			level = LEVEL_OK;

		for (int j = 0; j < hs->nchecks; j++)
			if (strcmp(hs->checks[j].name, r->name) == 0)
			{
				c = &hs->checks[j];
				break;
			}
		if (c == NULL)
		{
			if (hs->nchecks >= HEALTH_MAX_CHECKS)
				continue;
			c = &hs->checks[hs->nchecks++];
			memset(c, 0, sizeof(HealthCheck));
			strlcpy(c->name, r->name, sizeof(c->name));
			c->status = LEVEL_OK;
			c->since = now;
			changed = true;
		}

		for (int l = LEVEL_WARN; l <= LEVEL_CRITICAL; l++)
		{
			if (r->level >= l && c->level_since[l] == 0)
			{
				c->level_since[l] = now;
				changed = true;
			}
			else if (r->level < l && c->level_since[l] != 0)
			{
				c->level_since[l] = 0;
				changed = true;
			}
		}
		for (int l = LEVEL_CRITICAL; l >= LEVEL_WARN; l--)
			if (r->level >= l && now - c->level_since[l] >= for_us)
			{
				level = l;
				break;
			}

		c->raw = r->level;
		c->value = r->value;
		c->value_isnull = r->value_isnull;
		c->threshold = r->threshold;
		c->threshold_isnull = r->threshold_isnull;
		memcpy(c->detail, r->detail, sizeof(c->detail));
		c->checked_at = now;
		c->generation = hs->generation;

		if (level != c->status)
		{
			HealthTransition t;
			int			len;

			memset(&t, 0, sizeof(t));
			strlcpy(t.name, c->name, sizeof(t.name));
			t.from = c->status;
			t.to = level;
			t.at = now;
			t.value = r->value;
			t.value_isnull = r->value_isnull;
			len = pg_mbcliplen(r->detail, strlen(r->detail), sizeof(t.detail) - 1);
			memcpy(t.detail, r->detail, len);
			history_append(&t);
			c->status = level;
			c->since = now;
			changed = true;
		}
	}
	hs->last_run = now;
	hs->last_duration_us = now - started;
	hs->last_error[0] = '\0';
	LWLockRelease(hs->lock);
	return changed;
}

static void
record_failure(const char *message)
{
	LWLockAcquire(hs->lock, LW_EXCLUSIVE);
	hs->failures++;
	hs->last_error_at = GetCurrentTimestamp();
	strlcpy(hs->last_error, message, sizeof(hs->last_error));
	LWLockRelease(hs->lock);
}

static void
worker_exit(int code, Datum arg)
{
	LWLockAcquire(hs->lock, LW_EXCLUSIVE);
	if (hs->pid == MyProcPid)
		hs->pid = 0;
	LWLockRelease(hs->lock);
}

/*
 * evaluate_once - run the checks and store them; an error of the worker's
 * own statements is logged (once per distinct message) and kept for the
 * health_worker view, and the previous state stays.
 */
static void
evaluate_once(MemoryContext cxt)
{
	TimestampTz started = GetCurrentTimestamp();
	EvalRow    *rows = NULL;
	int			n = 0;
	ErrorData  *edata = NULL;

	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		n = run_checks(&rows, cxt);
	}
	PG_CATCH();
	{
		edata = mo_worker_recover(cxt);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);

	if (edata != NULL)
	{
		bool		repeated;

		LWLockAcquire(hs->lock, LW_SHARED);
		repeated = strncmp(hs->last_error, edata->message, HEALTH_ERROR_LEN - 1) == 0;
		LWLockRelease(hs->lock);
		if (!repeated)
			ereport(LOG,
					(errmsg("moltres_ops health checks failed: %s", edata->message),
					 edata->hint ? errhint("%s", edata->hint) : 0));
		record_failure(edata->message);
		FreeErrorData(edata);
	}
	else if (store_results(rows, n, started))
		health_write_file();

	MemoryContextReset(cxt);
}

/*
 * mo_health_worker_main - entry point of the health worker.
 */
void
mo_health_worker_main(Datum main_arg)
{
	MemoryContext cxt;
	char		buf[32];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (hs == NULL)
		proc_exit(0);

	LWLockAcquire(hs->lock, LW_EXCLUSIVE);
	hs->pid = MyProcPid;
	hs->worker_started = GetCurrentTimestamp();
	LWLockRelease(hs->lock);
	before_shmem_exit(worker_exit, (Datum) 0);

	BackgroundWorkerInitializeConnection(mo_health_database, NULL, 0);

	/*
	 * The worker's own statements: not tracked, not logged as slow, no JIT,
	 * never waiting long for a lock (statement_timeout is armed by hand
	 * around each evaluation, as no client protocol does it here).
	 */
	SetConfigOption("application_name", "moltres_ops health worker",
					PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("moltres_ops.track", "none", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("moltres_ops.slow_query_ms", "-1", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	snprintf(buf, sizeof(buf), "%d", HEALTH_LOCK_TIMEOUT_MS);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);

	cxt = AllocSetContextCreate(TopMemoryContext, "moltres_ops health worker",
								ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TimestampTz start = GetCurrentTimestamp();
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		evaluate_once(cxt);

		/* the next evaluation one interval after this one started */
		wait_ms = (long) mo_health_interval_s * 1000L -
			(long) TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (wait_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/* ---------- SQL entry points ---------- */

static void
require_area(void)
{
	mo_require_shmem();
	if (hs == NULL)
		elog(ERROR, "moltres_ops health area is not attached");
}

PG_FUNCTION_INFO_V1(moltres_ops_health_state);

/*
 * moltres_ops_health_state - the checks of the latest evaluation: name,
 * status, value, threshold, detail, since, pending, pending_since,
 * checked_at.  Empty until the worker has evaluated once.
 */
Datum
moltres_ops_health_state(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HealthCheck *copy;
	int			n = 0;
	uint64		generation;

	require_area();
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(HealthCheck) * HEALTH_MAX_CHECKS);
	LWLockAcquire(hs->lock, LW_SHARED);
	generation = hs->generation;
	for (int i = 0; i < hs->nchecks; i++)
		if (generation > 0 && hs->checks[i].generation == generation)
			copy[n++] = hs->checks[i];
	LWLockRelease(hs->lock);

	for (int i = 0; i < n; i++)
	{
		HealthCheck *c = &copy[i];
		Datum		values[9];
		bool		nulls[9] = {0};

		values[0] = CStringGetTextDatum(c->name);
		values[1] = CStringGetTextDatum(level_names[c->status]);
		values[2] = Float8GetDatum(c->value);
		nulls[2] = c->value_isnull;
		values[3] = Float8GetDatum(c->threshold);
		nulls[3] = c->threshold_isnull;
		values[4] = CStringGetTextDatum(c->detail);
		values[5] = TimestampTzGetDatum(c->since);
		if (c->raw > c->status)
		{
			values[6] = CStringGetTextDatum(level_names[c->raw]);
			values[7] = TimestampTzGetDatum(c->level_since[c->raw]);
		}
		else
			nulls[6] = nulls[7] = true;
		values[8] = TimestampTzGetDatum(c->checked_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_health_history);

/*
 * moltres_ops_health_history - the kept status changes, oldest first.
 */
Datum
moltres_ops_health_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HealthTransition *copy;
	uint64		first;
	int			n;

	require_area();
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(HealthTransition) * Max(hs->history_size, 1));
	LWLockAcquire(hs->lock, LW_SHARED);
	n = history_count(&first);
	for (int i = 0; i < n; i++)
		copy[i] = hs->history[(first + i) % hs->history_size];
	LWLockRelease(hs->lock);

	for (int i = 0; i < n; i++)
	{
		HealthTransition *t = &copy[i];
		Datum		values[6];
		bool		nulls[6] = {0};

		values[0] = CStringGetTextDatum(t->name);
		values[1] = CStringGetTextDatum(level_names[t->from]);
		values[2] = CStringGetTextDatum(level_names[t->to]);
		values[3] = TimestampTzGetDatum(t->at);
		values[4] = Float8GetDatum(t->value);
		nulls[4] = t->value_isnull;
		values[5] = CStringGetTextDatum(t->detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_health_worker);

/*
 * moltres_ops_health_worker - one row about the worker: pid (NULL when not
 * running), database, when it started, the last successful evaluation and
 * its duration, counts of evaluations and failures, the last error.
 */
Datum
moltres_ops_health_worker(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {0};
	HealthShared copy;

	require_area();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(hs->lock, LW_SHARED);
	memcpy(&copy, hs, offsetof(HealthShared, checks));
	LWLockRelease(hs->lock);

	values[0] = Int32GetDatum(copy.pid);
	nulls[0] = copy.pid == 0;
	values[1] = CStringGetTextDatum(mo_health_database);
	values[2] = TimestampTzGetDatum(copy.worker_started);
	nulls[2] = copy.worker_started == 0;
	values[3] = TimestampTzGetDatum(copy.last_run);
	nulls[3] = copy.last_run == 0;
	values[4] = Float8GetDatum((double) copy.last_duration_us / 1000.0);
	nulls[4] = copy.last_run == 0;
	values[5] = Int64GetDatum((int64) copy.generation);
	values[6] = Int64GetDatum((int64) copy.failures);
	values[7] = CStringGetTextDatum(copy.last_error);
	nulls[7] = copy.last_error[0] == '\0';
	values[8] = TimestampTzGetDatum(copy.last_error_at);
	nulls[8] = copy.last_error_at == 0;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
