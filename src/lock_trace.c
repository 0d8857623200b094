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
 * database, once after each statement, and are compared with a hash table
 * of what was held before it (the calling transaction's locks, then what
 * each earlier statement left): the difference is what the statement took.
 * A lock that an earlier statement of the input already holds in the same
 * mode is not taken again, so it is not listed again.  Locks on system
 * catalogs (OID below FirstNormalObjectId) are left out.  A relfilenode is
 * read inside the subtransaction and again after the rollback (the catalog
 * then shows the original): a difference is a rewrite.  Inside, it is
 * re-read only for relations the statement locked anew or invalidated (a
 * relcache callback notes those; a new relfilenode always invalidates).
 *
 * Cost and memory.  Per statement: its own execution, one read of the lock
 * table and a hash look-up per lock this backend holds, and the relations
 * it touched; nothing that grows with the number of earlier statements
 * except that read.  Everything a statement needs lives in a memory context
 * reset after it; what stays until the end is the output rows and one hash
 * entry per relation locked.
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
#include "utils/hsearch.h"
#include "utils/inval.h"
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

/*
 * What trace() knows about one relation that this backend has held a lock
 * on since the input began (or before, in the calling transaction): the
 * lock modes held before the current statement and after it, and the last
 * relfilenode seen.  One hash table of these, keyed by OID, lives for the
 * whole call, so that each statement costs a look-up per lock rather than
 * a scan of everything earlier statements took.
 */
typedef struct RelState
{
	Oid			relid;			/* hash key */
	LOCKMASK	held;			/* modes held after the last statement */
	LOCKMASK	before;			/* modes held before the current one */
	int			stamp;			/* statement that last saw it held */
	int			rows_stamp;		/* statement whose rows it last got */
	bool		filenode_seen;	/* filenode is valid */
	Oid			filenode;		/* relfilenode last seen */
} RelState;

/*
 * Relations whose relcache entry a statement invalidated: a changed
 * relfilenode is a pg_class update, which always invalidates the entry, so
 * only these (and the ones the statement locked anew) can have been
 * rewritten.  Filled by a relcache callback while run_one() executes a
 * statement; a full cache reset, or more relations than fit, means "any".
 * The callback allocates nothing: it also runs while a failed statement's
 * subtransaction is rolled back.
 */
#define TOUCHED_MAX 256

typedef struct Touched
{
	int			n;
	bool		all;
	Oid			relids[TOUCHED_MAX];
} Touched;

static Touched *touched = NULL;
static bool touched_callback_registered = false;

static void
touched_callback(Datum arg, Oid relid)
{
	if (touched == NULL || touched->all)
		return;
	if (!OidIsValid(relid) || touched->n >= TOUCHED_MAX)
		touched->all = true;
	else
		touched->relids[touched->n++] = relid;
}

/*
 * Record this backend's relation locks in this database, on user relations,
 * in states: for each relation held now, before keeps what was held before
 * statement stmtno and held becomes what is held now.  Returns the
 * relations held now, in lock-manager order.  O(locks in the lock table).
 */
