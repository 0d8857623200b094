/*-------------------------------------------------------------------------
 *
 * connections.c
 *	  Connection lifecycle counters: connects, disconnects, authentication
 *	  failures, rejections for lack of connection slots, and a histogram of
 *	  session durations, per (database, user, application_name), which
 *	  PostgreSQL itself does not keep.  The views session_stats and
 *	  pool_status read them; the live views over pg_stat_activity are plain
 *	  SQL (sql/install/20_connections.sql).
 *
 * What is counted, and where it is seen.  Everything below runs in the new
 * backend process; nothing runs in the postmaster but the hook installation.
 * Only client backends count (MyBackendType B_BACKEND and not a WAL sender):
 * background workers and autovacuum never authenticate, and WAL senders are
 * skipped explicitly.
 *
 *	- ClientAuthentication_hook, called after the authentication method ran.
 *	  STATUS_ERROR counts an authentication failure.  STATUS_EOF (the client
 *	  hung up when asked for a password, as libpq does before prompting for
 *	  one) counts nothing: the server does not log it either.  STATUS_OK
 *	  registers, in this backend, a before_shmem_exit callback and a
 *	  transaction callback (callbacks registered in the postmaster are
 *	  dropped at fork), and remembers the key.
 *	- The transaction callback sees the commit of the start-up transaction
 *	  that closes InitPostgres: the session is established, a connect is
 *	  counted.  A login refused after authentication (role or database
 *	  connection limit, reserved slots, role without LOGIN) never gets
 *	  there, so connects - disconnects is the number of live sessions.
 *	- The before_shmem_exit callback counts a disconnect of an established
 *	  session and adds its duration (since MyStartTimestamp, i.e. the same
 *	  origin as pg_stat_activity.backend_start) to the histogram.  That is
 *	  the log-linear histogram of histogram.h with 8 buckets per octave,
 *	  fed microseconds instead of nanoseconds: it then spans 1 ms to 51
 *	  days, and its millisecond estimates read as seconds.
 *	- emit_log_hook sees the FATAL of a login that fails before the
 *	  session is established: SQLSTATE 53300 counts a rejection ("sorry,
 *	  too many clients already", "remaining connection slots are
 *	  reserved", "too many connections for role/database"); class 28 and
 *	  42501 count an authentication failure (pg_hba.conf reject, role may
 *	  not log in or does not exist, no CONNECT privilege) unless the hook
 *	  already counted it.  It only looks when the message goes to the
 *	  server log (log_min_messages at FATAL or below, the default).
 *
 * The key is what the client sent in its startup packet: database, user
 * and application_name (port->application_name; empty when not sent).
 * A later SET application_name does not move a session to another row:
 * the connect, the disconnect and the duration stay together, and failed
 * logins, which never run SET, are keyed the same way.
 *
 * Shared state and locking.  One area, "moltres_ops connections", holds a
 * fixed table of moltres_ops.max_session_stats entries plus entry 0, the
 * "other" row that takes the events of keys that no longer fit (a full
 * table never fails a login), an open-addressing index over it, and a
 * 60-slot ring of per-second connect counts for connects_per_min.  One
 * LWLock protects all of it: writers take it exclusively for one index
 * probe and a few increments, once or twice per connection (a login is not
 * a hot path); readers take it shared just long enough to copy.  A backend
 * refused with "sorry, too many clients already" has no PGPROC and cannot
 * sleep on an LWLock: it tries LWLockConditionalAcquire for a bounded time
 * and otherwise counts the rejection in an atomic counter that the views
 * add to the "other" row.  Entries are never evicted; reset_session_stats()
 * clears the table.  Counters live in shared memory only: they start at
 * zero at server start.
 *
 * Nothing here may fail a login: no code path holds the lock across
 * anything that can raise, the registration in the authentication hook
 * runs under PG_TRY and, should it fail, leaves the session untracked, and
 * the log hook only reads the error it is shown.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "histogram.h"
#include "moltres_ops.h"
#include "shmem.h"

#define CONN_AREA			"connections"

/* Session durations: 8 buckets per octave, within 6.25 % (histogram.h). */
#define HIST_SUB			MO_HIST_COARSE_SUB
#define HIST_BUCKETS		MO_HIST_COARSE_NBUCKETS

#define RING_SECONDS		60

/* Spins of a backend without PGPROC, 1 ms apart, before it gives up. */
#define NOPROC_LOCK_TRIES	100

