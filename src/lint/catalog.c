/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Layer 2 of the linter (above split.c and state.c, below the rules):
 *	  what the catalogs say about the objects a linted statement names: a
 *	  relation's size, whether it was created earlier in the same input, the
 *	  volatility of a column default, whether a valid CHECK already proves a
 *	  column NOT NULL, and whether a column type change rewrites the table.
 *
 *	  Every answer comes from the server's own machinery wherever it exists
 *	  (the planner's size estimate, the parser's function resolution and
 *	  coercion rules, the predicate prover that SET NOT NULL uses), so the
 *	  linter judges the way the server will act.
 *
 *	  Called only from the per-statement subtransaction of lint.c: an error
 *	  here is rolled back there.  The only heavyweight lock taken is a
 *	  conditional AccessShareLock while a relation's size is read, released
 *	  at once; catalogs are read with the usual AccessShareLock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "parser/parse_coerce.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "moltres_ops.h"
#include "lint_catalog.h"

/* A function created earlier in the input, with its declared volatility. */
typedef struct MoInputFunction
{
	char	   *name;
	char		volatility;
} MoInputFunction;

/*
 * Whether a rule whose cost grows with the table applies; when it does
 * not, say why in the statement's notes.
 */
bool
mo_size_gate(MoLintState *st, MoStmtResult *res, MoRelInfo *rel)
{
	MoSizeClass cls = mo_size_class(st, rel);

	if (cls == MO_SIZE_LARGE || cls == MO_SIZE_UNKNOWN)
	{
		res->long_running = true;
		return true;
	}
	if (cls == MO_SIZE_FOREIGN)
	{
		res->rewrites = false;
		res->scans = false;
	}
	mo_note(res, "%s.", mo_size_words(st, rel));
	return false;
}

/*
 * mo_column_missing - whether an existing relation lacks a column that no
 * earlier statement of the input adds; mo_require_column raises the
 * server's error for it: the statement would fail, and lint says so in an
 * error row.
 */
bool
mo_column_missing(MoLintState *st, MoRelInfo *rel, const char *col)
{
	if (col == NULL || rel == NULL || rel->is_new || !OidIsValid(rel->relid))
		return false;
	if (mo_is_new(st, 'c', rel->relname, col))
		return false;
	return get_attnum(rel->relid, col) == InvalidAttrNumber;
}

void
mo_require_column(MoLintState *st, MoRelInfo *rel, const char *col)
{
	if (mo_column_missing(st, rel, col))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						col, rel->relname)));
}

/*
 * mo_require_type - raise the server's error when a column's type does not
 * exist, unless the input may have created it (a type or table of that
 * name earlier in the input, or any CREATE EXTENSION).  %TYPE is
 * resolved by the server at run time; callers leave out the serial
 * pseudo-types, which are no types.
 */
void
mo_require_type(MoLintState *st, TypeName *type)
{
	const char *name;
	const char *schema;

	if (type == NULL || type->names == NIL || type->pct_type ||
		st->extension_created)
		return;
	name = strVal(llast(type->names));
	schema = list_length(type->names) > 1 ?
		strVal(list_nth(type->names, list_length(type->names) - 2)) : NULL;
	if (mo_is_new(st, 't', schema, name) || mo_is_new(st, 'r', schema, name))
		return;
	(void) typenameTypeId(NULL, type);
}

/*
 * mo_lookup_relid - the relation a RangeVar names, or InvalidOid.  Unlike
 * RangeVarGetRelid it never raises an error (no schema permission check,
 * no cross-database error): the linter only reads pg_class.
 */
Oid
mo_lookup_relid(RangeVar *rv)
{
	if (rv == NULL || rv->relname == NULL)
		return InvalidOid;
	if (rv->catalogname &&
		strcmp(rv->catalogname, get_database_name(MyDatabaseId)) != 0)
		return InvalidOid;
	if (rv->schemaname)
	{
		Oid			nsp = get_namespace_oid(rv->schemaname, true);

		if (!OidIsValid(nsp))
			return InvalidOid;
		return get_relname_relid(rv->relname, nsp);
	}
	return RelnameGetRelid(rv->relname);
}

