/*-------------------------------------------------------------------------
 *
 * ddl_guard.c
 *	  The DDL guard, the DDL lock timeout and the DDL log.
 *
 * exec_hooks.c's ProcessUtility hook hands every DDL statement (mo_is_ddl in
 * ddl_guard.h: one switch on the node tag, so SET, BEGIN, COPY and the rest
 * never get here, nor do planned statements) to mo_ddl_statement_hook, which
 * this file sets while preloaded.  For each such statement of every client,
 * at any nesting depth (a DDL statement inside a function or a DO block is
 * judged as well: a guard that a DO block bypasses would be no guard), but
 * not the subcommands a statement runs for itself nor the script of CREATE
 * / ALTER EXTENSION:
 *
 * 1. moltres_ops.ddl_lock_timeout: when it is set and the session has no
 *	  lock_timeout, lock_timeout is set to it for this statement only, at a
 *	  new GUC nest level that is popped after the statement, or by the
 *	  (sub)transaction abort when it fails -- exactly as a function's SET
 *	  clause.  Statements that commit transactions of their own (VACUUM,
 *	  the CONCURRENTLY forms, CREATE DATABASE ...) are left alone: a nest
 *	  level cannot span their commits, and they take no lock that stops
 *	  readers, VACUUM FULL and CLUSTER without a table aside.
 * 2. The linter (mo_lint_run) judges the statement's own text, inside the
 *	  linter's internal subtransaction: any error of the analysis is rolled
 *	  back and the statement runs unjudged; only cancellation and resource
 *	  errors propagate.  Under moltres_ops.ddl_guard = warn each dangerous
 *	  finding becomes a WARNING; under block the statement is refused with
 *	  SQLSTATE 55000 before it runs.  Review and advice findings never warn
 *	  or block (advice is not risk; review needs a person, not a refusal).
 * 3. The statement runs, timed; its outcome, the linter's worst risk and
 *	  whether the table's relfilenode changed (a rewrite) go into a shared
 *	  ring that the view moltres_ops.ddl_log shows.
 *
 * Everything per statement is allocated in a small memory context that is
 * deleted when the statement ends, failed or not.  The error path copies
 * the error into that context and the entry into the ring, touches no
 * catalog, and re-throws.
 *
 * Shared state and locking: the ring is a MoRing (ring.c, which describes
 * its one LWLock, the "moltres_ops ddl_log" tranche) of variable-size
 * events, DDL_AVG_BYTES of it per event of moltres_ops.ddl_log_buffer.
 * Entries are built before the lock is taken, which is held only for the
 * copy into one event.
 * DDL is rare next to queries, so one lock is not a point of contention.
 * Runs in backends only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ddl_guard.h"
#include "lint.h"
#include "moltres_ops.h"
#include "ring.h"
#include "shmem.h"

#define DDL_AREA		"ddl_log"
#define DDL_OBJECT_MAX	(2 * NAMEDATALEN + 1)	/* schema.name */
#define DDL_ERROR_MAX	512		/* bytes of error message kept */
#define DDL_RULES_MAX	256		/* bytes of comma-separated rule names */
#define DDL_COMMAND_MAX 64
#define DDL_AVG_BYTES	768		/* the ring's bytes per ddl_log_buffer */

mo_ddl_statement_hook_type mo_ddl_statement_hook = NULL;

/* What became of a logged statement. */
#define DDL_OK			'o'
#define DDL_ERROR		'e'
#define DDL_BLOCKED		'b'

/* One slot of the ring; the strings follow it in the slot. */
typedef struct DdlEntry
{
	MoRingEvent ev;				/* when, who */
	double		duration_ms;
	int			sqlerrcode;		/* 0: none */
	int			risk;			/* MoRisk, or -1: not judged */
	int			rewrote;		/* 1, 0, or -1: unknown */
	bool		toplevel;
	char		outcome;		/* DDL_OK, DDL_ERROR, DDL_BLOCKED */
	char		command[DDL_COMMAND_MAX];
	int			object_len;		/* -1: none */
	int			error_len;		/* -1: none */
	int			rules_len;		/* -1: none */
} DdlEntry;


static MoRing *ring = NULL;

