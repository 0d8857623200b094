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
 *	  the text matches the query id and reads like pg_stat_statements'.
 *	  From 18 the jumble also lists the locations of PARAM_EXTERN
 *	  parameters ($n, or a PL/pgSQL variable's name: not literals, kept as
 *	  written) and of squashed lists (IN (1, 2, 3), ARRAY[...] of constants
 *	  or parameters, whose query id does not depend on their length: the
 *	  whole list becomes one $n followed by a comment ", ...", as in
 *	  pg_stat_statements 18);
 *	- by lexing (all_literals): every string, bit-string and numeric literal
 *	  token.  Used where no jumble exists (utility statements, and
 *	  statements first seen at execution end), so that no literal value
 *	  leaks there either.
 *
 * Both use the server's own scanner, so quoting, dollar quotes, escapes and
 * comments are handled exactly as the parser handled them.  Tokens are told
 * apart by their text, not by the grammar's token numbers (parser/gram.h is
 * not installed from 18 on): a literal starts with a quote, a digit, a
 * '.' and a digit, a dollar quote, or E', B', X', U&'.  Backend-local;
 * everything is palloc'd in the caller's (per-statement) memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "parser/scanner.h"
#include "utils/guc.h"

#include "normalize.h"

typedef struct ConstLoc
{
	int			start;			/* offset in the statement text */
	int			end;			/* offset just past the constant */
	bool		squashed;		/* a squashed list of constants (18) */
} ConstLoc;

static int
cmp_loc(const void *a, const void *b)
{
	int			x = ((const ConstLoc *) a)->start;
	int			y = ((const ConstLoc *) b)->start;

	return (x > y) - (x < y);
}

/*
 * Is the token whose text starts at t a string, bit-string or numeric
 * literal?  The scanner has NUL-terminated the token, so t[1] of a
 * one-character token is '\0'.
 */
static bool
is_literal_text(const char *t)
{
	if (t[0] == '\'')
		return true;			/* 'string' */
	if (t[0] == '$')
		return !isdigit((unsigned char) t[1]);	/* $$dollar$$, not $1 */
	if (isdigit((unsigned char) t[0]) ||
		(t[0] == '.' && isdigit((unsigned char) t[1])))
		return true;			/* 42, 4.2, .42, 1e6, 0x2A */
	if (strchr("eEbBxX", t[0]) != NULL && t[1] == '\'')
		return true;			/* E'escape', B'0101', X'2A' */
	if ((t[0] == 'u' || t[0] == 'U') && t[1] == '&' && t[2] == '\'')
		return true;			/* U&'unicode' */
	return false;
}

/*
 * Find where each wanted constant ends by lexing text (NUL-terminated).
 * locs[0..nlocs) hold the single constants' sorted, distinct start offsets
 * (none with all_literals, which takes every literal token instead, adding
 * them to locs).  The scanner NUL-terminates the current token inside its
 * own buffer, so strlen() from a token's start gives its length even for
 * string literals lexed in several pieces.  A negative number appears to
 * the jumble as a constant starting at the '-', so the token after it is
 * taken too.  Returns the number of constants in locs; a wanted one the
 * lexer never stops at is dropped.  Also sets *max_param to the highest $n
 * parameter written in the text, so new numbers do not collide with it.
 */
static int	lex_constants(core_yyscan_t yyscanner, core_yy_extra_type *yyx,
						  ConstLoc *locs, int nlocs, bool all_literals,
						  int *max_param);

static int
find_constants(const char *text, ConstLoc *locs, int nlocs,
			   bool all_literals, int *max_param)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	volatile int n = 0;
	int			save_client = client_min_messages;
	int			save_log = log_min_messages;

	yyscanner = scanner_init(text, &yyextra, &ScanKeywords, ScanKeywordTokens);

	/*
	 * The parser accepted this text already, and the client got its
	 * warnings and notices ("nonstandard use of \\", "identifier will be
	 * truncated"): lexing it again must be silent.  The scanner has no
	 * switch for the second, so messages below ERROR are turned off while it
	 * runs and turned back on however it ends.
	 */
	yyextra.escape_string_warning = false;
	client_min_messages = Max(client_min_messages, ERROR);
	log_min_messages = Max(log_min_messages, ERROR);
	PG_TRY();
	{
		n = lex_constants(yyscanner, &yyextra, locs, nlocs, all_literals,
						  max_param);
	}
	PG_FINALLY();
	{
		client_min_messages = save_client;
		log_min_messages = save_log;
	}
	PG_END_TRY();
	scanner_finish(yyscanner);
	return n;
}

