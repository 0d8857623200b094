/*-------------------------------------------------------------------------
 *
 * latency.c
 *	  Rolling latency windows for the view moltres_ops.latency: calls,
 *	  errors, timeouts and percentiles of top-level statements over the
 *	  last 1, 5 and 15 minutes, per database and for the whole instance.
 *
 * Each database gets a ring of MO_LAT_NSLOTS time slots of
 * MO_LAT_SLOT_SECS seconds (64 x 15 s = 16 min), each with counters and a
 * small histogram (histogram.h, 8 buckets per octave, <= 6.25 % error).
 * A slot is tagged with its epoch (monotonic clock / slot length + 1); the
 * first statement to land in a slot whose tag is old claims it by a
 * compare-and-swap to a "rotating" tag, zeroes it and publishes the new
 * epoch.  Rotation is thus lazy, done by whoever comes first, O(slot), and
 * needs no background process and no lock.  The whole instance is the sum
 * of all rings at read time, so a statement touches one ring only.
 *
 * Each ring also keeps running totals since the last reset, for the
 * Prometheus counters and the moltres_ops_statement_duration_seconds
 * histogram: executions per bucket of the fixed Prometheus bounds
 * (histogram.h), the sum of their durations, rows, and errors by class.
 * They are atomics added to by the statement itself, like the slots.
 *
 * Locking: the area's LWLock protects assigning a ring to a database (once
 * per database and backend: the ring is cached in the backend).  Slot
 * counters and tags are atomics; a statement that arrives while its slot is
 * being zeroed waits the few dozen stores that takes (a bounded spin).
 * Besides executions, a slot counts the client requests that failed before
 * any statement ran and the executions that failed after the executor had
 * finished (mo_latency_record_failure, mo_latency_reclassify, called from
 * the emit_log_hook of errors.c), so error rates are those the clients saw.
 * Rings number
 * MO_LAT_MAX_DBS; databases beyond that share ring 0, which only counts
 * towards the instance row.
 *
 * Processes: every backend records and reads; the postmaster initialises.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/timestamp.h"

#include "histogram.h"
#include "moltres_ops.h"
#include "query_stats.h"
#include "shmem.h"

#define MO_LAT_AREA			"latency"
#define MO_LAT_SLOT_SECS	15
#define MO_LAT_NSLOTS		64
#define MO_LAT_MAX_DBS		32
#define MO_LAT_ROTATING		PG_UINT64_MAX
#define NS_PER_SEC			INT64CONST(1000000000)

typedef struct MoLatSlot
{
	pg_atomic_uint64 epoch;		/* 0 = never used */
	pg_atomic_uint32 calls;
	pg_atomic_uint32 errors;
	pg_atomic_uint32 timeouts;
	pg_atomic_uint32 hist[MO_HIST_COARSE_NBUCKETS];
} MoLatSlot;

typedef struct MoLatTotals
{
	pg_atomic_uint64 buckets[MO_PROM_NBUCKETS];	/* not cumulative */
	pg_atomic_uint64 sum_ns;
	pg_atomic_uint64 rows;
	pg_atomic_uint64 errors[MO_ERR_NCLASSES];	/* by MoErrClass; [0] unused */
} MoLatTotals;

typedef struct MoLatRing
{
	Oid			dbid;			/* set once under the LWLock */
	MoLatTotals totals;
	MoLatSlot	slots[MO_LAT_NSLOTS];
} MoLatRing;

typedef struct MoLatShared
{
	LWLock	   *lock;
	int			nrings;			/* rings in use, ring 0 included */
	pg_atomic_uint64 since_ns;	/* monotonic start of counting */
	MoLatRing	rings[MO_LAT_MAX_DBS + 1];
} MoLatShared;

static MoLatShared *mls = NULL;
static MoLatRing *my_ring = NULL;	/* this backend's database's ring */

static Size
mo_latency_shmem_size(void)
{
	return sizeof(MoLatShared);
}

