/*-------------------------------------------------------------------------
 *
 * wait_sampler.c
 *	  Where the time goes: a background worker samples, every
 *	  moltres_ops.sample_interval, what every active backend is waiting for
 *	  (or that it is on CPU) and which statement it is running, and keeps
 *	  per-statement wait profiles (query_waits), cumulative wait time per
 *	  database (db_waits), the load as average active sessions by wait
 *	  class over 1, 5 and 15 minutes (db_load), and a ring of raw samples
 *	  (session_history).
 *
 * Attribution: the executor hooks publish, in a per-backend slot indexed
 * by PGPROC number (waits.h), the top-level statement and the innermost
 * nested one that the backend is executing, with plain stores and no lock.
 * The sampler reads, without a lock, each backend's PGPROC (pid, database,
 * wait_event_info), its entry of the core's backend status array (state)
 * and the slot.  A backend counts when its state is active (or fastpath);
 * (a wait of class Activity, a process idle in its main loop such as a
 * streaming walsender, is not); its sample goes to its database, to the
 * top-level statement's entry
 * (toplevel = true) and, when a nested statement runs, to that statement's
 * entry (toplevel = false) too.  Between two statements of an autocommit
 * transaction the waits for the commit's WAL flush and synchronous
 * replication are charged to the statement that just ended.
 *
 * Weights: each sample stands for the time since the previous one (capped
 * at one second), so "seconds" estimate wall-clock time even when the
 * sampler falls behind its interval on a busy machine; "samples" count
 * what was actually observed.
 *
 * Shared state and locking: one area, "waits", with one LWLock.
 *	- slots[]: written only by their own backend, read by the sampler; no
 *	  lock (a slot names the pid that last attached to it).
 *	- the wait table (open addressing, insert only, emptied by
 *	  reset_waits()), the load rings and the sampler's counters: written
 *	  only by the sampler, with the LWLock held exclusively once per
 *	  sample; readers take it shared and copy.
 * The raw samples are a MoRing (ring.c) in the area "session_history",
 * with its own lock.  Nobody raises an error while holding either lock.
 *
 * Processes: the sampler (a static background worker, restarted by the
 * postmaster after a crash, running on primaries and hot standbys) writes;
 * every backend writes its own slot and reads the views; the postmaster
 * initialises.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "moltres_ops.h"
#include "ring.h"
#include "shmem.h"
#include "waits.h"

#define WAITS_AREA			"waits"
#define HISTORY_AREA		"session_history"
#define MO_WAIT_NCLASSES	12	/* 0 = CPU, then PG_WAIT_* >> 24 */
#define MO_LOAD_SLOT_SECS	15
#define MO_LOAD_NSLOTS		64
#define MO_LOAD_MAX_DBS		32
#define MO_MAX_WEIGHT_US	INT64CONST(1000000)
#define NS_PER_SEC			INT64CONST(1000000000)

/* Kinds of rows of the wait table. */
#define KIND_TOP			0	/* a top-level statement */
#define KIND_NESTED			1	/* a nested statement */
#define KIND_DB				2	/* a database as a whole */

typedef struct MoWaitKey
{
	Oid			userid;			/* 0 for KIND_DB */
	Oid			dbid;
	uint64		queryid;		/* 0 for KIND_DB */
	uint32		wait;			/* wait_event_info; 0 = on CPU */
	uint32		kind;
} MoWaitKey;

typedef struct MoWaitEntry
{
	MoWaitKey	key;
	bool		used;
	uint64		samples;
	uint64		us;				/* estimated microseconds */
} MoWaitEntry;

typedef struct MoLoadSlot
{
	uint64		epoch;			/* 0 = never used */
	uint64		us[MO_WAIT_NCLASSES];
} MoLoadSlot;

typedef struct MoLoadRing
{
	Oid			dbid;
	MoLoadSlot	slots[MO_LOAD_NSLOTS];
} MoLoadRing;