/* What is known about one DDL statement while it runs. */
typedef struct DdlRun
{
	Node	   *parsetree;
	const char *text;			/* the statement's own text */
	int			text_len;
	const char *command;
	char	   *object;			/* main object as written, or NULL */
	RangeVar   *main_rel;		/* the relation it acts on, if one */
	RangeVar   *rewrite_rel;	/* relation whose rewrite is looked for */
	bool		toplevel;
	TimestampTz start;
	/* set by the judgement, inside the subtransaction */
	int			risk;			/* worst MoRisk, -1 when not judged */
	char	   *rules;			/* rules at the worst risk, comma-separated */
	List	   *dangerous;		/* MoFinding of risk dangerous */
	bool		temp_only;		/* acts on temporary relations only */
	Oid			relid;
	Oid			filenode_before;	/* InvalidOid: unknown */
} DdlRun;

static void ddl_run(PlannedStmt *pstmt, const char *queryString,
					bool readOnlyTree, ProcessUtilityContext context,
					ParamListInfo params, QueryEnvironment *queryEnv,
					DestReceiver *dest, QueryCompletion *qc,
					mo_process_utility_fn next);

static Size
slot_size(void)
{
	return MAXALIGN(sizeof(DdlEntry) + (mo_max_query_text + 1) +
					(DDL_OBJECT_MAX + 1) + (DDL_ERROR_MAX + 1) +
					(DDL_RULES_MAX + 1));
}

static Size
ddl_shmem_size(void)
{
	return mo_ring_size(slot_size(), mo_ddl_log_buffer, DDL_AVG_BYTES);
}

static void
ddl_shmem_startup(void *area, bool found)
{
	ring = (MoRing *) area;
	mo_ring_attach(ring, found, DDL_AREA, slot_size(), mo_ddl_log_buffer,
				   DDL_AVG_BYTES);
}

/*
 * mo_ddl_init - register the ring and take the DDL statements.  Called from
 * _PG_init while preloading; without preload the guard is inactive.
 */
void
mo_ddl_init(void)
{
	mo_shmem_register(DDL_AREA, ddl_shmem_size, ddl_shmem_startup, 1);
	mo_ddl_statement_hook = ddl_run;
}

/* The strings of a slot, in order: statement, object, error, rules. */
static inline char *
slot_text(DdlEntry *e)
{
	return (char *) e + sizeof(DdlEntry);
}
static inline char *
slot_object(DdlEntry *e)
{
	return slot_text(e) + strlen(slot_text(e)) + 1;
}
static inline char *
slot_error(DdlEntry *e)
{
	return slot_object(e) + (e->object_len >= 0 ? e->object_len + 1 : 0);
}
static inline char *
slot_rules(DdlEntry *e)
{
	return slot_error(e) + (e->error_len >= 0 ? e->error_len + 1 : 0);
}

/* A dotted name out of a list of String nodes, without catalog access. */
static char *
names_string(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		Node	   *n = lfirst(lc);

		if (!IsA(n, String))
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, '.');
		appendStringInfoString(&buf, strVal(n));
	}
	return buf.len > 0 ? buf.data : NULL;
}

static char *
rangevar_string(RangeVar *rv)
{
	if (rv == NULL || rv->relname == NULL)
		return NULL;
	if (rv->schemaname)
		return psprintf("%s.%s", rv->schemaname, rv->relname);
	return pstrdup(rv->relname);
}

/* The name of an object of DROP, COMMENT, ALTER ... OWNER and the like. */
static char *
object_string(Node *obj)
{
	if (obj == NULL)
		return NULL;
	if (IsA(obj, String))
		return pstrdup(strVal(obj));
	if (IsA(obj, List))
		return names_string((List *) obj);
	if (IsA(obj, TypeName))
		return names_string(((TypeName *) obj)->names);
	if (IsA(obj, ObjectWithArgs))
		return names_string(((ObjectWithArgs *) obj)->objname);
	if (IsA(obj, RangeVar))
		return rangevar_string((RangeVar *) obj);
	return NULL;
}

static RangeVar *
first_rangevar(List *rels)
{
	Node	   *n = rels ? linitial(rels) : NULL;

	if (n == NULL)
		return NULL;
	if (IsA(n, RangeVar))
		return (RangeVar *) n;
	if (IsA(n, VacuumRelation))
		return ((VacuumRelation *) n)->relation;
	return NULL;
}