/*
 * rel_size - the planner's row estimate for a relation, and whether it has
 * no blocks at all.  The relation is opened only under a lock that is free
 * right now, and the lock is released at once; when it is not free, the
 * pg_class figures from the last VACUUM/ANALYZE are used.
 */
static void
rel_size(Oid relid, int depth, bool *known, bool *empty, double *rows)
{
	char		relkind = get_rel_relkind(relid);

	check_stack_depth();
	*known = false;
	*empty = false;
	*rows = 0;

	if (relkind == RELKIND_PARTITIONED_TABLE)
	{
		List	   *children = find_inheritance_children(relid, NoLock);
		ListCell   *lc;

		*known = true;
		*empty = true;
		foreach(lc, children)
		{
			bool		ck,
						ce;
			double		cr;

			if (depth > 8)
			{
				*known = false;
				break;
			}
			rel_size(lfirst_oid(lc), depth + 1, &ck, &ce, &cr);
			*known = *known && ck;
			*empty = *empty && ce;
			*rows += cr;
		}
		return;
	}
	if (!RELKIND_HAS_STORAGE(relkind))
		return;

	if (ConditionalLockRelationOid(relid, AccessShareLock))
	{
		Relation	rel = try_relation_open(relid, NoLock);

		if (rel != NULL)
		{
			BlockNumber nblocks = RelationGetNumberOfBlocks(rel);

			*known = true;
			if (nblocks == 0)
				*empty = true;
			else
			{
				BlockNumber pages;
				double		tuples;
				double		allvisfrac;

				estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
				*rows = tuples;
			}
			relation_close(rel, NoLock);
		}
		UnlockRelationOid(relid, AccessShareLock);
	}
	else
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

		if (HeapTupleIsValid(tup))
		{
			Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);

			if (form->reltuples >= 0)
			{
				*known = true;
				*rows = form->reltuples;
				*empty = (form->reltuples == 0 && form->relpages == 0);
			}
			ReleaseSysCache(tup);
		}
	}
}

/*
 * Whether the current transaction created a relation.  Its pg_class row's
 * xmin being ours is only a first filter (any ALTER of the table updates
 * that row too); the relcache knows: rd_createSubid.  A relation that we
 * created we hold locked, so the conditional lock is granted at once;
 * when it is not, someone else holds the relation, and it is not new.
 */
static bool
created_in_this_xact(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		mine = false;

	if (!HeapTupleIsValid(tup))
		return false;
	mine = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
	ReleaseSysCache(tup);
	if (!mine)
		return false;

	mine = false;
	if (ConditionalLockRelationOid(relid, AccessShareLock))
	{
		Relation	rel = try_relation_open(relid, NoLock);

		if (rel != NULL)
		{
			mine = (rel->rd_createSubid != InvalidSubTransactionId);
			relation_close(rel, NoLock);
		}
		UnlockRelationOid(relid, AccessShareLock);
	}
	return mine;
}

MoRelInfo *
mo_relinfo(MoLintState *st, RangeVar *rv)
{
	MoRelInfo  *ri = palloc0(sizeof(MoRelInfo));

	ri->display = mo_rv_display(rv);
	ri->relname = rv->relname;
	ri->is_new = mo_is_new(st, 'r', rv->schemaname, rv->relname);
	if (ri->is_new)
	{
		ri->size_known = true;
		ri->empty = true;
		return ri;
	}
	ri->relid = mo_lookup_relid(rv);
	if (!OidIsValid(ri->relid))
		return ri;
	ri->relkind = get_rel_relkind(ri->relid);

	/*
	 * A relation created by the current transaction (the guard judges each
	 * statement alone, after the ones before it ran): no other session can
	 * see it yet, so nothing waits on its locks and nothing else uses it.
	 */
	if (created_in_this_xact(ri->relid))
	{
		ri->is_new = true;
		ri->new_in_xact = true;
		ri->size_known = true;
		ri->empty = true;
		return ri;
	}
	rel_size(ri->relid, 0, &ri->size_known, &ri->empty, &ri->rows);
	return ri;
}

