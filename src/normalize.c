/*-------------------------------------------------------------------------
 *
 * normalize.c
 *	  Normalised query text for moltres_ops.query_stats: the statement's
 *	  text with every constant replaced by $1, $2, ..., cut to
 *	  moltres_ops.max_query_text bytes.  Literal values are never kept.
 *
 * Two ways to find the constants:
 *
 *	- from the jumble (JumbleState, given to the post-parse-analyze hook):
 *	  the locations of exactly the constants that the query id ignores, so
 *	  the text matches the query id and reads like pg_stat_statements';
 *	- by lexing (all_literals): every string, bit-string and numeric literal
 *	  token.  Used where no jumble exists (utility statements, whose query
 *	  id is a hash of their text, and statements first seen at execution
 *	  end), so that no literal value leaks there either.
 *
 * Both use the server's own scanner, so quoting, dollar quotes, escapes and
 * comments are handled exactly as the parser handled them.  Backend-local;
 * everything is palloc'd in the caller's (per-statement) memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "parser/scanner.h"
#include "parser/gram.h"		/* token numbers; needs the two above */

#include "normalize.h"

typedef struct ConstLoc
{
	int			start;			/* offset in the statement text */
	int			end;			/* offset just past the constant */
} ConstLoc;

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

static bool
is_literal_token(int tok)
{
	switch (tok)
	{
		case SCONST:
		case USCONST:
		case BCONST:
		case XCONST:
		case ICONST:
		case FCONST:
			return true;
		default:
			return false;
	}
}

/*
 * Find where each wanted constant ends by lexing text (NUL-terminated).
 * wanted holds sorted, distinct start offsets (NULL with all_literals to
 * take every literal token).  The scanner NUL-terminates the current token
 * inside its own buffer, so strlen() from a token's start gives its length
 * even for string literals lexed in several pieces.  A negative number
 * appears to the jumble as a constant starting at the '-', so the token
 * after it is taken too.  Returns the number of constants found; also the
 * highest $n parameter seen, so new numbers do not collide with it.
 */
static int
find_constants(const char *text, const int *wanted, int nwanted,
			   bool all_literals, ConstLoc *out, int *max_param)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			n = 0;
	int			w = 0;

	yyscanner = scanner_init(text, &yyextra, &ScanKeywords, ScanKeywordTokens);
	/* the parser accepted this text already; don't repeat its warnings */
	yyextra.escape_string_warning = false;

	for (;;)
	{
		int			tok = core_yylex(&yylval, &yylloc, yyscanner);
		int			start = yylloc;

		if (tok == 0)
			break;
		if (tok == PARAM && yylval.ival > *max_param)
			*max_param = yylval.ival;

		if (all_literals)
		{
			if (!is_literal_token(tok))
				continue;
		}
		else
		{
			while (w < nwanted && wanted[w] < start)
				w++;			/* a location the lexer never stops at */
			if (w >= nwanted)
				break;
			if (wanted[w] != start)
				continue;
			w++;
			if (tok == '-')
			{
				tok = core_yylex(&yylval, &yylloc, yyscanner);
				if (tok == 0)
					break;
			}
		}
		out[n].start = start;
		out[n].end = yylloc + (int) strlen(yyextra.scanbuf + yylloc);
		n++;
	}
	scanner_finish(yyscanner);
	return n;
}

/*
 * mo_normalize_query - normalised text of the statement at [location,
 * location + len) of query (len <= 0: to the end), at most maxbytes - 1
 * bytes, cut at a character boundary.  Constants come from jstate when it
 * has any, else from lexing when all_literals.  Sets *out_len.
 */
char *
mo_normalize_query(const char *query, int location, int len,
				   const JumbleState *jstate, bool all_literals,
				   int maxbytes, int *out_len)
{
	const char *stmt;
	char	   *text;
	int			nwanted = 0;
	int		   *wanted = NULL;
	ConstLoc   *locs = NULL;
	int			nlocs = 0;
	int			max_param = 0;
	char	   *buf;
	int			o = 0;
	int			pos = 0;
	int			next_param;

	stmt = CleanQuerytext(query, &location, &len);
	text = pnstrdup(stmt, len);

	if (jstate && jstate->clocations_count > 0)
	{
		int			offset = (int) (stmt - query);

		wanted = palloc(sizeof(int) * jstate->clocations_count);
		for (int i = 0; i < jstate->clocations_count; i++)
		{
			int			loc = jstate->clocations[i].location - offset;

			if (loc >= 0 && loc < len)
				wanted[nwanted++] = loc;
		}
		qsort(wanted, nwanted, sizeof(int), cmp_int);
		/* drop duplicates */
		if (nwanted > 1)
		{
			int			k = 1;

			for (int i = 1; i < nwanted; i++)
				if (wanted[i] != wanted[k - 1])
					wanted[k++] = wanted[i];
			nwanted = k;
		}
		all_literals = false;
		max_param = jstate->highest_extern_param_id;
	}

	if (nwanted > 0 || all_literals)
	{
		/* no more constants than there are bytes */
		locs = palloc(sizeof(ConstLoc) * (all_literals ? len + 1 : nwanted));
		nlocs = find_constants(text, wanted, nwanted, all_literals, locs,
							   &max_param);
	}

	/* each constant (at least 1 byte) becomes at most 11 bytes: $2147483647 */
	buf = palloc(len + nlocs * 11 + 1);
	next_param = max_param + 1;
	for (int i = 0; i < nlocs; i++)
	{
		if (locs[i].start < pos)
			continue;			/* overlaps the previous one; be safe */
		memcpy(buf + o, text + pos, locs[i].start - pos);
		o += locs[i].start - pos;
		o += sprintf(buf + o, "$%d", next_param++);
		pos = locs[i].end;
	}
	memcpy(buf + o, text + pos, len - pos);
	o += len - pos;
	buf[o] = '\0';

	if (o >= maxbytes)
	{
		o = pg_mbcliplen(buf, o, maxbytes - 1);
		buf[o] = '\0';
	}
	*out_len = o;
	return buf;
}