/*
 * The main object of a statement, as written, and the relation whose
 * relfilenode tells whether it was rewritten (ALTER TABLE, CLUSTER, VACUUM
 * FULL and REFRESH MATERIALIZED VIEW of one relation).  Only walks the
 * tree: no catalog access, nothing that can fail.
 */
static void
describe(DdlRun *run)
{
	Node	   *p = run->parsetree;
	RangeVar   *rv = NULL;
	char	   *name = NULL;

	switch (nodeTag(p))
	{
		case T_AlterTableStmt:
			rv = ((AlterTableStmt *) p)->relation;
			run->rewrite_rel = rv;
			break;
		case T_ClusterStmt:
			rv = ((ClusterStmt *) p)->relation;
			run->rewrite_rel = rv;
			break;
		case T_RefreshMatViewStmt:
			rv = ((RefreshMatViewStmt *) p)->relation;
			run->rewrite_rel = rv;
			break;
		case T_VacuumStmt:
			rv = first_rangevar(((VacuumStmt *) p)->rels);
			if (list_length(((VacuumStmt *) p)->rels) == 1)
				run->rewrite_rel = rv;
			break;
		case T_CreateStmt:
			rv = ((CreateStmt *) p)->relation;
			break;
		case T_CreateForeignTableStmt:
			rv = ((CreateForeignTableStmt *) p)->base.relation;
			break;
		case T_IndexStmt:
			rv = ((IndexStmt *) p)->relation;
			break;
		case T_ViewStmt:
			rv = ((ViewStmt *) p)->view;
			break;
		case T_CreateTableAsStmt:
			if (((CreateTableAsStmt *) p)->into)
				rv = ((CreateTableAsStmt *) p)->into->rel;
			break;
		case T_CreateSeqStmt:
			rv = ((CreateSeqStmt *) p)->sequence;
			break;
		case T_AlterSeqStmt:
			rv = ((AlterSeqStmt *) p)->sequence;
			break;
		case T_CompositeTypeStmt:
			rv = ((CompositeTypeStmt *) p)->typevar;
			break;
		case T_CreateTrigStmt:
			rv = ((CreateTrigStmt *) p)->relation;
			break;
		case T_RuleStmt:
			rv = ((RuleStmt *) p)->relation;
			break;
		case T_CreatePolicyStmt:
			rv = ((CreatePolicyStmt *) p)->table;
			break;
		case T_TruncateStmt:
			rv = first_rangevar(((TruncateStmt *) p)->relations);
			break;
		case T_LockStmt:
			rv = first_rangevar(((LockStmt *) p)->relations);
			break;
		case T_ReindexStmt:
			rv = ((ReindexStmt *) p)->relation;
			if (rv == NULL && ((ReindexStmt *) p)->name)
				name = pstrdup(((ReindexStmt *) p)->name);
			break;
		case T_RenameStmt:
			rv = ((RenameStmt *) p)->relation;
			if (rv == NULL)
				name = object_string(((RenameStmt *) p)->object);
			break;
		case T_AlterObjectSchemaStmt:
			rv = ((AlterObjectSchemaStmt *) p)->relation;
			if (rv == NULL)
				name = object_string(((AlterObjectSchemaStmt *) p)->object);
			break;
		case T_AlterOwnerStmt:
			rv = ((AlterOwnerStmt *) p)->relation;
			if (rv == NULL)
				name = object_string(((AlterOwnerStmt *) p)->object);
			break;
		case T_DropStmt:
			{
				List	   *objs = ((DropStmt *) p)->objects;

				name = objs ? object_string(linitial(objs)) : NULL;
				break;
			}
		case T_CommentStmt:
			name = object_string(((CommentStmt *) p)->object);
			break;
		case T_GrantStmt:
			{
				List	   *objs = ((GrantStmt *) p)->objects;

				name = objs ? object_string(linitial(objs)) : NULL;
				break;
			}
		case T_CreateFunctionStmt:
			name = names_string(((CreateFunctionStmt *) p)->funcname);
			break;
		case T_DefineStmt:
			name = names_string(((DefineStmt *) p)->defnames);
			break;
		case T_CreateEnumStmt:
			name = names_string(((CreateEnumStmt *) p)->typeName);
			break;
		case T_AlterEnumStmt:
			name = names_string(((AlterEnumStmt *) p)->typeName);
			break;
		case T_CreateDomainStmt:
			name = names_string(((CreateDomainStmt *) p)->domainname);
			break;
		case T_AlterDomainStmt:
			name = names_string(((AlterDomainStmt *) p)->typeName);
			break;
		case T_CreateSchemaStmt:
			if (((CreateSchemaStmt *) p)->schemaname)
				name = pstrdup(((CreateSchemaStmt *) p)->schemaname);
			break;
		case T_CreateExtensionStmt:
			name = pstrdup(((CreateExtensionStmt *) p)->extname);
			break;
		case T_AlterExtensionStmt:
			name = pstrdup(((AlterExtensionStmt *) p)->extname);
			break;
		case T_CreatedbStmt:
			name = pstrdup(((CreatedbStmt *) p)->dbname);
			break;
		case T_DropdbStmt:
			name = pstrdup(((DropdbStmt *) p)->dbname);
			break;
		case T_AlterDatabaseStmt:
			name = pstrdup(((AlterDatabaseStmt *) p)->dbname);
			break;
		default:
			break;
	}
	if (rv)
		name = rangevar_string(rv);
	run->main_rel = rv;
	run->object = name;
}