MoSizeClass
mo_size_class(MoLintState *st, MoRelInfo *rel)
{
	if (rel->is_new)
		return MO_SIZE_NEW;
	if (rel->relkind == RELKIND_FOREIGN_TABLE)
		return MO_SIZE_FOREIGN;
	if (!OidIsValid(rel->relid) || !rel->size_known)
		return MO_SIZE_UNKNOWN;
	if (rel->empty || rel->rows < 1)
		return MO_SIZE_EMPTY;
	if (rel->rows < st->large_rows)
		return MO_SIZE_SMALL;
	return MO_SIZE_LARGE;
}

/* How big the relation is, in words, for messages. */
char *
mo_size_words(MoLintState *st, MoRelInfo *rel)
{
	switch (mo_size_class(st, rel))
	{
		case MO_SIZE_NEW:
			return psprintf("%s is created earlier in this %s, so no one uses it yet",
							rel->display,
							rel->new_in_xact ? "transaction" : "input");
		case MO_SIZE_FOREIGN:
			return psprintf("%s is a foreign table: its rows live on the remote server, and nothing is rewritten or scanned here",
							rel->display);
		case MO_SIZE_EMPTY:
			return psprintf("%s is empty", rel->display);
		case MO_SIZE_SMALL:
			return psprintf("%s has about %.0f row%s, below moltres_ops.lint_large_table_rows (%.0f), so the lock is held only briefly",
							rel->display, rel->rows, rel->rows < 1.5 ? "" : "s",
							st->large_rows);
		case MO_SIZE_LARGE:
			return psprintf("%s has about %.0f rows", rel->display, rel->rows);
		case MO_SIZE_UNKNOWN:
			if (!OidIsValid(rel->relid))
				return psprintf("%s is not in the catalog, so it is judged as a large table",
								rel->display);
			return psprintf("the size of %s is unknown (never analysed, and locked right now), so it is judged as a large table",
							rel->display);
	}
	return pstrdup("");
}

/*
 * ---------------------------------------------------------------------
 * Volatility of a column default.
 * ---------------------------------------------------------------------
 */
void
mo_remember_function(MoLintState *st, CreateFunctionStmt *stmt)
{
	MoInputFunction *f = palloc(sizeof(MoInputFunction));
	ListCell   *lc;

	f->name = pstrdup(strVal(llast(stmt->funcname)));
	f->volatility = PROVOLATILE_VOLATILE;
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "volatility") == 0 && IsA(opt->arg, String))
		{
			const char *v = strVal(opt->arg);

			if (strcmp(v, "immutable") == 0)
				f->volatility = PROVOLATILE_IMMUTABLE;
			else if (strcmp(v, "stable") == 0)
				f->volatility = PROVOLATILE_STABLE;
		}
	}
	st->functions = lappend(st->functions, f);
}

typedef struct FindVolatile
{
	Oid			funcid;
} FindVolatile;

static bool
volatile_checker(Oid func_id, void *context)
{
	FindVolatile *fv = (FindVolatile *) context;

	if (func_volatile(func_id) == PROVOLATILE_VOLATILE)
	{
		fv->funcid = func_id;
		return true;
	}
	return false;
}

static bool
find_volatile_walker(Node *node, FindVolatile *fv)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, volatile_checker, fv))
		return true;
	if (IsA(node, NextValueExpr))
	{
		fv->funcid = F_NEXTVAL;
		return true;
	}
	return expression_tree_walker(node, find_volatile_walker, (void *) fv);
}

typedef struct RawCalls
{
	List	   *calls;			/* FuncCall */
} RawCalls;

static bool
raw_calls_walker(Node *node, RawCalls *rc)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncCall))
		rc->calls = lappend(rc->calls, node);
	return raw_expression_tree_walker(node, raw_calls_walker, (void *) rc);
}

