/*-------------------------------------------------------------------------
 *
 * safe.c
 *	  The checks of the safe-migration procedures (sql/install/80_safe.sql)
 *	  that SQL cannot do well: whether a piece of SQL text given by the
 *	  caller (a CHECK expression, a default, a backfill's SET list or WHERE
 *	  condition) stays inside the place it is pasted into, and which
 *	  columns a backfill's SET list assigns.
 *
 * The procedures paste such fragments into a statement they build around
 * them: "... CHECK (" fragment ") NOT VALID", "... WHERE key > $1 AND ("
 * fragment ")".  A fragment that closes a parenthesis it did not open, or
 * ends the statement with a semicolon, would change the statement around
 * it (validate at once under an ACCESS EXCLUSIVE lock, update the whole
 * table in every batch, run a second statement).  The server's own lexer
 * decides, so string literals, quoted identifiers, dollar quotes and
 * comments count exactly as the server will read them.
 *
 * This file touches no shared state and runs in ordinary backends only;
 * it needs no preload.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "compat.h"

PG_FUNCTION_INFO_V1(moltres_ops_fragment_problem);
PG_FUNCTION_INFO_V1(moltres_ops_update_set_columns);

/*
 * moltres_ops_fragment_problem - why a SQL fragment cannot be pasted into a
 * statement, or NULL when it can.
 *
 * Refused: a parenthesis closed below the fragment's own level, unbalanced
 * parentheses or brackets, a semicolon outside literals and comments.  A
 * syntax error the lexer sees (an unterminated literal) is raised as is.
 */
Datum
moltres_ops_fragment_problem(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));
	core_yyscan_t scanner;
	core_yy_extra_type extra;
	core_YYSTYPE lval;
	YYLTYPE		loc;
	int			depth = 0;
	int			brackets = 0;
	int			tok;
	const char *problem = NULL;

	scanner = scanner_init(src, &extra, &ScanKeywords, ScanKeywordTokens);
	while ((tok = core_yylex(&lval, &loc, scanner)) != 0)
	{
		if (tok == '(')
			depth++;
		else if (tok == ')' && --depth < 0)
		{
			problem = "it closes a parenthesis it did not open";
			break;
		}
		else if (tok == '[')
			brackets++;
		else if (tok == ']' && --brackets < 0)
		{
			problem = "it closes a bracket it did not open";
			break;
		}
		else if (tok == ';')
		{
			problem = "it contains a semicolon, which would end the statement";
			break;
		}
	}
	scanner_finish(scanner);

	if (problem == NULL && depth != 0)
		problem = "it leaves a parenthesis open";
	if (problem == NULL && brackets != 0)
		problem = "it leaves a bracket open";
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/*
 * moltres_ops_update_set_columns - the columns that the SET list of sql
 * assigns, when sql is exactly one UPDATE without WITH, FROM or RETURNING;
 * NULL otherwise.
 *
 * backfill() builds "UPDATE t SET <set> WHERE ..." around the caller's SET
 * list.  A list that smuggles in a FROM would join other tables into every
 * batch; one that assigns the primary key would move rows ahead of the
 * batches that walk that key, so the walk never ends.  The server's raw
 * parser decides which columns are assigned (SET (a, b) = ... names two,
 * SET a[1] = ... and SET a.f = ... name a), so no quoting or comment can
 * hide one.  Only parsed, never analysed or run.
 */
Datum
moltres_ops_update_set_columns(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *raw = raw_parser(src, RAW_PARSE_DEFAULT);
	Node	   *stmt;
	UpdateStmt *upd;
	ArrayBuildState *cols = NULL;
	ListCell   *lc;

	if (list_length(raw) != 1)
		PG_RETURN_NULL();
	stmt = linitial_node(RawStmt, raw)->stmt;
	if (!IsA(stmt, UpdateStmt))
		PG_RETURN_NULL();
	upd = (UpdateStmt *) stmt;
	if (upd->fromClause != NIL || mo_update_has_returning(upd) ||
		upd->withClause != NULL)
		PG_RETURN_NULL();

	foreach(lc, upd->targetList)
	{
		ResTarget  *target = lfirst_node(ResTarget, lc);

		cols = accumArrayResult(cols, CStringGetTextDatum(target->name), false,
								TEXTOID, CurrentMemoryContext);
	}
	if (cols == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(makeArrayResult(cols, CurrentMemoryContext));
}
