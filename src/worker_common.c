/*-------------------------------------------------------------------------
 *
 * worker_common.c
 *	  What the background workers of moltres_ops share: how they are
 *	  described to the postmaster, and getting back on their feet after one
 *	  of their own statements failed.
 *
 * No shared state.  mo_worker_describe runs where a worker is registered
 * (the postmaster at start, a backend for an index job); mo_worker_recover
 * in the index workers and the health worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"
#include "utils/timeout.h"

#include "moltres_ops.h"

/*
 * mo_worker_describe - fill *worker for one of the library's workers: the
 * entry point function (in this library), its type as pg_stat_activity
 * shows it (also its name, which the caller may make more precise), its
 * flags, when it starts and how soon it is restarted after a crash.
 */
void
mo_worker_describe(BackgroundWorker *worker, const char *function,
				   const char *type, int flags, int start, int restart_s)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = flags;
	worker->bgw_start_time = (BgWorkerStartTime) start;
	worker->bgw_restart_time = restart_s;
	strlcpy(worker->bgw_library_name, MO_EXTNAME, BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker->bgw_name, type, BGW_MAXLEN);
	strlcpy(worker->bgw_type, type, BGW_MAXLEN);
}

/*
 * mo_worker_recover - called from a worker's PG_CATCH around its own
 * statement: returns the error (copied into cxt, the caller's context on
 * return) and leaves the process ready for its next transaction, with no
 * timeout armed and no cancel pending.  Only for errors: a FATAL (SIGTERM,
 * postmaster death) never reaches a PG_CATCH.
 */
ErrorData *
mo_worker_recover(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	disable_all_timeouts(false);
	QueryCancelPending = false;
	AbortCurrentTransaction();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(cxt);
	return edata;
}
