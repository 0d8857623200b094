/*-------------------------------------------------------------------------
 *
 * lint.c
 *	  moltres_ops.lint(sql text): the DDL risk linter's SQL entry point, the
 *	  splitting of the input into statements with the server's own parser,
 *	  syntax errors as rows, and the driver that runs the rules of
 *	  lint_rules.c on each statement.
 *
 * Design.  The input is parsed once with raw_parser(); each RawStmt's
 * stmt_location/stmt_len gives back its text.  When the input does not
 * parse, it is cut at top-level semicolons by a small lexer that knows
 * quotes, dollar quotes and comments, and each piece is parsed on its own,
 * so one bad statement costs one 'syntax_error' row and the others are
 * still linted.  raw_parser reports errors with ereport(ERROR) from the
 * scanner and grammar; it holds no locks, buffers or catalog references,
 * so we catch those errors with PG_TRY, copy them, flush the error state
 * and carry on in our own memory context, which is reset afterwards (the
 * scanner's allocations go with it).
 *
 * Each statement's analysis reads the catalogs, so it runs inside an
 * internal subtransaction, as a PL/pgSQL exception block does: an error
 * there (a type that does not exist, a statement nested too deeply for the
 * stack) is rolled back and becomes a row, and cancellation still works.
 * The linter takes no lock that it keeps: relation sizes are read under a
 * conditional AccessShareLock released at once (lint_catalog.c).
 *
 * No shared memory: works without shared_preload_libraries.  Runs in the
 * calling backend only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "moltres_ops.h"
#include "lint.h"

PG_FUNCTION_INFO_V1(moltres_ops_lint);

#define LINT_COLS 10

/*
 * ---------------------------------------------------------------------
 * A small lexer: enough of the SQL lexical structure to find statement
 * boundaries and identifiers without the real scanner (which raises errors
 * and truncates long identifiers).
 * ---------------------------------------------------------------------
 */
typedef enum LexTok
{
	LEX_EOF,
	LEX_IDENT,
	LEX_QIDENT,					/* "quoted identifier" */
	LEX_SEMI,
	LEX_OPEN,
	LEX_CLOSE,
	LEX_OTHER
} LexTok;

typedef enum LexUnterminated
{
	LEX_COMPLETE = 0,
	LEX_OPEN_COMMENT,
	LEX_OPEN_STRING,
	LEX_OPEN_IDENT,
	LEX_OPEN_DOLLAR
} LexUnterminated;

typedef struct Lexer
{
	const char *s;
	int			len;
	int			pos;
	int			tokstart;
	int			toklen;
	char	   *blank;			/* if set: a copy of s; comments become spaces */
	bool		backslash_strings;	/* standard_conforming_strings is off */
	LexUnterminated open;		/* a construct that runs to the end */
	int			open_pos;		/* where it starts */
} Lexer;

static void
lex_init(Lexer *lx, const char *s, int len)
{
	memset(lx, 0, sizeof(Lexer));
	lx->s = s;
	lx->len = len;
	lx->backslash_strings = !standard_conforming_strings;
}

static inline bool
ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		c >= 0x80;
}