/*
 * The fallback when the default cannot be transformed (it calls a function
 * created earlier in the input, for instance): look at each called name,
 * in the input's CREATE FUNCTIONs, then among pg_proc's candidates of that
 * name and arity, and take the most volatile.  Unresolvable counts as
 * volatile.
 */
static bool
raw_default_is_volatile(MoLintState *st, Node *raw_default, char **why)
{
	RawCalls	rc = {NIL};
	ListCell   *lc;

	raw_calls_walker(raw_default, &rc);
	foreach(lc, rc.calls)
	{
		FuncCall   *fc = lfirst(lc);
		const char *name = strVal(llast(fc->funcname));
		ListCell   *lc2;
		bool		found = false;
		char		worst = PROVOLATILE_IMMUTABLE;

		foreach(lc2, st->functions)
		{
			MoInputFunction *f = lfirst(lc2);

			if (strcmp(f->name, name) == 0)
			{
				found = true;
				if (f->volatility == PROVOLATILE_VOLATILE)
					worst = PROVOLATILE_VOLATILE;
			}
		}
		if (!found && list_length(fc->funcname) <= 2)
		{
			FuncCandidateList cand = NULL;

			if (list_length(fc->funcname) == 1 ||
				OidIsValid(get_namespace_oid(strVal(linitial(fc->funcname)), true)))
				cand = FuncnameGetCandidates(fc->funcname,
											 list_length(fc->args), NIL,
											 true, true, false, true);
			for (; cand; cand = cand->next)
			{
				found = true;
				if (func_volatile(cand->oid) == PROVOLATILE_VOLATILE)
					worst = PROVOLATILE_VOLATILE;
			}
		}
		if (!found)
		{
			*why = psprintf("%s() cannot be found, so it is assumed volatile",
							NameListToString(fc->funcname));
			return true;
		}
		if (worst == PROVOLATILE_VOLATILE)
		{
			*why = psprintf("%s() is volatile", NameListToString(fc->funcname));
			return true;
		}
	}
	return false;
}

typedef struct DefaultCheck
{
	Node	   *raw_default;
	TypeName   *type;
	bool		analysed;		/* transformed: an error after is the server's */
	bool		result;
	char	   *reason;
} DefaultCheck;

/* Analyse the default as the server would, and look for volatile calls. */
static void
default_check(void *arg)
{
	DefaultCheck *dc = (DefaultCheck *) arg;
	ParseState *pstate = make_parsestate(NULL);
	Node	   *expr;
	FindVolatile fv = {InvalidOid};

	expr = transformExpr(pstate, copyObject(dc->raw_default),
						 EXPR_KIND_COLUMN_DEFAULT);
	if (dc->type)
	{
		Oid			typid;
		int32		typmod;
		Node	   *coerced;

		typenameTypeIdAndMod(pstate, dc->type, &typid, &typmod);
		dc->analysed = true;	/* a literal of the wrong type fails below */
		coerced = coerce_to_target_type(pstate, expr, exprType(expr),
										typid, typmod,
										COERCION_ASSIGNMENT,
										COERCE_IMPLICIT_CAST, -1);
		if (coerced)
			expr = coerced;
	}
	dc->analysed = true;
	if (find_volatile_walker(expr, &fv))
	{
		dc->result = true;
		dc->reason = psprintf("%s() is volatile", get_func_name(fv.funcid));
	}
	else
	{
		/*
		 * ADD COLUMN evaluates a non-volatile default once, at once (the
		 * value stored in the catalog), through the planner's constant
		 * folding: fold it the same way, so that a default that fails
		 * (DEFAULT 1/0) fails here too.  Only immutable functions are
		 * called, as the server calls them.
		 */
		(void) eval_const_expressions(NULL, expr);
	}
	free_parsestate(pstate);
}

/*
 * mo_default_is_volatile - whether ADD COLUMN ... DEFAULT raw_default
 * rewrites the table.  The default is transformed and coerced to the
 * column type as ALTER TABLE does (so overloading, casts and nextval()
 * behind serial resolve exactly), in a nested subtransaction; only the
 * immutable calls that the server folds when it stores a non-volatile
 * default are evaluated, and an error there is re-thrown as the statement's
 * own.  A volatile result means every row gets its own value: a rewrite.
 */
