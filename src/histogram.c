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
 * first use).
 *
 * Memory per histogram (see histogram.h for the bucket scheme):
 *	per statement	770 buckets x 4 bytes = 3,080 bytes, error <= 2.08 %
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

	for (int k = 0; k < nfractions; k++)
	{
		uint64		rank;
		double		est;

		if (total == 0)
		{
			out[k] = get_float8_nan();
			continue;
		}
		rank = (uint64) ceil(fractions[k] * (double) total);
		if (rank < 1)
			rank = 1;
		if (rank > total)
			rank = total;

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
		if (est < min_ms)
			est = min_ms;
		if (est > max_ms)
			est = max_ms;
		out[k] = est;
	}
}

/*
 * mo_hist_to_prom - fold a per-statement histogram (MO_HIST_FINE_SUB) into
 * non-cumulative counts on the Prometheus bounds: out[MO_PROM_NBUCKETS].
 * A fine bucket goes whole to the first bound at or above its midpoint;
 * the open-ended last bucket goes to +Inf.  Counts are scaled back by
 * 2^shift (see histogram.h).
 */
void
mo_hist_to_prom(const uint32 *fine, uint8 shift, uint64 *out)
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
	for (int b = 0; b < MO_HIST_FINE_NBUCKETS; b++)
		out[fine_to_prom[b]] += (uint64) fine[b] << shift;
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

PG_FUNCTION_INFO_V1(moltres_ops_histogram_percentiles);

/*
 * moltres_ops_histogram_percentiles - what the per-statement histogram
 * reports for the given durations (ms) at the given fractions.  Lets a test
 * or a sceptical operator compare the estimates with exact percentiles.
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
	uint32	   *hist;
	uint8		shift = 0;
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

	hist = palloc0(sizeof(uint32) * MO_HIST_FINE_NBUCKETS);
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
		mo_hist_add(hist, MO_HIST_FINE_NBUCKETS,
					mo_hist_bucket((uint64) (ms * NS_PER_MS), MO_HIST_FINE_SUB),
					&shift);
		min_ms = Min(min_ms, ms);
		max_ms = Max(max_ms, ms);
	}

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
		mo_hist_percentiles(hist, MO_HIST_FINE_SUB, &f, 1, min_ms, max_ms, &est);
		result[k] = Float8GetDatum(est);
	}

	PG_RETURN_ARRAYTYPE_P(construct_array(result, nf, FLOAT8OID, 8,
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
