/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL major versions that
 *	  moltres_ops supports (14 to 18) is absorbed here, and nowhere else
 *	  (except the few includes that only one file needs, in one guarded
 *	  block there).  15 and 18 are built and tested by `make test` (17 too
 *	  when Debian serves its source); 14 and 16 are only expected to build.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_COMPAT_H
#define MO_COMPAT_H

#if PG_VERSION_NUM < 140000
#error "moltres_ops requires PostgreSQL 14 or later"
#endif

/*
 * PostgreSQL 15 added shmem_request_hook; before it, shared memory and
 * LWLock tranches were requested directly from _PG_init.
 */
#if PG_VERSION_NUM >= 150000
#define MO_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* MarkGUCPrefixReserved() replaced EmitWarningsOnPlaceholders() in 15. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * InitMaterializedSRF() arrived in 15 (as SetSingleFuncCall, renamed in a
 * minor release); 14 gets the same set-up written out.
 */
#if PG_VERSION_NUM < 150000
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"

static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcontext);
}
#endif

/*
 * An instr_time as nanoseconds.  PostgreSQL 16 made instr_time an integer
 * of nanoseconds; before, it is a struct timespec where clock_gettime()
 * exists (everywhere we run), else a struct timeval.
 */
#include "portability/instr_time.h"
#if PG_VERSION_NUM >= 160000
#define mo_instr_ns(t) ((int64) INSTR_TIME_GET_NANOSEC(t))
#elif defined(HAVE_CLOCK_GETTIME)
#define mo_instr_ns(t) ((int64) (t).tv_sec * 1000000000 + (int64) (t).tv_nsec)
#else
#define mo_instr_ns(t) ((int64) INSTR_TIME_GET_MICROSEC(t) * 1000)
#endif

/* The query jumble moved from utils/ to nodes/ in 16. */
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

/* The per-catalog owner checks became object_ownercheck() in 16. */
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "utils/acl.h"
#define pg_class_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#define pg_namespace_ownercheck(nspid, roleid) \
	object_ownercheck(NamespaceRelationId, (nspid), (roleid))
#endif

/* pg_analyze_and_rewrite() took its present name in 15. */
#if PG_VERSION_NUM < 150000
#define pg_analyze_and_rewrite_fixedparams pg_analyze_and_rewrite
#endif

/*
 * 18 dropped execute_once from the ExecutorRun hook and run_once from
 * PortalRun (a portal's plan is always run once now).  MO_EXECUTORRUN_PARAMS
 * declares the hook's parameters and MO_EXECUTORRUN_ARGS passes them on.
 */
#if PG_VERSION_NUM >= 180000
#define MO_EXECUTORRUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define MO_EXECUTORRUN_ARGS queryDesc, direction, count
#define mo_PortalRun(portal, count, isTopLevel, dest, altdest, qc) \
	PortalRun((portal), (count), (isTopLevel), (dest), (altdest), (qc))
#else
#define MO_EXECUTORRUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, \
	bool execute_once
#define MO_EXECUTORRUN_ARGS queryDesc, direction, count, execute_once
#define mo_PortalRun(portal, count, isTopLevel, dest, altdest, qc) \
	PortalRun((portal), (count), (isTopLevel), true, (dest), (altdest), (qc))
#endif

/*
 * 18's constant locations also mark PARAM_EXTERN parameters (extern_param)
 * and squashed lists of constants (squashed: the location is just inside
 * the list's opening bracket and length spans all its elements).  Before,
 * every location is a single constant.
 */
#if PG_VERSION_NUM >= 180000
#define mo_loc_is_param(l) ((l)->extern_param)
#define mo_loc_squashed_len(l) ((l)->squashed ? (l)->length : -1)
#else
#define mo_loc_is_param(l) false
#define mo_loc_squashed_len(l) (-1)
#endif

/* UpdateStmt's RETURNING list became a ReturningClause in 18. */
#if PG_VERSION_NUM >= 180000
#define mo_update_has_returning(upd) ((upd)->returningClause != NULL)
#else
#define mo_update_has_returning(upd) ((upd)->returningList != NIL)
#endif

/*
 * 18's PG_MODULE_MAGIC_EXT names the library and its version, shown by
 * pg_get_loaded_modules().
 */
#ifdef PG_MODULE_MAGIC_EXT
#define MO_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = "moltres_ops", .version = MO_LIBRARY_VERSION)
#else
#define MO_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/*
 * 17 lets an extension name its own wait events (shown in
 * pg_stat_activity.wait_event); before, every wait is "Extension".
 */
#if PG_VERSION_NUM >= 170000
#include "utils/wait_event.h"
#define mo_wait_event(name) WaitEventExtensionNew(name)
#else
#define mo_wait_event(name) PG_WAIT_EXTENSION
#endif

/*
 * The wait sampler (wait_sampler.c) reads every backend's PGPROC and its
 * entry of the core's backend status array.  A PGPROC's number is
 * MyProcNumber from 17 (pgprocno before); the status array, which the core
 * keeps static, is found by its shared memory name and size: one entry per
 * BackendId (1-based) plus the auxiliary processes before 17, one per
 * ProcNumber from 17.  MaxBackends is not computed yet while _PG_init runs
 * in 14, so the shared memory request computes it the same way.
 */
#if PG_VERSION_NUM >= 170000
#define mo_my_procno()	((int) MyProcNumber)
#define MO_STATUS_SLOTS (MaxBackends + NUM_AUXILIARY_PROCS)
#define mo_status_index(proc, procno) (procno)
#else
#define mo_my_procno()	(MyProc->pgprocno)
#define MO_STATUS_SLOTS (MaxBackends + NUM_AUXPROCTYPES)
#define mo_status_index(proc, procno) \
	((proc)->backendId == InvalidBackendId ? -1 : (proc)->backendId - 1)
#endif
#if PG_VERSION_NUM >= 150000
#define mo_max_backends() (MaxBackends)
#else
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#define mo_max_backends() \
	(MaxConnections + autovacuum_max_workers + 1 + max_worker_processes + \
	 max_wal_senders)
#endif

#endif							/* MO_COMPAT_H */
