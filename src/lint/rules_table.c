/*-------------------------------------------------------------------------
 *
 * rules_table.c
 *	  Layer 3 of the linter (rules, above catalog.c): the rules about tables
 *	  and columns: ALTER TABLE (add, alter, drop columns; constraints;
 *	  partitions; storage) and CREATE TABLE.  The other rules_*.c files have
 *	  the other statement kinds.  docs/lint-rules.md documents every rule named here
 *	  (what, why, lock, safe alternative); keep the two in step.
 *
 *	  Risk rubric.  dangerous: holds a lock that blocks reads or writes for
 *	  a time that grows with the table (rewrite, validation scan, index
 *	  build), destroys data, surely breaks the running application, or
 *	  changes cluster-wide configuration.  review: a brief lock, but a
 *	  compatibility, data or operational risk that a tool cannot settle.
 *	  safe: catalog-only or weakly locked, no long scan under a strong lock.
 *
 *	  Rules whose cost grows with the table fire only when the table is at
 *	  least moltres_ops.lint_large_table_rows rows (or its size is unknown);
 *	  on a table created earlier in the input, an empty one or a small one
 *	  the statement is judged safe and the message says why.
 *
 *	  Runs inside lint.c's per-statement subtransaction.  Entry point:
 *	  mo_rules_table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "commands/tablecmds.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "lint_rules.h"

#define QI(s) quote_identifier(s)

/*
 * PostgreSQL 18: a generated column is virtual unless written STORED
 * (computed when read: adding one rewrites nothing), and a CHECK or FOREIGN
 * KEY constraint can be NOT ENFORCED (never checked: catalog-only).
 */
#if PG_VERSION_NUM >= 180000
#define MO_GENERATED_VIRTUAL(c)		((c)->generated_kind == ATTRIBUTE_GENERATED_VIRTUAL)
#define MO_CONSTRAINT_ENFORCED(c)	((c)->is_enforced)
#else
#define MO_GENERATED_VIRTUAL(c)		false
#define MO_CONSTRAINT_ENFORCED(c)	true
#endif

static void lint_set_not_null(MoLintState *st, MoStmtResult *res,
							  MoRelInfo *rel, const char *col);

/*
 * ---------------------------------------------------------------------
 * Small helpers.
 * ---------------------------------------------------------------------
 */


/* Whether the table may hold rows (for rules that fail on any row). */
static bool
may_have_rows(MoLintState *st, MoStmtResult *res, MoRelInfo *rel)
{
	MoSizeClass cls = mo_size_class(st, rel);

	if (cls == MO_SIZE_NEW || cls == MO_SIZE_EMPTY || cls == MO_SIZE_FOREIGN)
	{
		mo_note(res, "%s.", mo_size_words(st, rel));
		return false;
	}
	return true;
}

static const char *
type_last(TypeName *t)
{
	if (t == NULL || t->names == NIL)
		return "";
	return strVal(llast(t->names));
}

/* A built-in type name as the grammar writes it, or unqualified. */
static bool
type_is(TypeName *t, const char *name)
{
	if (t == NULL || t->names == NIL || t->pct_type)
		return false;
	if (strcmp(type_last(t), name) != 0)
		return false;
	return list_length(t->names) == 1 ||
		(list_length(t->names) == 2 &&
		 strcmp(strVal(linitial(t->names)), "pg_catalog") == 0);
}

static bool
type_is_serial(TypeName *t)
{
	return t && list_length(t->names) == 1 && t->arrayBounds == NIL &&
		(type_is(t, "serial") || type_is(t, "serial4") ||
		 type_is(t, "bigserial") || type_is(t, "serial8") ||
		 type_is(t, "smallserial") || type_is(t, "serial2"));
}

static bool
type_is_small_int(TypeName *t)
{
	return t && t->arrayBounds == NIL &&
		(type_is(t, "int4") || type_is(t, "int2") || type_is(t, "integer") ||
		 type_is(t, "smallint") || type_is(t, "serial") ||
		 type_is(t, "serial4") || type_is(t, "smallserial") ||
		 type_is(t, "serial2"));
}

static char *
type_text(MoStmtResult *res, TypeName *t)
{
	return mo_source_span(res, t->location, true);
}

/* A raw expression that is the NULL constant (DEFAULT NULL). */
static bool
is_null_const(Node *n)
{
	if (n == NULL)
		return true;
	if (IsA(n, TypeCast))
		return is_null_const(((TypeCast *) n)->arg);
	return IsA(n, A_Const) && ((A_Const *) n)->isnull;
}

/* CHECK (col IS NOT NULL): the column, or NULL. */
static char *
notnull_check_column(Node *expr)
{
	NullTest   *nt;
	ColumnRef  *cr;

	if (expr == NULL || !IsA(expr, NullTest))
		return NULL;
	nt = (NullTest *) expr;
	if (nt->nulltesttype != IS_NOT_NULL || nt->arg == NULL ||
		!IsA(nt->arg, ColumnRef))
		return NULL;
	cr = (ColumnRef *) nt->arg;
	if (list_length(cr->fields) != 1 || !IsA(linitial(cr->fields), String))
		return NULL;
	return strVal(linitial(cr->fields));
}

static MoInputConstraint *
find_input_constraint(MoLintState *st, const char *relname,
					  const char *conname)
{
	ListCell   *lc;

	foreach(lc, st->constraints)
	{
		MoInputConstraint *c = lfirst(lc);

		if (c->conname && conname && strcmp(c->relname, relname) == 0 &&
			strcmp(c->conname, conname) == 0)
			return c;
	}
	return NULL;
}