typedef struct SessKey
{
	char		datname[NAMEDATALEN];
	char		usename[NAMEDATALEN];
	char		appname[NAMEDATALEN];
} SessKey;

typedef struct SessEntry
{
	SessKey		key;
	int64		connects;
	int64		disconnects;
	int64		auth_failures;
	int64		rejected;
	int64		session_us;		/* summed durations of ended sessions */
	int64		min_us;			/* shortest and longest ended session */
	int64		max_us;
	uint8		hist_shift;		/* counts are hist << hist_shift */
	uint32		hist[HIST_BUCKETS];	/* durations in microseconds */
} SessEntry;

typedef struct ConnShared
{
	int			capacity;		/* named entries; entry 0 is "other" */
	int			nslots;			/* index size, a power of two */
	int			nentries;		/* named entries in use */
	TimestampTz stats_reset;
	pg_atomic_uint64 rejected_nolock;	/* rejections not attributed */
	int64		ring_second[RING_SECONDS];
	int64		ring_connects[RING_SECONDS];
	/* then: uint32 slots[nslots]; SessEntry entries[capacity + 1] */
} ConnShared;

typedef enum SessEvent
{
	SESS_CONNECT,
	SESS_DISCONNECT,
	SESS_AUTH_FAILURE,
	SESS_REJECTED
} SessEvent;

/* Where this backend's login stands; backend-local. */
typedef enum SessState
{
	SESS_STARTING,				/* before the authentication hook */
	SESS_AUTHENTICATED,			/* authenticated, start-up not finished */
	SESS_ESTABLISHED,			/* connect counted */
	SESS_DONE					/* failure or disconnect counted, or
								 * untracked */
} SessState;

static ConnShared *conn = NULL;
static uint32 *conn_slots = NULL;
static SessEntry *conn_entries = NULL;
static LWLock *conn_lock = NULL;

static SessState sess_state = SESS_STARTING;
static SessKey sess_key;

static ClientAuthentication_hook_type prev_ClientAuthentication = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

static void mo_ClientAuthentication(Port *port, int status);
static void mo_emit_log_hook(ErrorData *edata);

static int
conn_nslots(void)
{
	return (int) pg_nextpower2_32((uint32) mo_max_session_stats * 2);
}

static Size
conn_shmem_size(void)
{
	Size		size;

	size = MAXALIGN(sizeof(ConnShared));
	size = add_size(size, MAXALIGN(mul_size(conn_nslots(), sizeof(uint32))));
	size = add_size(size, mul_size(mo_max_session_stats + 1, sizeof(SessEntry)));
	return size;
}

static void
conn_shmem_startup(void *area, bool found)
{
	char	   *p = (char *) area;

	conn = (ConnShared *) p;
	p += MAXALIGN(sizeof(ConnShared));
	conn_slots = (uint32 *) p;
	p += MAXALIGN(mul_size(conn_nslots(), sizeof(uint32)));
	conn_entries = (SessEntry *) p;
	conn_lock = &(mo_shmem_locks(CONN_AREA)[0].lock);

	if (found)
		return;

	memset(area, 0, conn_shmem_size());
	conn->capacity = mo_max_session_stats;
	conn->nslots = conn_nslots();
	conn->nentries = 0;
	conn->stats_reset = GetCurrentTimestamp();
	pg_atomic_init_u64(&conn->rejected_nolock, 0);
}

/*
 * mo_connections_init - register the shared area and install the hooks.
 * Called from _PG_init while shared_preload_libraries is processed.
 */
void
mo_connections_init(void)
{
	mo_shmem_register(CONN_AREA, conn_shmem_size, conn_shmem_startup, 1);

	prev_ClientAuthentication = ClientAuthentication_hook;
	ClientAuthentication_hook = mo_ClientAuthentication;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = mo_emit_log_hook;
}

/*
 * sess_percentiles - p50, p95 and p99 of a duration histogram in
 * milliseconds; false when no session ended.
 */
static bool
sess_percentiles(const uint32 *hist, int64 min_us, int64 max_us, double *out)
{
	static const double fractions[3] = {0.50, 0.95, 0.99};

	/* microseconds fed as nanoseconds: the "ms" that come back are s */
	mo_hist_percentiles(hist, HIST_SUB, fractions, 3,
						(double) min_us / 1000000.0,
						(double) max_us / 1000000.0, out);
	if (isnan(out[0]))
		return false;
	for (int i = 0; i < 3; i++)
		out[i] *= 1000.0;
	return true;
}