typedef struct MoWaitShared
{
	LWLock	   *lock;
	int			nslots;			/* backend slots */
	int			table_size;		/* power of two */
	int			max_entries;
	int			nentries;
	uint64		dropped;		/* increments lost: table full */
	int			sampler_pid;	/* 0 when not running */
	TimestampTz sampler_started;
	TimestampTz reset_at;
	TimestampTz last_sample;
	uint64		ticks;			/* samples taken since reset */
	uint64		sum_us;			/* time they stood for */
	uint64		max_gap_us;		/* longest time between two */
	int64		since_ns;		/* monotonic start of the load windows */
	int			nrings;
	MoLoadRing	rings[MO_LOAD_MAX_DBS + 1];
	MoWaitSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} MoWaitShared;

/* A raw sample of session_history. */
typedef struct MoHistRow
{
	TimestampTz ts;
	TimestampTz query_start;
	uint64		queryid;		/* innermost statement; 0 = none */
	uint64		top_queryid;
	int			pid;
	Oid			dbid;
	Oid			userid;
	uint32		wait;
	int			state;			/* BackendState */
	int			backend_type;	/* BackendType */
	char		appname[NAMEDATALEN];
} MoHistRow;

/* One active backend as seen by one sample. */
typedef struct MoObs
{
	int			pid;
	Oid			dbid;
	uint32		wait;
	bool		running;
	uint64		top_queryid;
	uint64		nested_queryid;
	Oid			top_userid;
	Oid			nested_userid;
	int			status_index;
} MoObs;

MoWaitSlot *mo_wait_slot = NULL;

static MoWaitShared *ws = NULL;
static MoWaitEntry *table = NULL;
static MoRing *history = NULL;

PGDLLEXPORT void mo_wait_sampler_main(Datum main_arg);

static int
table_size_for(int max_entries)
{
	int			size = 1024;

	while (size < max_entries + max_entries / 4)
		size *= 2;
	return size;
}

static int
max_wait_entries(void)
{
	return mo_max_statements * 4;
}

static Size
waits_shmem_size(void)
{
	Size		size = offsetof(MoWaitShared, slots);

	size = add_size(size, mul_size(sizeof(MoWaitSlot), mo_max_backends()));
	size = MAXALIGN(size);
	return add_size(size, mul_size(sizeof(MoWaitEntry),
								   table_size_for(max_wait_entries())));
}

static void
waits_shmem_startup(void *area, bool found)
{
	ws = (MoWaitShared *) area;
	if (!found)
	{
		memset(ws, 0, waits_shmem_size());
		ws->nslots = mo_max_backends();
		ws->max_entries = max_wait_entries();
		ws->table_size = table_size_for(ws->max_entries);
		ws->nrings = 1;
		ws->reset_at = GetCurrentTimestamp();
	}
	ws->lock = &(mo_shmem_locks(WAITS_AREA)[0].lock);
	table = (MoWaitEntry *) ((char *) ws +
							 MAXALIGN(offsetof(MoWaitShared, slots) +
									  sizeof(MoWaitSlot) * ws->nslots));
}

static Size
history_shmem_size(void)
{
	return mo_ring_size(sizeof(MoHistRow), mo_session_history_size,
						sizeof(MoHistRow));
}

static void
history_shmem_startup(void *area, bool found)
{
	history = (MoRing *) area;
	mo_ring_attach(history, found, HISTORY_AREA, sizeof(MoHistRow),
				   mo_session_history_size, sizeof(MoHistRow));
}

/*
 * mo_waits_init - register the shared memory and the sampler.  Called from
 * _PG_init while preloading.
 */
void
mo_waits_init(void)
{
	BackgroundWorker worker;

	mo_shmem_register(WAITS_AREA, waits_shmem_size, waits_shmem_startup, 1);
	mo_shmem_register(HISTORY_AREA, history_shmem_size, history_shmem_startup, 1);

	mo_worker_describe(&worker, "mo_wait_sampler_main", "moltres_ops wait sampler",
					   BGWORKER_SHMEM_ACCESS, BgWorkerStart_ConsistentState, 1);
	RegisterBackgroundWorker(&worker);
}

/*
 * mo_waits_attach - find this backend's slot (on its first statement) and
 * claim it for this pid.  NULL where there is none.
 */