static void
remember_constraint(MoLintState *st, const char *relname, Constraint *c,
					bool valid)
{
	MoInputConstraint *ic = palloc0(sizeof(MoInputConstraint));

	ic->relname = pstrdup(relname);
	ic->conname = c->conname ? pstrdup(c->conname) : NULL;
	if (c->contype == CONSTR_CHECK)
		ic->notnull_col = notnull_check_column(c->raw_expr);
	else if (c->contype == CONSTR_NOTNULL && c->keys != NIL)
		ic->notnull_col = strVal(linitial(c->keys));
	ic->valid = valid && MO_CONSTRAINT_ENFORCED(c);
	ic->in_block = st->in_block;
	st->constraints = lappend(st->constraints, ic);
}

static bool
input_proves_notnull(MoLintState *st, const char *relname, const char *col)
{
	ListCell   *lc;

	foreach(lc, st->constraints)
	{
		MoInputConstraint *c = lfirst(lc);

		if (c->valid && c->notnull_col && strcmp(c->relname, relname) == 0 &&
			strcmp(c->notnull_col, col) == 0)
			return true;
	}
	return false;
}

/*
 * ---------------------------------------------------------------------
 * Column definitions: style rules shared by CREATE TABLE, ADD COLUMN and
 * ALTER COLUMN TYPE.
 * ---------------------------------------------------------------------
 */
static void
column_type_style(MoStmtResult *res, const char *col, TypeName *t,
				  bool is_key)
{
	if (t == NULL)
		return;
	if (type_is(t, "bpchar"))
		mo_add_finding(res, MO_RISK_ADVICE, "char_column",
					   psprintf("Column %s is char(n): values are blank-padded to the length, comparisons ignore trailing spaces, and it is no faster than text.",
								QI(col)),
					   psprintf("Declare %s as text (or varchar), with CHECK (char_length(%s) <= n) if a limit is needed.",
								QI(col), QI(col)));
	if (type_is(t, "varchar") && t->typmods != NIL)
		mo_add_finding(res, MO_RISK_ADVICE, "varchar_length",
					   psprintf("Column %s is varchar(n): raising the limit later is cheap, but lowering it or adding one rewrites the table under an AccessExclusiveLock.",
								QI(col)),
					   psprintf("Declare %s as text with a CHECK (char_length(%s) <= n) constraint, which can later be replaced with NOT VALID + VALIDATE without a rewrite.",
								QI(col), QI(col)));
	if (type_is(t, "timestamp"))
		mo_add_finding(res, MO_RISK_ADVICE, "timestamp_without_time_zone",
					   psprintf("Column %s is timestamp without time zone: values carry no offset, so they change meaning with the writer's TimeZone.",
								QI(col)),
					   psprintf("Declare %s as timestamptz (timestamp with time zone).",
								QI(col)));
	if (type_is(t, "json"))
		mo_add_finding(res, MO_RISK_ADVICE, "json_column",
					   psprintf("Column %s is json: it has no equality operator (SELECT DISTINCT, UNION and GROUP BY on it fail) and is reparsed on every access.",
								QI(col)),
					   psprintf("Declare %s as jsonb.", QI(col)));
	if (type_is_serial(t))
		mo_add_finding(res, MO_RISK_ADVICE, "serial_column",
					   psprintf("Column %s is %s: the sequence is a separate object with its own owner and grants, and serial is not SQL standard.",
								QI(col), type_last(t)),
					   psprintf("Declare %s bigint GENERATED BY DEFAULT AS IDENTITY.",
								QI(col)));
	if (is_key && type_is_small_int(t))
		mo_add_finding(res, MO_RISK_ADVICE, "int_key",
					   psprintf("Key column %s is %s: it overflows after 2^31 (or 2^15) values, and widening it later rewrites the table and every referencing table.",
								QI(col), type_last(t)),
					   psprintf("Declare %s as bigint (bigint GENERATED BY DEFAULT AS IDENTITY for a surrogate key).",
								QI(col)));
}

/* Whether a column of CREATE TABLE is (part of) the table's key. */
static bool
column_is_key(ColumnDef *cd, List *table_constraints)
{
	ListCell   *lc;

	if (type_is_serial(cd->typeName) ||
		mo_find_constraint(cd->constraints, CONSTR_PRIMARY) ||
		mo_find_constraint(cd->constraints, CONSTR_IDENTITY))
		return true;
	foreach(lc, table_constraints)
	{
		Constraint *c = lfirst(lc);
		ListCell   *lc2;

		if (!IsA(c, Constraint) || c->contype != CONSTR_PRIMARY)
			continue;
		foreach(lc2, c->keys)
		{
			if (strcmp(strVal(lfirst(lc2)), cd->colname) == 0)
				return true;
		}
	}
	return false;
}

/*
 * ---------------------------------------------------------------------
 * ALTER TABLE
 * ---------------------------------------------------------------------
 */

static void
lint_fk_index(MoLintState *st, MoStmtResult *res, MoRelInfo *rel,
			  Constraint *c)
{
	if (c->fk_attrs == NIL || rel->is_new)
		return;
	if (!mo_fk_has_index(st, rel->relid, rel->relname, c->fk_attrs))
	{
		StringInfoData cols;
		ListCell   *lc;

		initStringInfo(&cols);
		foreach(lc, c->fk_attrs)
		{
			if (cols.len > 0)
				appendStringInfoString(&cols, ", ");
			appendStringInfoString(&cols, QI(strVal(lfirst(lc))));
		}
		mo_add_finding(res, MO_RISK_ADVICE, "foreign_key_without_index",
					   psprintf("No index on %s leads with the foreign key columns (%s): every DELETE or key UPDATE on %s scans %s, under a lock.",
								rel->display, cols.data,
								mo_rv_display(c->pktable), rel->display),
					   psprintf("CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s); (outside a transaction block)",
								QI(mo_constraint_name(rel->relname, strVal(linitial(c->fk_attrs)), "idx")),
								rel->display, cols.data));
	}
}

