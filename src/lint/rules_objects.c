/*-------------------------------------------------------------------------
 *
 * rules_objects.c
 *	  Layer 3 of the linter (rules, above catalog.c): the rules for schema
 *	  objects other than tables and columns (rules_table.c) -- indexes,
 *	  drops, renames and moves, views, sequences, schemas, enums, domains,
 *	  functions, triggers, policies, rules, comments, statistics -- and for
 *	  maintenance: TRUNCATE, VACUUM FULL, CLUSTER, REINDEX, REFRESH
 *	  MATERIALIZED VIEW, LOCK TABLE.  docs/lint-rules.md documents every
 *	  rule named here; keep the two in step.
 *
 *	  Runs inside lint.c's per-statement subtransaction.  Entry point:
 *	  mo_rules_objects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
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

/* The key columns of CREATE INDEX as written, for hints. */
static char *
index_cols(MoStmtResult *res, IndexStmt *stmt)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *ie = lfirst(lc);

		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		if (ie->name)
			appendStringInfoString(&buf, quote_identifier(ie->name));
		else if (ie->expr)
			appendStringInfo(&buf, "(%s)",
							 mo_source_span(res, exprLocation(ie->expr), false));
	}
	return buf.len > 0 ? buf.data : pstrdup("...");
}

static void
lint_create_index(MoLintState *st, MoStmtResult *res, IndexStmt *stmt)
{
	MoRelInfo  *rel = mo_relinfo(st, stmt->relation);
	const char *q = rel->display;
	char	   *iname = stmt->idxname ? pstrdup(quote_identifier(stmt->idxname)) :
		pstrdup("<index name>");
	int			ncols = list_length(stmt->indexParams);
	char	   *cols = index_cols(res, stmt);

	if (stmt->idxname)
		mo_remember_new(st, 'i', stmt->relation->schemaname, stmt->idxname);
	res->scans = true;

	if (!stmt->unique && !stmt->primary && ncols > 3)
		mo_add_finding(res, MO_RISK_ADVICE, "index_many_columns",
					   psprintf("A non-unique index on %d columns is large and rarely used beyond its first columns.",
								ncols),
					   pstrdup("Index the two or three most selective leading columns only, or use INCLUDE (...) for columns needed by index-only scans."));

	if (stmt->concurrent)
	{
		mo_take_lock(res, ShareUpdateExclusiveLock, rel);
		if (rel->relkind == RELKIND_PARTITIONED_TABLE)
			mo_add_finding(res, MO_RISK_REVIEW, "concurrent_index_partitioned",
						   psprintf("%s is partitioned: PostgreSQL 15 cannot CREATE INDEX CONCURRENTLY on a partitioned table, so this statement fails.",
									q),
						   psprintf("CREATE INDEX %s ON ONLY %s (%s); then for each partition: CREATE INDEX CONCURRENTLY IF NOT EXISTS <part_idx> ON <partition> (%s); ALTER INDEX %s ATTACH PARTITION <part_idx>;",
									iname, q, cols, cols, iname));
		if (!stmt->if_not_exists)
			mo_add_finding(res, MO_RISK_ADVICE, "not_idempotent",
						   pstrdup("A CREATE INDEX CONCURRENTLY that fails or is cancelled leaves an INVALID index behind, and running the migration again then fails with \"already exists\"."),
						   psprintf("CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s); and before a retry drop an invalid leftover: DROP INDEX CONCURRENTLY IF EXISTS %s;",
									stmt->unique ? "UNIQUE " : "", iname, q, cols, iname));
		mo_note(res, "CONCURRENTLY builds the index under a ShareUpdateExclusiveLock, which does not block reads or writes.");
		return;
	}

	mo_take_lock(res, ShareLock, rel);
	if (mo_size_gate(st, res, rel))
		mo_add_finding(res, MO_RISK_DANGEROUS, "create_index_non_concurrent",
					   psprintf("CREATE INDEX without CONCURRENTLY holds a ShareLock on %s for the whole build, blocking INSERT, UPDATE and DELETE: %s.",
								q, mo_size_words(st, rel)),
					   psprintf("CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s); (outside a transaction block; if it fails, DROP INDEX CONCURRENTLY IF EXISTS %s; and retry)",
								stmt->unique ? "UNIQUE " : "", iname, q, cols, iname));
}

