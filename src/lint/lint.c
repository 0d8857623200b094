/*-------------------------------------------------------------------------
 *
 * lint.c
 *	  Layer 4 of the linter (top): moltres_ops.lint(sql text), the SQL entry
 *	  point; mo_lint_run, the driver that other modules call (ddl_guard.c);
 *	  and the dispatch that hands each statement to the rules file for its
 *	  kind (lint_rules.h lists them).  Adding a rule means opening one
 *	  rules_*.c file; adding a statement kind means one line here.
 *
 * Each statement's analysis reads the catalogs, so it runs inside an
 * internal subtransaction (mo_lint_guarded, state.c), as a PL/pgSQL
 * exception block does: an error there (a type that does not exist, a
 * statement nested too deeply for the stack) is rolled back and becomes a
 * row, and cancellation still works.  The linter takes no lock that it
 * keeps: relation sizes are read under a conditional AccessShareLock
 * released at once (catalog.c).
 *
 * No shared memory: works without shared_preload_libraries.  Runs in the
 * calling backend only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "moltres_ops.h"
#include "lint_rules.h"

PG_FUNCTION_INFO_V1(moltres_ops_lint);

#define LINT_COLS 10

/*
 * ---------------------------------------------------------------------
 * The dispatch over statement kinds: each kind has its one rules file.
 * ---------------------------------------------------------------------
 */

/* Facts about the whole input, before any statement. */
static void
lint_prepass(MoLintState *st, List *stmts)
{
	ListCell   *lc;

	foreach(lc, stmts)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, IndexStmt) && ((IndexStmt *) n)->relation)
			st->input_indexes = lappend(st->input_indexes, n);
	}
}

/*
 * The statement's own analysis: lock, rewrite, scan and the findings of
 * the rules for its kind.
 */
static void
lint_statement(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	check_stack_depth();

	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
		case T_CreateStmt:
			mo_rules_table(st, res, stmt);
			break;
		case T_InsertStmt:
		case T_UpdateStmt:
		case T_DeleteStmt:
		case T_MergeStmt:
		case T_SelectStmt:
		case T_CopyStmt:
			mo_rules_dml(st, res, stmt);
			break;
		case T_VariableSetStmt:
		case T_AlterSystemStmt:
		case T_AlterDatabaseSetStmt:
		case T_AlterRoleSetStmt:
		case T_CreateExtensionStmt:
			mo_rules_session(st, res, stmt);
			break;
		default:
			mo_rules_objects(st, res, stmt);
			break;
	}
}

/*
 * ---------------------------------------------------------------------
 * The driver.
 * ---------------------------------------------------------------------
 */

typedef struct LintCall
{
	MoLintState *st;
	MoStmtResult *res;
	Node	   *stmt;
} LintCall;

static void
lint_call(void *arg)
{
	LintCall   *c = (LintCall *) arg;

	lint_statement(c->st, c->res, c->stmt);
}

/*
 * Run the rules on one statement inside an internal subtransaction; an
 * error in the analysis is rolled back and becomes a finding.
 * Cancellation, termination and resource exhaustion are re-thrown.
 */
static void
lint_guarded(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	LintCall	call = {st, res, stmt};
	ErrorData  *edata;

	edata = mo_lint_guarded(lint_call, &call, MO_GUARD_RETHROW_INTERNAL);
	if (edata == NULL)
		return;

	if (edata->sqlerrcode == ERRCODE_STATEMENT_TOO_COMPLEX)
		mo_add_finding(res, MO_RISK_REVIEW, "too_complex",
					   psprintf("The statement is nested too deeply to be analysed (%s).",
								edata->message),
					   pstrdup("Simplify the expression, or review the statement by hand; the server may refuse it too."));
	else
		mo_add_finding(res, MO_RISK_REVIEW, "analysis_error",
					   psprintf("The statement could not be analysed against the catalogs: %s.",
								edata->message),
					   pstrdup("Fix the error first (the server would raise it too), then lint again."));
}

/*
 * mo_lint_run - lint a whole input; returns a List of MoStmtResult in
 * input order.  Also the C entry point for other modules.
 */