/*
 * Whether a statement commits transactions of its own, so that a GUC nest
 * level cannot be held across it: PreventInTransactionBlock's statements.
 */
static bool
runs_own_transactions(Node *p)
{
	switch (nodeTag(p))
	{
		case T_VacuumStmt:
		case T_CreatedbStmt:
		case T_DropdbStmt:
		case T_CreateTableSpaceStmt:
		case T_DropTableSpaceStmt:
		case T_AlterSystemStmt:
		case T_CreateSubscriptionStmt:
		case T_AlterSubscriptionStmt:
		case T_DropSubscriptionStmt:
			return true;
		case T_IndexStmt:
			return ((IndexStmt *) p)->concurrent;
		case T_DropStmt:
			return ((DropStmt *) p)->concurrent;
		case T_ClusterStmt:
			return ((ClusterStmt *) p)->relation == NULL;
		case T_ReindexStmt:
			{
				ReindexStmt *r = (ReindexStmt *) p;
				ListCell   *lc;

				if (r->kind != REINDEX_OBJECT_INDEX &&
					r->kind != REINDEX_OBJECT_TABLE)
					return true;
				foreach(lc, r->params)
					if (strcmp(((DefElem *) lfirst(lc))->defname, "concurrently") == 0)
						return true;
				return false;
			}
		case T_AlterTableStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterTableStmt *) p)->cmds)
				{
					AlterTableCmd *cmd = lfirst(lc);

					if (cmd->subtype == AT_DetachPartition &&
						cmd->def && IsA(cmd->def, PartitionCmd) &&
						((PartitionCmd *) cmd->def)->concurrent)
						return true;
				}
				return false;
			}
		default:
			return false;
	}
}

/* The relation's relfilenode now, or InvalidOid (mapped, gone, unknown). */
static Oid
current_filenode(Oid relid)
{
	HeapTuple	tup;
	Oid			filenode = InvalidOid;

	if (!OidIsValid(relid))
		return InvalidOid;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		filenode = ((Form_pg_class) GETSTRUCT(tup))->relfilenode;
		ReleaseSysCache(tup);
	}
	return filenode;
}

static bool
rel_is_temp(RangeVar *rv)
{
	Oid			relid;

	if (rv->relpersistence == RELPERSISTENCE_TEMP)
		return true;
	relid = RangeVarGetRelid(rv, NoLock, true);
	return OidIsValid(relid) && get_rel_persistence(relid) == RELPERSISTENCE_TEMP;
}

/*
 * Whether every relation the statement acts on is temporary: invisible to
 * other sessions, so never worth a warning or a refusal (applications
 * create, index and drop them in their normal work).
 */
