/*-------------------------------------------------------------------------
 *
 * lock_trace.c
 *	  moltres_ops.trace(sql text): a dry run of a migration.  Each statement
 *	  is executed for real, under a short lock_timeout and statement_timeout,
 *	  and the relation locks the backend then holds, and the relations whose
 *	  relfilenode changed (rewritten), are reported; then everything is
 *	  rolled back, so nothing persists, even when a statement fails.
 *
 * Design.  The whole input runs inside one internal subtransaction (the
 * "outer" one), so that a later statement sees what an earlier one
 * created, as in the real migration; each statement runs in a nested
 * subtransaction, committed into the outer one on success and rolled back
 * on error, as PL/pgSQL exception blocks do.  The outer subtransaction is
 * always rolled back at the end.  Statements that cannot run inside a
 * transaction block (CONCURRENTLY, VACUUM, ALTER SYSTEM, CREATE DATABASE,
 * ...) and transaction control are reported with a note, not run.
 *
 * Locks come from the lock manager (GetLockStatusData, which also reads
 * the fast-path slots), filtered to this backend's relation locks in this
 * database, before and after the statement: the difference is what the
 * statement took.  A lock that an earlier statement of the input already
 * holds in the same mode is not taken again, so it is not listed again.
 * Locks on system catalogs (OID below FirstNormalObjectId) are left out.
 * A relfilenode is read inside the subtransaction and again after the
 * rollback (the catalog then shows the original): a difference is a
 * rewrite.
 *
 * Statements run with the caller's privileges through SPI.  The function
 * is not executable by PUBLIC.  No shared memory is used: works without
 * shared_preload_libraries.  Runs in the calling backend only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "portability/instr_time.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/tuplestore.h"

#include "moltres_ops.h"
#include "lint.h"

PG_FUNCTION_INFO_V1(moltres_ops_trace);

#define TRACE_COLS 7

/* One relation lock mode held by this backend. */
typedef struct HeldLock
{
	Oid			relid;
	LOCKMODE	mode;
} HeldLock;

/* This backend's relation locks in this database, on user relations. */
static List *
held_relation_locks(void)
{
	LockData   *ld = GetLockStatusData();
	List	   *result = NIL;
	int			i;

	for (i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *inst = &ld->locks[i];
		LOCKMODE	m;

		if (inst->pid != MyProcPid ||
			inst->locktag.locktag_type != LOCKTAG_RELATION ||
			inst->locktag.locktag_field1 != MyDatabaseId ||
			inst->locktag.locktag_field2 < FirstNormalObjectId)
			continue;
		for (m = 1; m <= MaxLockMode; m++)
		{
			if (inst->holdMask & LOCKBIT_ON(m))
			{
				HeldLock   *h = palloc(sizeof(HeldLock));

				h->relid = inst->locktag.locktag_field2;
				h->mode = m;
				result = lappend(result, h);
			}
		}
	}
	return result;
}

static bool
held_contains(List *locks, Oid relid, LOCKMODE mode)
{
	ListCell   *lc;

	foreach(lc, locks)
	{
		HeldLock   *h = lfirst(lc);

		if (h->relid == relid && h->mode == mode)
			return true;
	}
	return false;
}

/* Order: relation OID, then strongest mode first. */
static int
held_cmp(const ListCell *a, const ListCell *b)
{
	HeldLock   *x = lfirst(a);
	HeldLock   *y = lfirst(b);

	if (x->relid != y->relid)
		return x->relid < y->relid ? -1 : 1;
	return y->mode - x->mode;
}

static Oid
current_relfilenode(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			result = InvalidOid;

	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_class) GETSTRUCT(tup))->relfilenode;
		ReleaseSysCache(tup);
	}
	return result;
}

/* What one statement did, collected before its effects are rolled back. */
typedef struct TraceRow
{
	Oid			relid;
	LOCKMODE	mode;			/* NoLock: rewritten under an older lock */
	Oid			filenode_during;	/* relfilenode after the statement */
	int			rewrote;		/* 1, 0, or REWROTE_DEFERRED */
} TraceRow;

/*
 * A relation whose relfilenode was first seen after an earlier statement:
 * only the first statement to hold a lock on it is compared with the
 * original (after the rollback); later ones with the last value seen.
 */
#define REWROTE_DEFERRED (-2)

typedef struct SeenRel
{
	Oid			relid;
	Oid			filenode;
} SeenRel;

/* One output row, kept until the rollback makes the catalog old again. */
typedef struct PendingRow
{
	int			stmtno;
	char	   *text;
	Oid			relid;			/* InvalidOid: a row without a relation */
	LOCKMODE	mode;
	Oid			filenode_during;
	int			rewrote;
	double		ms;				/* < 0: not run */
	char	   *note;
} PendingRow;

static PendingRow *
pending_row(int stmtno, char *text, double ms, char *note)
{
	PendingRow *p = palloc0(sizeof(PendingRow));

	p->stmtno = stmtno;
	p->text = text;
	p->ms = ms;
	p->note = note;
	return p;
}