List *
mo_lint_run(const char *sql)
{
	MoLintState *st = palloc0(sizeof(MoLintState));
	List	   *split;
	List	   *raws = NIL;
	List	   *results = NIL;
	ListCell   *lc;
	int			n = 0;

	st->large_rows = (double) mo_lint_large_table_rows;
	st->session_lock_timeout = (LockTimeout > 0);
	st->session_statement_timeout = (StatementTimeout > 0);
	st->lock_timeout_set = st->session_lock_timeout;
	st->statement_timeout_set = st->session_statement_timeout;

	split = mo_lint_split(sql);
	foreach(lc, split)
	{
		MoSplitStmt *ss = lfirst(lc);

		if (ss->raw)
			raws = lappend(raws, ss->raw->stmt);
	}
	lint_prepass(st, raws);

	foreach(lc, split)
	{
		MoSplitStmt *ss = lfirst(lc);
		MoStmtResult *res = palloc0(sizeof(MoStmtResult));
		List	   *longs;
		ListCell   *lc2;

		CHECK_FOR_INTERRUPTS();
		res->stmtno = ++n;
		res->offset = ss->offset;
		res->source = sql;
		res->loc_base = ss->loc_base;
		res->text = pnstrdup(sql + ss->offset, ss->len);
		res->lock = NoLock;
		initStringInfo(&res->notes);
		results = lappend(results, res);

		foreach(lc2, ss->metas)
			mo_add_finding(res, MO_RISK_ADVICE, "psql_meta_command",
						   psprintf("%s is a psql meta-command, not SQL: lint skipped it, and only psql runs it (a migration tool sends it to the server, which refuses it).",
									(char *) lfirst(lc2)),
						   pstrdup("Keep psql meta-commands out of migration files, or run the file with psql -f."));

		if (ss->raw == NULL)
		{
			res->command = NULL;
			if (ss->errpos > 0)
				mo_add_finding(res, MO_RISK_REVIEW, "syntax_error",
							   psprintf("%s, at character %d of the input.",
										ss->error, ss->errpos),
							   pstrdup("Fix the syntax; the other statements were linted on their own."));
			else
				mo_add_finding(res, MO_RISK_REVIEW, "syntax_error",
							   psprintf("%s.", ss->error),
							   pstrdup("Fix the syntax; the other statements were linted on their own."));
			continue;
		}

		res->parsetree = ss->raw->stmt;
		res->command = GetCommandTagName(CreateCommandTag(ss->raw->stmt));

		longs = mo_lint_long_identifiers(res->text);
		foreach(lc2, longs)
		{
			char	   *id = lfirst(lc2);

			mo_add_finding(res, MO_RISK_REVIEW, "identifier_too_long",
						   psprintf("Identifier %s is longer than %d bytes; PostgreSQL silently truncates it, so names sharing the first %d bytes collide.",
									id, NAMEDATALEN - 1, NAMEDATALEN - 1),
						   psprintf("Use a name of at most %d bytes.",
									NAMEDATALEN - 1));
		}

		mo_rules_before(st, res, ss->raw->stmt);
		lint_guarded(st, res, ss->raw->stmt);
		mo_rules_after(st, res, ss->raw->stmt);
	}

	/* a BEGIN left open at the end */
	if (st->in_block)
	{
		foreach(lc, results)
		{
			MoStmtResult *res = lfirst(lc);

			if (res->stmtno == st->block_stmtno)
				mo_add_finding(res, MO_RISK_REVIEW, "uncommitted_transaction",
							   pstrdup("This BEGIN is never committed: when the input runs, nothing after it is applied, yet the migration tool may report success."),
							   pstrdup("End the transaction with COMMIT; at the end of the migration."));
		}
	}
	return results;
}

/*
 * moltres_ops_lint - SQL: lint(sql text) RETURNS TABLE(stmt, statement,
 * command, risk, rule, lock_mode, rewrites, scans, message, hint).
 * One row per finding; one 'safe' row with a NULL rule, first, for a
 * statement with no finding above advice.  STRICT: a NULL input gives no rows.
 */
Datum
moltres_ops_lint(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *input = PG_GETARG_TEXT_PP(0);
	MemoryContext lintcxt;
	MemoryContext oldcxt;
	char	   *sql;
	List	   *results;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);

	lintcxt = AllocSetContextCreate(CurrentMemoryContext,
									"moltres_ops lint",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(lintcxt);
	sql = text_to_cstring(input);
	results = mo_lint_run(sql);

	foreach(lc, results)
	{
		MoStmtResult *res = lfirst(lc);
		Datum		values[LINT_COLS];
		bool		nulls[LINT_COLS];
		const char *lockname = mo_lint_lock_name(res->lock);
		ListCell   *lc2;

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(res->stmtno);
		values[1] = CStringGetTextDatum(res->text);
		if (res->command)
			values[2] = CStringGetTextDatum(res->command);
		else
			nulls[2] = true;
		if (lockname)
			values[5] = CStringGetTextDatum(lockname);
		else
			nulls[5] = true;
		values[6] = BoolGetDatum(res->rewrites);
		values[7] = BoolGetDatum(res->scans);
		if (res->parsetree == NULL)
		{
			nulls[6] = true;
			nulls[7] = true;
		}

		/*
		 * A statement whose findings are all advice (or that has none) is
		 * safe, and says so in a row of its own, first: the worst row of a
		 * statement is its risk when advice ranks below safe.
		 */
		if (mo_lint_stmt_risk(res) == MO_RISK_SAFE)
		{
			values[3] = CStringGetTextDatum("safe");
			nulls[4] = true;
			if (res->notes.len > 0)
				values[8] = CStringGetTextDatum(res->notes.data);
			else
				values[8] = CStringGetTextDatum("No risk found.");
			nulls[9] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 values, nulls);
		}
		foreach(lc2, res->findings)
		{
			MoFinding  *f = lfirst(lc2);

			values[3] = CStringGetTextDatum(mo_lint_risk_name(f->risk));
			values[4] = CStringGetTextDatum(f->rule);
			nulls[4] = false;
			values[8] = CStringGetTextDatum(f->message);
			nulls[9] = (f->hint == NULL);
			if (f->hint)
				values[9] = CStringGetTextDatum(f->hint);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 values, nulls);
		}
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(lintcxt);
	return (Datum) 0;
}