static bool
temp_only(DdlRun *run)
{
	Node	   *p = run->parsetree;
	List	   *rels = NIL;
	ListCell   *lc;

	if (IsA(p, DropStmt))
	{
		DropStmt   *d = (DropStmt *) p;

		if (d->removeType != OBJECT_TABLE && d->removeType != OBJECT_INDEX &&
			d->removeType != OBJECT_SEQUENCE && d->removeType != OBJECT_VIEW &&
			d->removeType != OBJECT_MATVIEW)
			return false;
		foreach(lc, d->objects)
			rels = lappend(rels, makeRangeVarFromNameList((List *) lfirst(lc)));
	}
	else if (IsA(p, TruncateStmt))
		rels = ((TruncateStmt *) p)->relations;
	else if (IsA(p, LockStmt))
		rels = ((LockStmt *) p)->relations;
	else if (run->main_rel)
		rels = list_make1(run->main_rel);

	if (rels == NIL)
		return false;
	foreach(lc, rels)
		if (!IsA(lfirst(lc), RangeVar) || !rel_is_temp(lfirst(lc)))
			return false;
	return true;
}

/*
 * Lint the statement and note its relation's relfilenode.  Runs inside the
 * linter's internal subtransaction (mo_lint_guarded): anything that fails
 * here is rolled back and leaves the statement unjudged.
 */
static void
judge(void *arg)
{
	DdlRun	   *run = (DdlRun *) arg;
	char	   *sql = pnstrdup(run->text, run->text_len);
	List	   *results;
	StringInfoData rules;
	int			nestlevel;
	int			worst = -1;
	ListCell   *lc;

	/*
	 * The client already got the parser's notices and warnings for this
	 * statement ("identifier will be truncated", "nonstandard use of \\"):
	 * parsing it again must be silent.  The settings are restored on
	 * return, or by the subtransaction's abort if the linter fails.
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("client_min_messages", "error", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("log_min_messages", "error", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	results = mo_lint_run(sql);
	AtEOXact_GUC(true, nestlevel);

	/* advice never counts: a statement's risk is its worst finding above */
	foreach(lc, results)
		worst = Max(worst, (int) mo_lint_stmt_risk(lfirst(lc)));

	initStringInfo(&rules);
	foreach(lc, results)
	{
		MoStmtResult *res = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, res->findings)
		{
			MoFinding  *f = lfirst(lc2);

			if ((int) f->risk != worst || f->rule == NULL)
				continue;
			if (f->risk == MO_RISK_DANGEROUS)
				run->dangerous = lappend(run->dangerous, f);
			if (rules.len + strlen(f->rule) + 1 > DDL_RULES_MAX)
				continue;
			if (rules.len > 0)
				appendStringInfoChar(&rules, ',');
			appendStringInfoString(&rules, f->rule);
		}
	}
	run->risk = worst;
	run->rules = rules.len > 0 ? rules.data : NULL;
	run->temp_only = temp_only(run);

	if (run->rewrite_rel)
	{
		run->relid = RangeVarGetRelid(run->rewrite_rel, NoLock, true);
		run->filenode_before = current_filenode(run->relid);
	}
}

/* Copy one finished (or refused) statement into the ring. */
static void
record(DdlRun *run, char outcome, double duration_ms, int sqlerrcode,
	   const char *error, int rewrote)
{
	DdlEntry   *e;

	if (ring == NULL || ring->nslots <= 0)
		return;

	e = mo_ring_write_begin(ring, sizeof(DdlEntry) +
							Min(Max(run->text_len, 0), mo_max_query_text) + 1 +
							(run->object ? Min(strlen(run->object), DDL_OBJECT_MAX) + 1 : 0) +
							(error ? Min(strlen(error), DDL_ERROR_MAX) + 1 : 0) +
							(run->rules ? Min(strlen(run->rules), DDL_RULES_MAX) + 1 : 0));
	mo_ring_event_fill(&e->ev, run->start,
					   MyProcPort ? MyProcPort->user_name : NULL);
	e->duration_ms = duration_ms;
	e->sqlerrcode = sqlerrcode;
	e->risk = run->risk;
	e->rewrote = rewrote;
	e->toplevel = run->toplevel;
	e->outcome = outcome;
	strlcpy(e->command, run->command, DDL_COMMAND_MAX);
	(void) mo_copy_clipped(slot_text(e), run->text, run->text_len, mo_max_query_text);
	e->object_len = run->object ?
		mo_copy_clipped(slot_object(e), run->object, strlen(run->object), DDL_OBJECT_MAX) : -1;
	e->error_len = error ?
		mo_copy_clipped(slot_error(e), error, strlen(error), DDL_ERROR_MAX) : -1;
	e->rules_len = run->rules ?
		mo_copy_clipped(slot_rules(e), run->rules, strlen(run->rules), DDL_RULES_MAX) : -1;
	mo_ring_write_end(ring);
}

