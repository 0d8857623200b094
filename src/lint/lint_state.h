/*-------------------------------------------------------------------------
 *
 * lint_state.h
 *	  The linter's bottom layer (split.c, state.c): the state carried from
 *	  one statement of the input to the next, and the helpers every rule
 *	  uses to record what it found: findings, notes, the lock taken, the
 *	  source text of an expression, objects the input creates.  Depends on
 *	  nothing of the linter above it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_LINT_STATE_H
#define MO_LINT_STATE_H

#include "lint.h"

/* An object the input creates before a later statement uses it. */
typedef struct MoNewObject
{
	char		kind;			/* 'r' relation, 'i' index, 't' type, 'n' schema,
								 * 'c' column (of an existing table) */
	char	   *schema;			/* NULL when written unqualified; for a
								 * column, its relation's name */
	char	   *name;
} MoNewObject;

/* A CHECK (col IS NOT NULL) the input made valid, or one it added NOT VALID. */
typedef struct MoInputConstraint
{
	char	   *relname;
	char	   *conname;		/* may be NULL when unnamed */
	char	   *notnull_col;	/* column it proves NOT NULL, or NULL */
	bool		valid;
	bool		in_block;		/* added inside the current BEGIN block */
} MoInputConstraint;

/* A relation that took an ACCESS EXCLUSIVE lock in the open BEGIN block. */
typedef struct MoBlockLock
{
	char	   *relname;
	int			stmtno;
	bool		altered;		/* by an ALTER TABLE */
} MoBlockLock;

/* Everything carried from one statement of the input to the next. */
typedef struct MoLintState
{
	List	   *new_objects;	/* MoNewObject */
	List	   *constraints;	/* MoInputConstraint */
	List	   *functions;		/* MoInputFunction (catalog.c) */
	List	   *input_indexes;	/* IndexStmt of the whole input (pre-pass) */
	bool		extension_created;	/* a CREATE EXTENSION came earlier */
	bool		in_block;		/* inside BEGIN ... COMMIT */
	int			block_stmtno;	/* the BEGIN that opened it */
	List	   *block_locks;	/* MoBlockLock */
	bool		lock_timeout_set;	/* a non-zero lock_timeout applies */
	bool		statement_timeout_set;
	bool		lock_timeout_local; /* set by SET LOCAL in the block */
	bool		statement_timeout_local;
	bool		session_lock_timeout;	/* the values outside any block */
	bool		session_statement_timeout;
	double		large_rows;		/* moltres_ops.lint_large_table_rows */
} MoLintState;

/* Size and identity of a relation a statement names. */
typedef struct MoRelInfo
{
	char	   *display;		/* the name as written, quoted */
	char	   *relname;
	Oid			relid;			/* InvalidOid when not in the catalog */
	char		relkind;
	bool		is_new;			/* created earlier in the same input, or in
								 * the current transaction */
	bool		new_in_xact;	/* ... the latter: in the catalog already */
	bool		size_known;
	bool		empty;
	double		rows;			/* planner's estimate */
} MoRelInfo;

/* split.c */
extern List *mo_lint_long_identifiers(const char *text);
extern char *mo_source_span(MoStmtResult *res, int location, bool type);

/* state.c */
extern void mo_add_finding(MoStmtResult *res, MoRisk risk, const char *rule,
						   char *message, char *hint);
extern void mo_note(MoStmtResult *res, const char *fmt,...) pg_attribute_printf(2, 3);
extern void mo_take_lock(MoStmtResult *res, LOCKMODE mode, MoRelInfo *rel);
extern char *mo_rv_display(RangeVar *rv);
extern bool mo_is_new(MoLintState *st, char kind, const char *schema,
					  const char *name);
extern void mo_remember_new(MoLintState *st, char kind, const char *schema,
							const char *name);
extern Constraint *mo_find_constraint(List *constraints, ConstrType type);
extern char *mo_constraint_name(const char *relname, const char *col,
								const char *suffix);
extern char *mo_name_list(List *names);

#endif							/* MO_LINT_STATE_H */