static inline bool
ident_cont(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Length of a $tag$ opening at p, or 0 when p does not start one. */
static int
dollar_tag_len(const char *s, int len, int p)
{
	int			q = p + 1;

	if (q < len && s[q] == '$')
		return 2;
	if (q >= len || !ident_start((unsigned char) s[q]))
		return 0;
	while (q < len && ident_cont((unsigned char) s[q]) && s[q] != '$')
		q++;
	if (q < len && s[q] == '$')
		return q - p + 1;
	return 0;
}

/*
 * Skip a quoted string or identifier starting at the quote at pos;
 * backslash escapes as in E''.  Returns the position after the closing
 * quote, or -1 when there is none.
 */
static int
skip_quoted(const char *s, int len, int pos, char quote, bool backslash)
{
	int			p = pos + 1;

	while (p < len)
	{
		if (backslash && s[p] == '\\' && p + 1 < len)
			p += 2;
		else if (s[p] == quote)
		{
			if (p + 1 < len && s[p + 1] == quote)
				p += 2;
			else
				return p + 1;
		}
		else
			p++;
	}
	return -1;
}

static void
lex_open(Lexer *lx, LexUnterminated what, int start)
{
	if (lx->open == LEX_COMPLETE)
	{
		lx->open = what;
		lx->open_pos = start;
	}
}

/*
 * The next token, skipping white space and comments (which are blanked
 * in lx->blank when set).  Knows as much of the SQL lexical structure as
 * statement boundaries need: quotes, E'' escapes, dollar quotes, nested
 * comments.
 */
static LexTok
lex_next(Lexer *lx)
{
	const char *s = lx->s;
	int			len = lx->len;
	int			p = lx->pos;

	for (;;)
	{
		unsigned char c;
		int			start = p;

		if (p >= len)
		{
			lx->pos = len;
			return LEX_EOF;
		}
		c = (unsigned char) s[p];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
			c == '\v')
		{
			p++;
			continue;
		}
		if (c == '-' && p + 1 < len && s[p + 1] == '-')
		{
			while (p < len && s[p] != '\n')
				p++;
		}
		else if (c == '/' && p + 1 < len && s[p + 1] == '*')
		{
			int			depth = 1;

			p += 2;
			while (p < len && depth > 0)
			{
				if (s[p] == '/' && p + 1 < len && s[p + 1] == '*')
				{
					depth++;
					p += 2;
				}
				else if (s[p] == '*' && p + 1 < len && s[p + 1] == '/')
				{
					depth--;
					p += 2;
				}
				else
					p++;
			}
			if (depth > 0)
				lex_open(lx, LEX_OPEN_COMMENT, start);
		}
		else
			break;
		if (lx->blank)
		{
			int			i;

			for (i = start; i < p; i++)
				if (lx->blank[i] != '\n')
					lx->blank[i] = ' ';
		}
	}

	lx->tokstart = p;
	{
		unsigned char c = (unsigned char) s[p];
		int			start = p;
		LexTok		tok;

		if (c == '\'')
		{
			p = skip_quoted(s, len, p, '\'', lx->backslash_strings);
			tok = LEX_OTHER;
			if (p < 0)
				lex_open(lx, LEX_OPEN_STRING, start);
		}
		else if (c == '"')
		{
			p = skip_quoted(s, len, p, '"', false);
			tok = LEX_QIDENT;
			if (p < 0)
				lex_open(lx, LEX_OPEN_IDENT, start);
		}
		else if (c == '$' && dollar_tag_len(s, len, p) > 0)
		{
			int			tl = dollar_tag_len(s, len, p);
			const char *tag = s + p;
			bool		closed = false;

			p += tl;
			while (p < len)
			{
				if (s[p] == '$' && p + tl <= len && memcmp(s + p, tag, tl) == 0)
				{
					p += tl;
					closed = true;
					break;
				}
				p++;
			}
			if (!closed)
			{
				p = -1;
				lex_open(lx, LEX_OPEN_DOLLAR, start);
			}
			tok = LEX_OTHER;
		}
		else if (ident_start(c))
		{
			while (p < len && ident_cont((unsigned char) s[p]))
				p++;
			/* E'...', B'...', X'...', N'...': the string is the token */
			if (p < len && s[p] == '\'' && p - start == 1)
			{
				p = skip_quoted(s, len, p, '\'',
								c == 'e' || c == 'E' || lx->backslash_strings);
				tok = LEX_OTHER;
				if (p < 0)
					lex_open(lx, LEX_OPEN_STRING, start);
			}
			else
				tok = LEX_IDENT;
		}
		else if (c == ';')
		{
			p++;
			tok = LEX_SEMI;
		}
		else if (c == '(' || c == '[')
		{
			p++;
			tok = LEX_OPEN;
		}
		else if (c == ')' || c == ']')
		{
			p++;
			tok = LEX_CLOSE;
		}
		else
		{
			p++;
			tok = LEX_OTHER;
		}
		if (p < 0)
			p = len;
		lx->toklen = p - lx->tokstart;
		lx->pos = p;
		return tok;
	}
}

/*
 * Identifiers longer than NAMEDATALEN - 1 bytes in a statement's text; the
 * server truncates them silently (with a NOTICE), so two long names that
 * share a prefix collide.
 */
static List *
long_identifiers(const char *text)
{
	Lexer		lx;
	List	   *result = NIL;
	LexTok		tok;

	lex_init(&lx, text, (int) strlen(text));

	while ((tok = lex_next(&lx)) != LEX_EOF)
	{
		int			n = lx.toklen;

		if (tok == LEX_QIDENT)
			n -= 2;
		if ((tok == LEX_IDENT || tok == LEX_QIDENT) && n >= NAMEDATALEN)
			result = lappend(result, pnstrdup(text + lx.tokstart, lx.toklen));
		if (list_length(result) >= 5)
			break;
	}
	return result;
}

/*
 * ---------------------------------------------------------------------
 * Splitting the input into statements.
 * ---------------------------------------------------------------------
 */