/* DROP ...: tables, indexes, schemas. */
static void
lint_drop(MoLintState *st, MoStmtResult *res, DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);
		RangeVar   *rv;
		MoRelInfo  *rel;

		switch (stmt->removeType)
		{
			case OBJECT_TABLE:
			case OBJECT_MATVIEW:
			case OBJECT_FOREIGN_TABLE:
				if (!IsA(obj, List))
					break;
				rv = makeRangeVarFromNameList((List *) obj);
				rel = mo_relinfo(st, rv);

				/*
				 * Not in this catalog: here IF EXISTS makes it a no-op (so
				 * the guard, which judges the server it runs on, lets it
				 * pass), but lint() may be judging another database than
				 * the one the migration will drop a table in.
				 */
				if (!rel->is_new && !OidIsValid(rel->relid) && stmt->missing_ok)
				{
					mo_add_finding(res, MO_RISK_REVIEW, "drop_table",
								   psprintf("%s is not in this database's catalog, so here DROP ... IF EXISTS does nothing; where it exists, it destroys its data irreversibly.",
											rel->display),
								   psprintf("Check that %s is gone (or unused and backed up) in every database this migration runs in.",
											rel->display));
					break;
				}
				mo_take_lock(res, AccessExclusiveLock, rel);
				if (rel->is_new)
				{
					mo_note(res, "%s.", mo_size_words(st, rel));
					break;
				}
				if (rel->relkind == RELKIND_FOREIGN_TABLE)
				{
					/* like a view: queries that use it fail, nothing is lost */
					mo_note(res, "%s is a foreign table: dropping it removes only the local definition; its rows stay on the remote server.",
							rel->display);
					break;
				}
				mo_add_finding(res, MO_RISK_DANGEROUS, "drop_table",
							   psprintf("DROP %s %s destroys its data irreversibly%s, and every query of the running application that uses it fails.",
									  stmt->removeType == OBJECT_MATVIEW ? "MATERIALIZED VIEW" :
										stmt->removeType == OBJECT_FOREIGN_TABLE ? "FOREIGN TABLE" : "TABLE",
										rel->display,
										stmt->behavior == DROP_CASCADE ? ", CASCADE also drops the views and foreign keys that depend on it" : ""),
							   psprintf("Deploy code that no longer uses %s first; keep a copy (ALTER TABLE %s RENAME TO %s; and drop it a release later), and drop foreign keys that reference it beforehand, one ALTER TABLE ... DROP CONSTRAINT each.",
										rel->display, rel->display,
										QI(psprintf("%s_old", rv->relname))));
				break;
			case OBJECT_INDEX:
				if (!IsA(obj, List))
					break;
				rv = makeRangeVarFromNameList((List *) obj);
				if (mo_is_new(st, 'i', rv->schemaname, rv->relname))
				{
					mo_note(res, "%s is created earlier in this input.",
							mo_rv_display(rv));
					break;
				}
				{
					Oid			indexoid = mo_lookup_relid(rv);
					MoRelInfo  *tab = NULL;

					if (OidIsValid(indexoid) &&
						get_rel_relkind(indexoid) == RELKIND_INDEX)
					{
						Oid			tabid = IndexGetRelation(indexoid, true);

						if (OidIsValid(tabid))
							tab = mo_relinfo(st, makeRangeVar(get_namespace_name(get_rel_namespace(tabid)),
															  get_rel_name(tabid), -1));
					}
					mo_take_lock(res, stmt->concurrent ? ShareUpdateExclusiveLock :
								 AccessExclusiveLock, tab);
					if (tab && tab->is_new)
					{
						mo_note(res, "%s.", mo_size_words(st, tab));
						break;
					}
				}
				if (stmt->concurrent)
				{
					if (!stmt->missing_ok)
						mo_add_finding(res, MO_RISK_ADVICE, "not_idempotent",
									   pstrdup("A DROP INDEX CONCURRENTLY that is interrupted can leave the index INVALID but present; without IF EXISTS a retry of a half-done migration fails."),
									   psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s;",
												mo_rv_display(rv)));
					break;
				}
				mo_add_finding(res, MO_RISK_REVIEW, "drop_index_non_concurrent",
							   psprintf("DROP INDEX %s without CONCURRENTLY takes an AccessExclusiveLock on its table: it waits for every running query on the table and blocks all new ones meanwhile.",
										mo_rv_display(rv)),
							   psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s; (outside a transaction block)",
										mo_rv_display(rv)));
				break;
			case OBJECT_SCHEMA:
				{
					const char *nsp = strVal(obj);

					if (mo_is_new(st, 'n', NULL, nsp))
						break;
					if (stmt->behavior == DROP_CASCADE)
						mo_take_lock(res, AccessExclusiveLock, NULL);
					mo_add_finding(res, MO_RISK_DANGEROUS, "drop_schema",
								   psprintf("DROP SCHEMA %s%s destroys everything in it irreversibly.",
											QI(nsp), stmt->behavior == DROP_CASCADE ? " CASCADE" : ""),
								   psprintf("Drop the objects in %s one by one after the application stops using them (DROP TABLE ...; DROP FUNCTION ...;), then DROP SCHEMA %s; without CASCADE so that a forgotten object stops it.",
											QI(nsp), QI(nsp)));
				}
				break;
			case OBJECT_VIEW:
			case OBJECT_SEQUENCE:
				if (IsA(obj, List))
					mo_take_lock(res, AccessExclusiveLock,
								 mo_relinfo(st, makeRangeVarFromNameList((List *) obj)));
				break;
			case OBJECT_TRIGGER:
			case OBJECT_POLICY:
			case OBJECT_RULE:
				if (IsA(obj, List) && list_length((List *) obj) >= 2)
					mo_take_lock(res, AccessExclusiveLock,
								 mo_relinfo(st, makeRangeVarFromNameList(list_truncate(list_copy((List *) obj),
																					   list_length((List *) obj) - 1))));
				break;
			default:
				break;
		}
	}
}