MoWaitSlot *
mo_waits_attach(void)
{
	MoWaitSlot *s;
	int			procno;

	if (ws == NULL || MyProc == NULL)
		return NULL;
	procno = mo_my_procno();
	if (procno < 0 || procno >= ws->nslots)
		return NULL;
	s = &ws->slots[procno];
	s->running = false;
	s->top_queryid = 0;
	s->nested_queryid = 0;
	s->pid = MyProcPid;
	mo_wait_slot = s;
	return s;
}

/* ---------------------------------------------------------------------
 * The sampler
 * ---------------------------------------------------------------------
 */

static inline int64
mono_now_ns(void)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	return mo_instr_ns(now);
}

/* Class index of a wait_event_info: 0 = on CPU. */
static inline int
wait_class(uint32 wait)
{
	int			c = (int) (wait >> 24);

	return c < MO_WAIT_NCLASSES ? c : MO_WAIT_NCLASSES - 1;
}

/* The row of key, inserted if need be; NULL when the table is full. */
static MoWaitEntry *
table_enter(const MoWaitKey *key)
{
	uint32		mask = (uint32) ws->table_size - 1;
	uint32		i = hash_bytes((const unsigned char *) key, sizeof(MoWaitKey)) & mask;

	for (;;)
	{
		MoWaitEntry *e = &table[i];

		if (!e->used)
		{
			if (ws->nentries >= ws->max_entries)
				return NULL;
			e->key = *key;
			e->samples = 0;
			e->us = 0;
			e->used = true;
			ws->nentries++;
			return e;
		}
		if (memcmp(&e->key, key, sizeof(MoWaitKey)) == 0)
			return e;
		i = (i + 1) & mask;
	}
}

static void
count(Oid userid, Oid dbid, uint64 queryid, uint32 wait, uint32 kind,
	  int64 us)
{
	MoWaitKey	key;
	MoWaitEntry *e;

	memset(&key, 0, sizeof(key));
	key.userid = userid;
	key.dbid = dbid;
	key.queryid = queryid;
	key.wait = wait;
	key.kind = kind;
	e = table_enter(&key);
	if (e == NULL)
	{
		ws->dropped++;
		return;
	}
	e->samples++;
	e->us += us;
}

/* The load ring of dbid, assigned on first use (ring 0 when all taken). */
static MoLoadRing *
load_ring(Oid dbid)
{
	for (int r = 1; r < ws->nrings; r++)
		if (ws->rings[r].dbid == dbid)
			return &ws->rings[r];
	if (ws->nrings <= MO_LOAD_MAX_DBS)
	{
		MoLoadRing *ring = &ws->rings[ws->nrings++];

		ring->dbid = dbid;
		memset(ring->slots, 0, sizeof(ring->slots));
		return ring;
	}
	return &ws->rings[0];
}

static void
load_add(Oid dbid, uint64 epoch, uint32 wait, int64 us)
{
	MoLoadRing *ring = load_ring(dbid);
	MoLoadSlot *s = &ring->slots[epoch % MO_LOAD_NSLOTS];

	if (s->epoch != epoch)
	{
		memset(s->us, 0, sizeof(s->us));
		s->epoch = epoch;
	}
	s->us[wait_class(wait)] += us;
}

/*
 * Waits that happen at commit, after the statement of an autocommit
 * transaction has ended: WAL flush and synchronous replication.
 */
static inline bool
commit_wait(uint32 wait)
{
	return wait == WAIT_EVENT_WAL_SYNC || wait == WAIT_EVENT_WAL_WRITE ||
		wait == WAIT_EVENT_SYNC_REP ||
		wait == (PG_WAIT_LWLOCK | WALWriteLock->tranche);
}

static PgBackendStatus *status_array = NULL;
static int	status_slots = 0;
static MoObs *obs = NULL;

/* Find the core's backend status array (see compat.h). */
static void
sampler_attach_status(void)
{
	bool		found;
	Size		size;

	status_slots = MO_STATUS_SLOTS;
	size = mul_size(sizeof(PgBackendStatus), status_slots);
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	status_array = ShmemInitStruct("Backend Status Array", size, &found);
	LWLockRelease(AddinShmemInitLock);
	if (!found)
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("moltres_ops wait sampler could not find the backend status array")));
	obs = MemoryContextAlloc(TopMemoryContext, sizeof(MoObs) * MaxBackends);
}