static void
put_row(ReturnSetInfo *rsinfo, int stmtno, const char *text, Oid relid,
		LOCKMODE mode, int rewrote, double ms, const char *note)
{
	Datum		values[TRACE_COLS];
	bool		nulls[TRACE_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int32GetDatum(stmtno);
	values[1] = CStringGetTextDatum(text);
	if (OidIsValid(relid))
		values[2] = ObjectIdGetDatum(relid);
	else
		nulls[2] = true;
	if (mode != NoLock)
		values[3] = CStringGetTextDatum(mo_lint_lock_name(mode));
	else
		nulls[3] = true;
	if (rewrote >= 0)
		values[4] = BoolGetDatum(rewrote > 0);
	else
		nulls[4] = true;
	if (ms >= 0)
		values[5] = Float8GetDatum(ms);
	else
		nulls[5] = true;
	if (note)
		values[6] = CStringGetTextDatum(note);
	else
		nulls[6] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Set a GUC for the current (sub)transaction only. */
static void
set_local(const char *name, int ms)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d", ms);
	(void) set_config_option(name, buf, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * Run one statement in a nested subtransaction; on success collect the
 * new locks and relfilenodes and commit it into the outer subtransaction.
 * Returns the error message, or NULL.
 */
static char *
run_one(const char *text, List **seen, List **rows, double *ms,
		bool *held_any)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TimestampTz old_fin = 0;
	bool		had_timeout = get_timeout_active(STATEMENT_TIMEOUT);
	char	   *volatile error = NULL;
	instr_time	start;
	instr_time	duration;

	if (had_timeout)
		old_fin = get_timeout_finish_time(STATEMENT_TIMEOUT);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		List	   *before;
		List	   *after;
		ListCell   *lc;
		int			rc;

		set_local("lock_timeout", mo_trace_lock_timeout);
		before = held_relation_locks();
		enable_timeout_after(STATEMENT_TIMEOUT, mo_trace_statement_timeout);
		rc = SPI_execute(text, false, 0);
		disable_timeout(STATEMENT_TIMEOUT, false);
		if (rc < 0)
			elog(ERROR, "%s", SPI_result_code_string(rc));
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		*ms = INSTR_TIME_GET_MILLISEC(duration);

		after = held_relation_locks();
		*held_any = (after != NIL);
		foreach(lc, after)
		{
			HeldLock   *h = lfirst(lc);
			TraceRow   *r = NULL;
			ListCell   *lc2;
			Oid			cur = current_relfilenode(h->relid);
			int			state = REWROTE_DEFERRED;
			bool		fresh = !held_contains(before, h->relid, h->mode);
			bool		first_of_rel = true;

			/* one relfilenode comparison per relation */
			foreach(lc2, after)
			{
				if (lfirst(lc2) == h)
					break;
				if (((HeldLock *) lfirst(lc2))->relid == h->relid)
					first_of_rel = false;
			}
			foreach(lc2, *rows)
			{
				if (((TraceRow *) lfirst(lc2))->relid == h->relid)
					state = ((TraceRow *) lfirst(lc2))->rewrote;
			}
			if (first_of_rel)
			{
				SeenRel    *sr = NULL;

				foreach(lc2, *seen)
				{
					if (((SeenRel *) lfirst(lc2))->relid == h->relid)
						sr = lfirst(lc2);
				}
				if (sr)
				{
					state = (cur != sr->filenode) ? 1 : 0;
					sr->filenode = cur;
				}
				else
				{
					sr = palloc(sizeof(SeenRel));
					sr->relid = h->relid;
					sr->filenode = cur;
					*seen = lappend(*seen, sr);
				}
				/* rewritten under a lock this statement did not take anew */
				if (state == 1)
				{
					bool		any_fresh = false;

					foreach(lc2, after)
					{
						HeldLock   *o = lfirst(lc2);

						if (o->relid == h->relid &&
							!held_contains(before, o->relid, o->mode))
							any_fresh = true;
					}
					if (!any_fresh)
					{
						r = palloc(sizeof(TraceRow));
						r->relid = h->relid;
						r->mode = NoLock;
						r->filenode_during = cur;
						r->rewrote = 1;
						*rows = lappend(*rows, r);
					}
				}
			}
			if (!fresh)
				continue;
			r = palloc(sizeof(TraceRow));
			r->relid = h->relid;
			r->mode = h->mode;
			r->filenode_during = cur;
			r->rewrote = state;
			*rows = lappend(*rows, r);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		disable_timeout(STATEMENT_TIMEOUT, false);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		*ms = INSTR_TIME_GET_MILLISEC(duration);

		/* the caller's own cancel, or a shutdown, is not ours to swallow */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED &&
			(*ms >= mo_trace_statement_timeout ||
			 strstr(edata->message, "statement timeout") != NULL))
			error = psprintf("error: %s (moltres_ops.trace_statement_timeout = %d ms)",
							 edata->message, mo_trace_statement_timeout);
		else if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION ||
				 ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES)
		{
			if (had_timeout)
				enable_timeout_at(STATEMENT_TIMEOUT, old_fin);
			ReThrowError(edata);
		}
		else if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			error = psprintf("error: %s (moltres_ops.trace_lock_timeout = %d ms): another session holds a conflicting lock",
							 edata->message, mo_trace_lock_timeout);
		else
			error = psprintf("error: %s", edata->message);
		*rows = NIL;
	}
	PG_END_TRY();

	/* give the caller's statement_timeout back */
	if (had_timeout)
		enable_timeout_at(STATEMENT_TIMEOUT, old_fin);
	return error;
}