static void
lint_add_constraint(MoLintState *st, MoStmtResult *res, MoRelInfo *rel,
					Constraint *c, const char *column)
{
	const char *q = rel->display;
	char	   *cname;

	switch (c->contype)
	{
		case CONSTR_CHECK:
			{
				char	   *expr = mo_source_span(res, exprLocation(c->raw_expr), false);
				char	   *nn = notnull_check_column(c->raw_expr);

				cname = c->conname ? c->conname :
					mo_constraint_name(rel->relname, nn ? nn : (column ? column : "check"), "check");
				remember_constraint(st, rel->relname, c, !c->skip_validation);
				if (!MO_CONSTRAINT_ENFORCED(c))
				{
					mo_note(res, "CHECK ... NOT ENFORCED is catalog-only: no row is ever checked.");
					break;
				}
				if (c->skip_validation)
				{
					mo_note(res, "CHECK ... NOT VALID is catalog-only: existing rows are not checked.");
					break;
				}
				res->scans = true;
				if (mo_size_gate(st, res, rel))
					mo_add_finding(res, MO_RISK_DANGEROUS, "add_check_validated",
								   psprintf("Adding CHECK %s without NOT VALID scans every row of %s under an AccessExclusiveLock, blocking reads and writes: %s.",
											expr, q, mo_size_words(st, rel)),
								   psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK %s NOT VALID; then, in a separate transaction: ALTER TABLE %s VALIDATE CONSTRAINT %s; (VALIDATE takes only a ShareUpdateExclusiveLock)",
											q, QI(cname), expr, q, QI(cname)));
			}
			break;

		case CONSTR_FOREIGN:
			{
				char	   *pk = mo_rv_display(c->pktable);
				MoRelInfo  *pkrel = mo_relinfo(st, c->pktable);

				mo_take_lock(res, ShareRowExclusiveLock, pkrel);
				cname = c->conname ? c->conname :
					mo_constraint_name(rel->relname,
									c->fk_attrs ? strVal(linitial(c->fk_attrs)) :
									(column ? column : "ref"), "fkey");
				remember_constraint(st, rel->relname, c, !c->skip_validation);
				lint_fk_index(st, res, rel, c);
				if (!MO_CONSTRAINT_ENFORCED(c))
				{
					mo_note(res, "FOREIGN KEY ... NOT ENFORCED is catalog-only: no row is ever checked.");
					break;
				}
				if (c->skip_validation)
				{
					mo_note(res, "FOREIGN KEY ... NOT VALID checks only new rows: no scan.");
					break;
				}
				/* an FK on a column added by the same statement with no
				 * default (all NULL) is not validated */
				if (column != NULL)
					break;
				res->scans = true;
				if (mo_size_gate(st, res, rel))
					mo_add_finding(res, MO_RISK_DANGEROUS, "add_foreign_key_validated",
								   psprintf("Adding a FOREIGN KEY without NOT VALID scans %s to validate every row under a ShareRowExclusiveLock on %s and on %s, blocking writes to both: %s.",
											q, q, pk, mo_size_words(st, rel)),
								   psprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s%s%s%s NOT VALID; then, in a separate transaction: ALTER TABLE %s VALIDATE CONSTRAINT %s;",
											q, QI(cname), mo_name_list(c->fk_attrs), pk,
											c->pk_attrs ? " (" : "",
											c->pk_attrs ? mo_name_list(c->pk_attrs) : "",
											c->pk_attrs ? ")" : "",
											q, QI(cname)));
			}
			break;

		case CONSTR_PRIMARY:
		case CONSTR_UNIQUE:
			{
				bool		pkey = (c->contype == CONSTR_PRIMARY);
				const char *what = pkey ? "PRIMARY KEY" : "UNIQUE";

				cname = c->conname ? c->conname :
					mo_constraint_name(rel->relname,
									c->keys ? strVal(linitial(c->keys)) :
									(column ? column : "key"), pkey ? "pkey" : "key");
				if (c->indexname)
				{
					List	   *nullable = NIL;

					mo_note(res, "%s USING INDEX attaches an existing index: no build.", what);
					if (pkey &&
						(!mo_index_cols_nullable(rel->relid, c->indexname, &nullable) ||
						 nullable != NIL) && !rel->is_new)
					{
						res->scans = true;
						if (mo_size_gate(st, res, rel))
							mo_add_finding(res, MO_RISK_DANGEROUS, "add_primary_key_nullable",
										   psprintf("PRIMARY KEY USING INDEX %s sets NOT NULL on %s, which scans %s under an AccessExclusiveLock: %s.",
													QI(c->indexname),
													nullable ? QI((char *) linitial(nullable)) : "its columns",
													q, mo_size_words(st, rel)),
										   psprintf("First make each key column NOT NULL without a scan: ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID; ALTER TABLE %s VALIDATE CONSTRAINT %s; ALTER TABLE %s ALTER COLUMN %s SET NOT NULL; then ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s;",
													q, QI(mo_constraint_name(rel->relname, nullable ? (char *) linitial(nullable) : "id", "not_null")),
													nullable ? QI((char *) linitial(nullable)) : "col",
													q, QI(mo_constraint_name(rel->relname, nullable ? (char *) linitial(nullable) : "id", "not_null")),
													q, nullable ? QI((char *) linitial(nullable)) : "col",
													q, QI(cname), QI(c->indexname)));
					}
					break;
				}
				res->scans = true;
				if (mo_size_gate(st, res, rel))
					mo_add_finding(res, MO_RISK_DANGEROUS,
								   pkey ? "add_primary_key" : "add_unique_constraint",
								   psprintf("Adding a %s constraint builds its index under an AccessExclusiveLock on %s, blocking reads and writes for the whole build: %s.",
											what, q, mo_size_words(st, rel)),
								   psprintf("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s); (outside a transaction block) then ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s;",
											QI(cname), q, mo_name_list(c->keys), q, QI(cname), what, QI(cname)));
			}
			break;

		case CONSTR_NOTNULL:

			/*
			 * ADD CONSTRAINT name NOT NULL col (PostgreSQL 18): with NOT
			 * VALID catalog-only, as CHECK; otherwise the scan of SET NOT
			 * NULL, with the same proofs that skip it.
			 */
			remember_constraint(st, rel->relname, c, !c->skip_validation);
			if (c->keys == NIL)
				break;
			if (c->skip_validation)
			{
				mo_note(res, "NOT NULL ... NOT VALID is catalog-only: existing rows are not checked.");
				break;
			}
			lint_set_not_null(st, res, rel, strVal(linitial(c->keys)));
			break;

		case CONSTR_EXCLUSION:
			res->scans = true;
			if (mo_size_gate(st, res, rel))
				mo_add_finding(res, MO_RISK_DANGEROUS, "add_exclusion_constraint",
							   psprintf("Adding an EXCLUDE constraint builds its index under an AccessExclusiveLock on %s, and there is no concurrent way to build one: %s.",
										q, mo_size_words(st, rel)),
							   psprintf("Create a new table with the EXCLUDE constraint, copy the rows in batches while triggers keep it in sync, then swap names in one short transaction (ALTER TABLE %s RENAME TO ...; ALTER TABLE new RENAME TO ...).",
										q));
			break;

		default:
			break;
	}
}