/* Copy an application name that its backend may be rewriting. */
static void
copy_appname(char *dst, const PgBackendStatus *be)
{
	const char *src = be->st_appname;
	int			i;

	if (src == NULL)
	{
		dst[0] = '\0';
		return;
	}
	for (i = 0; i < NAMEDATALEN - 1 && src[i] != '\0'; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

/*
 * sample - one look at every backend; weight_us is the time the sample
 * stands for.  Returns the number of active backends seen.
 */
static int
sample(int64 now_ns, int64 weight_us, bool keep_history)
{
	int			n = 0;
	uint64		epoch = (uint64) (now_ns / (MO_LOAD_SLOT_SECS * NS_PER_SEC)) + 1;
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < MaxBackends; i++)
	{
		PGPROC	   *proc = GetPGProcByNumber(i);
		int			pid = proc->pid;
		int			idx;
		volatile PgBackendStatus *be;
		int			state;
		MoObs	   *o;
		MoWaitSlot *s;

		if (pid == 0 || proc == MyProc)
			continue;
		idx = mo_status_index(proc, i);
		if (idx < 0 || idx >= status_slots)
			continue;
		be = &status_array[idx];
		state = be->st_state;
		if ((state != STATE_RUNNING && state != STATE_FASTPATH) ||
			be->st_procpid != pid)
			continue;

		o = &obs[n];
		o->wait = *((volatile uint32 *) &proc->wait_event_info);
		/* a process idle in its main loop (a walsender streaming) is no load */
		if ((o->wait & 0xFF000000) == PG_WAIT_ACTIVITY)
			continue;
		n++;
		o->pid = pid;
		o->dbid = proc->databaseId;
		o->status_index = idx;
		s = &ws->slots[i];
		o->running = false;
		o->top_queryid = o->nested_queryid = 0;
		if (i < ws->nslots && s->pid == pid)
		{
			o->running = s->running;
			o->top_queryid = s->top_queryid;
			o->top_userid = s->top_userid;
			o->nested_queryid = o->running ? s->nested_queryid : 0;
			o->nested_userid = s->nested_userid;
			if (!o->running && !commit_wait(o->wait))
				o->top_queryid = 0;
		}
	}

	LWLockAcquire(ws->lock, LW_EXCLUSIVE);
	ws->ticks++;
	ws->sum_us += weight_us;
	ws->last_sample = now;
	for (int k = 0; k < n; k++)
	{
		MoObs	   *o = &obs[k];

		count(InvalidOid, o->dbid, 0, o->wait, KIND_DB, weight_us);
		load_add(o->dbid, epoch, o->wait, weight_us);
		if (o->top_queryid != 0)
			count(o->top_userid, o->dbid, o->top_queryid, o->wait, KIND_TOP,
				  weight_us);
		if (o->nested_queryid != 0)
			count(o->nested_userid, o->dbid, o->nested_queryid, o->wait,
				  KIND_NESTED, weight_us);
	}
	LWLockRelease(ws->lock);

	if (keep_history && history->nslots > 0)
	{
		for (int k = 0; k < n; k++)
		{
			MoObs	   *o = &obs[k];
			volatile PgBackendStatus *be = &status_array[o->status_index];
			MoHistRow  *row = mo_ring_write_begin(history, sizeof(MoHistRow));

			row->ts = now;
			row->pid = o->pid;
			row->dbid = o->dbid;
			row->userid = o->top_queryid != 0 ? o->top_userid : be->st_userid;
			row->wait = o->wait;
			row->state = be->st_state;
			row->backend_type = be->st_backendType;
			row->query_start = be->st_activity_start_timestamp;
			row->top_queryid = o->top_queryid;
			row->queryid = o->nested_queryid != 0 ? o->nested_queryid : o->top_queryid;
			copy_appname(row->appname, (const PgBackendStatus *) be);
			mo_ring_write_end(history);
		}
	}
	return n;
}

static void
sampler_exit(int code, Datum arg)
{
	LWLockAcquire(ws->lock, LW_EXCLUSIVE);
	ws->sampler_pid = 0;
	LWLockRelease(ws->lock);
}

/*
 * mo_wait_sampler_main - the sampler: sleep to the next tick, look at
 * every backend, repeat.  A tick that comes late is not made up for: the
 * next sample carries the longer time as its weight.
 */
void
mo_wait_sampler_main(Datum main_arg)
{
	int64		last_ns = 0;
	int64		next_ns = 0;
	int64		last_history_ns = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	sampler_attach_status();
	LWLockAcquire(ws->lock, LW_EXCLUSIVE);
	ws->sampler_pid = MyProcPid;
	ws->sampler_started = GetCurrentTimestamp();
	if (ws->since_ns == 0)
		ws->since_ns = mono_now_ns();
	LWLockRelease(ws->lock);
	on_shmem_exit(sampler_exit, (Datum) 0);

	for (;;)
	{
		int			interval = mo_sample_interval;
		int64		now_ns;
		long		timeout;

		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			continue;
		}

		if (interval <= 0)
		{
			/* off: wait for a reload; the next sample starts afresh */
			last_ns = 0;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		now_ns = mono_now_ns();
		if (next_ns == 0 || last_ns == 0)
			next_ns = now_ns;
		if (now_ns < next_ns)
		{
			timeout = (long) ((next_ns - now_ns + 999999) / 1000000);
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 timeout, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		{
			int64		weight_us;
			int64		gap_us = last_ns ? (now_ns - last_ns) / 1000 : 0;
			bool		keep_history;

			weight_us = last_ns ? Min(gap_us, MO_MAX_WEIGHT_US) :
				(int64) interval * 1000;
			keep_history = (now_ns - last_history_ns) / 1000000 >=
				mo_session_history_interval;
			if (keep_history)
				last_history_ns = now_ns;
			(void) sample(now_ns, weight_us, keep_history);
			if ((uint64) gap_us > ws->max_gap_us)
			{
				LWLockAcquire(ws->lock, LW_EXCLUSIVE);
				ws->max_gap_us = (uint64) gap_us;
				LWLockRelease(ws->lock);
			}
			last_ns = now_ns;
			/* the next tick, skipping those already missed */
			next_ns += (int64) interval * 1000000;
			if (next_ns <= now_ns)
				next_ns = now_ns + (int64) interval * 1000000;
		}
	}
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* Copy the used rows of the wait table of the given kinds. */
static MoWaitEntry *
table_copy(int *n, bool db_rows)
{
	MoWaitEntry *rows;
	int			k = 0;

	LWLockAcquire(ws->lock, LW_SHARED);
	rows = palloc(sizeof(MoWaitEntry) * Max(ws->nentries, 1));
	for (int i = 0; i < ws->table_size && k < ws->nentries; i++)
	{
		if (!table[i].used)
			continue;
		if ((table[i].key.kind == KIND_DB) == db_rows)
			rows[k++] = table[i];
	}
	LWLockRelease(ws->lock);
	*n = k;
	return rows;
}

/*
 * The privacy rule of query_stats: other users' query ids only for
 * superusers and members of pg_read_all_stats.
 */
static bool
reader_sees_all(void)
{
	return superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

/* The wait_event_type and wait_event columns of a wait_event_info. */
static void
wait_names(uint32 wait, Datum *values)
{
	const char *type = wait ? pgstat_get_wait_event_type(wait) : NULL;
	const char *event = wait ? pgstat_get_wait_event(wait) : NULL;

	values[0] = CStringGetTextDatum(wait == 0 ? "CPU" : type ? type : "???");
	values[1] = CStringGetTextDatum(wait == 0 ? "CPU" : event ? event : "???");
}

PG_FUNCTION_INFO_V1(moltres_ops_query_waits);

/*
 * moltres_ops_query_waits - rows of the view query_waits: per statement
 * (the key of query_stats) and wait event, samples and estimated seconds.
 */
Datum
moltres_ops_query_waits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MoWaitEntry *rows;
	int			n;

	bool		sees_all;
	Oid			me = GetUserId();

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	sees_all = reader_sees_all();
	rows = table_copy(&n, false);
	for (int i = 0; i < n; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = ObjectIdGetDatum(rows[i].key.userid);
		values[1] = ObjectIdGetDatum(rows[i].key.dbid);
		values[2] = Int64GetDatum((int64) rows[i].key.queryid);
		nulls[2] = !sees_all && rows[i].key.userid != me;
		values[3] = BoolGetDatum(rows[i].key.kind == KIND_TOP);
		wait_names(rows[i].key.wait, &values[4]);
		values[6] = Int64GetDatum((int64) rows[i].samples);
		values[7] = Float8GetDatum((double) rows[i].us / 1000000.0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_db_waits);

/*
 * moltres_ops_db_waits - rows of the view db_waits: cumulative samples and
 * estimated seconds per database and wait event, every active backend
 * counted (statement or not).  These are the Prometheus counters.
 */
Datum
moltres_ops_db_waits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MoWaitEntry *rows;
	int			n;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	rows = table_copy(&n, true);
	for (int i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};

		values[0] = ObjectIdGetDatum(rows[i].key.dbid);
		wait_names(rows[i].key.wait, &values[1]);
		values[3] = Int64GetDatum((int64) rows[i].samples);
		values[4] = Float8GetDatum((double) rows[i].us / 1000000.0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static const char *const class_names[MO_WAIT_NCLASSES] = {
	"CPU", "LWLock", "Class2", "Lock", "BufferPin", "Activity", "Client",
	"Extension", "IPC", "Timeout", "IO", "Other"
};

PG_FUNCTION_INFO_V1(moltres_ops_db_load);

/*
 * moltres_ops_db_load - rows of the view db_load: for each window (1, 5,
 * 15 minutes), the instance (dbid 0) and each database with a ring, the
 * average number of active sessions per wait class (classes seen only).
 * A window covers the current 15-second slot and those before it; the
 * average divides by the time they actually cover (less after start or
 * reset).
 */
Datum
moltres_ops_db_load(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static const int windows[] = {60, 300, 900};
	MoLoadRing *rings;
	int			nrings;
	int64		now_ns = mono_now_ns();
	uint64		now_epoch = (uint64) (now_ns / (MO_LOAD_SLOT_SECS * NS_PER_SEC)) + 1;
	int64		since_ns;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);

	rings = palloc(sizeof(MoLoadRing) * (MO_LOAD_MAX_DBS + 1));
	LWLockAcquire(ws->lock, LW_SHARED);
	nrings = ws->nrings;
	since_ns = ws->since_ns;
	memcpy(rings, ws->rings, sizeof(MoLoadRing) * nrings);
	LWLockRelease(ws->lock);

	for (int w = 0; w < lengthof(windows); w++)
	{
		int			nslots = windows[w] / MO_LOAD_SLOT_SECS;
		uint64		first = now_epoch >= (uint64) nslots ? now_epoch - nslots + 1 : 1;
		double		span;
		uint64		all[MO_WAIT_NCLASSES] = {0};
		Interval   *iv = palloc0(sizeof(Interval));

		iv->time = (int64) windows[w] * USECS_PER_SEC;
		span = (nslots - 1) * MO_LOAD_SLOT_SECS +
			(double) (now_ns % (MO_LOAD_SLOT_SECS * NS_PER_SEC)) / NS_PER_SEC;
		if (since_ns > 0 && (double) (now_ns - since_ns) / NS_PER_SEC < span)
			span = (double) (now_ns - since_ns) / NS_PER_SEC;
		if (span <= 0)
			continue;

		for (int r = 0; r <= nrings; r++)
		{
			uint64		one[MO_WAIT_NCLASSES] = {0};
			uint64	   *sum = (r < nrings) ? one : all;

			if (r < nrings)
			{
				for (int i = 0; i < MO_LOAD_NSLOTS; i++)
				{
					MoLoadSlot *s = &rings[r].slots[i];

					if (s->epoch < first || s->epoch > now_epoch)
						continue;
					for (int c = 0; c < MO_WAIT_NCLASSES; c++)
						one[c] += s->us[c];
				}
				for (int c = 0; c < MO_WAIT_NCLASSES; c++)
					all[c] += one[c];
				if (r == 0)
					continue;	/* databases beyond the rings: instance only */
			}
			for (int c = 0; c < MO_WAIT_NCLASSES; c++)
			{
				Datum		values[4];
				bool		nulls[4] = {0};

				if (sum[c] == 0)
					continue;
				values[0] = ObjectIdGetDatum(r < nrings ? rings[r].dbid : InvalidOid);
				values[1] = IntervalPGetDatum(iv);
				values[2] = CStringGetTextDatum(class_names[c]);
				values[3] = Float8GetDatum((double) sum[c] / 1000000.0 / span);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_session_history);

/* moltres_ops_session_history - the raw samples, newest first. */
Datum
moltres_ops_session_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MoRingCopy	copy;
	bool		sees_all;
	Oid			me = GetUserId();

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	if (history->nslots == 0)
		return (Datum) 0;
	sees_all = reader_sees_all();
	mo_ring_copy(history, &copy);
	for (int i = 0; i < copy.count; i++)
	{
		MoHistRow  *row = mo_ring_copy_entry(&copy, i);
		Datum		values[11];
		bool		nulls[11] = {0};
		const char *state;

		switch (row->state)
		{
			case STATE_RUNNING:
				state = "active";
				break;
			case STATE_FASTPATH:
				state = "fastpath function call";
				break;
			default:
				state = "other";
				break;
		}
		values[0] = TimestampTzGetDatum(row->ts);
		values[1] = Int32GetDatum(row->pid);
		values[2] = ObjectIdGetDatum(row->dbid);
		values[3] = ObjectIdGetDatum(row->userid);
		values[4] = CStringGetTextDatum(row->appname);
		values[5] = CStringGetTextDatum(GetBackendTypeDesc((BackendType) row->backend_type));
		values[6] = CStringGetTextDatum(state);
		wait_names(row->wait, &values[7]);
		values[9] = Int64GetDatum((int64) row->queryid);
		nulls[9] = (row->queryid == 0);
		values[10] = Int64GetDatum((int64) row->top_queryid);
		nulls[10] = (row->top_queryid == 0);
		if (!sees_all && row->userid != me)
			nulls[9] = nulls[10] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_wait_sampler);

/*
 * moltres_ops_wait_sampler - the sampler itself: whether it runs, how
 * often it really sampled, and how full its table is.
 */
Datum
moltres_ops_wait_sampler(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[12];
	bool		nulls[12] = {0};
	MoWaitShared s;

	mo_require_shmem();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(ws->lock, LW_SHARED);
	memcpy(&s, ws, offsetof(MoWaitShared, rings));
	LWLockRelease(ws->lock);

	values[0] = Int32GetDatum(s.sampler_pid);
	nulls[0] = (s.sampler_pid == 0);
	values[1] = Int32GetDatum(mo_sample_interval);
	values[2] = TimestampTzGetDatum(s.sampler_started);
	nulls[2] = (s.sampler_started == 0);
	values[3] = Int64GetDatum((int64) s.ticks);
	values[4] = Float8GetDatum((double) s.sum_us / 1000000.0);
	if (s.ticks > 0)
		values[5] = Float8GetDatum((double) s.sum_us / 1000.0 / s.ticks);
	else
		nulls[5] = true;
	values[6] = Float8GetDatum((double) s.max_gap_us / 1000.0);
	values[7] = TimestampTzGetDatum(s.last_sample);
	nulls[7] = (s.last_sample == 0);
	values[8] = Int64GetDatum(s.nentries);
	values[9] = Int64GetDatum(s.max_entries);
	values[10] = Int64GetDatum((int64) s.dropped);
	values[11] = TimestampTzGetDatum(s.reset_at);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(moltres_ops_reset_waits);

/*
 * moltres_ops_reset_waits - forget the wait profiles, the per-database
 * counters, the load windows, the raw samples and the sampler's counters.
 */
Datum
moltres_ops_reset_waits(PG_FUNCTION_ARGS)
{
	mo_require_shmem();
	LWLockAcquire(ws->lock, LW_EXCLUSIVE);
	memset(table, 0, sizeof(MoWaitEntry) * ws->table_size);
	ws->nentries = 0;
	ws->dropped = 0;
	ws->ticks = 0;
	ws->sum_us = 0;
	ws->max_gap_us = 0;
	ws->reset_at = GetCurrentTimestamp();
	ws->since_ns = mono_now_ns();
	ws->nrings = 1;
	memset(ws->rings, 0, sizeof(ws->rings));
	LWLockRelease(ws->lock);
	if (history->nslots > 0)
		mo_ring_reset(history);
	PG_RETURN_VOID();
}
