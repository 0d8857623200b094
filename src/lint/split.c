/*-------------------------------------------------------------------------
 *
 * split.c
 *	  Layer 1 of the linter (bottom, with state.c): the input as statements.
 *	  A small lexer that knows quotes, dollar quotes and comments finds
 *	  statement boundaries and identifiers; the server's own parser
 *	  (raw_parser) turns each statement into a parse tree; syntax errors
 *	  become statements with an error instead of a tree.  Also the source
 *	  text of an expression, for hints, and over-long identifiers.
 *
 * Design.  The input is parsed once with raw_parser(); each RawStmt's
 * stmt_location/stmt_len gives back its text.  When the input does not
 * parse, it is cut at top-level semicolons by the lexer and each piece is
 * parsed on its own, so one bad statement costs one 'syntax_error' row and
 * the others are still linted.  raw_parser reports errors with
 * ereport(ERROR) from the scanner and grammar; it holds no locks, buffers
 * or catalog references, so we catch those errors with PG_TRY, copy them,
 * flush the error state and carry on in our own memory context, which is
 * reset afterwards (the scanner's allocations go with it).  Errors that are
 * not about the input (cancellation, out of memory) are re-thrown.
 *
 * Depends on nothing of the linter; used by every layer above and by
 * lock_trace.c.  No shared memory, no catalog access.  Runs in the calling
 * backend only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"

#include "lint_state.h"

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
	List	   *metas;			/* with blank: offsets of psql meta-commands */
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
 * The next token, skipping white space, comments and psql meta-commands
 * (which are blanked in lx->blank when set).  Knows as much of the SQL
 * lexical structure as statement boundaries need: quotes, E'' escapes,
 * dollar quotes, nested comments.  A backslash outside quotes is never
 * SQL: it starts a psql meta-command (\set, \i, \echo ...), which runs to
 * the end of the line; \g and its variants also end the statement before
 * them, as in psql, so they count as a semicolon.
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
		else if (c == '\\')
		{
			bool		sends = (p + 1 < len && s[p + 1] == 'g');

			while (p < len && s[p] != '\n')
				p++;
			if (lx->blank)
			{
				int			i;

				lx->metas = lappend_int(lx->metas, start);
				for (i = start; i < p; i++)
					lx->blank[i] = (i == start && sends) ? ';' : ' ';
			}
			if (sends)
			{
				lx->tokstart = start;
				lx->toklen = 1;
				lx->pos = p;
				return LEX_SEMI;
			}
			continue;
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
List *
mo_lint_long_identifiers(const char *text)
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
make_split(const char *sql, const char *blank, int offset, int len,
		   int loc_base)
{
	MoSplitStmt *ss = palloc0(sizeof(MoSplitStmt));
	Lexer		lx;

	/* the blanked copy: comments and psql meta-commands are spaces there */
	lex_init(&lx, blank + offset, len);

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
 * Hand each psql meta-command of the input to the statement it precedes
 * (or the last one), as the text of the command's line.
 */
static List *
attach_metas(const char *sql, List *stmts, List *metas)
{
	ListCell   *lc;

	if (stmts == NIL)
		return stmts;
	foreach(lc, metas)
	{
		int			pos = lfirst_int(lc);
		MoSplitStmt *owner = llast(stmts);
		const char *eol = strchr(sql + pos, '\n');
		ListCell   *lc2;

		foreach(lc2, stmts)
		{
			MoSplitStmt *ss = lfirst(lc2);

			if (ss->offset + ss->len > pos)
			{
				owner = ss;
				break;
			}
		}
		owner->metas = lappend(owner->metas,
							   eol ? pnstrdup(sql + pos, eol - (sql + pos)) :
							   pstrdup(sql + pos));
	}
	return stmts;
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
				MoSplitStmt *ss = make_split(sql, blank, rs->stmt_location, len, 0);

				ss->raw = rs;
				result = lappend(result, ss);
			}
			return attach_metas(sql, result, lx.metas);
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
			MoSplitStmt *ss = make_split(sql, blank, start, end - start, start);

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
				MoSplitStmt *ss = make_split(sql, blank, start, end - start, start);

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
					MoSplitStmt *ss = make_split(sql, blank, start + rs->stmt_location,
												 len, start);

					ss->raw = rs;
					result = lappend(result, ss);
				}
			}
			pfree(piece);
		}
		start = end + 1;
	}
	return attach_metas(sql, result, lx.metas);
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