static void
lint_add_column(MoLintState *st, MoStmtResult *res, MoRelInfo *rel,
				ColumnDef *cd)
{
	const char *q = rel->display;
	const char *col = cd->colname;
	Constraint *def = mo_find_constraint(cd->constraints, CONSTR_DEFAULT);
	Constraint *notnull = mo_find_constraint(cd->constraints, CONSTR_NOTNULL);
	Constraint *ident = mo_find_constraint(cd->constraints, CONSTR_IDENTITY);
	Constraint *gen = mo_find_constraint(cd->constraints, CONSTR_GENERATED);
	bool		serial = type_is_serial(cd->typeName);
	bool		has_default = def && !is_null_const(def->raw_expr);
	char	   *why = NULL;
	char	   *ttext = type_text(res, cd->typeName);
	ListCell   *lc;

	column_type_style(res, col, cd->typeName,
					  serial || ident ||
					  mo_find_constraint(cd->constraints, CONSTR_PRIMARY));
	if (!serial)
		mo_require_type(st, cd->typeName);

	if (rel->is_new)
	{
		mo_note(res, "%s.", mo_size_words(st, rel));
		return;
	}

	mo_remember_new(st, 'c', rel->relname, col);

	/* What makes ADD COLUMN rewrite the table. */
	if (gen && MO_GENERATED_VIRTUAL(gen))
		mo_note(res, "%s is a virtual generated column: computed when read, so adding it rewrites nothing.",
				QI(col));
	else if (gen)
	{
		res->rewrites = true;
		if (mo_size_gate(st, res, rel))
			mo_add_finding(res, MO_RISK_DANGEROUS, "add_column_generated_stored",
						   psprintf("ADD COLUMN %s GENERATED ALWAYS AS (...) STORED computes the column for every row: it rewrites %s and its indexes under an AccessExclusiveLock: %s.",
									QI(col), q, mo_size_words(st, rel)),
						   psprintf("ALTER TABLE %s ADD COLUMN %s %s; then a BEFORE INSERT OR UPDATE trigger that computes it, and a batched backfill: UPDATE %s SET %s = ... WHERE <key range>; one batch per transaction.",
									q, QI(col), ttext, q, QI(col)));
	}
	else if (serial || ident)
	{
		res->rewrites = true;
		if (mo_size_gate(st, res, rel))
			mo_add_finding(res, MO_RISK_DANGEROUS, "add_column_auto_increment",
						   psprintf("ADD COLUMN %s %s gives every existing row its own sequence value: it rewrites %s and its indexes under an AccessExclusiveLock: %s.",
									QI(col), serial ? type_last(cd->typeName) : "GENERATED AS IDENTITY",
									q, mo_size_words(st, rel)),
						   psprintf("ALTER TABLE %s ADD COLUMN %s bigint; CREATE SEQUENCE %s; ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval('%s'); then backfill existing rows in batches: UPDATE %s SET %s = nextval('%s') WHERE %s IS NULL AND <key range>;",
									q, QI(col), QI(mo_constraint_name(rel->relname, col, "seq")),
									q, QI(col), mo_constraint_name(rel->relname, col, "seq"),
									q, QI(col), mo_constraint_name(rel->relname, col, "seq"), QI(col)));
	}
	else if (has_default &&
			 mo_default_is_volatile(st, def->raw_expr, cd->typeName, &why))
	{
		char	   *expr = mo_source_span(res, exprLocation(def->raw_expr), false);

		res->rewrites = true;
		if (mo_size_gate(st, res, rel))
			mo_add_finding(res, MO_RISK_DANGEROUS, "add_column_volatile_default",
						   psprintf("ADD COLUMN %s with a volatile default (%s) computes a value per row: it rewrites %s and all its indexes under an AccessExclusiveLock, blocking reads and writes: %s.",
									QI(col), why, q, mo_size_words(st, rel)),
						   psprintf("ALTER TABLE %s ADD COLUMN %s %s; ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s; then backfill existing rows in batches, one transaction each: UPDATE %s SET %s = %s WHERE %s IS NULL AND <key range>;",
									q, QI(col), ttext, q, QI(col), expr,
									q, QI(col), expr, QI(col)));
	}
	else if (mo_type_has_domain_constraints(cd->typeName))
	{
		res->rewrites = true;
		if (mo_size_gate(st, res, rel))
			mo_add_finding(res, MO_RISK_DANGEROUS, "add_column_volatile_default",
						   psprintf("ADD COLUMN %s of a domain with constraints checks the default against the domain for every row: it rewrites %s under an AccessExclusiveLock: %s.",
									QI(col), q, mo_size_words(st, rel)),
						   psprintf("ALTER TABLE %s ADD COLUMN %s <base type of the domain>; backfill in batches; then change the type to the domain once the table is small enough, or enforce the rule with CHECK ... NOT VALID + VALIDATE.",
									q, QI(col)));
	}
	else if (has_default)
		mo_note(res, "The default of %s is not volatile: PostgreSQL stores it once in the catalog (no rewrite).",
				QI(col));
	else
		mo_note(res, "Adding a nullable column without a default is catalog-only.");

	/* NOT NULL with nothing to fill existing rows. */
	if (notnull && !has_default && !serial && !ident && !gen)
	{
		if (may_have_rows(st, res, rel))
			mo_add_finding(res, MO_RISK_DANGEROUS, "add_column_not_null_no_default",
						   psprintf("ADD COLUMN %s NOT NULL without a default fails as soon as %s has a row (%s), and once added, every INSERT of the running application that omits the column fails.",
									QI(col), q, mo_size_words(st, rel)),
						   psprintf("ALTER TABLE %s ADD COLUMN %s %s; backfill it in batches; then ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID; ALTER TABLE %s VALIDATE CONSTRAINT %s; ALTER TABLE %s ALTER COLUMN %s SET NOT NULL; -- or give it a constant default: ADD COLUMN %s %s NOT NULL DEFAULT <constant>",
									q, QI(col), ttext, q,
									QI(mo_constraint_name(rel->relname, col, "not_null")), QI(col),
									q, QI(mo_constraint_name(rel->relname, col, "not_null")),
									q, QI(col), QI(col), ttext));
	}

	/* Inline constraints that scan or build. */
	foreach(lc, cd->constraints)
	{
		Constraint *c = lfirst(lc);

		if (!IsA(c, Constraint))
			continue;
		if (c->contype == CONSTR_CHECK || c->contype == CONSTR_PRIMARY ||
			c->contype == CONSTR_UNIQUE)
		{
			if (c->keys == NIL && c->contype != CONSTR_CHECK)
				c->keys = list_make1(makeString(pstrdup(col)));
			lint_add_constraint(st, res, rel, c, col);
		}
		else if (c->contype == CONSTR_FOREIGN)
		{
			if (c->fk_attrs == NIL)
				c->fk_attrs = list_make1(makeString(pstrdup(col)));

			/*
			 * The server skips the validation only when the column has no
			 * default clause at all: an explicit DEFAULT NULL, serial and
			 * generated columns set one (transformAlterTableStmt), and then
			 * every row is checked.
			 */
			lint_add_constraint(st, res, rel, c,
								(def || serial || gen) ? NULL : col);
		}
	}
}