static inline int64
mono_now_ns(void)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	return mo_instr_ns(now);
}

static void
zero_slot(MoLatSlot *s)
{
	pg_atomic_write_u32(&s->calls, 0);
	pg_atomic_write_u32(&s->errors, 0);
	pg_atomic_write_u32(&s->timeouts, 0);
	for (int b = 0; b < MO_HIST_COARSE_NBUCKETS; b++)
		pg_atomic_write_u32(&s->hist[b], 0);
}

/* Zero one counter of the totals: init at start-up, write at a reset. */
static inline void
zero_u64(pg_atomic_uint64 *v, bool init)
{
	if (init)
		pg_atomic_init_u64(v, 0);
	else
		pg_atomic_write_u64(v, 0);
}

static void
zero_totals(MoLatTotals *t, bool init)
{
	for (int b = 0; b < MO_PROM_NBUCKETS; b++)
		zero_u64(&t->buckets[b], init);
	zero_u64(&t->sum_ns, init);
	zero_u64(&t->rows, init);
	for (int e = 0; e < MO_ERR_NCLASSES; e++)
		zero_u64(&t->errors[e], init);
}

static void
mo_latency_shmem_startup(void *area, bool found)
{
	mls = (MoLatShared *) area;
	if (found)
		return;
	mls->lock = &(mo_shmem_locks(MO_LAT_AREA))[0].lock;
	mls->nrings = 1;
	pg_atomic_init_u64(&mls->since_ns, (uint64) mono_now_ns());
	for (int r = 0; r <= MO_LAT_MAX_DBS; r++)
	{
		mls->rings[r].dbid = InvalidOid;
		zero_totals(&mls->rings[r].totals, true);
		for (int i = 0; i < MO_LAT_NSLOTS; i++)
		{
			MoLatSlot  *s = &mls->rings[r].slots[i];

			pg_atomic_init_u64(&s->epoch, 0);
			pg_atomic_init_u32(&s->calls, 0);
			pg_atomic_init_u32(&s->errors, 0);
			pg_atomic_init_u32(&s->timeouts, 0);
			for (int b = 0; b < MO_HIST_COARSE_NBUCKETS; b++)
				pg_atomic_init_u32(&s->hist[b], 0);
		}
	}
}

void
mo_latency_init(void)
{
	mo_shmem_register(MO_LAT_AREA, mo_latency_shmem_size,
					  mo_latency_shmem_startup, 1);
}

/* The ring of dbid, assigned on first use (ring 0 when all are taken). */
static MoLatRing *
ring_for(Oid dbid)
{
	MoLatRing  *ring = &mls->rings[0];

	LWLockAcquire(mls->lock, LW_EXCLUSIVE);
	for (int r = 1; r < mls->nrings; r++)
		if (mls->rings[r].dbid == dbid)
		{
			ring = &mls->rings[r];
			goto done;
		}
	if (mls->nrings <= MO_LAT_MAX_DBS)
	{
		ring = &mls->rings[mls->nrings];
		ring->dbid = dbid;
		mls->nrings++;
	}
done:
	LWLockRelease(mls->lock);
	return ring;
}

/*
 * The current slot of this database's ring for a statement that ended at
 * epoch, claimed and zeroed if it still holds an older epoch.  Another
 * backend may be zeroing it at this instant: that takes a few dozen
 * stores, so wait for it (a bounded spin, no interrupt check: callable from
 * PG_CATCH and from emit_log_hook).  NULL only if that wait gives up or the
 * slot already holds a later epoch (a statement that ended over 16 minutes
 * before it is recorded).
 */