/* Warn about, or refuse, the dangerous findings of a judged statement. */
static void
enforce(DdlRun *run)
{
	MoFinding  *first;
	StringInfoData others;
	ListCell   *lc;

	if (mo_ddl_guard == MO_DDL_GUARD_OFF || run->dangerous == NIL ||
		run->temp_only)
		return;

	if (mo_ddl_guard == MO_DDL_GUARD_WARN)
	{
		foreach(lc, run->dangerous)
		{
			MoFinding  *f = lfirst(lc);

			ereport(WARNING,
					(errmsg("moltres_ops.ddl_guard: dangerous %s (rule %s): %s",
							run->command, f->rule, f->message),
					 f->hint ? errhint("%s", f->hint) : 0));
		}
		return;
	}

	first = linitial(run->dangerous);
	initStringInfo(&others);
	for_each_from(lc, run->dangerous, 1)
	{
		MoFinding  *f = lfirst(lc);

		appendStringInfo(&others, " Also dangerous (rule %s): %s",
						 f->rule, f->message);
	}
	record(run, DDL_BLOCKED, 0.0, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
		   "refused by moltres_ops.ddl_guard", -1);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("moltres_ops.ddl_guard refused a dangerous %s (rule %s)",
					run->command, first->rule),
			 errdetail("%s%s", first->message, others.data),
			 errhint("%s%sTo run it deliberately, a superuser can SET moltres_ops.ddl_guard = warn for that session.",
					 first->hint ? first->hint : "",
					 first->hint ? " " : "")));
}

/*
 * ddl_run - mo_ddl_statement_hook: run one DDL statement through the lock
 * timeout, the guard and the log.  Never raises an error of its own into
 * the statement except the guard's refusal.
 */