/* The key of a login, from its startup packet; false when there is none. */
static bool
sess_key_from_port(Port *port, SessKey *key)
{
	memset(key, 0, sizeof(SessKey));
	if (port == NULL || port->user_name == NULL || port->user_name[0] == '\0')
		return false;
	strlcpy(key->usename, port->user_name, NAMEDATALEN);
	if (port->database_name != NULL)
		strlcpy(key->datname, port->database_name, NAMEDATALEN);
	/* the server made it plain ASCII, so cutting it cannot split a char */
	if (port->application_name != NULL)
		strlcpy(key->appname, port->application_name, NAMEDATALEN);
	return true;
}

static bool
is_client_backend(void)
{
	return MyProcPort != NULL && MyBackendType == B_BACKEND && !am_walsender;
}

/*
 * conn_find - the entry of a key, added if there is room, else the
 * "other" entry.  Caller holds conn_lock exclusively.  The index is at least
 * twice the table, so the probe always ends on a match or an empty slot.
 */
static SessEntry *
conn_find(const SessKey *key)
{
	uint32		mask = (uint32) conn->nslots - 1;
	uint32		i = hash_bytes((const unsigned char *) key, sizeof(SessKey)) & mask;

	for (;;)
	{
		uint32		idx = conn_slots[i];

		if (idx == 0)
		{
			SessEntry  *e;

			if (conn->nentries >= conn->capacity)
				return &conn_entries[0];
			idx = (uint32) ++conn->nentries;
			e = &conn_entries[idx];
			memset(e, 0, sizeof(SessEntry));
			memcpy(&e->key, key, sizeof(SessKey));
			conn_slots[i] = idx;
			return e;
		}
		if (memcmp(&conn_entries[idx].key, key, sizeof(SessKey)) == 0)
			return &conn_entries[idx];
		i = (i + 1) & mask;
	}
}

/*
 * conn_record - count one event.  Never raises: the lock is taken in the
 * normal way by a backend with a PGPROC, and conditionally, for a bounded
 * time, by one without (only a "too many clients" rejection gets here
 * without one, and then the count falls back to an atomic).
 */
static void
conn_record(const SessKey *key, SessEvent event, int64 duration_us)
{
	TimestampTz now = GetCurrentTimestamp();
	SessEntry  *e;

	if (conn == NULL)
		return;

	if (MyProc != NULL)
		LWLockAcquire(conn_lock, LW_EXCLUSIVE);
	else
	{
		int			tries = 0;

		while (!LWLockConditionalAcquire(conn_lock, LW_EXCLUSIVE))
		{
			if (++tries >= NOPROC_LOCK_TRIES)
			{
				if (event == SESS_REJECTED)
					pg_atomic_fetch_add_u64(&conn->rejected_nolock, 1);
				return;
			}
			pg_usleep(1000L);
		}
	}

	e = conn_find(key);
	switch (event)
	{
		case SESS_CONNECT:
			{
				int64		second = now / USECS_PER_SEC;
				int			slot = (int) (second % RING_SECONDS);

				e->connects++;
				if (conn->ring_second[slot] != second)
				{
					conn->ring_second[slot] = second;
					conn->ring_connects[slot] = 0;
				}
				conn->ring_connects[slot]++;
				break;
			}
		case SESS_DISCONNECT:
			duration_us = Max(duration_us, 0);
			if (e->disconnects++ == 0 || duration_us < e->min_us)
				e->min_us = duration_us;
			if (duration_us > e->max_us)
				e->max_us = duration_us;
			e->session_us += duration_us;
			mo_hist_add(e->hist, HIST_BUCKETS,
						mo_hist_bucket((uint64) duration_us, HIST_SUB),
						&e->hist_shift);
			break;
		case SESS_AUTH_FAILURE:
			e->auth_failures++;
			break;
		case SESS_REJECTED:
			e->rejected++;
			break;
	}

	LWLockRelease(conn_lock);
}

/* Before shared memory goes away: the end of an established session. */
static void
sess_exit_callback(int code, Datum arg)
{
	if (sess_state != SESS_ESTABLISHED)
		return;
	sess_state = SESS_DONE;
	conn_record(&sess_key, SESS_DISCONNECT,
				GetCurrentTimestamp() - MyStartTimestamp);
}

/*
 * The first commit after authentication is the one that ends InitPostgres:
 * from here on the session is established.  Later transactions pay one
 * comparison.
 */