static MoLatSlot *
current_slot(uint64 epoch)
{
	MoLatSlot  *s;
	uint64		cur;

	if (unlikely(my_ring == NULL))
		my_ring = ring_for(MyDatabaseId);
	s = &my_ring->slots[epoch % MO_LAT_NSLOTS];
	for (int spins = 0; spins < 10000; spins++)
	{
		cur = pg_atomic_read_u64(&s->epoch);
		if (likely(cur == epoch))
			return s;
		if (cur == MO_LAT_ROTATING)
		{
			pg_spin_delay();
			continue;
		}
		if (cur > epoch)
			return NULL;
		if (pg_atomic_compare_exchange_u64(&s->epoch, &cur, MO_LAT_ROTATING))
		{
			zero_slot(s);
			pg_write_barrier();
			pg_atomic_write_u64(&s->epoch, epoch);
			return s;
		}
	}
	return NULL;
}

static inline uint64
epoch_of(instr_time t)
{
	return (uint64) (mo_instr_ns(t) / (MO_LAT_SLOT_SECS * NS_PER_SEC)) + 1;
}

static inline void
count_error(MoLatSlot *s, MoErrClass err)
{
	pg_atomic_fetch_add_u32(&s->errors, 1);
	if (err == MO_ERR_TIMEOUT)
		pg_atomic_fetch_add_u32(&s->timeouts, 1);
}

/*
 * mo_latency_record - count one top-level execution in the current slot of
 * this database's ring.  No lock, no allocation: callable from PG_CATCH.
 */
void
mo_latency_record(const MoExecResult *res)
{
	MoLatSlot  *s;
	MoLatTotals *t;

	if (unlikely(my_ring == NULL))
		my_ring = ring_for(MyDatabaseId);

	/* running totals first: they count even when the slot is busy */
	t = &my_ring->totals;
	pg_atomic_fetch_add_u64(&t->buckets[mo_prom_bucket(res->duration_ns)], 1);
	pg_atomic_fetch_add_u64(&t->sum_ns, (uint64) Max(res->duration_ns, 0));
	if (res->err == MO_OK && res->rows > 0)
		pg_atomic_fetch_add_u64(&t->rows, res->rows);
	if (unlikely(res->err != MO_OK))
		pg_atomic_fetch_add_u64(&t->errors[res->err], 1);

	s = current_slot(epoch_of(res->end_time));
	if (unlikely(s == NULL))
	{
		mo_stats_count_dropped();
		return;
	}
	pg_atomic_fetch_add_u32(&s->calls, 1);
	if (res->err != MO_OK)
		count_error(s, res->err);
	pg_atomic_fetch_add_u32(&s->hist[mo_hist_bucket((uint64) res->duration_ns,
													MO_HIST_COARSE_SUB)], 1);
}

/*
 * mo_latency_reclassify - an execution that mo_latency_record counted as a
 * success failed after all (an error after the executor finished, such as
 * a deferred constraint at commit): count its error in the slot it went
 * into, if that slot still holds it.
 */
void
mo_latency_reclassify(const MoExecResult *res, MoErrClass err)
{
	uint64		epoch = epoch_of(res->end_time);
	MoLatSlot  *s;

	if (unlikely(my_ring == NULL))
		return;
	s = &my_ring->slots[epoch % MO_LAT_NSLOTS];
	pg_atomic_fetch_add_u64(&my_ring->totals.errors[err], 1);
	if (res->rows > 0)
		pg_atomic_fetch_sub_u64(&my_ring->totals.rows,
								Min(res->rows, pg_atomic_read_u64(&my_ring->totals.rows)));
	if (pg_atomic_read_u64(&s->epoch) == epoch)
		count_error(s, err);
}

/*
 * mo_latency_record_failure - a client request that failed before any
 * statement ran (a syntax error, a planner error): it counts as a call and
 * an error, so that error rates are those the clients saw, but adds no
 * latency.  Called from emit_log_hook: no lock but the first time a
 * backend meets its ring, no allocation.
 */