static void
lint_rename(MoLintState *st, MoStmtResult *res, RenameStmt *stmt)
{
	MoRelInfo  *rel = stmt->relation ? mo_relinfo(st, stmt->relation) : NULL;

	switch (stmt->renameType)
	{
		case OBJECT_TABLE:
		case OBJECT_VIEW:
		case OBJECT_MATVIEW:
		case OBJECT_FOREIGN_TABLE:
			mo_take_lock(res, AccessExclusiveLock, rel);
			if (rel->is_new)
			{
				mo_remember_new(st, 'r', stmt->relation->schemaname, stmt->newname);
				break;
			}
			mo_add_finding(res, MO_RISK_DANGEROUS, "rename_table",
						   psprintf("Renaming %s to %s breaks every query of the running application that uses the old name, from the moment the transaction commits.",
									rel->display, QI(stmt->newname)),
						   psprintf("Rename in two deploys: ALTER TABLE %s RENAME TO %s; CREATE VIEW %s AS SELECT * FROM %s; (in one transaction; a simple view is updatable), deploy code that uses %s, then DROP VIEW %s;",
									rel->display, QI(stmt->newname), rel->display,
									QI(stmt->newname), QI(stmt->newname), rel->display));
			break;
		case OBJECT_COLUMN:
			mo_take_lock(res, AccessExclusiveLock, rel);
			if (rel == NULL || rel->is_new)
				break;
			mo_require_column(st, rel, stmt->subname);
			mo_remember_new(st, 'c', rel->relname, stmt->newname);
			mo_add_finding(res, MO_RISK_DANGEROUS, "rename_column",
						   psprintf("Renaming column %s of %s to %s breaks every query of the running application that names the old column.",
									QI(stmt->subname), rel->display, QI(stmt->newname)),
						   psprintf("ALTER TABLE %s ADD COLUMN %s <type>; a trigger that copies %s into %s on INSERT/UPDATE; backfill in batches; deploy code that uses %s; then ALTER TABLE %s DROP COLUMN %s;",
									rel->display, QI(stmt->newname), QI(stmt->subname),
									QI(stmt->newname), QI(stmt->newname),
									rel->display, QI(stmt->subname)));
			break;
		case OBJECT_SCHEMA:
			if (mo_is_new(st, 'n', NULL, stmt->subname))
				break;
			mo_add_finding(res, MO_RISK_DANGEROUS, "rename_schema",
						   psprintf("Renaming schema %s breaks every query and search_path of the running application that names it.",
									QI(stmt->subname)),
						   psprintf("CREATE SCHEMA %s; move objects one by one with ALTER TABLE ... SET SCHEMA %s; behind views left in %s, then drop the views once nothing uses them.",
									QI(stmt->newname), QI(stmt->newname), QI(stmt->subname)));
			break;
		case OBJECT_INDEX:
			mo_take_lock(res, ShareUpdateExclusiveLock, NULL);
			break;
		case OBJECT_TABCONSTRAINT:
		case OBJECT_TRIGGER:
		case OBJECT_POLICY:
		case OBJECT_RULE:
			if (rel)
				mo_take_lock(res, AccessExclusiveLock, rel);
			break;
		default:
			break;
	}
}