static void
lint_set_not_null(MoLintState *st, MoStmtResult *res, MoRelInfo *rel,
				  const char *col)
{
	const char *q = rel->display;
	char	   *cname;

	if (rel->is_new)
	{
		mo_note(res, "%s.", mo_size_words(st, rel));
		return;
	}
	if (OidIsValid(rel->relid))
	{
		AttrNumber	attnum = get_attnum(rel->relid, col);

		if (attnum != InvalidAttrNumber)
		{
			HeapTuple	tup = SearchSysCache2(ATTNUM,
											  ObjectIdGetDatum(rel->relid),
											  Int16GetDatum(attnum));
			bool		already = false;

			if (HeapTupleIsValid(tup))
			{
				already = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
				ReleaseSysCache(tup);
			}
			if (already)
			{
				mo_note(res, "%s is already NOT NULL: nothing to do.", QI(col));
				return;
			}
			if (mo_notnull_implied(rel->relid, attnum))
			{
				mo_note(res, "A valid CHECK constraint on %s already proves %s IS NOT NULL, so SET NOT NULL skips the scan.",
						q, QI(col));
				return;
			}
		}
	}
	if (input_proves_notnull(st, rel->relname, col))
	{
		mo_note(res, "A CHECK (%s IS NOT NULL) validated earlier in this input proves the column, so SET NOT NULL skips the scan.",
				QI(col));
		return;
	}
	res->scans = true;
	if (mo_size_gate(st, res, rel))
	{
		cname = mo_constraint_name(rel->relname, col, "not_null");
		mo_add_finding(res, MO_RISK_DANGEROUS, "set_not_null_scan",
					   psprintf("SET NOT NULL on %s scans every row of %s under an AccessExclusiveLock, blocking reads and writes, because no valid CHECK constraint proves it: %s.",
								QI(col), q, mo_size_words(st, rel)),
					   psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID; then in separate transactions: ALTER TABLE %s VALIDATE CONSTRAINT %s; ALTER TABLE %s ALTER COLUMN %s SET NOT NULL; ALTER TABLE %s DROP CONSTRAINT %s;",
								q, QI(cname), QI(col), q, QI(cname), q, QI(col),
								q, QI(cname)));
	}
}

