/*-------------------------------------------------------------------------
 *
 * rules_dml.c
 *	  Layer 3 of the linter (rules, above catalog.c): the rules for data
 *	  statements in a migration: INSERT, UPDATE, DELETE, MERGE, SELECT
 *	  (its row locks) and COPY.  docs/lint-rules.md documents every rule
 *	  named here; keep the two in step.
 *
 *	  Runs inside lint.c's per-statement subtransaction.  Entry point:
 *	  mo_rules_dml.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "storage/lock.h"

#include "lint_rules.h"

static void
lint_dml(MoLintState *st, MoStmtResult *res, RangeVar *rv, Node *where,
		 bool update)
{
	MoRelInfo  *rel = mo_relinfo(st, rv);

	mo_take_lock(res, RowExclusiveLock, rel);
	if (where != NULL || rel->is_new)
		return;
	if (mo_size_class(st, rel) != MO_SIZE_LARGE &&
		mo_size_class(st, rel) != MO_SIZE_UNKNOWN)
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

static void
lint_select_locks(MoLintState *st, MoStmtResult *res, SelectStmt *stmt)
{
	if (stmt == NULL)
		return;
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

/* mo_rules_dml - INSERT, UPDATE, DELETE, MERGE, SELECT, COPY. */
void
mo_rules_dml(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_UpdateStmt:
			lint_dml(st, res, ((UpdateStmt *) stmt)->relation,
					 ((UpdateStmt *) stmt)->whereClause, true);
			break;
		case T_DeleteStmt:
			lint_dml(st, res, ((DeleteStmt *) stmt)->relation,
					 ((DeleteStmt *) stmt)->whereClause, false);
			break;
		case T_InsertStmt:
			mo_take_lock(res, RowExclusiveLock,
						 mo_relinfo(st, ((InsertStmt *) stmt)->relation));
			break;
		case T_MergeStmt:
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
