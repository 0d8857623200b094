/*-------------------------------------------------------------------------
 *
 * histogram.c
 *	  Percentile maths over the log-linear histograms of histogram.h, and
 *	  histogram_percentiles(), which runs a list of durations through the
 *	  same code so that its error bound can be checked from SQL; and the
 *	  fixed Prometheus bounds: folding a fine histogram onto them, and the
 *	  le / cumulative-count arrays the metrics functions return.
 *
 * Pure functions over memory the caller owns: no shared state, no locks
 * (the fine-to-Prometheus bucket map is a per-process table filled on
 * first use).  The caller of the sparse histogram functions holds whatever
 * protects the histogram and its pool (query_stats.c: the entry's spinlock).
 *
 * Memory per histogram (see histogram.h for the bucket scheme):
 *	per statement	770 buckets, sparse: 36 bytes plus 104 bytes per octave
 *					in use, error <= 2.08 %
 *	latency window	258 buckets x 4 bytes = 1,032 bytes, error <= 6.25 %
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "histogram.h"

#define NS_PER_MS	1000000.0

const int64 mo_prom_bounds_ns[MO_PROM_NBOUNDS] = MO_PROM_BOUNDS_NS;

/* Prometheus bucket of each fine bucket; filled on first use. */
static uint8 fine_to_prom[MO_HIST_FINE_NBUCKETS];
static bool fine_to_prom_ready = false;

/* Lower bound of bucket b, in milliseconds (bucket 0 starts at 0). */
double
mo_hist_bucket_lower_ms(int b, int sub)
{
	int			e;
	int			j;

	if (b <= 0)
		return 0.0;
	if (b > MO_HIST_OCTAVES * sub)
		return ldexp(1.0, MO_HIST_MAX_EXP) / NS_PER_MS;
	e = MO_HIST_MIN_EXP + (b - 1) / sub;
	j = (b - 1) % sub;
	return ldexp(1.0 + (double) j / sub, e) / NS_PER_MS;
}

/* Upper bound (exclusive) of bucket b in milliseconds; +Inf for the last. */
double
mo_hist_bucket_upper_ms(int b, int sub)
{
	if (b > MO_HIST_OCTAVES * sub)
		return get_float8_infinity();
	return mo_hist_bucket_lower_ms(b + 1, sub);
}

/*
 * The nearest rank of fraction (in [0, 1]) among total > 0 values:
 * ceil(fraction * total) (without the call: r is not negative), at least 1
 * and at most total.  Shared by both kinds of histogram, so that their
 * estimates agree.
 */