static void
lint_truncate(MoLintState *st, MoStmtResult *res, TruncateStmt *stmt)
{
	ListCell   *lc;
	StringInfoData names;
	bool		any = false;

	initStringInfo(&names);
	foreach(lc, stmt->relations)
	{
		MoRelInfo  *rel = mo_relinfo(st, lfirst(lc));

		mo_take_lock(res, AccessExclusiveLock, rel);
		res->rewrites = true;
		if (rel->is_new)
			continue;
		if (names.len > 0)
			appendStringInfoString(&names, ", ");
		appendStringInfoString(&names, rel->display);
		any = true;
	}
	if (!any)
	{
		mo_note(res, "Every table truncated here is created earlier in this input.");
		return;
	}
	mo_add_finding(res, MO_RISK_DANGEROUS, "truncate",
				   psprintf("TRUNCATE %s deletes every row irreversibly, under an AccessExclusiveLock; it is not MVCC-safe: concurrent transactions with older snapshots see the table empty.",
							names.data),
				   psprintf("Delete in batches instead: DELETE FROM %s WHERE <key> IN (SELECT <key> FROM %s LIMIT 10000); repeated, one transaction each, after taking a backup of the rows you need.",
							names.data, names.data));
	if (stmt->behavior == DROP_CASCADE)
		mo_add_finding(res, MO_RISK_DANGEROUS, "truncate_cascade",
					   psprintf("TRUNCATE ... CASCADE also empties every table with a foreign key to %s, and theirs, recursively, which the statement does not name.",
								names.data),
					   psprintf("Name every table to empty explicitly: TRUNCATE %s, <referencing tables>; without CASCADE, so that a forgotten one makes it fail.",
								names.data));
}

static void
lint_vacuum(MoLintState *st, MoStmtResult *res, VacuumStmt *stmt)
{
	ListCell   *lc;
	bool		full = false;
	bool		fired = false;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "full") == 0 && defGetBoolean(opt))
			full = true;
	}
	if (!full)
	{
		mo_take_lock(res, ShareUpdateExclusiveLock, NULL);
		return;
	}
	res->rewrites = true;
	if (stmt->rels == NIL)
	{
		mo_take_lock(res, AccessExclusiveLock, NULL);
		res->long_running = true;
		mo_add_finding(res, MO_RISK_DANGEROUS, "vacuum_full",
					   pstrdup("VACUUM FULL without a table rewrites every table of the database, each under an AccessExclusiveLock that blocks reads and writes for the whole copy."),
					   pstrdup("Use plain VACUUM (which takes a ShareUpdateExclusiveLock) for routine cleanup, and pg_repack --table=<table> for the tables that really need compacting."));
		return;
	}
	foreach(lc, stmt->rels)
	{
		VacuumRelation *vr = lfirst(lc);
		MoRelInfo  *rel;

		if (vr->relation == NULL)
			continue;
		rel = mo_relinfo(st, vr->relation);
		mo_take_lock(res, AccessExclusiveLock, rel);
		if (!fired && mo_size_gate(st, res, rel))
		{
			fired = true;
			mo_add_finding(res, MO_RISK_DANGEROUS, "vacuum_full",
						   psprintf("VACUUM FULL rewrites %s under an AccessExclusiveLock, blocking reads and writes for the whole copy: %s.",
									rel->display, mo_size_words(st, rel)),
						   psprintf("pg_repack --table=%s (rebuilds online, with only brief locks); or plain VACUUM %s; if reclaiming space for reuse is enough.",
									rel->display, rel->display));
		}
	}
}

