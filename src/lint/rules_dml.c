/*-------------------------------------------------------------------------
 *
 * rules_dml.c
 *	  Layer 3 of the linter (rules, above catalog.c): the rules for data
 *	  statements in a migration: INSERT, UPDATE, DELETE, MERGE, SELECT
 *	  (its row locks) and COPY, with the data-modifying statements of
 *	  their WITH clauses.  docs/lint-rules.md documents every rule named
 *	  here; keep the two in step.
 *
 *	  Runs inside lint.c's per-statement subtransaction.  Entry point:
 *	  mo_rules_dml.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "utils/builtins.h"

#include "lint_rules.h"

static void lint_with(MoLintState *st, MoStmtResult *res, WithClause *with);

static void
lint_dml(MoLintState *st, MoStmtResult *res, MoRelInfo *rel, Node *where,
		 bool update)
{
	MoSizeClass cls = mo_size_class(st, rel);

	mo_take_lock(res, RowExclusiveLock, rel);
	if (where != NULL || rel->is_new)
		return;
	/* a foreign table's size is remote: judged as large */
	if (cls != MO_SIZE_LARGE && cls != MO_SIZE_UNKNOWN && cls != MO_SIZE_FOREIGN)
	{
		mo_note(res, "%s.", mo_size_words(st, rel));
		return;
	}
	mo_add_finding(res, MO_RISK_REVIEW, "dml_without_where",
				   psprintf("%s without WHERE touches every row of %s in one transaction: it locks all of them until commit, bloats the table and its indexes, and may stall replicas: %s.",
							update ? "UPDATE" : "DELETE", rel->display,
							mo_size_words(st, rel)),
				   update ?
				   psprintf("Batch by key, one transaction per batch: UPDATE %s SET ... WHERE <key> >= $1 AND <key> < $1 + 10000; looping over the key range (pause between batches), outside the DDL transaction.",
							rel->display) :
				   psprintf("Batch by key, one transaction per batch: DELETE FROM %s WHERE <key> IN (SELECT <key> FROM %s LIMIT 10000); repeated until no row is left; or TRUNCATE if the whole table may go at once.",
							rel->display, rel->display));
}

/*
 * The SET list of an UPDATE, checked as the server checks it: each column
 * exists (or is added earlier in the input), and none is assigned twice
 * without a subscript or field (rewriteTargetListIU refuses that).
 */
static void
lint_update_targets(MoLintState *st, MoRelInfo *rel, List *targets)
{
	ListCell   *lc;

	foreach(lc, targets)
	{
		ResTarget  *rt = lfirst_node(ResTarget, lc);
		ListCell   *lc2;

		mo_require_column(st, rel, rt->name);
		if (rt->indirection != NIL)
			continue;
		for_each_from(lc2, targets, foreach_current_index(lc) + 1)
		{
			ResTarget  *other = lfirst_node(ResTarget, lc2);

			if (other->indirection == NIL && strcmp(other->name, rt->name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("multiple assignments to same column \"%s\"",
								rt->name)));
		}
	}
}

static void
lint_update(MoLintState *st, MoStmtResult *res, UpdateStmt *stmt)
{
	MoRelInfo  *rel = mo_relinfo(st, stmt->relation);

	lint_with(st, res, stmt->withClause);
	lint_update_targets(st, rel, stmt->targetList);
	lint_dml(st, res, rel, stmt->whereClause, true);
}

static void
lint_delete(MoLintState *st, MoStmtResult *res, DeleteStmt *stmt)
{
	lint_with(st, res, stmt->withClause);
	lint_dml(st, res, mo_relinfo(st, stmt->relation), stmt->whereClause,
			 false);
}

static void
lint_select_locks(MoLintState *st, MoStmtResult *res, SelectStmt *stmt)
{
	if (stmt == NULL)
		return;
	lint_with(st, res, stmt->withClause);
	if (stmt->op != SETOP_NONE)
	{
		lint_select_locks(st, res, stmt->larg);
		lint_select_locks(st, res, stmt->rarg);
		return;
	}
	if (stmt->fromClause != NIL)
		mo_take_lock(res, stmt->lockingClause ? RowShareLock : AccessShareLock,
					 NULL);
}

/*
 * The statements of a WITH clause: a data-modifying CTE runs in full
 * whatever the outer statement reads of it, so an UPDATE or DELETE there
 * without WHERE is as unbatched as one on its own.
 */
static void
lint_with(MoLintState *st, MoStmtResult *res, WithClause *with)
{
	ListCell   *lc;

	if (with == NULL)
		return;
	check_stack_depth();
	foreach(lc, with->ctes)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

		mo_rules_dml(st, res, cte->ctequery);
	}
}

/* mo_rules_dml - INSERT, UPDATE, DELETE, MERGE, SELECT, COPY. */
void
mo_rules_dml(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	if (stmt == NULL)
		return;
	switch (nodeTag(stmt))
	{
		case T_UpdateStmt:
			lint_update(st, res, (UpdateStmt *) stmt);
			break;
		case T_DeleteStmt:
			lint_delete(st, res, (DeleteStmt *) stmt);
			break;
		case T_InsertStmt:
			lint_with(st, res, ((InsertStmt *) stmt)->withClause);
			lint_select_locks(st, res, (SelectStmt *) ((InsertStmt *) stmt)->selectStmt);
			mo_take_lock(res, RowExclusiveLock,
						 mo_relinfo(st, ((InsertStmt *) stmt)->relation));
			break;
		case T_MergeStmt:
			lint_with(st, res, ((MergeStmt *) stmt)->withClause);
			mo_take_lock(res, RowExclusiveLock,
						 mo_relinfo(st, ((MergeStmt *) stmt)->relation));
			break;
		case T_SelectStmt:
			lint_select_locks(st, res, (SelectStmt *) stmt);
			break;
		case T_CopyStmt:
			{
				CopyStmt   *cs = (CopyStmt *) stmt;

				if (cs->relation)
					mo_take_lock(res, cs->is_from ? RowExclusiveLock : AccessShareLock,
								 mo_relinfo(st, cs->relation));
			}
			break;
		default:
			break;
	}
}