/*
 * Parse str with raw_parser, catching its errors.  Returns the RawStmt
 * list, or NIL with *error and *errpos set.  Errors that are not about the
 * input (out of memory, cancellation) are re-thrown.
 */
static List *
parse_catching(const char *str, char **error, int *errpos)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *volatile result = NIL;

	*error = NULL;
	*errpos = 0;
	PG_TRY();
	{
		result = raw_parser(str, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			cls;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		cls = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (cls != ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION &&
			cls != ERRCODE_DATA_EXCEPTION &&
			cls != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			PG_RE_THROW();
		FlushErrorState();
		*error = edata->message ? edata->message : pstrdup("syntax error");
		*errpos = edata->cursorpos;
		result = NIL;
	}
	PG_END_TRY();
	return result;
}

static MoSplitStmt *
make_split(const char *sql, int offset, int len, int loc_base)
{
	MoSplitStmt *ss = palloc0(sizeof(MoSplitStmt));
	Lexer		lx;

	lex_init(&lx, sql + offset, len);

	/* start at the first token: leading comments are not the statement */
	if (lex_next(&lx) != LEX_EOF)
	{
		offset += lx.tokstart;
		len -= lx.tokstart;
	}
	else
	{
		offset += len;
		len = 0;
	}
	while (len > 0 && (isspace((unsigned char) sql[offset + len - 1]) ||
					   sql[offset + len - 1] == ';'))
		len--;
	ss->offset = offset;
	ss->len = len;
	ss->loc_base = loc_base;
	return ss;
}

/* True when the text between the semicolons holds only comments/space. */
static bool
chunk_is_empty(const char *s, int len)
{
	Lexer		lx;

	lex_init(&lx, s, len);
	return lex_next(&lx) == LEX_EOF;
}

/*
 * mo_lint_split - the input as a list of MoSplitStmt.
 *
 * A linear pass of our lexer first finds the top-level semicolons, blanks
 * out comments (the server's scanner is quadratic on deeply nested
 * comments, and they carry no meaning) and notices a quote or comment that
 * never ends.  Then one raw_parser call over the whole input when it
 * parses; otherwise piece by piece, so that a syntax error is confined to
 * its statement.  Statement texts come from the original input.
 */
List *
mo_lint_split(const char *sql)
{
	int			total = strlen(sql);
	char	   *blank = pstrdup(sql);
	Lexer		lx;
	List	   *cuts = NIL;		/* end offsets of top-level pieces */
	int			depth = 0;
	LexTok		tok;
	char	   *error = NULL;
	int			errpos = 0;
	List	   *result = NIL;
	ListCell   *lc;
	int			start;

	lex_init(&lx, sql, total);
	lx.blank = blank;
	do
	{
		CHECK_FOR_INTERRUPTS();
		tok = lex_next(&lx);
		if (tok == LEX_OPEN)
			depth++;
		else if (tok == LEX_CLOSE && depth > 0)
			depth--;
		else if (tok == LEX_SEMI && depth == 0)
			cuts = lappend_int(cuts, lx.tokstart);
	} while (tok != LEX_EOF);
	cuts = lappend_int(cuts, total);

	if (lx.open == LEX_COMPLETE)
	{
		List	   *stmts = parse_catching(blank, &error, &errpos);

		if (error == NULL)
		{
			foreach(lc, stmts)
			{
				RawStmt    *rs = lfirst_node(RawStmt, lc);
				int			len = rs->stmt_len > 0 ? rs->stmt_len :
					total - rs->stmt_location;
				MoSplitStmt *ss = make_split(sql, rs->stmt_location, len, 0);

				ss->raw = rs;
				result = lappend(result, ss);
			}
			return result;
		}
	}

	/* Parse each piece alone. */
	start = 0;
	foreach(lc, cuts)
	{
		int			end = lfirst_int(lc);
		bool		holds_open = (lx.open != LEX_COMPLETE &&
								  lx.open_pos >= start && lx.open_pos < end);

		CHECK_FOR_INTERRUPTS();
		if (holds_open)
		{
			MoSplitStmt *ss = make_split(sql, start, end - start, start);

			ss->error = pstrdup(lx.open == LEX_OPEN_COMMENT ? "unterminated /* comment" :
								lx.open == LEX_OPEN_STRING ? "unterminated quoted string" :
								lx.open == LEX_OPEN_IDENT ? "unterminated quoted identifier" :
								"unterminated dollar-quoted string");
			ss->errpos = pg_mbstrlen_with_len(sql, lx.open_pos) + 1;
			result = lappend(result, ss);
		}
		else if (!chunk_is_empty(blank + start, end - start))
		{
			char	   *piece = pnstrdup(blank + start, end - start);
			List	   *one = parse_catching(piece, &error, &errpos);

			if (error != NULL)
			{
				MoSplitStmt *ss = make_split(sql, start, end - start, start);

				ss->error = error;
				ss->errpos = errpos > 0 ?
					pg_mbstrlen_with_len(sql, start) + errpos : 0;
				result = lappend(result, ss);
			}
			else
			{
				ListCell   *lc2;

				foreach(lc2, one)
				{
					RawStmt    *rs = lfirst_node(RawStmt, lc2);
					int			len = rs->stmt_len > 0 ? rs->stmt_len :
						(end - start) - rs->stmt_location;
					MoSplitStmt *ss = make_split(sql, start + rs->stmt_location,
												 len, start);

					ss->raw = rs;
					result = lappend(result, ss);
				}
			}
			pfree(piece);
		}
		start = end + 1;
	}
	return result;
}

/*
 * ---------------------------------------------------------------------
 * Helpers for the rules.
 * ---------------------------------------------------------------------
 */
const char *
mo_lint_risk_name(MoRisk risk)
{
	switch (risk)
	{
		case MO_RISK_SAFE:
			return "safe";
		case MO_RISK_REVIEW:
			return "review";
		case MO_RISK_DANGEROUS:
			return "dangerous";
	}
	return "review";
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
 * mo_source_span - the source text of an expression (type = false) or a
 * type name (type = true) that starts at a parse location: up to the next
 * top-level comma, semicolon or closing parenthesis, or, for a type or a
 * column default, the next column-constraint keyword.  Used to write
 * hints with the user's own expressions in them.
 */
char *
mo_source_span(MoStmtResult *res, int location, bool type pg_attribute_unused())
{
	static const char *const stops[] = {
		"not", "null", "constraint", "check", "unique", "primary",
		"references", "generated", "collate", "default", "using", NULL
	};
	int			start = res->loc_base + location;
	int			stmt_end = res->offset + (int) strlen(res->text);
	Lexer		lx;
	int			depth = 0;
	int			end;
	LexTok		tok;

	if (location < 0 || start < res->offset || start >= stmt_end)
		return pstrdup("...");
	lex_init(&lx, res->source + start, stmt_end - start);
	end = 0;
	while ((tok = lex_next(&lx)) != LEX_EOF)
	{
		if (tok == LEX_OPEN)
			depth++;
		else if (tok == LEX_CLOSE)
		{
			if (depth == 0)
				break;
			depth--;
		}
		else if (depth == 0 && tok == LEX_SEMI)
			break;
		else if (depth == 0 && tok == LEX_OTHER && lx.toklen == 1 &&
				 lx.s[lx.tokstart] == ',')
			break;
		else if (depth == 0 && tok == LEX_IDENT && lx.tokstart > 0)
		{
			int			i;
			bool		stop = false;

			for (i = 0; stops[i]; i++)
			{
				if (lx.toklen == (int) strlen(stops[i]) &&
					pg_strncasecmp(lx.s + lx.tokstart, stops[i], lx.toklen) == 0)
					stop = true;
			}
			if (stop)
				break;
		}
		end = lx.tokstart + lx.toklen;
	}
	if (end == 0)
		return pstrdup("...");
	return pnstrdup(lx.s, end);
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
 * ---------------------------------------------------------------------
 * The driver.
 * ---------------------------------------------------------------------
 */

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

	mo_lint_statement(c->st, c->res, c->stmt);
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
	mo_lint_prepass(st, raws);

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

		longs = long_identifiers(res->text);
		foreach(lc2, longs)
		{
			char	   *id = lfirst(lc2);

			mo_add_finding(res, MO_RISK_REVIEW, "identifier_too_long",
						   psprintf("Identifier %s is longer than %d bytes; PostgreSQL silently truncates it, so names sharing the first %d bytes collide.",
									id, NAMEDATALEN - 1, NAMEDATALEN - 1),
						   psprintf("Use a name of at most %d bytes.",
									NAMEDATALEN - 1));
		}

		mo_lint_transaction_rules(st, res, ss->raw->stmt);
		lint_guarded(st, res, ss->raw->stmt);
		mo_lint_after_statement(st, res, ss->raw->stmt);
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
 * One row per finding; one 'safe' row with a NULL rule for a statement
 * with no finding.  STRICT: a NULL input gives no rows.
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

		if (res->findings == NIL)
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
			continue;
		}
		foreach(lc2, res->findings)
		{
			MoFinding  *f = lfirst(lc2);

			values[3] = CStringGetTextDatum(mo_lint_risk_name(f->risk));
			values[4] = CStringGetTextDatum(f->rule);
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