static void
lint_cluster(MoLintState *st, MoStmtResult *res, ClusterStmt *stmt)
{
	MoRelInfo  *rel;

	res->rewrites = true;
	if (stmt->relation == NULL)
	{
		mo_take_lock(res, AccessExclusiveLock, NULL);
		res->long_running = true;
		mo_add_finding(res, MO_RISK_DANGEROUS, "cluster",
					   pstrdup("CLUSTER without a table rewrites every previously clustered table of the database, each under an AccessExclusiveLock."),
					   pstrdup("pg_repack --order-by=<columns> --table=<table>, table by table, which rewrites online."));
		return;
	}
	rel = mo_relinfo(st, stmt->relation);
	mo_take_lock(res, AccessExclusiveLock, rel);
	if (mo_size_gate(st, res, rel))
		mo_add_finding(res, MO_RISK_DANGEROUS, "cluster",
					   psprintf("CLUSTER rewrites %s in index order under an AccessExclusiveLock, blocking reads and writes for the whole copy: %s.",
								rel->display, mo_size_words(st, rel)),
					   psprintf("pg_repack --table=%s --order-by=<columns> (online).",
								rel->display));
}

static void
lint_lock(MoLintState *st, MoStmtResult *res, LockStmt *stmt)
{
	ListCell   *lc;
	bool		existing = false;
	StringInfoData names;

	initStringInfo(&names);
	foreach(lc, stmt->relations)
	{
		MoRelInfo  *rel = mo_relinfo(st, lfirst(lc));

		mo_take_lock(res, stmt->mode, rel);
		if (rel->is_new)
			continue;
		existing = true;
		if (names.len > 0)
			appendStringInfoString(&names, ", ");
		appendStringInfoString(&names, rel->display);
	}
	if (!existing || stmt->mode < ShareUpdateExclusiveLock)
		return;
	mo_add_finding(res, stmt->mode >= ExclusiveLock ? MO_RISK_DANGEROUS : MO_RISK_REVIEW,
				   "lock_table",
				   psprintf("LOCK TABLE %s IN %s MODE holds the lock until the transaction ends, blocking %s for as long as the rest of the migration takes.",
							names.data, mo_lint_lock_name(stmt->mode),
							stmt->mode >= AccessExclusiveLock ? "every read and write" :
							stmt->mode >= ShareLock ? "every write" :
							"other schema changes and VACUUM"),
				   psprintf("Do without the explicit lock (each statement takes the lock it needs), or keep the transaction to the few statements that need it: SET LOCAL lock_timeout = '2s'; LOCK TABLE %s IN %s MODE NOWAIT; ... COMMIT;",
							names.data, mo_lint_lock_name(stmt->mode)));
}

static void
lint_reindex(MoLintState *st, MoStmtResult *res, ReindexStmt *stmt)
{
	ListCell   *lc;
	bool		concurrent = false;
	MoRelInfo  *rel = NULL;

	foreach(lc, stmt->params)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "concurrently") == 0 && defGetBoolean(opt))
			concurrent = true;
	}
	res->scans = true;
	if (concurrent)
	{
		mo_take_lock(res, ShareUpdateExclusiveLock, NULL);
		return;
	}
	if (stmt->kind == REINDEX_OBJECT_TABLE || stmt->kind == REINDEX_OBJECT_INDEX)
	{
		RangeVar   *rv = stmt->relation;

		if (stmt->kind == REINDEX_OBJECT_INDEX)
		{
			Oid			indexoid = mo_lookup_relid(rv);
			Oid			tabid = OidIsValid(indexoid) ?
				IndexGetRelation(indexoid, true) : InvalidOid;

			if (OidIsValid(tabid))
				rv = makeRangeVar(get_namespace_name(get_rel_namespace(tabid)),
								  get_rel_name(tabid), -1);
		}
		rel = mo_relinfo(st, rv);
		mo_take_lock(res, AccessExclusiveLock, rel);
		if (!mo_size_gate(st, res, rel))
			return;
	}
	else
	{
		mo_take_lock(res, AccessExclusiveLock, NULL);
		res->long_running = true;
	}
	mo_add_finding(res, MO_RISK_DANGEROUS, "reindex_non_concurrent",
				   psprintf("REINDEX without CONCURRENTLY blocks writes to %s (ShareLock) and every query that would use the index (AccessExclusiveLock on it) for the whole rebuild%s%s.",
							rel ? rel->display : "each table", rel ? ": " : "",
							rel ? mo_size_words(st, rel) : ""),
				   psprintf("REINDEX %s CONCURRENTLY %s; (outside a transaction block)",
							stmt->kind == REINDEX_OBJECT_INDEX ? "INDEX" :
							stmt->kind == REINDEX_OBJECT_TABLE ? "TABLE" :
							stmt->kind == REINDEX_OBJECT_SCHEMA ? "SCHEMA" : "DATABASE",
							stmt->relation ? mo_rv_display(stmt->relation) :
							(stmt->name ? QI(stmt->name) : "")));
}