bool
mo_default_is_volatile(MoLintState *st, Node *raw_default, TypeName *type,
					   char **why)
{
	DefaultCheck dc = {raw_default, type, false, false, NULL};
	ErrorData  *failure;

	/*
	 * The analysis fails on objects created earlier in the same input; an
	 * error once the default is analysed is the statement's own error.
	 */
	failure = mo_lint_guarded(default_check, &dc, MO_GUARD_RETHROW_TOO_COMPLEX);
	if (failure != NULL && dc.analysed)
		ReThrowError(failure);
	if (failure != NULL)
	{
		dc.reason = NULL;
		dc.result = raw_default_is_volatile(st, raw_default, &dc.reason);
	}
	*why = dc.reason;
	return dc.result;
}

/*
 * ---------------------------------------------------------------------
 * Constraints, columns and indexes.
 * ---------------------------------------------------------------------
 */

/*
 * mo_notnull_implied - whether the valid CHECK constraints of a relation
 * prove that a column is never NULL, by the same weak implication that
 * ALTER TABLE ... SET NOT NULL uses to skip its scan.
 */
bool
mo_notnull_implied(Oid relid, AttrNumber attnum)
{
	Relation	conrel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	List	   *clauses = NIL;
	NullTest   *nt;
	HeapTuple	atttup;
	Form_pg_attribute att;

	atttup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
							 Int16GetDatum(attnum));
	if (!HeapTupleIsValid(atttup))
		return false;
	att = (Form_pg_attribute) GETSTRUCT(atttup);
	nt = makeNode(NullTest);
	nt->arg = (Expr *) makeVar(1, attnum, att->atttypid, att->atttypmod,
							   att->attcollation, 0);
	nt->nulltesttype = IS_NOT_NULL;
	nt->argisrow = false;
	nt->location = -1;
	ReleaseSysCache(atttup);

	conrel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		Datum		d;
		bool		isnull;
		Node	   *expr;

		if (con->contype != CONSTRAINT_CHECK || !con->convalidated)
			continue;
		d = heap_getattr(tup, Anum_pg_constraint_conbin,
						 RelationGetDescr(conrel), &isnull);
		if (isnull)
			continue;
		expr = stringToNode(TextDatumGetCString(d));
		expr = (Node *) canonicalize_qual((Expr *) expr, true);
		clauses = list_concat(clauses, make_ands_implicit((Expr *) expr));
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);

	if (clauses == NIL)
		return false;
	return predicate_implied_by(list_make1(nt), clauses, true);
}

bool
mo_type_has_domain_constraints(TypeName *type)
{
	Oid			typid = LookupTypeNameOid(NULL, type, true);

	if (!OidIsValid(typid) || get_typtype(typid) != TYPTYPE_DOMAIN)
		return false;
	return DomainHasConstraints(typid);
}

/*
 * Whether a column has dependents in a catalog: rewrite rules (views), or
 * valid CHECK constraints.
 */
static bool
column_has_dependent(Oid relid, AttrNumber attnum, Oid classid)
{
	Relation	deprel;
	SysScanDesc scan;
	ScanKeyData key[3];
	HeapTuple	tup;
	bool		found = false;

	deprel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum((int32) attnum));
	scan = systable_beginscan(deprel, DependReferenceIndexId, true,
							  NULL, 3, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->classid != classid)
			continue;
		if (classid == ConstraintRelationId)
		{
			HeapTuple	ctup = SearchSysCache1(CONSTROID,
											   ObjectIdGetDatum(dep->objid));

			if (HeapTupleIsValid(ctup))
			{
				Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(ctup);

				/*
				 * ALTER COLUMN TYPE re-adds a NOT VALID constraint NOT VALID
				 * (its definition says so), so only valid ones are
				 * re-checked.
				 */
				if (con->contype == CONSTRAINT_CHECK && con->convalidated)
					found = true;
				ReleaseSysCache(ctup);
			}
		}
		else
			found = true;
		if (found)
			break;
	}
	systable_endscan(scan);
	table_close(deprel, AccessShareLock);
	return found;
}

