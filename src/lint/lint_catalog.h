/*-------------------------------------------------------------------------
 *
 * lint_catalog.h
 *	  The linter's catalog layer (catalog.c): what the catalogs say about
 *	  the relations, columns, defaults, constraints and types a statement
 *	  names.  Above lint_state.h; used by the rules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_LINT_CATALOG_H
#define MO_LINT_CATALOG_H

#include "lint_state.h"

/* How table size bears on a rule whose cost grows with the table. */
typedef enum MoSizeClass
{
	MO_SIZE_NEW,				/* created in this input: nobody uses it */
	MO_SIZE_EMPTY,				/* no rows */
	MO_SIZE_SMALL,				/* below moltres_ops.lint_large_table_rows */
	MO_SIZE_LARGE,				/* at or above it */
	MO_SIZE_UNKNOWN,			/* not in the catalog, or unreadable */
	MO_SIZE_FOREIGN				/* a foreign table: no rows stored here */
} MoSizeClass;

/* catalog.c */
extern MoRelInfo *mo_relinfo(MoLintState *st, RangeVar *rv);
extern Oid	mo_lookup_relid(RangeVar *rv);
extern MoSizeClass mo_size_class(MoLintState *st, MoRelInfo *rel);
extern char *mo_size_words(MoLintState *st, MoRelInfo *rel);
extern bool mo_size_gate(MoLintState *st, MoStmtResult *res, MoRelInfo *rel);
extern bool mo_column_missing(MoLintState *st, MoRelInfo *rel, const char *col);
extern void mo_require_column(MoLintState *st, MoRelInfo *rel, const char *col);
extern void mo_require_type(MoLintState *st, TypeName *type);
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


#endif							/* MO_LINT_CATALOG_H */