static void
lint_alter_enum(MoLintState *st, MoStmtResult *res, AlterEnumStmt *stmt)
{
	char	   *tname = NameListToQuotedString(stmt->typeName);
	char	   *last = strVal(llast(stmt->typeName));
	char	   *schema = list_length(stmt->typeName) > 1 ?
		strVal(linitial(stmt->typeName)) : NULL;

	if (mo_is_new(st, 't', schema, last))
	{
		mo_note(res, "Type %s is created earlier in this input.", tname);
		return;
	}
	if (stmt->oldVal)
	{
		mo_add_finding(res, MO_RISK_DANGEROUS, "enum_rename_value",
					   psprintf("Renaming value '%s' of %s breaks every query and every application check that uses the old label.",
								stmt->oldVal, tname),
					   psprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS '%s' AFTER '%s'; deploy code that accepts both; UPDATE the rows in batches; stop using '%s'.",
								tname, stmt->newVal, stmt->oldVal, stmt->oldVal));
		return;
	}
	if (stmt->newValNeighbor == NULL || st->in_block)
		mo_add_finding(res, MO_RISK_REVIEW, "enum_add_value",
					   psprintf("ALTER TYPE %s ADD VALUE '%s'%s%s: code that reads the column must handle the new label before any row carries it.",
								tname, stmt->newVal,
								stmt->newValNeighbor == NULL ? " appends the value at the end of the sort order" : "",
								st->in_block ? "; inside a transaction block the new value cannot be used until COMMIT" : ""),
					   psprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS '%s' %s '%s'; in its own transaction, before the deploy that writes it.",
								tname, stmt->newVal,
								stmt->newValNeighbor && stmt->newValIsAfter ? "AFTER" : "BEFORE",
								stmt->newValNeighbor ? stmt->newValNeighbor : "<existing value>"));
	else
		mo_note(res, "Adding an enum value with an explicit position, outside a transaction block, takes no table lock.");
}

static void
lint_alter_domain(MoLintState *st, MoStmtResult *res, AlterDomainStmt *stmt)
{
	char	   *dname = NameListToQuotedString(stmt->typeName);
	char	   *last = strVal(llast(stmt->typeName));
	char	   *schema = list_length(stmt->typeName) > 1 ?
		strVal(linitial(stmt->typeName)) : NULL;
	Constraint *c = (stmt->subtype == 'C' && stmt->def && IsA(stmt->def, Constraint)) ?
		(Constraint *) stmt->def : NULL;

	if (stmt->subtype != 'C' && stmt->subtype != 'O')
		return;
	if (mo_is_new(st, 't', schema, last))
		return;
	if (c && c->skip_validation)
	{
		mo_note(res, "ALTER DOMAIN ADD CONSTRAINT ... NOT VALID checks only new values.");
		return;
	}
	mo_take_lock(res, ShareLock, NULL);
	res->scans = true;
	res->long_running = true;
	mo_add_finding(res, MO_RISK_DANGEROUS, "alter_domain_add_constraint",
				   psprintf("ALTER DOMAIN %s %s checks every column of every table that uses the domain, each under a ShareLock that blocks writes for the whole scan.",
							dname, c ? "ADD CONSTRAINT" : "SET NOT NULL"),
				   psprintf("ALTER DOMAIN %s ADD CONSTRAINT <name> CHECK (...) NOT VALID; then, in a separate transaction, ALTER DOMAIN %s VALIDATE CONSTRAINT <name>; or put the CHECK on the columns (ADD CONSTRAINT ... NOT VALID + VALIDATE).",
							dname, dname));
}