static void
lint_alter_type(MoLintState *st, MoStmtResult *res, MoRelInfo *rel,
				const char *col, ColumnDef *def)
{
	const char *q = rel->display;
	char	   *oldt = NULL;
	char	   *newt = NULL;
	AttrNumber	attnum = InvalidAttrNumber;
	MoTypeChange tc;
	char	   *ttext = type_text(res, def->typeName);

	if (rel->is_new)
	{
		mo_note(res, "%s.", mo_size_words(st, rel));
		return;
	}
	tc = mo_type_change(rel->relid, col, def->typeName, def->raw_default,
						&oldt, &newt, &attnum);

	if (attnum != InvalidAttrNumber && mo_column_used_by_view(rel->relid, attnum))
		mo_add_finding(res, MO_RISK_REVIEW, "alter_column_type_view_dependency",
					   psprintf("Column %s of %s is used by a view or rule: PostgreSQL refuses to change its type (\"cannot alter type of a column used by a view or rule\").",
								QI(col), q),
					   psprintf("In one transaction: DROP VIEW <dependent view>; ALTER TABLE %s ALTER COLUMN %s TYPE %s; CREATE VIEW <dependent view> AS ...;",
								q, QI(col), ttext));

	switch (tc)
	{
		case MO_TC_NO_REWRITE:
			mo_note(res, "%s -> %s is binary coercible (or only relaxes the type modifier): no rewrite.",
					oldt, newt);
			if (attnum != InvalidAttrNumber &&
				mo_column_has_check(rel->relid, attnum))
			{
				res->scans = true;
				if (mo_size_gate(st, res, rel))
					mo_add_finding(res, MO_RISK_DANGEROUS, "alter_column_type_with_check",
								   psprintf("Column %s has CHECK constraints: changing its type re-validates them with a scan of %s under an AccessExclusiveLock: %s.",
											QI(col), q, mo_size_words(st, rel)),
								   psprintf("ALTER TABLE %s DROP CONSTRAINT <check>; ALTER TABLE %s ALTER COLUMN %s TYPE %s; ALTER TABLE %s ADD CONSTRAINT <check> CHECK (...) NOT VALID; then in a separate transaction ALTER TABLE %s VALIDATE CONSTRAINT <check>;",
											q, q, QI(col), ttext, q, q));
			}
			return;
		case MO_TC_NO_REWRITE_UTC:
			mo_add_finding(res, MO_RISK_REVIEW, "alter_column_type_timezone",
						   psprintf("%s -> %s skips the rewrite only because this session's TimeZone is UTC; run with another TimeZone it rewrites %s under an AccessExclusiveLock.",
									oldt, newt, q),
						   psprintf("Run the migration with SET TimeZone = 'UTC'; before ALTER TABLE %s ALTER COLUMN %s TYPE %s;",
									q, QI(col), ttext));
			return;
		case MO_TC_NO_CAST:
			mo_add_finding(res, MO_RISK_REVIEW, "alter_column_type_rewrite",
						   psprintf("There is no assignment cast from %s to %s: the statement fails without USING, and with USING it rewrites %s.",
									oldt, newt, q),
						   psprintf("ALTER TABLE %s ADD COLUMN <new> %s; keep it in sync with a trigger; backfill in batches; switch readers; then drop %s and rename.",
									q, ttext, QI(col)));
			return;
		case MO_TC_REWRITE:
		case MO_TC_REWRITE_TZ:
		case MO_TC_UNKNOWN:
			break;
	}

	res->rewrites = true;
	if (mo_size_gate(st, res, rel))
	{
		char	   *what;

		if (tc == MO_TC_UNKNOWN)
			what = psprintf("Changing the type of %s.%s (not found in the catalog) is assumed to rewrite the table",
							q, QI(col));
		else if (tc == MO_TC_REWRITE_TZ)
			what = psprintf("%s -> %s rewrites %s because this session's TimeZone (%s) is not UTC",
							oldt, newt, q, GetConfigOption("TimeZone", false, false));
		else if (def->raw_default)
			what = psprintf("ALTER COLUMN %s TYPE %s USING ... computes every row: it rewrites %s",
							QI(col), newt, q);
		else
			what = psprintf("%s -> %s is not binary coercible: it rewrites %s", oldt, newt, q);
		mo_add_finding(res, MO_RISK_DANGEROUS, "alter_column_type_rewrite",
					   psprintf("%s and rebuilds all its indexes under an AccessExclusiveLock, blocking reads and writes: %s.",
								what, mo_size_words(st, rel)),
					   psprintf("ALTER TABLE %s ADD COLUMN %s %s; a trigger that copies %s into it on INSERT/UPDATE; backfill in batches (UPDATE %s SET %s = %s::%s WHERE <key range>); then in one short transaction drop %s and rename %s to %s.%s",
								q, QI(psprintf("%s_new", col)), ttext, QI(col),
								q, QI(psprintf("%s_new", col)), QI(col), ttext,
								QI(col), QI(psprintf("%s_new", col)), QI(col),
								tc == MO_TC_REWRITE_TZ ? " Or, for timestamp -> timestamptz, run it under SET TimeZone = 'UTC', which avoids the rewrite." : ""));
	}
}

