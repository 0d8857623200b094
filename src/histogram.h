/*-------------------------------------------------------------------------
 *
 * histogram.h
 *	  Log-linear latency histograms with a bounded relative error.
 *
 * A duration in nanoseconds falls in one of three kinds of bucket:
 *
 *	- bucket 0 holds everything below 2^MO_HIST_MIN_EXP ns (1.024 us), the
 *	  resolution floor;
 *	- each octave [2^e, 2^(e+1)) for MO_HIST_MIN_EXP <= e < MO_HIST_MAX_EXP
 *	  is cut into `sub` buckets of equal width 2^e / sub;
 *	- the last bucket holds everything from 2^MO_HIST_MAX_EXP ns (73.3 min)
 *	  up.
 *
 * A percentile is reported as the midpoint of the bucket that holds it, so
 * its error relative to the true value is at most 1 / (2 * sub): 2.08 % for
 * the per-statement histograms (sub = 24) and 6.25 % for the small
 * histograms of the latency windows (sub = 8).  Estimates are clamped to
 * the observed minimum and maximum, which also bounds the two open-ended
 * buckets.  Finding a bucket costs one count-leading-zeros, one multiply and
 * a few shifts; no floating point and no loop.
 *
 * Counts are uint32.  When one bucket would pass 2^31 every bucket of that
 * histogram is halved and its `shift` incremented, so the shape (and thus
 * every percentile) survives; reported counts are then multiplied back by
 * 2^shift and are exact to within 2^shift.
 *
 * Per-statement histograms are sparse (MoSparseHist): a statement's
 * durations rarely span more than a few octaves, so its fine buckets are
 * kept one octave at a time in chunks of MO_HIST_FINE_SUB counters (104
 * bytes) taken from a pool the caller owns, linked in ascending octave
 * order; buckets 0 and the last are two counters of the histogram itself.
 * The resolution is the same as a dense histogram's, so the error bound
 * above holds for every duration the histogram holds.  Adding a duration to
 * an octave looked up before (the common case: a statement's durations
 * rarely span more than MO_HIST_CACHE consecutive octaves, which a
 * direct-mapped cache in the histogram covers) is the bucket arithmetic,
 * one compare and one increment; another octave walks the list (at most
 * MO_HIST_OCTAVES links) and, the first time, takes a chunk from the
 * pool.  When the pool has none left the duration is left out of the
 * histogram (the caller counts it) rather than counted at a coarser
 * resolution: percentiles are then those of the durations held, within the
 * bound of their exact values.  The caller holds whatever protects a
 * histogram and its chunks (query_stats.c: the entry's spinlock) and
 * whatever protects its pool's free list (alloc's business).  Readers copy
 * the chunks in use into a MoHistSnap.
 *
 * For Prometheus the same durations are also counted on a fixed, coarse
 * set of bucket bounds (MO_PROM_BOUNDS, seconds, "le" in Prometheus terms):
 * exactly, by comparison, for the per-database totals of latency.c, and
 * derived from a fine histogram for a statement (mo_hist_snap_to_prom:
 * each fine bucket goes to the first bound at or above its midpoint, so a
 * duration within 2.1 % of a bound may be counted on the other side of it).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_HISTOGRAM_H
#define MO_HISTOGRAM_H

#include "port/pg_bitutils.h"

#define MO_HIST_MIN_EXP		10	/* 2^10 ns = 1.024 us */
#define MO_HIST_MAX_EXP		42	/* 2^42 ns = 4398 s = 73.3 min */
#define MO_HIST_OCTAVES		(MO_HIST_MAX_EXP - MO_HIST_MIN_EXP)

/* Per-statement histograms: 770 buckets (sparse), error <= 2.08 %. */
#define MO_HIST_FINE_SUB	24
#define MO_HIST_FINE_NBUCKETS	(MO_HIST_OCTAVES * MO_HIST_FINE_SUB + 2)

