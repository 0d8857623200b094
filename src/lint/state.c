/*-------------------------------------------------------------------------
 *
 * state.c
 *	  Layer 1 of the linter (bottom, with split.c): what a rule records
 *	  about a statement (findings, notes, the strongest lock), the objects
 *	  the input creates before a later statement uses them, small naming
 *	  helpers, which statements cannot run in a transaction block, and
 *	  mo_lint_guarded, the internal subtransaction in which every analysis
 *	  that reads the catalogs runs.
 *
 *	  Depends on nothing of the linter; no catalog access but in
 *	  mo_lint_guarded's callback.  No shared memory.  Runs in the calling
 *	  backend only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "lint_state.h"

/*
 * ---------------------------------------------------------------------
 * What a rule records.
 * ---------------------------------------------------------------------
 */
const char *
mo_lint_risk_name(MoRisk risk)
{
	switch (risk)
	{
		case MO_RISK_ADVICE:
			return "advice";
		case MO_RISK_SAFE:
			return "safe";
		case MO_RISK_REVIEW:
			return "review";
		case MO_RISK_DANGEROUS:
			return "dangerous";
	}
	return "review";
}

/*
 * mo_lint_stmt_risk - a statement's risk: its worst finding above advice,
 * or safe when it has none.
 */
MoRisk
mo_lint_stmt_risk(MoStmtResult *res)
{
	MoRisk		worst = MO_RISK_SAFE;
	ListCell   *lc;

	foreach(lc, res->findings)
	{
		MoFinding  *f = lfirst(lc);

		if (f->risk > worst)
			worst = f->risk;
	}
	return worst;
}

/* Lock mode names as pg_locks.mode spells them. */
const char *
mo_lint_lock_name(LOCKMODE mode)
{
	if (mode == NoLock)
		return NULL;
	return GetLockmodeName(DEFAULT_LOCKMETHOD, mode);
}

void
mo_add_finding(MoStmtResult *res, MoRisk risk, const char *rule,
			   char *message, char *hint)
{
	MoFinding  *f = palloc(sizeof(MoFinding));
	ListCell   *lc;

	/* one row per rule and statement */
	foreach(lc, res->findings)
	{
		MoFinding  *old = lfirst(lc);

		if (strcmp(old->rule, rule) == 0)
		{
			if (risk > old->risk)
				old->risk = risk;
			return;
		}
	}
	f->risk = risk;
	f->rule = rule;
	f->message = message;
	f->hint = hint;
	res->findings = lappend(res->findings, f);
}