static void
lint_alter_table(MoLintState *st, MoStmtResult *res, AlterTableStmt *stmt)
{
	MoRelInfo  *rel = mo_relinfo(st, stmt->relation);
	const char *q = rel->display;
	LOCKMODE	lock = AlterTableGetLockLevel(stmt->cmds);
	ListCell   *lc;

	mo_take_lock(res, lock, rel);

	/* another ALTER TABLE of the same table in the same BEGIN block */
	if (st->in_block && !rel->is_new && lock == AccessExclusiveLock)
	{
		foreach(lc, st->block_locks)
		{
			MoBlockLock *bl = lfirst(lc);

			if (bl->altered && strcmp(bl->relname, rel->relname) == 0)
			{
				mo_add_finding(res, MO_RISK_REVIEW, "multiple_alter_table",
							   psprintf("%s is altered again in the same transaction (statement %d): each ALTER TABLE re-checks and may re-scan the table while the AccessExclusiveLock is held.",
										q, bl->stmtno),
							   psprintf("Combine the subcommands into one statement: ALTER TABLE %s <first change>, <second change>;",
										q));
				break;
			}
		}
	}

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);

		switch (cmd->subtype)
		{
			case AT_AddColumn:
			case AT_AddColumnToView:
				if (IsA(cmd->def, ColumnDef))
					lint_add_column(st, res, rel, (ColumnDef *) cmd->def);
				break;
			case AT_ColumnDefault:
				mo_require_column(st, rel, cmd->name);
				mo_note(res, "SET/DROP DEFAULT is catalog-only.");
				break;
			case AT_SetNotNull:
				mo_require_column(st, rel, cmd->name);
				lint_set_not_null(st, res, rel, cmd->name);
				break;
			case AT_DropNotNull:
				mo_require_column(st, rel, cmd->name);
				if (rel->is_new)
					break;
				mo_add_finding(res, MO_RISK_REVIEW, "drop_not_null",
							   psprintf("DROP NOT NULL on %s.%s is catalog-only, but code that reads the column may assume it is never NULL.",
										q, QI(cmd->name)),
							   psprintf("Check the readers of %s first; keep the column NOT NULL and write a sentinel value if they cannot handle NULL.",
										QI(cmd->name)));
				break;
			case AT_AlterColumnType:
				mo_require_column(st, rel, cmd->name);
				if (IsA(cmd->def, ColumnDef))
					lint_alter_type(st, res, rel, cmd->name,
									(ColumnDef *) cmd->def);
				break;
			case AT_DropColumn:
				if (rel->is_new)
					break;
				if (mo_column_missing(st, rel, cmd->name))
				{
					if (!cmd->missing_ok)
						mo_require_column(st, rel, cmd->name);
					mo_note(res, "%s has no column %s: nothing to drop.",
							q, QI(cmd->name));
					break;
				}
				mo_add_finding(res, MO_RISK_REVIEW, "drop_column",
							   psprintf("DROP COLUMN %s is quick (the column is only marked dropped) but irreversible, and every query of the running application that names it fails.",
										QI(cmd->name)),
							   psprintf("Deploy code that no longer reads or writes %s.%s (ORMs: mark it ignored) first; drop its indexes with DROP INDEX CONCURRENTLY; then ALTER TABLE %s DROP COLUMN %s;",
										q, QI(cmd->name), q, QI(cmd->name)));
				break;
			case AT_AddConstraint:
			case AT_AddIndexConstraint:
				if (IsA(cmd->def, Constraint))
				{
					Constraint *c = (Constraint *) cmd->def;

					if (rel->is_new)
					{
						if (c->contype == CONSTR_CHECK || c->contype == CONSTR_FOREIGN)
							remember_constraint(st, rel->relname, c, true);
						if (c->contype == CONSTR_FOREIGN)
							mo_take_lock(res, ShareRowExclusiveLock,
										 mo_relinfo(st, c->pktable));
						mo_note(res, "%s.", mo_size_words(st, rel));
						break;
					}
					lint_add_constraint(st, res, rel, c, NULL);
				}
				break;
			case AT_ValidateConstraint:
				{
					MoInputConstraint *ic = find_input_constraint(st, rel->relname, cmd->name);

					res->scans = true;
					if (ic)
					{
						bool		same_block = (st->in_block && ic->in_block);

						ic->valid = true;
						if (same_block && !rel->is_new && mo_size_gate(st, res, rel))
							mo_add_finding(res, MO_RISK_DANGEROUS, "validate_in_same_transaction",
										   psprintf("VALIDATE CONSTRAINT %s runs in the same transaction that added it NOT VALID, so the AccessExclusiveLock taken by the ADD is still held during the validation scan: %s.",
													QI(cmd->name), mo_size_words(st, rel)),
										   psprintf("COMMIT after ALTER TABLE %s ADD CONSTRAINT %s ... NOT VALID; then run ALTER TABLE %s VALIDATE CONSTRAINT %s; in its own transaction.",
													q, QI(cmd->name), q, QI(cmd->name)));
					}
					mo_note(res, "VALIDATE CONSTRAINT scans under a ShareUpdateExclusiveLock, which does not block reads or writes.");
				}
				break;
			case AT_SetLogged:
			case AT_SetUnLogged:
			case AT_SetTableSpace:
			case AT_SetAccessMethod:
				res->rewrites = true;
				if (mo_size_gate(st, res, rel))
					mo_add_finding(res, MO_RISK_DANGEROUS, "table_rewrite",
								   psprintf("%s copies every block of %s (and, but for SET TABLESPACE, its indexes) under an AccessExclusiveLock, blocking reads and writes: %s.",
											cmd->subtype == AT_SetLogged ? "SET LOGGED" :
											cmd->subtype == AT_SetUnLogged ? "SET UNLOGGED" :
											cmd->subtype == AT_SetTableSpace ? "SET TABLESPACE" :
											"SET ACCESS METHOD",
											q, mo_size_words(st, rel)),
								   psprintf("Create the new table with the wanted property (CREATE TABLE ... (LIKE %s INCLUDING ALL)), copy rows in batches while a trigger keeps it in sync, then swap the names in one short transaction; or use pg_repack.",
											q));
				break;
			case AT_DisableTrig:
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				if (rel->is_new)
					break;
				mo_add_finding(res, MO_RISK_REVIEW, "disable_trigger",
							   psprintf("DISABLE TRIGGER on %s stops the trigger for every session until it is enabled again%s.",
										q, cmd->subtype == AT_DisableTrigUser ? "" :
										", including the internal triggers that enforce foreign keys"),
							   psprintf("Disable it only for your session instead: SET session_replication_role = replica; (superuser) or make the trigger function skip on a custom setting; and re-enable with ALTER TABLE %s ENABLE TRIGGER ... in the same migration.",
										q));
				break;
			case AT_AttachPartition:
				if (IsA(cmd->def, PartitionCmd))
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;
					MoRelInfo  *part = mo_relinfo(st, pc->name);

					mo_take_lock(res, AccessExclusiveLock, part);
					if (part->is_new || mo_size_class(st, part) == MO_SIZE_EMPTY)
					{
						mo_note(res, "%s.", mo_size_words(st, part));
						break;
					}
					res->scans = true;
					mo_add_finding(res, MO_RISK_REVIEW, "attach_partition",
								   psprintf("ATTACH PARTITION scans %s under an AccessExclusiveLock to check the partition bound, unless a valid CHECK constraint already implies it (%s).",
											part->display, mo_size_words(st, part)),
								   psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (<the partition bound as an expression>) NOT VALID; ALTER TABLE %s VALIDATE CONSTRAINT %s; then ALTER TABLE %s ATTACH PARTITION %s ...; and drop the CHECK.",
											part->display, QI(mo_constraint_name(part->relname, "bound", "check")),
											part->display, QI(mo_constraint_name(part->relname, "bound", "check")),
											q, part->display));
				}
				break;
			case AT_DetachPartition:
				if (IsA(cmd->def, PartitionCmd) &&
					!((PartitionCmd *) cmd->def)->concurrent && !rel->is_new)
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;

					mo_add_finding(res, MO_RISK_DANGEROUS, "detach_partition_non_concurrent",
								   psprintf("DETACH PARTITION without CONCURRENTLY takes an AccessExclusiveLock on %s: it waits for every running query on the partitioned table and blocks all new ones meanwhile.",
											q),
								   psprintf("ALTER TABLE %s DETACH PARTITION %s CONCURRENTLY; (outside a transaction block; not possible while the table has a DEFAULT partition)",
											q, mo_rv_display(pc->name)));
				}
				break;
			default:
				break;
		}
	}
}