/* Latency-window histograms: 258 buckets, 1032 bytes, error <= 6.25 %. */
#define MO_HIST_COARSE_SUB	8
#define MO_HIST_COARSE_NBUCKETS (MO_HIST_OCTAVES * MO_HIST_COARSE_SUB + 2)

#define MO_HIST_HALVE_AT	((uint32) 1 << 31)

/*
 * mo_hist_bucket - the bucket of a duration of `ns` nanoseconds in a
 * histogram with `sub` buckets per octave.  Inline: it is on the hot path.
 */
static inline int
mo_hist_bucket(uint64 ns, int sub)
{
	int			e;

	if (ns < (UINT64CONST(1) << MO_HIST_MIN_EXP))
		return 0;
	e = pg_leftmost_one_pos64(ns);
	if (e >= MO_HIST_MAX_EXP)
		return MO_HIST_OCTAVES * sub + 1;
	return 1 + (e - MO_HIST_MIN_EXP) * sub +
		(int) (((ns - (UINT64CONST(1) << e)) * (uint64) sub) >> e);
}

/*
 * mo_hist_add - count one duration in bucket b of hist (nbuckets long).
 * The caller holds whatever protects hist.
 */
static inline void
mo_hist_add(uint32 *hist, int nbuckets, int b, uint8 *shift)
{
	if (unlikely(++hist[b] >= MO_HIST_HALVE_AT))
	{
		for (int i = 0; i < nbuckets; i++)
			hist[i] >>= 1;
		(*shift)++;
	}
}

/*
 * One octave of a sparse histogram: the counts of its MO_HIST_FINE_SUB
 * buckets.  `next` links the chunks of one histogram in ascending octave
 * order (-1 ends the list), or the free chunks of a pool.
 */
typedef struct MoHistChunk
{
	int32		next;
	uint8		octave;			/* 0 .. MO_HIST_OCTAVES - 1 */
	uint32		count[MO_HIST_FINE_SUB];
} MoHistChunk;

/*
 * A per-statement histogram: its two edge buckets, its chunk list, and a
 * direct-mapped cache of the chunks of MO_HIST_CACHE consecutive octaves.
 */
#define MO_HIST_CACHE		4
#define MO_HIST_NO_OCTAVE	0xFF

typedef struct MoSparseHist
{
	uint32		under;			/* bucket 0: below 2^MO_HIST_MIN_EXP ns */
	uint32		over;			/* the last bucket: 2^MO_HIST_MAX_EXP ns up */
	int32		head;			/* chunk of the lowest octave; -1: none */
	/* the chunks looked up last, by octave % MO_HIST_CACHE */
	int32		cache_chunk[MO_HIST_CACHE];
	uint8		cache_octave[MO_HIST_CACHE];	/* MO_HIST_NO_OCTAVE: none */
	uint8		shift;			/* times the histogram was halved */
	uint8		nchunks;		/* chunks in the list */
} MoSparseHist;

/*
 * Where a sparse histogram gets a chunk: the index of a free chunk of the
 * pool, or -1 when there is none.  h is the histogram asking (so that an
 * allocator can give a histogram's first chunk from a reserve).
 */
typedef int32 (*MoHistChunkAlloc) (const MoSparseHist *h, void *arg);

/* A copy of a sparse histogram: its octaves in use, ascending. */
typedef struct MoHistSnap
{
	uint32		under;
	uint32		over;
	uint8		shift;
	int			noctaves;
	uint8		octave[MO_HIST_OCTAVES];
	uint32		count[MO_HIST_OCTAVES][MO_HIST_FINE_SUB];
} MoHistSnap;

/* Bytes of a MoHistSnap that hold n octaves (for copies that stop there). */
#define MO_HIST_SNAP_ROW	(sizeof(uint32) * MO_HIST_FINE_SUB)

extern uint32 *mo_shist_counter(MoSparseHist *h, MoHistChunk *pool,
								int octave, MoHistChunkAlloc alloc, void *arg);
extern void mo_shist_halve(MoSparseHist *h, MoHistChunk *pool);

