/*-------------------------------------------------------------------------
 *
 * worker_common.c
 *	  What the background workers of moltres_ops share: getting back on
 *	  their feet after one of their own statements failed.
 *
 * No shared state.  Runs in the index workers and the health worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/timeout.h"

#include "moltres_ops.h"

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