/*
 * ---------------------------------------------------------------------
 * Other statements.
 * ---------------------------------------------------------------------
 */

static void
lint_create_table(MoLintState *st, MoStmtResult *res, CreateStmt *stmt)
{
	ListCell   *lc;
	List	   *seen = NIL;

	foreach(lc, stmt->tableElts)
	{
		Node	   *elt = lfirst(lc);

		if (IsA(elt, ColumnDef))
		{
			ColumnDef  *cd = (ColumnDef *) elt;
			ListCell   *lc2;
			Constraint *fk = mo_find_constraint(cd->constraints, CONSTR_FOREIGN);

			foreach(lc2, seen)
			{
				if (strcmp((char *) lfirst(lc2), cd->colname) == 0)
					mo_add_finding(res, MO_RISK_REVIEW, "duplicate_column",
								   psprintf("Column %s is defined twice: the statement fails.",
											QI(cd->colname)),
								   pstrdup("Remove the duplicate column definition."));
			}
			seen = lappend(seen, cd->colname);
			column_type_style(res, cd->colname, cd->typeName,
							  column_is_key(cd, stmt->tableElts));
			if (!type_is_serial(cd->typeName))
				mo_require_type(st, cd->typeName);
			if (fk && fk->pktable)
				mo_take_lock(res, ShareRowExclusiveLock,
							 mo_relinfo(st, fk->pktable));
		}
		else if (IsA(elt, Constraint) &&
				 ((Constraint *) elt)->contype == CONSTR_FOREIGN &&
				 ((Constraint *) elt)->pktable)
			mo_take_lock(res, ShareRowExclusiveLock,
						 mo_relinfo(st, ((Constraint *) elt)->pktable));
	}
	if (stmt->partbound && stmt->inhRelations)
	{
		MoRelInfo  *parent = mo_relinfo(st, linitial(stmt->inhRelations));

		mo_take_lock(res, AccessExclusiveLock, parent);
		mo_note(res, "CREATE TABLE ... PARTITION OF takes a brief AccessExclusiveLock on %s.",
				parent->display);
	}
	if (res->lock != NoLock)
		mo_note(res, "New table; the locks on the tables it references are brief.");
	else
		mo_note(res, "New table: no existing relation is locked.");
}

/* mo_rules_table - ALTER TABLE and CREATE TABLE. */
void
mo_rules_table(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			lint_alter_table(st, res, (AlterTableStmt *) stmt);
			break;
		case T_CreateStmt:
			{
				CreateStmt *cs = (CreateStmt *) stmt;

				lint_create_table(st, res, cs);
				mo_remember_new(st, 'r', cs->relation->schemaname,
								cs->relation->relname);
			}
			break;
		default:
			break;
	}
}
