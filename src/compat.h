/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL major versions that
 *	  moltres_ops supports (14 to 17) is absorbed here, and nowhere else.
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