static void
sess_xact_callback(XactEvent event, void *arg)
{
	if (sess_state != SESS_AUTHENTICATED ||
		(event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT))
		return;
	sess_state = SESS_ESTABLISHED;
	conn_record(&sess_key, SESS_CONNECT, 0);
}

/*
 * mo_ClientAuthentication - count a failed authentication, or arm the
 * per-backend callbacks of a successful one; then chain.  Our part runs
 * first so that a failure is visible while a later hook (auth_delay) sleeps.
 */
static void
mo_ClientAuthentication(Port *port, int status)
{
	if (conn != NULL && sess_state == SESS_STARTING && is_client_backend())
	{
		SessKey		key;

		if (!sess_key_from_port(port, &key))
			sess_state = SESS_DONE;
		else if (status == STATUS_OK)
		{
			static bool registered = false;
			MemoryContext oldcontext = CurrentMemoryContext;

			memcpy(&sess_key, &key, sizeof(SessKey));
			PG_TRY();
			{
				if (!registered)
				{
					before_shmem_exit(sess_exit_callback, (Datum) 0);
					RegisterXactCallback(sess_xact_callback, NULL);
					registered = true;
				}
				sess_state = SESS_AUTHENTICATED;
			}
			PG_CATCH();
			{
				/* leave this session untracked rather than fail the login */
				MemoryContextSwitchTo(oldcontext);
				FlushErrorState();
				sess_state = SESS_DONE;
			}
			PG_END_TRY();
		}
		else if (status == STATUS_ERROR)
		{
			sess_state = SESS_DONE;
			conn_record(&key, SESS_AUTH_FAILURE, 0);
		}
	}

	if (prev_ClientAuthentication)
		prev_ClientAuthentication(port, status);
}

/*
 * mo_emit_log_hook - count a login that dies before its session is
 * established.  Every process calls this for every logged message, so the
 * first test is the cheapest one.
 */
static void
mo_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel == FATAL && conn != NULL &&
		(sess_state == SESS_STARTING || sess_state == SESS_AUTHENTICATED) &&
		is_client_backend())
	{
		SessEvent	event;
		bool		counted = true;

		if (edata->sqlerrcode == ERRCODE_TOO_MANY_CONNECTIONS)
			event = SESS_REJECTED;
		else if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
				 ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION ||
				 edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
			event = SESS_AUTH_FAILURE;
		else
			counted = false;

		if (counted)
		{
			SessKey		key;

			if (sess_state == SESS_AUTHENTICATED)
				conn_record(&sess_key, event, 0);
			else if (sess_key_from_port(MyProcPort, &key))
				conn_record(&key, event, 0);
		}
		sess_state = SESS_DONE;
	}

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * conn_snapshot - a private copy of the table (entry 0 first) and the
 * connect ring, taken under the shared lock.
 */
static SessEntry *
conn_snapshot(int *nentries, ConnShared *header)
{
	SessEntry  *copy;
	int			n;

	LWLockAcquire(conn_lock, LW_SHARED);
	n = conn->nentries + 1;
	copy = palloc(sizeof(SessEntry) * n);
	memcpy(copy, conn_entries, sizeof(SessEntry) * n);
	memcpy(header, conn, sizeof(ConnShared));
	LWLockRelease(conn_lock);

	copy[0].rejected += (int64) pg_atomic_read_u64(&conn->rejected_nolock);
	*nentries = n;
	return copy;
}

PG_FUNCTION_INFO_V1(moltres_ops_session_stats);

/*
 * moltres_ops_session_stats - one row per (database, user, application)
 * seen since the last reset; the "other" row, with NULL names, only when
 * something overflowed into it.
 */
Datum
moltres_ops_session_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ConnShared	header;
	SessEntry  *entries;
	int			n;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	entries = conn_snapshot(&n, &header);

	for (int i = 0; i < n; i++)
	{
		SessEntry  *e = &entries[i];
		Datum		values[11];
		bool		nulls[11];
		double		pct[3];
		NameData	dat;
		NameData	usr;

		if (i == 0 && e->connects == 0 && e->disconnects == 0 &&
			e->auth_failures == 0 && e->rejected == 0)
			continue;

		memset(nulls, 0, sizeof(nulls));
		if (i == 0)
			nulls[0] = nulls[1] = nulls[2] = true;
		else
		{
			namestrcpy(&dat, e->key.datname);
			namestrcpy(&usr, e->key.usename);
			values[0] = NameGetDatum(&dat);
			values[1] = NameGetDatum(&usr);
			values[2] = CStringGetTextDatum(e->key.appname);
		}
		values[3] = Int64GetDatum(e->connects);
		values[4] = Int64GetDatum(e->disconnects);
		values[5] = Int64GetDatum(e->auth_failures);
		values[6] = Int64GetDatum(e->rejected);

		if (sess_percentiles(e->hist, e->min_us, e->max_us, pct))
		{
			for (int q = 0; q < 3; q++)
				values[7 + q] = Float8GetDatum(pct[q]);
		}
		else
			nulls[7] = nulls[8] = nulls[9] = true;
		values[10] = Float8GetDatum((double) e->session_us / 1000000.0);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_session_totals);

