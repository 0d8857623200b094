/*-------------------------------------------------------------------------
 *
 * lint.h
 *	  The DDL risk linter: types shared by lint.c (input splitting, driver,
 *	  SQL entry point), lint_rules.c (one analysis per statement kind),
 *	  lint_catalog.c (what the catalogs say about a relation, a column, a
 *	  default or a type change) and lock_trace.c (which reuses the splitter).
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

typedef enum MoRisk
{
	MO_RISK_SAFE = 0,
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
} MoSplitStmt;

/* An object the input creates before a later statement uses it. */
typedef struct MoNewObject
{
	char		kind;			/* 'r' relation, 'i' index, 't' type, 'n' schema */
	char	   *schema;			/* NULL when written unqualified */
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
	List	   *functions;		/* MoInputFunction (lint_catalog.c) */
	List	   *input_indexes;	/* IndexStmt of the whole input (pre-pass) */
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
	bool		is_new;			/* created earlier in the same input */
	bool		size_known;
	bool		empty;
	double		rows;			/* planner's estimate */
} MoRelInfo;

/* How table size bears on a rule whose cost grows with the table. */
typedef enum MoSizeClass
{
	MO_SIZE_NEW,				/* created in this input: nobody uses it */
	MO_SIZE_EMPTY,				/* no rows */
	MO_SIZE_SMALL,				/* below moltres_ops.lint_large_table_rows */
	MO_SIZE_LARGE,				/* at or above it */
	MO_SIZE_UNKNOWN				/* not in the catalog, or unreadable */
} MoSizeClass;

/* lint.c */
extern List *mo_lint_split(const char *sql);
extern List *mo_lint_run(const char *sql);

/* mo_lint_guarded: which errors to re-throw besides cancels and resources */
#define MO_GUARD_RETHROW_INTERNAL		0x01
#define MO_GUARD_RETHROW_TOO_COMPLEX	0x02
extern ErrorData *mo_lint_guarded(void (*fn) (void *arg), void *arg, int rethrow);
extern const char *mo_lint_risk_name(MoRisk risk);
extern const char *mo_lint_lock_name(LOCKMODE mode);
extern const char *mo_lint_toplevel_reason(Node *stmt);
extern void mo_add_finding(MoStmtResult *res, MoRisk risk, const char *rule,
						   char *message, char *hint);
extern void mo_note(MoStmtResult *res, const char *fmt,...) pg_attribute_printf(2, 3);
extern void mo_take_lock(MoStmtResult *res, LOCKMODE mode, MoRelInfo *rel);
extern char *mo_source_span(MoStmtResult *res, int location, bool type);

/* lint_alter.c */
extern void mo_lint_alter_table(MoLintState *st, MoStmtResult *res,
								AlterTableStmt *stmt);
extern void mo_lint_create_table(MoLintState *st, MoStmtResult *res,
								 CreateStmt *stmt);
extern char *mo_name_list(List *names);
extern bool mo_size_gate(MoLintState *st, MoStmtResult *res, MoRelInfo *rel);
extern Constraint *mo_find_constraint(List *constraints, ConstrType type);
extern char *mo_constraint_name(const char *relname, const char *col,
								const char *suffix);

/* lint_rules.c */
extern void mo_lint_prepass(MoLintState *st, List *stmts);
extern void mo_lint_statement(MoLintState *st, MoStmtResult *res, Node *stmt);
extern void mo_lint_transaction_rules(MoLintState *st, MoStmtResult *res,
									  Node *stmt);
extern void mo_lint_after_statement(MoLintState *st, MoStmtResult *res,
									Node *stmt);

/* lint_catalog.c */
extern char *mo_rv_display(RangeVar *rv);
extern bool mo_is_new(MoLintState *st, char kind, const char *schema,
					  const char *name);
extern void mo_remember_new(MoLintState *st, char kind, const char *schema,
							const char *name);
extern MoRelInfo *mo_relinfo(MoLintState *st, RangeVar *rv);
extern Oid	mo_lookup_relid(RangeVar *rv);
extern MoSizeClass mo_size_class(MoLintState *st, MoRelInfo *rel);
extern char *mo_size_words(MoLintState *st, MoRelInfo *rel);
extern bool mo_default_is_volatile(MoLintState *st, Node *raw_default,
								   TypeName *type, char **why);
extern void mo_remember_function(MoLintState *st, CreateFunctionStmt *stmt);
extern bool mo_notnull_implied(Oid relid, AttrNumber attnum);
extern bool mo_type_has_domain_constraints(TypeName *type);
extern bool mo_column_used_by_view(Oid relid, AttrNumber attnum);
extern bool mo_column_has_check(Oid relid, AttrNumber attnum);
extern bool mo_fk_has_index(MoLintState *st, Oid relid, const char *relname,
							List *fk_cols);
extern bool mo_index_cols_nullable(Oid relid, const char *indexname,
								   List **nullable);

/*
 * Result of analysing ALTER COLUMN ... TYPE against the catalogs, with the
 * server's own coercion machinery.
 */
typedef enum MoTypeChange
{
	MO_TC_NO_REWRITE,			/* binary coercible, or typmod widening */
	MO_TC_REWRITE,				/* every row is rewritten */
	MO_TC_NO_REWRITE_UTC,		/* timestamp <-> timestamptz under UTC */
	MO_TC_REWRITE_TZ,			/* the same, rewritten as TimeZone is not UTC */
	MO_TC_NO_CAST,				/* no assignment cast: fails without USING */
	MO_TC_UNKNOWN				/* column or type not found */
} MoTypeChange;

extern MoTypeChange mo_type_change(Oid relid, const char *colname,
								   TypeName *newtype, Node *using_expr,
								   char **oldtype_out, char **newtype_out,
								   AttrNumber *attnum_out);

#endif							/* MO_LINT_H */