bool
mo_column_used_by_view(Oid relid, AttrNumber attnum)
{
	return column_has_dependent(relid, attnum, RewriteRelationId);
}

bool
mo_column_has_check(Oid relid, AttrNumber attnum)
{
	return column_has_dependent(relid, attnum, ConstraintRelationId);
}

/* Leading key columns of an index, as attribute numbers. */
static bool
index_leads_with(Form_pg_index idx, List *attnums)
{
	int			n = list_length(attnums);
	int			i;

	if (n == 0 || idx->indnkeyatts < n)
		return false;
	for (i = 0; i < n; i++)
	{
		if (!list_member_int(attnums, idx->indkey.values[i]))
			return false;
	}
	return true;
}

/*
 * mo_fk_has_index - whether the referencing columns of a foreign key lead
 * some index of the table, in the catalog or created anywhere in the
 * input.  Without one, every DELETE or key UPDATE on the referenced table
 * scans this table.
 */
bool
mo_fk_has_index(MoLintState *st, Oid relid, const char *relname,
				List *fk_cols)
{
	ListCell   *lc;
	List	   *attnums = NIL;
	bool		found = false;

	/* indexes created by the input */
	foreach(lc, st->input_indexes)
	{
		IndexStmt  *is = lfirst(lc);
		ListCell   *lc2;
		int			i = 0;
		int			matched = 0;

		if (strcmp(is->relation->relname, relname) != 0)
			continue;
		foreach(lc2, is->indexParams)
		{
			IndexElem  *ie = lfirst(lc2);
			ListCell   *lc3;
			bool		hit = false;

			if (i++ >= list_length(fk_cols) || ie->name == NULL)
				break;
			foreach(lc3, fk_cols)
			{
				if (strcmp(strVal(lfirst(lc3)), ie->name) == 0)
					hit = true;
			}
			if (!hit)
				break;
			matched++;
		}
		if (matched == list_length(fk_cols))
			return true;
	}

	if (!OidIsValid(relid))
		return false;
	foreach(lc, fk_cols)
	{
		AttrNumber	a = get_attnum(relid, strVal(lfirst(lc)));

		if (a == InvalidAttrNumber)
			return false;
		attnums = lappend_int(attnums, a);
	}
	{
		Relation	indrel = table_open(IndexRelationId, AccessShareLock);
		SysScanDesc scan;
		ScanKeyData key;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(indrel, IndexIndrelidIndexId, true,
								  NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);

			if (idx->indisvalid && index_leads_with(idx, attnums))
			{
				found = true;
				break;
			}
		}
		systable_endscan(scan);
		table_close(indrel, AccessShareLock);
	}
	return found;
}

/*
 * mo_index_cols_nullable - for ADD PRIMARY KEY USING INDEX: the index's
 * columns that are not yet NOT NULL (the server will set NOT NULL on
 * them, scanning the table).  Returns false when the index is not found.
 */
bool
mo_index_cols_nullable(Oid relid, const char *indexname, List **nullable)
{
	Oid			indexoid;
	HeapTuple	tup;
	Form_pg_index idx;
	int			i;

	*nullable = NIL;
	if (!OidIsValid(relid))
		return false;
	indexoid = get_relname_relid(indexname, get_rel_namespace(relid));
	if (!OidIsValid(indexoid))
		return false;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tup))
		return false;
	idx = (Form_pg_index) GETSTRUCT(tup);
	for (i = 0; i < idx->indnkeyatts; i++)
	{
		AttrNumber	a = idx->indkey.values[i];
		HeapTuple	atup;

		if (a <= 0)
			continue;
		atup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
							   Int16GetDatum(a));
		if (HeapTupleIsValid(atup))
		{
			Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(atup);

			if (!att->attnotnull)
				*nullable = lappend(*nullable, pstrdup(NameStr(att->attname)));
			ReleaseSysCache(atup);
		}
	}
	ReleaseSysCache(tup);
	return true;
}

