/*-------------------------------------------------------------------------
 *
 * exec_hooks.h
 *	  The per-statement completion point of moltres_ops: other subsystems
 *	  (the slow-query log) learn here about each finished statement.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_EXEC_HOOKS_H
#define MO_EXEC_HOOKS_H

#include "executor/execdesc.h"
#include "nodes/plannodes.h"

#include "query_stats.h"

/*
 * What the hooks know about a statement that just finished.
 *
 * For an executor statement queryDesc is set and still usable (its plan
 * state is alive: EXPLAIN works); for a utility statement it is NULL.
 * failed: we are inside the PG_CATCH block of the hook, the error is still
 * on the error stack (geterrcode(), CopyErrorData() in a safe context) and
 * will be re-thrown as soon as the callback returns; allocate little, raise
 * nothing.
 */
typedef struct MoStatementDone
{
	QueryDesc  *queryDesc;		/* NULL for utility statements */
	const char *source_text;	/* the whole source string */
	int			stmt_location;	/* this statement within it */
	int			stmt_len;		/* 0 = to the end */
	uint64		queryid;
	bool		toplevel;
	int			nesting_level;	/* 0 for a top-level statement */
	double		duration_ms;
	uint64		rows;
	bool		failed;
	int			sqlerrcode;		/* 0 on success */
	MoErrClass	err_class;
} MoStatementDone;

typedef uint64 (*mo_statement_done_hook_type) (const MoStatementDone *done);

/*
 * Called for each tracked statement whose duration is at or above
 * moltres_ops.slow_query_ms (never when it is -1), successful or failed.
 * NULL when no subsystem wants it.  Fast statements cost one comparison.
 * Returns a number by which the hooks can later report that a success
 * failed after all (mo_slowlog_failed_after), or 0.
 */
extern PGDLLIMPORT mo_statement_done_hook_type mo_slow_statement_hook;

/* Where in a client's request an error arose (errors.c counts these). */
typedef enum MoErrPhase
{
	MO_PHASE_BEFORE,			/* parse, analysis, planning, start-up */
	MO_PHASE_DURING,			/* while the statement executed */
	MO_PHASE_AFTER				/* after it finished: result sent, commit */
} MoErrPhase;

extern void mo_exec_hooks_init(void);
extern MoErrPhase mo_exec_error_seen(const ErrorData *edata, uint64 *queryid);

#endif							/* MO_EXEC_HOOKS_H */