void
mo_note(MoStmtResult *res, const char *fmt,...)
{
	for (;;)
	{
		va_list		args;
		int			needed;
		int			save_len = res->notes.len;

		if (res->notes.len > 0)
			appendStringInfoChar(&res->notes, ' ');
		va_start(args, fmt);
		needed = appendStringInfoVA(&res->notes, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		res->notes.len = save_len;
		res->notes.data[save_len] = '\0';
		enlargeStringInfo(&res->notes, needed + 1);
	}
}

/*
 * mo_take_lock - record a lock the statement takes; rel NULL means a
 * relation (or several) that exist before the input.
 */
void
mo_take_lock(MoStmtResult *res, LOCKMODE mode, MoRelInfo *rel)
{
	bool		existing = (rel == NULL || !rel->is_new);

	if (mode > res->lock || (mode == res->lock && existing &&
							 !res->lock_on_existing))
	{
		res->lock = mode;
		res->lock_relid = rel ? rel->relid : InvalidOid;
		res->lock_relname = rel ? rel->relname : NULL;
		res->lock_on_existing = existing;
	}
}

/*
 * mo_lint_toplevel_reason - why a statement cannot run inside a
 * transaction block (and so cannot be traced, nor follow BEGIN), or NULL.
 * Mirrors the PreventInTransactionBlock calls of PostgreSQL 15.
 */
const char *
mo_lint_toplevel_reason(Node *stmt)
{
	ListCell   *lc;

	switch (nodeTag(stmt))
	{
		case T_IndexStmt:
			if (((IndexStmt *) stmt)->concurrent)
				return "CREATE INDEX CONCURRENTLY";
			break;
		case T_DropStmt:
			if (((DropStmt *) stmt)->concurrent)
				return "DROP INDEX CONCURRENTLY";
			break;
		case T_ReindexStmt:
			{
				ReindexStmt *r = (ReindexStmt *) stmt;

				foreach(lc, r->params)
				{
					DefElem    *opt = lfirst(lc);

					if (strcmp(opt->defname, "concurrently") == 0 &&
						defGetBoolean(opt))
						return "REINDEX CONCURRENTLY";
				}
				if (r->kind == REINDEX_OBJECT_SCHEMA ||
					r->kind == REINDEX_OBJECT_SYSTEM ||
					r->kind == REINDEX_OBJECT_DATABASE)
					return "REINDEX SCHEMA/SYSTEM/DATABASE";
			}
			break;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			{
				AlterTableCmd *cmd = lfirst(lc);

				if (cmd->subtype == AT_DetachPartition &&
					((PartitionCmd *) cmd->def)->concurrent)
					return "ALTER TABLE ... DETACH PARTITION CONCURRENTLY";
			}
			break;
		case T_VacuumStmt:
			if (((VacuumStmt *) stmt)->is_vacuumcmd)
				return "VACUUM";
			break;
		case T_ClusterStmt:
			if (((ClusterStmt *) stmt)->relation == NULL)
				return "CLUSTER without a table name";
			break;
		case T_AlterSystemStmt:
			return "ALTER SYSTEM";
		case T_CreatedbStmt:
			return "CREATE DATABASE";
		case T_DropdbStmt:
			return "DROP DATABASE";
		case T_CreateTableSpaceStmt:
			return "CREATE TABLESPACE";
		case T_DropTableSpaceStmt:
			return "DROP TABLESPACE";
		case T_CreateSubscriptionStmt:
			return "CREATE SUBSCRIPTION";
		case T_DropSubscriptionStmt:
			return "DROP SUBSCRIPTION";
		case T_AlterSubscriptionStmt:
			if (((AlterSubscriptionStmt *) stmt)->kind == ALTER_SUBSCRIPTION_REFRESH)
				return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION";
			break;
		case T_DiscardStmt:
			if (((DiscardStmt *) stmt)->target == DISCARD_ALL)
				return "DISCARD ALL";
			break;
		default:
			break;
	}
	return NULL;
}

/*
 * mo_lint_guarded - run fn(arg) inside an internal subtransaction, so that
 * an error raised while analysing against the catalogs is rolled back
 * instead of aborting the caller.  Returns NULL on success, else the error,
 * copied into the caller's memory context.  Cancellation and termination,
 * resource exhaustion and out-of-memory are re-thrown, as are internal
 * errors and "statement too complex" when the flags ask for it.
 */
ErrorData *
mo_lint_guarded(void (*fn) (void *arg), void *arg, int rethrow)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile failure = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			cls;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		cls = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (cls == ERRCODE_OPERATOR_INTERVENTION ||
			cls == ERRCODE_INSUFFICIENT_RESOURCES ||
			edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY ||
			((rethrow & MO_GUARD_RETHROW_INTERNAL) &&
			 cls == ERRCODE_INTERNAL_ERROR) ||
			((rethrow & MO_GUARD_RETHROW_TOO_COMPLEX) &&
			 edata->sqlerrcode == ERRCODE_STATEMENT_TOO_COMPLEX))
			ReThrowError(edata);
		failure = edata;
	}
	PG_END_TRY();

	return failure;
}

/* The name as written, quoted for display in messages and hints. */
char *
mo_rv_display(RangeVar *rv)
{
	if (rv->schemaname)
		return quote_qualified_identifier(rv->schemaname, rv->relname);
	return pstrdup(quote_identifier(rv->relname));
}

bool
mo_is_new(MoLintState *st, char kind, const char *schema, const char *name)
{
	ListCell   *lc;

	if (name == NULL)
		return false;
	foreach(lc, st->new_objects)
	{
		MoNewObject *o = lfirst(lc);

		if (o->kind != kind || strcmp(o->name, name) != 0)
			continue;
		if (schema && o->schema && strcmp(schema, o->schema) != 0)
			continue;
		return true;
	}
	return false;
}

void
mo_remember_new(MoLintState *st, char kind, const char *schema,
				const char *name)
{
	MoNewObject *o;

	if (name == NULL || mo_is_new(st, kind, schema, name))
		return;
	o = palloc(sizeof(MoNewObject));
	o->kind = kind;
	o->schema = schema ? pstrdup(schema) : NULL;
	o->name = pstrdup(name);
	st->new_objects = lappend(st->new_objects, o);
}

Constraint *
mo_find_constraint(List *constraints, ConstrType type)
{
	ListCell   *lc;

	foreach(lc, constraints)
	{
		Constraint *c = lfirst(lc);

		if (IsA(c, Constraint) && c->contype == type)
			return c;
	}
	return NULL;
}

char *
mo_constraint_name(const char *relname, const char *col, const char *suffix)
{
	char	   *name = psprintf("%s_%s_%s", relname, col, suffix);

	if (strlen(name) >= NAMEDATALEN)
		name[NAMEDATALEN - 1] = '\0';
	return name;
}

/* A list of String column names, quoted and comma separated, or "...". */
char *
mo_name_list(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	if (names == NIL)
		return pstrdup("...");
	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(strVal(lfirst(lc))));
	}
	return buf.data;
}