static void
lint_refresh(MoLintState *st, MoStmtResult *res, RefreshMatViewStmt *stmt)
{
	MoRelInfo  *rel = mo_relinfo(st, stmt->relation);

	if (stmt->concurrent)
	{
		mo_take_lock(res, ExclusiveLock, rel);
		res->scans = true;
		mo_note(res, "REFRESH ... CONCURRENTLY takes an ExclusiveLock, which still allows reads.");
		return;
	}
	mo_take_lock(res, AccessExclusiveLock, rel);
	res->rewrites = true;
	if (mo_size_gate(st, res, rel))
		mo_add_finding(res, MO_RISK_DANGEROUS, "refresh_matview_non_concurrent",
					   psprintf("REFRESH MATERIALIZED VIEW without CONCURRENTLY rebuilds %s under an AccessExclusiveLock: every read of it waits for the whole refresh: %s.",
								rel->display, mo_size_words(st, rel)),
					   psprintf("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS <name> ON %s (<key>); once; then REFRESH MATERIALIZED VIEW CONCURRENTLY %s;",
								rel->display, rel->display));
}

/* A type the input creates, by its possibly qualified name. */
static void
remember_type(MoLintState *st, List *names)
{
	mo_remember_new(st, 't', list_length(names) > 1 ?
					strVal(list_nth(names, list_length(names) - 2)) : NULL,
					strVal(llast(names)));
}