void
mo_latency_record_failure(MoErrClass err)
{
	instr_time	now;
	MoLatSlot  *s;

	INSTR_TIME_SET_CURRENT(now);
	if (unlikely(my_ring == NULL))
		my_ring = ring_for(MyDatabaseId);
	/* one count in the first bucket, so that _count includes the request */
	pg_atomic_fetch_add_u64(&my_ring->totals.buckets[0], 1);
	pg_atomic_fetch_add_u64(&my_ring->totals.errors[err], 1);
	s = current_slot(epoch_of(now));
	if (s == NULL)
		return;
	pg_atomic_fetch_add_u32(&s->calls, 1);
	count_error(s, err);
}

/*
 * mo_latency_reset - forget every window and the running totals (reset()
 * with no arguments).
 */
void
mo_latency_reset(void)
{
	for (int r = 0; r <= MO_LAT_MAX_DBS; r++)
		zero_totals(&mls->rings[r].totals, false);
	for (int r = 0; r <= MO_LAT_MAX_DBS; r++)
		for (int i = 0; i < MO_LAT_NSLOTS; i++)
			pg_atomic_write_u64(&mls->rings[r].slots[i].epoch, 0);
	pg_atomic_write_u64(&mls->since_ns, (uint64) mono_now_ns());
}

typedef struct LatSum
{
	uint64		calls;
	uint64		errors;
	uint64		timeouts;
	uint32		hist[MO_HIST_COARSE_NBUCKETS];
} LatSum;

/* Add ring's slots with epochs in [first, last] to sum. */
static void
sum_ring(MoLatRing *ring, uint64 first, uint64 last, LatSum *sum)
{
	for (int i = 0; i < MO_LAT_NSLOTS; i++)
	{
		MoLatSlot  *s = &ring->slots[i];
		uint64		epoch = pg_atomic_read_u64(&s->epoch);

		if (epoch == 0 || epoch == MO_LAT_ROTATING || epoch < first || epoch > last)
			continue;
		pg_read_barrier();
		sum->calls += pg_atomic_read_u32(&s->calls);
		sum->errors += pg_atomic_read_u32(&s->errors);
		sum->timeouts += pg_atomic_read_u32(&s->timeouts);
		for (int b = 0; b < MO_HIST_COARSE_NBUCKETS; b++)
			sum->hist[b] += pg_atomic_read_u32(&s->hist[b]);
	}
}