static inline void
mo_shist_init(MoSparseHist *h)
{
	h->under = h->over = 0;
	h->head = -1;
	for (int k = 0; k < MO_HIST_CACHE; k++)
	{
		h->cache_chunk[k] = -1;
		h->cache_octave[k] = MO_HIST_NO_OCTAVE;
	}
	h->shift = 0;
	h->nchunks = 0;
}

/*
 * mo_shist_add - count a duration of `ns` nanoseconds in h, whose chunks
 * live in pool.  False when it needed a chunk and alloc had none (the
 * duration is then not counted).  The caller holds whatever protects h and
 * its chunks.  Inline: it is on the hot path.
 */
static inline bool
mo_shist_add(MoSparseHist *h, MoHistChunk *pool, uint64 ns,
			 MoHistChunkAlloc alloc, void *arg)
{
	uint32	   *cnt;

	if (ns < (UINT64CONST(1) << MO_HIST_MIN_EXP))
		cnt = &h->under;
	else
	{
		int			e = pg_leftmost_one_pos64(ns);

		if (e >= MO_HIST_MAX_EXP)
			cnt = &h->over;
		else
		{
			int			o = e - MO_HIST_MIN_EXP;
			int			j = (int) (((ns - (UINT64CONST(1) << e)) *
									(uint64) MO_HIST_FINE_SUB) >> e);

			int			k = (unsigned int) o % MO_HIST_CACHE;

			if (likely(h->cache_octave[k] == o))
				cnt = &pool[h->cache_chunk[k]].count[j];
			else
			{
				cnt = mo_shist_counter(h, pool, o, alloc, arg);
				if (cnt == NULL)
					return false;
				cnt += j;
			}
		}
	}
	if (unlikely(++(*cnt) >= MO_HIST_HALVE_AT))
		mo_shist_halve(h, pool);
	return true;
}

extern void mo_shist_snapshot(const MoSparseHist *h, const MoHistChunk *pool,
							  MoHistSnap *out);
extern uint32 mo_hist_snap_bucket(const MoHistSnap *s, int i, int *b);
extern int	mo_hist_snap_nbuckets(const MoHistSnap *s);
extern void mo_hist_snap_percentiles(const MoHistSnap *s,
									 const double *fractions, int nfractions,
									 double min_ms, double max_ms, double *out);
extern void mo_hist_snap_to_prom(const MoHistSnap *s, uint64 *out);

/*
 * Prometheus bucket bounds in nanoseconds: 0.5 ms to 60 s, 16 bounds, and
 * the +Inf bucket after them.  Fixed: changing them changes every series.
 */
#define MO_PROM_NBOUNDS		16
#define MO_PROM_NBUCKETS	(MO_PROM_NBOUNDS + 1)
#define MO_PROM_BOUNDS_NS \
	{500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000, \
	 100000000, 250000000, 500000000, INT64CONST(1000000000), \
	 INT64CONST(2500000000), INT64CONST(5000000000), \
	 INT64CONST(10000000000), INT64CONST(30000000000), \
	 INT64CONST(60000000000)}

extern const int64 mo_prom_bounds_ns[MO_PROM_NBOUNDS];

/*
 * mo_prom_bucket - the Prometheus bucket of a duration: the first bound it
 * does not exceed, MO_PROM_NBOUNDS for +Inf.  Most statements are fast, so
 * a linear scan from the bottom ends after a compare or two.
 */
static inline int
mo_prom_bucket(int64 ns)
{
	int			i = 0;

	while (i < MO_PROM_NBOUNDS && ns > mo_prom_bounds_ns[i])
		i++;
	return i;
}

extern Datum mo_prom_bounds_datum(void);
extern Datum mo_prom_cumulative_datum(const uint64 *counts, uint64 *total);
extern double mo_hist_bucket_lower_ms(int b, int sub);
extern double mo_hist_bucket_upper_ms(int b, int sub);
extern void mo_hist_percentiles(const uint32 *hist, int sub,
								const double *fractions, int nfractions,
								double min_ms, double max_ms, double *out);

#endif							/* MO_HISTOGRAM_H */