/*
 * moltres_ops_trace - SQL: trace(sql text) RETURNS TABLE(stmt, statement,
 * relation, lock_mode, rewrote, duration_ms, note).  STRICT.
 */
Datum
moltres_ops_trace(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *input = PG_GETARG_TEXT_PP(0);
	MemoryContext tracecxt;
	MemoryContext oldcxt;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *sql;
	List	   *split;
	ListCell   *lc;
	int			stmtno = 0;
	List	   *pending = NIL;
	List	   *seen = NIL;

	InitMaterializedSRF(fcinfo, 0);

	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("moltres_ops.trace cannot run in a parallel operation")));

	tracecxt = AllocSetContextCreate(CurrentMemoryContext,
									 "moltres_ops trace",
									 ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(tracecxt);
	sql = text_to_cstring(input);
	split = mo_lint_split(sql);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(tracecxt);

	/* the outer subtransaction: always rolled back */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(tracecxt);
	PG_TRY();
	{
		foreach(lc, split)
		{
			MoSplitStmt *ss = lfirst(lc);
			char	   *text = pnstrdup(sql + ss->offset, ss->len);
			const char *reason;
			List	   *rows = NIL;
			double		ms = 0;
			bool		held_any = false;
			char	   *error;
			ListCell   *lc2;

			CHECK_FOR_INTERRUPTS();
			stmtno++;
			if (ss->raw == NULL)
			{
				pending = lappend(pending,
								  pending_row(stmtno, text, -1,
											  psprintf("not run: %s", ss->error)));
				continue;
			}
			if (IsA(ss->raw->stmt, TransactionStmt))
			{
				pending = lappend(pending,
								  pending_row(stmtno, text, -1,
											  pstrdup("not run: transaction control; the whole input runs in one transaction that is rolled back")));
				continue;
			}
			reason = mo_lint_toplevel_reason(ss->raw->stmt);
			if (reason)
			{
				pending = lappend(pending,
								  pending_row(stmtno, text, -1,
											  psprintf("not run: %s cannot run inside a transaction block; lint() gives its locks",
													   reason)));
				continue;
			}

			error = run_one(text, &seen, &rows, &ms, &held_any);
			MemoryContextSwitchTo(tracecxt);
			if (error || rows == NIL)
			{
				pending = lappend(pending,
								  pending_row(stmtno, text, ms,
											  error ? error :
											  pstrdup(held_any ?
													  "no new relation lock (locks held since earlier statements or by the calling transaction are not listed again)" :
													  "no relation lock taken")));
				continue;
			}
			list_sort(rows, held_cmp);
			foreach(lc2, rows)
			{
				TraceRow   *r = lfirst(lc2);
				PendingRow *p = pending_row(stmtno, text, ms, NULL);

				p->relid = r->relid;
				p->mode = r->mode;
				p->filenode_during = r->filenode_during;
				p->rewrote = r->rewrote;
				pending = lappend(pending, p);
			}
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(tracecxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(tracecxt);
		RollbackAndReleaseCurrentSubTransaction();
		CurrentResourceOwner = owner;
		PG_RE_THROW();
	}
	PG_END_TRY();

	SPI_finish();
	MemoryContextSwitchTo(tracecxt);

	/*
	 * Everything is rolled back now: the catalog shows each relation as it
	 * was, so a relfilenode that differs from the one seen inside the
	 * transaction was a rewrite.
	 */
	foreach(lc, pending)
	{
		PendingRow *p = lfirst(lc);

		if (!OidIsValid(p->relid))
			put_row(rsinfo, p->stmtno, p->text, InvalidOid, NoLock, -1, p->ms,
					p->note);
		else
		{
			Oid			now = current_relfilenode(p->relid);

			if (!OidIsValid(now) && get_rel_relkind(p->relid) == '\0')
				put_row(rsinfo, p->stmtno, p->text, p->relid, p->mode, -1, p->ms,
						"relation created by this input (gone after the rollback)");
			else if (p->rewrote != REWROTE_DEFERRED)
				put_row(rsinfo, p->stmtno, p->text, p->relid, p->mode,
						p->rewrote, p->ms,
						p->mode == NoLock ? "rewritten under a lock held since an earlier statement" : NULL);
			else if (!OidIsValid(p->filenode_during) && OidIsValid(now))
				put_row(rsinfo, p->stmtno, p->text, p->relid, p->mode, 1, p->ms,
						"dropped by this statement (or rebuilt under a new OID)");
			else
				put_row(rsinfo, p->stmtno, p->text, p->relid, p->mode,
						(OidIsValid(p->filenode_during) &&
						 p->filenode_during != now) ? 1 : 0,
						p->ms, NULL);
		}
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(tracecxt);
	return (Datum) 0;
}