static void
put_row(ReturnSetInfo *rsinfo, Oid dbid, int window_secs, double span_secs,
		const LatSum *sum)
{
	Datum		values[10];
	bool		nulls[10];
	Interval   *iv = palloc0(sizeof(Interval));
	static const double fractions[] = {0.5, 0.95, 0.99};
	double		pct[3];

	memset(nulls, 0, sizeof(nulls));
	iv->time = (int64) window_secs * USECS_PER_SEC;
	values[0] = ObjectIdGetDatum(dbid);
	values[1] = IntervalPGetDatum(iv);
	values[2] = Int64GetDatum((int64) sum->calls);
	values[3] = Float8GetDatum(span_secs > 0 ? sum->calls / span_secs : 0.0);
	values[4] = Int64GetDatum((int64) sum->errors);
	if (sum->calls > 0)
		values[5] = Float8GetDatum((double) sum->errors / sum->calls);
	else
		nulls[5] = true;
	values[6] = Int64GetDatum((int64) sum->timeouts);
	if (sum->calls > 0)
	{
		mo_hist_percentiles(sum->hist, MO_HIST_COARSE_SUB, fractions, 3, 0.0,
							mo_hist_bucket_lower_ms(MO_HIST_COARSE_NBUCKETS - 1,
													MO_HIST_COARSE_SUB),
							pct);
		for (int k = 0; k < 3; k++)
			values[7 + k] = Float8GetDatum(pct[k]);
	}
	else
		nulls[7] = nulls[8] = nulls[9] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(moltres_ops_latency);

/*
 * moltres_ops_latency - rows of the view latency: for each window, the
 * instance (dbid 0) and each database with a ring.  A window of W seconds
 * covers the current slot and the W/15 - 1 before it; calls_per_s divides
 * by the time those slots actually cover (less right after start or reset).
 */
Datum
moltres_ops_latency(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static const int windows[] = {60, 300, 900};
	int64		now_ns;
	uint64		now_epoch;
	int64		since_ns;
	int			nrings;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);

	now_ns = mono_now_ns();
	now_epoch = (uint64) (now_ns / (MO_LAT_SLOT_SECS * NS_PER_SEC)) + 1;
	since_ns = (int64) pg_atomic_read_u64(&mls->since_ns);
	LWLockAcquire(mls->lock, LW_SHARED);
	nrings = mls->nrings;
	LWLockRelease(mls->lock);

	for (int w = 0; w < lengthof(windows); w++)
	{
		int			nslots = windows[w] / MO_LAT_SLOT_SECS;
		uint64		first = now_epoch >= (uint64) nslots ? now_epoch - nslots + 1 : 1;
		double		span;
		double		uptime = (double) (now_ns - since_ns) / NS_PER_SEC;
		LatSum	   *all = palloc0(sizeof(LatSum));

		span = (nslots - 1) * MO_LAT_SLOT_SECS +
			(double) (now_ns % (MO_LAT_SLOT_SECS * NS_PER_SEC)) / NS_PER_SEC;
		if (uptime < span)
			span = uptime;

		for (int r = 0; r < nrings; r++)
		{
			LatSum	   *one = palloc0(sizeof(LatSum));

			sum_ring(&mls->rings[r], first, now_epoch, one);
			all->calls += one->calls;
			all->errors += one->errors;
			all->timeouts += one->timeouts;
			for (int b = 0; b < MO_HIST_COARSE_NBUCKETS; b++)
				all->hist[b] += one->hist[b];
			if (r > 0)
				put_row(rsinfo, mls->rings[r].dbid, windows[w], span, one);
			pfree(one);
		}
		put_row(rsinfo, InvalidOid, windows[w], span, all);
		pfree(all);
	}
	return (Datum) 0;
}

#define ST_COLS 12

PG_FUNCTION_INFO_V1(moltres_ops_statement_totals);

/*
 * moltres_ops_statement_totals - the running totals of each database with
 * a ring, and of the databases that share ring 0 (dbid 0): top-level
 * executions, rows, the sum of durations (s), the Prometheus bounds (s)
 * with cumulative counts (+Inf last), and errors by class.  Executions
 * are the +Inf count, so the histogram is self-consistent.
 */
Datum
moltres_ops_statement_totals(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		le;
	int			nrings;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	le = mo_prom_bounds_datum();

	LWLockAcquire(mls->lock, LW_SHARED);
	nrings = mls->nrings;
	LWLockRelease(mls->lock);

	for (int r = 0; r < nrings; r++)
	{
		MoLatTotals *t = &mls->rings[r].totals;
		Datum		values[ST_COLS];
		bool		nulls[ST_COLS];
		uint64		counts[MO_PROM_NBUCKETS];
		uint64		n;
		Datum		cum;
		int			i = 0;

		memset(nulls, 0, sizeof(nulls));
		for (int b = 0; b < MO_PROM_NBUCKETS; b++)
			counts[b] = pg_atomic_read_u64(&t->buckets[b]);
		cum = mo_prom_cumulative_datum(counts, &n);
		values[i++] = ObjectIdGetDatum(r == 0 ? InvalidOid : mls->rings[r].dbid);
		values[i++] = Int64GetDatum((int64) n);
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->rows));
		values[i++] = Float8GetDatum((double) pg_atomic_read_u64(&t->sum_ns) / NS_PER_SEC);
		values[i++] = le;
		values[i++] = cum;
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->errors[MO_ERR_TIMEOUT]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->errors[MO_ERR_CANCEL]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->errors[MO_ERR_LOCK_TIMEOUT]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->errors[MO_ERR_DEADLOCK]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->errors[MO_ERR_SERIALIZATION]));
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&t->errors[MO_ERR_OTHER]));
		Assert(i == ST_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