/*
 * ---------------------------------------------------------------------
 * ALTER COLUMN ... TYPE
 * ---------------------------------------------------------------------
 */

/*
 * mo_type_change - whether changing a column's type rewrites the table.
 *
 * Built as ALTER TABLE builds it: a Var of the old type, coerced to the
 * new type with assignment coercion, then simplified by the planner (which
 * asks the length-coercion support functions of varchar, numeric, bit,
 * time and interval whether a typmod change is a no-op), then checked the
 * way ATColumnChangeRequiresRewrite checks it: only Vars, relabelings,
 * unconstrained domains and, when TimeZone is UTC, the timestamp <->
 * timestamptz conversions leave the data alone.
 */
MoTypeChange
mo_type_change(Oid relid, const char *colname, TypeName *newtype,
			   Node *using_expr, char **oldtype_out, char **newtype_out,
			   AttrNumber *attnum_out)
{
	HeapTuple	atttup;
	Form_pg_attribute att;
	Oid			oldtyp;
	int32		oldtypmod;
	Oid			oldcoll;
	Oid			newtyp;
	int32		newtypmod;
	Node	   *expr;
	bool		tz = false;

	*oldtype_out = NULL;
	*newtype_out = NULL;
	*attnum_out = InvalidAttrNumber;
	if (!OidIsValid(relid))
		return MO_TC_UNKNOWN;
	atttup = SearchSysCacheAttName(relid, colname);
	if (!HeapTupleIsValid(atttup))
		return MO_TC_UNKNOWN;
	att = (Form_pg_attribute) GETSTRUCT(atttup);
	oldtyp = att->atttypid;
	oldtypmod = att->atttypmod;
	oldcoll = att->attcollation;
	*attnum_out = att->attnum;
	ReleaseSysCache(atttup);

	typenameTypeIdAndMod(NULL, newtype, &newtyp, &newtypmod);
	*oldtype_out = format_type_with_typemod(oldtyp, oldtypmod);
	*newtype_out = format_type_with_typemod(newtyp, newtypmod);

	/* A USING clause other than the bare column is computed per row. */
	if (using_expr)
	{
		if (!IsA(using_expr, ColumnRef) ||
			list_length(((ColumnRef *) using_expr)->fields) != 1 ||
			!IsA(linitial(((ColumnRef *) using_expr)->fields), String) ||
			strcmp(strVal(linitial(((ColumnRef *) using_expr)->fields)),
				   colname) != 0)
			return MO_TC_REWRITE;
	}

	expr = (Node *) makeVar(1, *attnum_out, oldtyp, oldtypmod, oldcoll, 0);
	expr = coerce_to_target_type(NULL, expr, oldtyp, newtyp, newtypmod,
								 COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST,
								 -1);
	if (expr == NULL)
		return MO_TC_NO_CAST;
	expr = (Node *) expression_planner((Expr *) expr);

	for (;;)
	{
		if (IsA(expr, Var))
			break;
		else if (IsA(expr, RelabelType))
			expr = (Node *) ((RelabelType *) expr)->arg;
		else if (IsA(expr, CoerceToDomain))
		{
			CoerceToDomain *d = (CoerceToDomain *) expr;

			if (DomainHasConstraints(d->resulttype))
				return MO_TC_REWRITE;
			expr = (Node *) d->arg;
		}
		else if (IsA(expr, FuncExpr) &&
				 (((FuncExpr *) expr)->funcid == F_TIMESTAMPTZ_TIMESTAMP ||
				  ((FuncExpr *) expr)->funcid == F_TIMESTAMP_TIMESTAMPTZ))
		{
			if (TimestampTimestampTzRequiresRewrite())
				return MO_TC_REWRITE_TZ;
			tz = true;
			expr = linitial(((FuncExpr *) expr)->args);
		}
		else
			return MO_TC_REWRITE;
	}
	return tz ? MO_TC_NO_REWRITE_UTC : MO_TC_NO_REWRITE;
}