/*
 * moltres_ops_session_totals - the instance-wide sums of session_stats,
 * connects in the last 60 seconds, and percentiles over every session.
 */
Datum
moltres_ops_session_totals(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	ConnShared	header;
	SessEntry  *entries;
	int			n;
	int64		connects = 0,
				disconnects = 0,
				failures = 0,
				rejected = 0,
				recent = 0;
	int64		now_second;
	int64		min_us = 0,
				max_us = 0;
	bool		any_ended = false;
	uint64	   *sum;
	uint32	   *hist;
	uint64		top = 0;
	Datum		values[8];
	bool		nulls[8];
	double		pct[3];

	mo_require_shmem();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	entries = conn_snapshot(&n, &header);
	sum = palloc0(sizeof(uint64) * HIST_BUCKETS);
	for (int i = 0; i < n; i++)
	{
		SessEntry  *e = &entries[i];

		connects += e->connects;
		disconnects += e->disconnects;
		failures += e->auth_failures;
		rejected += e->rejected;
		if (e->disconnects > 0)
		{
			min_us = any_ended ? Min(min_us, e->min_us) : e->min_us;
			max_us = any_ended ? Max(max_us, e->max_us) : e->max_us;
			any_ended = true;
		}
		for (int b = 0; b < HIST_BUCKETS; b++)
			sum[b] += (uint64) e->hist[b] << e->hist_shift;
	}

	/* back into 32-bit counts, keeping the shape, for the percentiles */
	for (int b = 0; b < HIST_BUCKETS; b++)
		top = Max(top, sum[b]);
	hist = palloc(sizeof(uint32) * HIST_BUCKETS);
	for (int shift = 0;; shift++)
	{
		if ((top >> shift) <= PG_UINT32_MAX)
		{
			for (int b = 0; b < HIST_BUCKETS; b++)
				hist[b] = (uint32) (sum[b] >> shift);
			break;
		}
	}

	now_second = GetCurrentTimestamp() / USECS_PER_SEC;
	for (int s = 0; s < RING_SECONDS; s++)
	{
		if (header.ring_second[s] > now_second - RING_SECONDS &&
			header.ring_second[s] <= now_second)
			recent += header.ring_connects[s];
	}

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(connects);
	values[1] = Int64GetDatum(disconnects);
	values[2] = Int64GetDatum(failures);
	values[3] = Int64GetDatum(rejected);
	values[4] = Float8GetDatum((double) recent);
	if (any_ended && sess_percentiles(hist, min_us, max_us, pct))
	{
		values[5] = Float8GetDatum(pct[0]);
		values[6] = Float8GetDatum(pct[1]);
	}
	else
		nulls[5] = nulls[6] = true;
	values[7] = TimestampTzGetDatum(header.stats_reset);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

PG_FUNCTION_INFO_V1(moltres_ops_reset_session_stats);

/*
 * moltres_ops_reset_session_stats - forget every counter.  Sessions that
 * are open at the reset count their disconnect afterwards, without a
 * connect, as pg_stat_statements counts statements already running.
 */
Datum
moltres_ops_reset_session_stats(PG_FUNCTION_ARGS)
{
	mo_require_shmem();

	LWLockAcquire(conn_lock, LW_EXCLUSIVE);
	memset(conn_slots, 0, sizeof(uint32) * conn->nslots);
	memset(&conn_entries[0], 0, sizeof(SessEntry));
	conn->nentries = 0;
	memset(conn->ring_second, 0, sizeof(conn->ring_second));
	memset(conn->ring_connects, 0, sizeof(conn->ring_connects));
	pg_atomic_write_u64(&conn->rejected_nolock, 0);
	conn->stats_reset = GetCurrentTimestamp();
	LWLockRelease(conn_lock);

	PG_RETURN_VOID();
}
