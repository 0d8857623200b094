/*-------------------------------------------------------------------------
 *
 * lint.h
 *	  The DDL risk linter's interface to the rest of the extension: what
 *	  ddl_guard.c (the guard judges each DDL statement), lock_trace.c (which
 *	  reuses the splitter) and the linter's own files share.  The linter
 *	  itself lives in src/lint/, in four layers that depend downwards only:
 *
 *	    lint.c                SQL entry point and driver (top)
 *	    rules_*.c             the rules, one file per kind of statement
 *	    catalog.c             what the catalogs say about the objects named
 *	    split.c, state.c      input splitting; findings, notes, locks, the
 *	                          state carried between statements (bottom)
 *
 *	  with one internal header per layer (lint_state.h, lint_catalog.h,
 *	  lint_rules.h).  Only the declarations below are for other files.
 *
 *	  Nothing here touches shared memory: the linter is a function of the
 *	  parse trees, the catalogs and the session's settings, and works
 *	  without shared_preload_libraries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_LINT_H
#define MO_LINT_H

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "storage/lockdefs.h"

/*
 * The level of a finding, in increasing order.  Advice (session hygiene,
 * idempotence, style) is not risk: a statement's risk is its worst finding
 * above advice, or safe (mo_lint_stmt_risk), and the guard never acts on
 * advice.
 */
typedef enum MoRisk
{
	MO_RISK_ADVICE = 0,
	MO_RISK_SAFE,
	MO_RISK_REVIEW,
	MO_RISK_DANGEROUS
} MoRisk;

/* One finding of one rule on one statement. */
typedef struct MoFinding
{
	MoRisk		risk;
	const char *rule;
	char	   *message;
	char	   *hint;
} MoFinding;

/* What the linter concluded about one statement. */
typedef struct MoStmtResult
{
	int			stmtno;			/* 1-based position in the input */
	char	   *text;			/* the statement's text, trimmed */
	int			offset;			/* byte offset of the text in the input */
	const char *command;		/* command tag, e.g. "ALTER TABLE" */
	LOCKMODE	lock;			/* strongest lock on an existing relation */
	Oid			lock_relid;		/* the relation it is taken on, if known */
	char	   *lock_relname;	/* its name as written */
	bool		lock_on_existing;	/* on a relation older than the input */
	bool		long_running;	/* scans or rewrites a non-empty table */
	const char *source;			/* the whole input */
	int			loc_base;		/* input offset of parse locations' zero */
	bool		rewrites;		/* rewrites a table or index */
	bool		scans;			/* scans a table under that lock */
	List	   *findings;		/* MoFinding, in discovery order */
	StringInfoData notes;		/* why the statement is judged as it is */
	Node	   *parsetree;		/* raw statement, NULL after a syntax error */
} MoStmtResult;

/* One input statement as the splitter returns it. */
typedef struct MoSplitStmt
{
	RawStmt    *raw;			/* NULL when the statement did not parse */
	int			offset;			/* byte offset of the text in the input */
	int			len;			/* byte length of the text */
	int			loc_base;		/* input offset of parse locations' zero */
	char	   *error;			/* the syntax error, when raw is NULL */
	int			errpos;			/* 1-based character position, or 0 */
	List	   *metas;			/* psql meta-commands before it, skipped */
} MoSplitStmt;

/* split.c */
extern List *mo_lint_split(const char *sql);

/* state.c */
/* mo_lint_guarded: which errors to re-throw besides cancels and resources */
#define MO_GUARD_RETHROW_INTERNAL		0x01
#define MO_GUARD_RETHROW_TOO_COMPLEX	0x02
extern ErrorData *mo_lint_guarded(void (*fn) (void *arg), void *arg, int rethrow);
extern const char *mo_lint_risk_name(MoRisk risk);
extern MoRisk mo_lint_stmt_risk(MoStmtResult *res);
extern const char *mo_lint_lock_name(LOCKMODE mode);
extern const char *mo_lint_toplevel_reason(Node *stmt);

/* lint.c */
extern List *mo_lint_run(const char *sql);

#endif							/* MO_LINT_H */