static int
lex_constants(core_yyscan_t yyscanner, core_yy_extra_type *yyx,
			  ConstLoc *locs, int nlocs, bool all_literals, int *max_param)
{
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			n = 0;
	int			w = 0;

	for (;;)
	{
		int			tok = core_yylex(&yylval, &yylloc, yyscanner);
		int			start = yylloc;
		const char *t = yyx->scanbuf + yylloc;

		if (tok == 0)
			break;
		if (t[0] == '$' && isdigit((unsigned char) t[1]))
		{
			int			p = atoi(t + 1);

			if (p > *max_param)
				*max_param = p;
			continue;
		}

		if (all_literals)
		{
			if (!is_literal_text(t))
				continue;
		}
		else
		{
			while (w < nlocs && locs[w].start < start)
				w++;			/* a location the lexer never stops at */
			if (w >= nlocs || locs[w].start != start)
				continue;		/* lex on: $n parameters may follow */
			w++;
			if (t[0] == '-')
			{
				tok = core_yylex(&yylval, &yylloc, yyscanner);
				if (tok == 0)
					break;
			}
		}
		locs[n].start = start;
		locs[n].end = yylloc + (int) strlen(yyx->scanbuf + yylloc);
		locs[n].squashed = false;
		n++;
	}
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
	int			nsingle = 0;
	int			nsquashed = 0;
	ConstLoc   *locs = NULL;
	ConstLoc   *squashed = NULL;
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

		locs = palloc(sizeof(ConstLoc) * jstate->clocations_count);
		squashed = palloc(sizeof(ConstLoc) * jstate->clocations_count);
		for (int i = 0; i < jstate->clocations_count; i++)
		{
			const LocationLen *l = &jstate->clocations[i];
			int			loc = l->location - offset;
			int			sqlen = mo_loc_squashed_len(l);

			if (loc < 0 || loc >= len || mo_loc_is_param(l))
				continue;
			if (sqlen >= 0)
			{
				/* the jumble knows where a squashed list ends */
				squashed[nsquashed].start = loc;
				squashed[nsquashed].end = Min(loc + sqlen, len);
				squashed[nsquashed].squashed = true;
				nsquashed++;
			}
			else
				locs[nsingle++].start = loc;
		}
		qsort(locs, nsingle, sizeof(ConstLoc), cmp_loc);
		/* drop duplicates */
		if (nsingle > 1)
		{
			int			k = 1;

			for (int i = 1; i < nsingle; i++)
				if (locs[i].start != locs[k - 1].start)
					locs[k++] = locs[i];
			nsingle = k;
		}
		all_literals = false;
		max_param = jstate->highest_extern_param_id;
	}
	else if (all_literals)
	{
		/* no more literals than there are bytes */
		locs = palloc(sizeof(ConstLoc) * (len + 1));
	}

	if (locs != NULL)
		nlocs = find_constants(text, locs, nsingle, all_literals, &max_param);
	if (nsquashed > 0)
	{
		locs = repalloc(locs, sizeof(ConstLoc) * (nlocs + nsquashed));
		memcpy(locs + nlocs, squashed, sizeof(ConstLoc) * nsquashed);
		nlocs += nsquashed;
		qsort(locs, nlocs, sizeof(ConstLoc), cmp_loc);
	}

	/*
	 * Each constant (at least 1 byte) becomes at most 11 bytes: $2147483647,
	 * a squashed list 12 more for the comment after it.
	 */
	buf = palloc(len + nlocs * 11 + nsquashed * 12 + 1);
	next_param = max_param + 1;
	for (int i = 0; i < nlocs; i++)
	{
		if (locs[i].start < pos)
			continue;			/* overlaps the previous one; be safe */
		memcpy(buf + o, text + pos, locs[i].start - pos);
		o += locs[i].start - pos;
		o += sprintf(buf + o, "$%d%s", next_param++,
					 locs[i].squashed ? " /*, ... */" : "");
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