static void
ddl_run(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		ProcessUtilityContext context, ParamListInfo params,
		QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc,
		mo_process_utility_fn next)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	DdlRun	   *run;
	ErrorData  *failure;
	int			nestlevel = -1;
	instr_time	t0;
	instr_time	t1;
	int			rewrote = -1;

	if (context == PROCESS_UTILITY_SUBCOMMAND || creating_extension ||
		IsParallelWorker() || ring == NULL)
	{
		next(pstmt, queryString, readOnlyTree, context, params, queryEnv,
			 dest, qc);
		return;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "moltres_ops ddl",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	run = palloc0(sizeof(DdlRun));
	run->parsetree = pstmt->utilityStmt;
	run->text = mo_statement_text(queryString, pstmt->stmt_location,
							   pstmt->stmt_len, &run->text_len);
	run->command = GetCommandTagName(CreateCommandTag(run->parsetree));
	run->toplevel = (context == PROCESS_UTILITY_TOPLEVEL);
	run->start = GetCurrentTimestamp();
	run->risk = -1;
	describe(run);

	/* The lock timeout first, so that the linter sees it too. */
	if (mo_ddl_lock_timeout > 0 && LockTimeout == 0 &&
		!runs_own_transactions(run->parsetree))
	{
		char		value[32];

		snprintf(value, sizeof(value), "%d", mo_ddl_lock_timeout);
		nestlevel = NewGUCNestLevel();
		(void) set_config_option("lock_timeout", value, PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
	}

	failure = mo_lint_guarded(judge, run, 0);
	if (failure != NULL)
	{
		/* unjudged: run it as if the linter were not there */
		run->risk = -1;
		run->rules = NULL;
		run->dangerous = NIL;
		run->relid = InvalidOid;
		run->filenode_before = InvalidOid;
	}
	MemoryContextSwitchTo(oldcxt);

	enforce(run);

	INSTR_TIME_SET_CURRENT(t0);
	PG_TRY();
	{
		next(pstmt, queryString, readOnlyTree, context, params, queryEnv,
			 dest, qc);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		INSTR_TIME_SET_CURRENT(t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_OUT_OF_MEMORY)
			record(run, DDL_ERROR, INSTR_TIME_GET_MILLISEC(t1),
				   edata->sqlerrcode, edata->message, -1);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);

	if (nestlevel >= 0)
		AtEOXact_GUC(true, nestlevel);

	if (OidIsValid(run->filenode_before))
	{
		Oid			after = current_filenode(run->relid);

		if (OidIsValid(after))
			rewrote = (after != run->filenode_before) ? 1 : 0;
	}
	record(run, DDL_OK, INSTR_TIME_GET_MILLISEC(t1), 0, NULL, rewrote);
	MemoryContextDelete(cxt);
}

static const char *
outcome_name(char outcome)
{
	switch (outcome)
	{
		case DDL_OK:
			return "ok";
		case DDL_BLOCKED:
			return "blocked";
		default:
			return "error";
	}
}

/* The comma-separated rule names as a text[]. */
static Datum
rules_array(char *rules)
{
	Datum		elems[DDL_RULES_MAX / 2 + 1];
	int			n = 0;
	char	   *tok;
	char	   *save = NULL;

	for (tok = strtok_r(rules, ",", &save); tok && n < lengthof(elems);
		 tok = strtok_r(NULL, ",", &save))
		elems[n++] = CStringGetTextDatum(tok);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(moltres_ops_ddl_log);

/*
 * moltres_ops_ddl_log - the ring, newest first.  Rows of other users only
 * for superusers and members of pg_read_all_stats: the statement text may
 * hold literals.
 */
Datum
moltres_ops_ddl_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MoRingCopy	copy;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	if (ring->nslots <= 0)
		return (Datum) 0;

	/* Copy the ring out under the lock; build the rows without it. */
	mo_ring_copy(ring, &copy);
	for (int i = 0; i < copy.count; i++)
	{
		DdlEntry   *e = mo_ring_copy_entry(&copy, i);
		Datum		values[16];
		bool		nulls[16] = {0};

		if (!mo_ring_event_visible(&e->ev))
			continue;

		values[0] = TimestampTzGetDatum(e->ev.ts);
		values[1] = Int32GetDatum(e->ev.pid);
		values[2] = mo_ring_event_username(&e->ev);
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(e->ev.datname));
		values[4] = CStringGetTextDatum(e->ev.appname);
		values[5] = CStringGetTextDatum(e->command);
		if (e->object_len >= 0)
			values[6] = CStringGetTextDatum(slot_object(e));
		else
			nulls[6] = true;
		values[7] = BoolGetDatum(e->toplevel);
		values[8] = CStringGetTextDatum(slot_text(e));
		values[9] = Float8GetDatum(e->duration_ms);
		values[10] = CStringGetTextDatum(outcome_name(e->outcome));
		if (e->sqlerrcode != 0)
			values[11] = CStringGetTextDatum(unpack_sql_state(e->sqlerrcode));
		else
			nulls[11] = true;
		if (e->error_len >= 0)
			values[12] = CStringGetTextDatum(slot_error(e));
		else
			nulls[12] = true;
		if (e->risk >= 0)
			values[13] = CStringGetTextDatum(mo_lint_risk_name((MoRisk) e->risk));
		else
			nulls[13] = true;
		if (e->rules_len >= 0)
			values[14] = rules_array(slot_rules(e));
		else
			nulls[14] = true;
		if (e->rewrote >= 0)
			values[15] = BoolGetDatum(e->rewrote == 1);
		else
			nulls[15] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy.data);

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_reset_ddl_log);

/*
 * moltres_ops_reset_ddl_log - empty the ring.  Execution is granted by the
 * install script, not to PUBLIC.
 */
Datum
moltres_ops_reset_ddl_log(PG_FUNCTION_ARGS)
{
	mo_require_shmem();
	mo_ring_reset(ring);

	PG_RETURN_VOID();
}