static List *
note_held_locks(HTAB *states, int stmtno)
{
	LockData   *ld = GetLockStatusData();
	List	   *result = NIL;
	int			i;

	for (i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *inst = &ld->locks[i];
		RelState   *st;
		Oid			relid;
		bool		found;

		if (inst->pid != MyProcPid ||
			inst->locktag.locktag_type != LOCKTAG_RELATION ||
			inst->locktag.locktag_field1 != MyDatabaseId ||
			inst->locktag.locktag_field2 < FirstNormalObjectId ||
			inst->holdMask == 0)
			continue;
		relid = inst->locktag.locktag_field2;
		st = hash_search(states, &relid, HASH_ENTER, &found);
		if (!found)
		{
			st->held = 0;
			st->stamp = -1;
			st->rows_stamp = -1;
			st->filenode_seen = false;
			st->filenode = InvalidOid;
		}
		if (st->stamp != stmtno)
		{
			/* the first of its entries (fast path and main table) */
			st->stamp = stmtno;
			st->before = st->held;
			st->held = 0;
			result = lappend(result, st);
		}
		st->held |= inst->holdMask;
	}
	return result;
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

/*
 * A relation whose relfilenode was first seen after an earlier statement:
 * only the first statement to hold a lock on it is compared with the
 * original (after the rollback); later ones with the last value seen.
 */
#define REWROTE_DEFERRED (-2)

/* One output row, kept until the rollback makes the catalog old again. */
typedef struct PendingRow
{
	int			stmtno;
	char	   *text;
	Oid			relid;			/* InvalidOid: a row without a relation */
	LOCKMODE	mode;			/* NoLock: rewritten under an older lock */
	Oid			filenode_during;	/* relfilenode after the statement */
	int			rewrote;		/* 1, 0, or REWROTE_DEFERRED */
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

/* A row about one relation, allocated in cxt. */
static PendingRow *
relation_row(MemoryContext cxt, int stmtno, char *text, double ms, Oid relid,
			 LOCKMODE mode, Oid filenode_during, int rewrote)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PendingRow *p = pending_row(stmtno, text, ms, NULL);

	MemoryContextSwitchTo(old);
	p->relid = relid;
	p->mode = mode;
	p->filenode_during = filenode_during;
	p->rewrote = rewrote;
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

/* Order: relation OID, then strongest mode first. */
static int
pending_cmp(const ListCell *a, const ListCell *b)
{
	PendingRow *x = lfirst(a);
	PendingRow *y = lfirst(b);

	if (x->relid != y->relid)
		return x->relid < y->relid ? -1 : 1;
	return y->mode - x->mode;
}

/*
 * The rows about one relation held after statement stmtno: one per lock
 * mode it took anew, and for a relation rewritten under a lock it already
 * held, one without a mode.  Appended to *rows, allocated in rowcxt.
 */
static void
relation_rows(RelState *st, int stmtno, MemoryContext rowcxt, char *text,
			  double ms, List **rows)
{
	LOCKMASK	fresh = st->held & ~st->before;
	int			state = REWROTE_DEFERRED;
	Oid			cur = current_relfilenode(st->relid);
	LOCKMODE	m;

	st->rows_stamp = stmtno;
	if (st->filenode_seen)
		state = (cur != st->filenode) ? 1 : 0;
	st->filenode_seen = true;
	st->filenode = cur;

	/* rewritten under a lock this statement did not take anew */
	if (state == 1 && fresh == 0)
		*rows = lappend(*rows, relation_row(rowcxt, stmtno, text, ms,
											st->relid, NoLock, cur, 1));
	for (m = 1; m <= MaxLockMode; m++)
	{
		if (fresh & LOCKBIT_ON(m))
			*rows = lappend(*rows, relation_row(rowcxt, stmtno, text, ms,
												st->relid, m, cur, state));
	}
}

/*
 * The rows of one statement that succeeded.  Only relations locked anew or
 * invalidated by the statement are looked at: the others cannot have a new
 * relfilenode.  Returns the rows (allocated in rowcxt), sorted.
 */
static List *
statement_rows(HTAB *states, List *now_held, Touched *t, int stmtno,
			   MemoryContext rowcxt, char *text, double ms)
{
	List	   *rows = NIL;
	ListCell   *lc;

	foreach(lc, now_held)
	{
		RelState   *st = lfirst(lc);

		if (t->all || (st->held & ~st->before) != 0)
			relation_rows(st, stmtno, rowcxt, text, ms, &rows);
	}
	for (int i = 0; i < t->n && !t->all; i++)
	{
		RelState   *st = hash_search(states, &t->relids[i], HASH_FIND, NULL);

		/* held now, and not looked at yet for this statement */
		if (st != NULL && st->stamp == stmtno && st->rows_stamp != stmtno)
			relation_rows(st, stmtno, rowcxt, text, ms, &rows);
	}
	list_sort(rows, pending_cmp);
	return rows;
}

/*
 * Run one statement in a nested subtransaction; on success collect the
 * new locks and relfilenodes and commit it into the outer subtransaction.
 * Called in a per-statement memory context that the caller resets
 * afterwards; the rows (*rows, NIL when none) are allocated in rowcxt.
 * Returns the error message (in rowcxt), or NULL.
 */
static char *
run_one(char *text, int stmtno, HTAB *states, MemoryContext rowcxt,
		List **rows, double *ms, bool *held_any)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	TimestampTz old_fin = 0;
	TimestampTz own_fin;
	bool		had_timeout = get_timeout_active(STATEMENT_TIMEOUT);
	bool		caller_first;
	char	   *volatile error = NULL;
	Touched    *volatile outer_touched = touched;
	Touched		mine;
	instr_time	start;
	instr_time	duration;

	/*
	 * The statement runs under the sooner of two deadlines: trace's own and
	 * the caller's statement_timeout, whose deadline it must not postpone.
	 * Which one fired is known from the clock: the caller's is re-thrown.
	 */
	if (had_timeout)
		old_fin = get_timeout_finish_time(STATEMENT_TIMEOUT);
	own_fin = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										  mo_trace_statement_timeout);
	caller_first = had_timeout && old_fin <= own_fin;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	INSTR_TIME_SET_CURRENT(start);
	mine.n = 0;
	mine.all = false;
	PG_TRY();
	{
		List	   *now_held;
		int			rc;

		set_local("lock_timeout", mo_trace_lock_timeout);
		touched = &mine;
		enable_timeout_at(STATEMENT_TIMEOUT, caller_first ? old_fin : own_fin);
		rc = SPI_execute(text, false, 0);
		disable_timeout(STATEMENT_TIMEOUT, false);
		/* SPI returns in its own context, which lives until SPI_finish */
		MemoryContextSwitchTo(cxt);
		if (rc < 0)
			elog(ERROR, "%s", SPI_result_code_string(rc));
		SPI_freetuptable(SPI_tuptable);
		/* the statement's catalog changes reach the relcache callback now */
		CommandCounterIncrement();
		touched = outer_touched;
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		*ms = INSTR_TIME_GET_MILLISEC(duration);

		now_held = note_held_locks(states, stmtno);
		*held_any = (now_held != NIL);
		*rows = statement_rows(states, now_held, &mine, stmtno, rowcxt, text, *ms);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		touched = outer_touched;
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

		/*
		 * Only trace's own statement timeout (a cancel once its deadline,
		 * the sooner one, has passed) is reported as a row.  The caller's
		 * statement_timeout (its deadline came first), a cancel request
		 * before that, a shutdown or running out of resources are not ours
		 * to swallow: they go on to the caller.
		 */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !caller_first &&
			GetCurrentTimestamp() >= own_fin)
			error = psprintf("error: %s (moltres_ops.trace_statement_timeout = %d ms)",
							 edata->message, mo_trace_statement_timeout);
		else if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION ||
				 ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES)
		{
			if (had_timeout && GetCurrentTimestamp() < old_fin)
				enable_timeout_at(STATEMENT_TIMEOUT, old_fin);
			ReThrowError(edata);
		}
		else if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			error = psprintf("error: %s (moltres_ops.trace_lock_timeout = %d ms): another session holds a conflicting lock",
							 edata->message, mo_trace_lock_timeout);
		else
			error = psprintf("error: %s", edata->message);
		error = MemoryContextStrdup(rowcxt, error);
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
	HTAB	   *states;
	HASHCTL		hctl;
	MemoryContext stmtcxt;

	InitMaterializedSRF(fcinfo, 0);

	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("moltres_ops.trace cannot run in a parallel operation")));

	tracecxt = AllocSetContextCreate(CurrentMemoryContext,
									 "moltres_ops trace",
									 ALLOCSET_DEFAULT_SIZES);
	stmtcxt = AllocSetContextCreate(tracecxt,
									"moltres_ops trace statement",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(tracecxt);
	sql = text_to_cstring(input);
	split = mo_lint_split(sql);

	if (!touched_callback_registered)
	{
		CacheRegisterRelcacheCallback(touched_callback, (Datum) 0);
		touched_callback_registered = true;
	}
	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(RelState);
	hctl.hcxt = tracecxt;
	states = hash_create("moltres_ops trace relations", 256, &hctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	/* what the calling transaction holds already is not listed */
	MemoryContextSwitchTo(stmtcxt);
	(void) note_held_locks(states, 0);
	MemoryContextSwitchTo(tracecxt);
	MemoryContextReset(stmtcxt);

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

			MemoryContextSwitchTo(stmtcxt);
			error = run_one(text, stmtno, states, tracecxt, &rows, &ms, &held_any);
			MemoryContextSwitchTo(tracecxt);
			pending = list_concat(pending, rows);
			MemoryContextReset(stmtcxt);
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