/* mo_rules_objects - every statement kind the other rules_*.c leave. */
void
mo_rules_objects(MoLintState *st, MoStmtResult *res, Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CreateTableAsStmt:
			{
				CreateTableAsStmt *ct = (CreateTableAsStmt *) stmt;

				mo_take_lock(res, AccessShareLock, NULL);
				mo_remember_new(st, 'r', ct->into->rel->schemaname,
								ct->into->rel->relname);
				mo_note(res, "New relation, filled from a query that only reads (AccessShareLock).");
			}
			break;
		case T_ViewStmt:
			{
				ViewStmt   *vs = (ViewStmt *) stmt;
				MoRelInfo  *rel = mo_relinfo(st, vs->view);

				if (vs->replace && OidIsValid(rel->relid))
					mo_take_lock(res, AccessExclusiveLock, rel);
				else
					mo_take_lock(res, AccessShareLock, NULL);
				mo_remember_new(st, 'r', vs->view->schemaname, vs->view->relname);
			}
			break;
		case T_CreateSeqStmt:
			mo_remember_new(st, 'r', ((CreateSeqStmt *) stmt)->sequence->schemaname,
							((CreateSeqStmt *) stmt)->sequence->relname);
			break;
		case T_CreateSchemaStmt:
			if (((CreateSchemaStmt *) stmt)->schemaname)
				mo_remember_new(st, 'n', NULL,
								((CreateSchemaStmt *) stmt)->schemaname);
			break;
		case T_IndexStmt:
			lint_create_index(st, res, (IndexStmt *) stmt);
			break;
		case T_DropStmt:
			lint_drop(st, res, (DropStmt *) stmt);
			break;
		case T_RenameStmt:
			lint_rename(st, res, (RenameStmt *) stmt);
			break;
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *as = (AlterObjectSchemaStmt *) stmt;

				if (as->relation &&
					(as->objectType == OBJECT_TABLE || as->objectType == OBJECT_VIEW ||
					 as->objectType == OBJECT_MATVIEW ||
					 as->objectType == OBJECT_FOREIGN_TABLE))
				{
					MoRelInfo  *rel = mo_relinfo(st, as->relation);

					mo_take_lock(res, AccessExclusiveLock, rel);
					if (rel->is_new)
						break;
					mo_add_finding(res, MO_RISK_DANGEROUS, "rename_table",
								   psprintf("Moving %s to schema %s breaks every query of the running application that names it with the old schema or finds it through search_path.",
											rel->display, QI(as->newschema)),
								   psprintf("ALTER TABLE %s SET SCHEMA %s; CREATE VIEW %s AS SELECT * FROM %s.%s; (in one transaction), deploy code that uses the new name, then DROP VIEW %s;",
											rel->display, QI(as->newschema), rel->display,
											QI(as->newschema), QI(as->relation->relname),
											rel->display));
				}
			}
			break;
		case T_TruncateStmt:
			lint_truncate(st, res, (TruncateStmt *) stmt);
			break;
		case T_VacuumStmt:
			lint_vacuum(st, res, (VacuumStmt *) stmt);
			break;
		case T_ClusterStmt:
			lint_cluster(st, res, (ClusterStmt *) stmt);
			break;
		case T_LockStmt:
			lint_lock(st, res, (LockStmt *) stmt);
			break;
		case T_ReindexStmt:
			lint_reindex(st, res, (ReindexStmt *) stmt);
			break;
		case T_CreateEnumStmt:
			{
				CreateEnumStmt *ce = (CreateEnumStmt *) stmt;

				remember_type(st, ce->typeName);
				mo_add_finding(res, MO_RISK_ADVICE, "create_enum",
							   psprintf("Enum %s: adding a value later cannot be used in the same transaction, values can never be removed, and renaming one breaks readers.",
										NameListToQuotedString(ce->typeName)),
							   pstrdup("A lookup table with a foreign key (CREATE TABLE <name>_values (value text PRIMARY KEY); ... REFERENCES <name>_values) or a text column with a CHECK (... IN (...)) constraint, which NOT VALID + VALIDATE can change online."));
			}
			break;
		case T_CompositeTypeStmt:
			mo_remember_new(st, 't', ((CompositeTypeStmt *) stmt)->typevar->schemaname,
							((CompositeTypeStmt *) stmt)->typevar->relname);
			break;
		case T_CreateRangeStmt:
			remember_type(st, ((CreateRangeStmt *) stmt)->typeName);
			break;
		case T_DefineStmt:
			if (((DefineStmt *) stmt)->kind == OBJECT_TYPE)
				remember_type(st, ((DefineStmt *) stmt)->defnames);
			break;
		case T_AlterEnumStmt:
			lint_alter_enum(st, res, (AlterEnumStmt *) stmt);
			break;
		case T_CreateDomainStmt:
			{
				CreateDomainStmt *cd = (CreateDomainStmt *) stmt;

				remember_type(st, cd->domainname);
				if (mo_find_constraint(cd->constraints, CONSTR_CHECK))
					mo_add_finding(res, MO_RISK_ADVICE, "create_domain_check",
								   psprintf("Domain %s has a CHECK constraint: changing it later re-checks every column of every table that uses the domain under a ShareLock.",
											NameListToQuotedString(cd->domainname)),
								   pstrdup("Put the CHECK constraint on the columns instead (ALTER TABLE ... ADD CONSTRAINT ... CHECK (...) NOT VALID; then VALIDATE), which can be changed table by table."));
			}
			break;
		case T_AlterDomainStmt:
			lint_alter_domain(st, res, (AlterDomainStmt *) stmt);
			break;
		case T_DropdbStmt:
			mo_add_finding(res, MO_RISK_DANGEROUS, "drop_database",
						   psprintf("DROP DATABASE %s destroys the whole database irreversibly.",
									QI(((DropdbStmt *) stmt)->dbname)),
						   pstrdup("Never from a migration: take a backup (pg_dump -Fc), and drop it by hand after every client is gone."));
			break;
		case T_RefreshMatViewStmt:
			lint_refresh(st, res, (RefreshMatViewStmt *) stmt);
			break;
		case T_CreateFunctionStmt:
			mo_remember_function(st, (CreateFunctionStmt *) stmt);
			break;
		case T_CreateTrigStmt:
			mo_take_lock(res, ShareRowExclusiveLock,
						 mo_relinfo(st, ((CreateTrigStmt *) stmt)->relation));
			break;
		case T_CreatePolicyStmt:
			mo_take_lock(res, AccessExclusiveLock,
						 mo_relinfo(st, ((CreatePolicyStmt *) stmt)->table));
			break;
		case T_AlterPolicyStmt:
			mo_take_lock(res, AccessExclusiveLock,
						 mo_relinfo(st, ((AlterPolicyStmt *) stmt)->table));
			break;
		case T_RuleStmt:
			mo_take_lock(res, AccessExclusiveLock,
						 mo_relinfo(st, ((RuleStmt *) stmt)->relation));
			break;
		case T_CommentStmt:
			{
				CommentStmt *cs = (CommentStmt *) stmt;

				if (cs->objtype == OBJECT_TABLE || cs->objtype == OBJECT_COLUMN)
					mo_take_lock(res, ShareUpdateExclusiveLock, NULL);
			}
			break;
		case T_CreateStatsStmt:
			mo_take_lock(res, ShareUpdateExclusiveLock, NULL);
			break;
		case T_AlterSeqStmt:
			mo_take_lock(res, ShareRowExclusiveLock,
						 mo_relinfo(st, ((AlterSeqStmt *) stmt)->sequence));
			break;
		default:
			break;
	}
}