static inline uint64
percentile_rank(double fraction, uint64 total)
{
	double		r = fraction * (double) total;
	uint64		rank = (uint64) r;

	if ((double) rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;
	return rank;
}

/* The estimates of an empty histogram: NaN. */
static void
percentiles_empty(double *out, int nfractions)
{
	for (int k = 0; k < nfractions; k++)
		out[k] = get_float8_nan();
}

/* An estimate clamped to the observed minimum and maximum. */
static inline double
clamp_ms(double est, double min_ms, double max_ms)
{
	if (est < min_ms)
		return min_ms;
	if (est > max_ms)
		return max_ms;
	return est;
}

/*
 * mo_hist_percentiles - nearest-rank percentiles of a histogram.
 *
 * fractions must be ascending, each in [0, 1]; out[i] receives the estimate
 * for fractions[i] in milliseconds: the midpoint of the bucket holding the
 * value of rank ceil(fraction * total), clamped to [min_ms, max_ms].  An
 * empty histogram gives NaN.  One pass over the buckets.
 */
void
mo_hist_percentiles(const uint32 *hist, int sub,
					const double *fractions, int nfractions,
					double min_ms, double max_ms, double *out)
{
	int			nbuckets = MO_HIST_OCTAVES * sub + 2;
	uint64		total = 0;
	uint64		cum = 0;
	int			b = 0;

	for (int i = 0; i < nbuckets; i++)
		total += hist[i];
	if (total == 0)
	{
		percentiles_empty(out, nfractions);
		return;
	}

	for (int k = 0; k < nfractions; k++)
	{
		uint64		rank;
		double		est;

		rank = percentile_rank(fractions[k], total);

		/* advance to the bucket where the cumulative count reaches rank */
		while (b < nbuckets && cum + hist[b] < rank)
			cum += hist[b++];
		Assert(b < nbuckets);

		if (b == 0)
			est = min_ms;
		else if (b == nbuckets - 1)
			est = max_ms;
		else
			est = (mo_hist_bucket_lower_ms(b, sub) +
				   mo_hist_bucket_lower_ms(b + 1, sub)) / 2.0;
		out[k] = clamp_ms(est, min_ms, max_ms);
	}
}

/*
 * mo_shist_counter - the counters of octave o of h, taking a chunk from
 * alloc and linking it in order if h has none for o yet; NULL when alloc has
 * none.  Remembers the chunk in h's cache, so that the next duration of
 * the same octave finds it inline.
 */
uint32 *
mo_shist_counter(MoSparseHist *h, MoHistChunk *pool, int o,
				 MoHistChunkAlloc alloc, void *arg)
{
	int32	   *link = &h->head;
	int32		c;

	while (*link >= 0 && pool[*link].octave < o)
		link = &pool[*link].next;
	c = *link;
	if (c < 0 || pool[c].octave != o)
	{
		c = alloc(h, arg);
		if (c < 0)
			return NULL;
		memset(pool[c].count, 0, sizeof(pool[c].count));
		pool[c].octave = (uint8) o;
		pool[c].next = *link;
		*link = c;
		h->nchunks++;
	}
	h->cache_chunk[(unsigned int) o % MO_HIST_CACHE] = c;
	h->cache_octave[(unsigned int) o % MO_HIST_CACHE] = (uint8) o;
	return pool[c].count;
}

/* Halve every count of h (one reached MO_HIST_HALVE_AT): see histogram.h. */
void
mo_shist_halve(MoSparseHist *h, MoHistChunk *pool)
{
	h->under >>= 1;
	h->over >>= 1;
	for (int32 c = h->head; c >= 0; c = pool[c].next)
		for (int j = 0; j < MO_HIST_FINE_SUB; j++)
			pool[c].count[j] >>= 1;
	h->shift++;
}

/*
 * mo_shist_snapshot - copy h into out: only the octaves in use, so a
 * statement of one octave costs a copy of 96 bytes, not of 770 buckets.
 */
void
mo_shist_snapshot(const MoSparseHist *h, const MoHistChunk *pool,
				  MoHistSnap *out)
{
	int			n = 0;

	out->under = h->under;
	out->over = h->over;
	out->shift = h->shift;
	for (int32 c = h->head; c >= 0 && n < MO_HIST_OCTAVES; c = pool[c].next)
	{
		out->octave[n] = pool[c].octave;
		memcpy(out->count[n], pool[c].count, MO_HIST_SNAP_ROW);
		n++;
	}
	out->noctaves = n;
}

/* Positions of a snapshot: bucket 0, its octaves' buckets, the last. */
int
mo_hist_snap_nbuckets(const MoHistSnap *s)
{
	return s->noctaves * MO_HIST_FINE_SUB + 2;
}

/*
 * The count at position i (0 .. mo_hist_snap_nbuckets - 1) of a snapshot,
 * in ascending bucket order; *b gets its bucket in the dense numbering of
 * histogram.h (0 .. MO_HIST_FINE_NBUCKETS - 1).
 */
uint32
mo_hist_snap_bucket(const MoHistSnap *s, int i, int *b)
{
	int			o;
	int			j;

	if (i == 0)
	{
		*b = 0;
		return s->under;
	}
	if (i > s->noctaves * MO_HIST_FINE_SUB)
	{
		*b = MO_HIST_FINE_NBUCKETS - 1;
		return s->over;
	}
	o = (i - 1) / MO_HIST_FINE_SUB;
	j = (i - 1) % MO_HIST_FINE_SUB;
	*b = 1 + s->octave[o] * MO_HIST_FINE_SUB + j;
	return s->count[o][j];
}

/*
 * Midpoint in ms of bucket j of octave o of a per-statement histogram, as
 * mo_hist_bucket_lower_ms computes the bounds (so the estimates are the
 * same to the last bit): scaling by 2^e is exact, so ldexp(x, e) is
 * x * 2^e, without the call.
 */
static inline double
fine_midpoint_ms(int o, int j)
{
	double		p2 = (double) (UINT64CONST(1) << (MO_HIST_MIN_EXP + o));

	return ((1.0 + (double) j / MO_HIST_FINE_SUB) * p2 / NS_PER_MS +
			(1.0 + (double) (j + 1) / MO_HIST_FINE_SUB) * p2 / NS_PER_MS) / 2.0;
}

/*
 * mo_hist_snap_percentiles - mo_hist_percentiles for a sparse histogram:
 * the same estimates, but the passes cover only the octaves in use, and
 * the second skips whole octaves by their sums.
 */
void
mo_hist_snap_percentiles(const MoHistSnap *s,
						 const double *fractions, int nfractions,
						 double min_ms, double max_ms, double *out)
{
	uint64		osum[MO_HIST_OCTAVES];
	uint64		total = (uint64) s->under + s->over;
	uint64		cum;
	int			o = 0;
	int			j = 0;

	for (int k = 0; k < s->noctaves; k++)
	{
		uint64		t = 0;

		for (int i = 0; i < MO_HIST_FINE_SUB; i++)
			t += s->count[k][i];
		osum[k] = t;
		total += t;
	}

	if (total == 0)
	{
		percentiles_empty(out, nfractions);
		return;
	}

	cum = s->under;
	for (int k = 0; k < nfractions; k++)
	{
		uint64		rank;
		double		est;

		rank = percentile_rank(fractions[k], total);

		if (rank <= s->under)
			est = min_ms;
		else
		{
			/* whole octaves first, then the buckets of the one reached */
			while (o < s->noctaves && j == 0 && cum + osum[o] < rank)
				cum += osum[o++];
			while (o < s->noctaves && cum + s->count[o][j] < rank)
			{
				cum += s->count[o][j];
				if (++j == MO_HIST_FINE_SUB)
				{
					j = 0;
					o++;
					while (o < s->noctaves && cum + osum[o] < rank)
						cum += osum[o++];
				}
			}
			if (o >= s->noctaves)
				est = max_ms;	/* the open-ended last bucket */
			else
				est = fine_midpoint_ms(s->octave[o], j);
		}
		out[k] = clamp_ms(est, min_ms, max_ms);
	}
}

/*
 * mo_hist_snap_to_prom - fold a per-statement histogram into
 * non-cumulative counts on the Prometheus bounds: out[MO_PROM_NBUCKETS].
 * A fine bucket goes whole to the first bound at or above its midpoint;
 * the open-ended last bucket goes to +Inf.  Counts are scaled back by
 * 2^shift (see histogram.h).
 */
void
mo_hist_snap_to_prom(const MoHistSnap *s, uint64 *out)
{
	if (unlikely(!fine_to_prom_ready))
	{
		for (int b = 0; b < MO_HIST_FINE_NBUCKETS; b++)
		{
			double		mid_ns;

			if (b == MO_HIST_FINE_NBUCKETS - 1)
			{
				fine_to_prom[b] = MO_PROM_NBOUNDS;
				continue;
			}
			mid_ns = (mo_hist_bucket_lower_ms(b, MO_HIST_FINE_SUB) +
					  mo_hist_bucket_lower_ms(b + 1, MO_HIST_FINE_SUB)) / 2.0 * NS_PER_MS;
			fine_to_prom[b] = (uint8) mo_prom_bucket((int64) ceil(mid_ns));
		}
		fine_to_prom_ready = true;
	}
	memset(out, 0, sizeof(uint64) * MO_PROM_NBUCKETS);
	out[fine_to_prom[0]] += (uint64) s->under << s->shift;
	out[MO_PROM_NBOUNDS] += (uint64) s->over << s->shift;
	for (int k = 0; k < s->noctaves; k++)
	{
		int			b0 = 1 + s->octave[k] * MO_HIST_FINE_SUB;

		for (int j = 0; j < MO_HIST_FINE_SUB; j++)
			out[fine_to_prom[b0 + j]] += (uint64) s->count[k][j] << s->shift;
	}
}

/* The Prometheus bounds in seconds, as a float8[] with +Inf last ("le"). */
Datum
mo_prom_bounds_datum(void)
{
	Datum		le[MO_PROM_NBUCKETS];

	for (int b = 0; b < MO_PROM_NBOUNDS; b++)
		le[b] = Float8GetDatum((double) mo_prom_bounds_ns[b] / 1e9);
	le[MO_PROM_NBOUNDS] = Float8GetDatum(get_float8_infinity());
	return PointerGetDatum(construct_array(le, MO_PROM_NBUCKETS, FLOAT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Counts on the Prometheus bounds (not cumulative) as the cumulative int8[]
 * that goes with mo_prom_bounds_datum(); *total gets their sum.
 */
Datum
mo_prom_cumulative_datum(const uint64 *counts, uint64 *total)
{
	Datum		cum[MO_PROM_NBUCKETS];
	uint64		n = 0;

	for (int b = 0; b < MO_PROM_NBUCKETS; b++)
	{
		n += counts[b];
		cum[b] = Int64GetDatum((int64) n);
	}
	*total = n;
	return PointerGetDatum(construct_array(cum, MO_PROM_NBUCKETS, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* A private chunk pool: one chunk per octave is all a histogram can use. */
typedef struct LocalPool
{
	MoHistChunk *chunks;
	int32		used;
} LocalPool;

static int32
local_alloc(const MoSparseHist *h, void *arg)
{
	LocalPool  *pool = arg;

	return pool->used < MO_HIST_OCTAVES ? pool->used++ : -1;
}

PG_FUNCTION_INFO_V1(moltres_ops_histogram_percentiles);

/*
 * moltres_ops_histogram_percentiles - what the per-statement histogram
 * reports for the given durations (ms) at the given fractions.  Lets a test
 * or a sceptical operator compare the estimates with exact percentiles.
 * It runs the statements' own code: a sparse histogram, its snapshot and
 * the percentiles of the snapshot.
 */
Datum
moltres_ops_histogram_percentiles(PG_FUNCTION_ARGS)
{
	ArrayType  *durs;
	ArrayType  *fracs;
	Datum	   *dvals;
	bool	   *dnulls;
	int			nd;
	Datum	   *fvals;
	bool	   *fnulls;
	int			nf;
	MoSparseHist hist;
	LocalPool	pool;
	MoHistSnap *snap;
	double		min_ms = get_float8_infinity();
	double		max_ms = -get_float8_infinity();
	Datum	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("durations and fractions must not be NULL")));
	durs = PG_GETARG_ARRAYTYPE_P(0);
	fracs = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(durs) > 1 || ARR_NDIM(fracs) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("durations and fractions must be one-dimensional arrays")));
	deconstruct_array(durs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &dvals, &dnulls, &nd);
	deconstruct_array(fracs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &fvals, &fnulls, &nf);

	mo_shist_init(&hist);
	pool.chunks = palloc(sizeof(MoHistChunk) * MO_HIST_OCTAVES);
	pool.used = 0;
	for (int i = 0; i < nd; i++)
	{
		double		ms;

		if (dnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("durations must not contain NULL")));
		ms = DatumGetFloat8(dvals[i]);
		if (isnan(ms) || ms < 0 || ms > 1e12)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("duration %g ms is out of range", ms),
					 errhint("Durations are milliseconds between 0 and 1e12.")));
		(void) mo_shist_add(&hist, pool.chunks, (uint64) (ms * NS_PER_MS),
							local_alloc, &pool);
		min_ms = Min(min_ms, ms);
		max_ms = Max(max_ms, ms);
	}

	snap = palloc(sizeof(MoHistSnap));
	mo_shist_snapshot(&hist, pool.chunks, snap);
	result = palloc(sizeof(Datum) * Max(nf, 1));
	for (int k = 0; k < nf; k++)
	{
		double		f;
		double		est;

		if (fnulls[k])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("fractions must not contain NULL")));
		f = DatumGetFloat8(fvals[k]);
		if (isnan(f) || f < 0 || f > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("fraction %g is not between 0 and 1", f)));
		mo_hist_snap_percentiles(snap, &f, 1, min_ms, max_ms, &est);
		result[k] = Float8GetDatum(est);
	}

	PG_RETURN_ARRAYTYPE_P(construct_array(result, nf, FLOAT8OID, 8,
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
