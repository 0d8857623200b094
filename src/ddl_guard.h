/*-------------------------------------------------------------------------
 *
 * ddl_guard.h
 *	  The DDL guard and DDL log (ddl_guard.c): which utility statements count
 *	  as DDL, and the entry point that exec_hooks.c calls for them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_DDL_GUARD_H
#define MO_DDL_GUARD_H

#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "storage/lockdefs.h"
#include "tcop/utility.h"

typedef enum MoDdlGuard
{
	MO_DDL_GUARD_OFF,
	MO_DDL_GUARD_WARN,
	MO_DDL_GUARD_BLOCK
} MoDdlGuard;

extern int	mo_ddl_guard;
extern int	mo_ddl_lock_timeout;
extern int	mo_ddl_log_buffer;

/* The next ProcessUtility in the chain (previous hook or the standard one). */
typedef void (*mo_process_utility_fn) (PlannedStmt *pstmt,
									   const char *queryString,
									   bool readOnlyTree,
									   ProcessUtilityContext context,
									   ParamListInfo params,
									   QueryEnvironment *queryEnv,
									   DestReceiver *dest,
									   QueryCompletion *qc);

/*
 * Runs a DDL statement in place of the next ProcessUtility: judges it, logs
 * it, and calls next.  NULL when the library is not preloaded.
 */
typedef void (*mo_ddl_statement_hook_type) (PlannedStmt *pstmt,
											const char *queryString,
											bool readOnlyTree,
											ProcessUtilityContext context,
											ParamListInfo params,
											QueryEnvironment *queryEnv,
											DestReceiver *dest,
											QueryCompletion *qc,
											mo_process_utility_fn next);

extern PGDLLIMPORT mo_ddl_statement_hook_type mo_ddl_statement_hook;

extern void mo_ddl_init(void);

/*
 * mo_is_ddl - whether a utility statement is DDL for the guard and the log:
 * the statements that change schema, roles, privileges or server objects
 * (those that log_statement = 'ddl' logs), plus the maintenance statements
 * the linter has rules for (TRUNCATE, CLUSTER, REINDEX, VACUUM FULL, LOCK
 * TABLE in SHARE UPDATE EXCLUSIVE mode or stronger).  One switch on the node
 * tag: SET, SHOW, BEGIN/COMMIT, COPY, EXPLAIN, plain VACUUM/ANALYZE and the
 * like are answered at once.
 */
static inline bool
mo_is_ddl(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_AlterCollationStmt:
		case T_AlterDatabaseSetStmt:
		case T_AlterDatabaseStmt:
		case T_AlterDefaultPrivilegesStmt:
		case T_AlterDomainStmt:
		case T_AlterEnumStmt:
		case T_AlterEventTrigStmt:
		case T_AlterExtensionContentsStmt:
		case T_AlterExtensionStmt:
		case T_AlterFdwStmt:
		case T_AlterForeignServerStmt:
		case T_AlterFunctionStmt:
		case T_AlterObjectDependsStmt:
		case T_AlterObjectSchemaStmt:
		case T_AlterOpFamilyStmt:
		case T_AlterOperatorStmt:
		case T_AlterOwnerStmt:
		case T_AlterPolicyStmt:
		case T_AlterPublicationStmt:
		case T_AlterRoleSetStmt:
		case T_AlterRoleStmt:
		case T_AlterSeqStmt:
		case T_AlterStatsStmt:
		case T_AlterSubscriptionStmt:
		case T_AlterSystemStmt:
		case T_AlterTSConfigurationStmt:
		case T_AlterTSDictionaryStmt:
		case T_AlterTableMoveAllStmt:
		case T_AlterTableSpaceOptionsStmt:
		case T_AlterTableStmt:
		case T_AlterTypeStmt:
		case T_AlterUserMappingStmt:
		case T_ClusterStmt:
		case T_CommentStmt:
		case T_CompositeTypeStmt:
		case T_CreateAmStmt:
		case T_CreateCastStmt:
		case T_CreateConversionStmt:
		case T_CreateDomainStmt:
		case T_CreateEnumStmt:
		case T_CreateEventTrigStmt:
		case T_CreateExtensionStmt:
		case T_CreateFdwStmt:
		case T_CreateForeignServerStmt:
		case T_CreateForeignTableStmt:
		case T_CreateFunctionStmt:
		case T_CreateOpClassStmt:
		case T_CreateOpFamilyStmt:
		case T_CreatePLangStmt:
		case T_CreatePolicyStmt:
		case T_CreatePublicationStmt:
		case T_CreateRangeStmt:
		case T_CreateRoleStmt:
		case T_CreateSchemaStmt:
		case T_CreateSeqStmt:
		case T_CreateStatsStmt:
		case T_CreateStmt:
		case T_CreateSubscriptionStmt:
		case T_CreateTableAsStmt:
		case T_CreateTableSpaceStmt:
		case T_CreateTransformStmt:
		case T_CreateTrigStmt:
		case T_CreateUserMappingStmt:
		case T_CreatedbStmt:
		case T_DefineStmt:
		case T_DropOwnedStmt:
		case T_DropRoleStmt:
		case T_DropStmt:
		case T_DropSubscriptionStmt:
		case T_DropTableSpaceStmt:
		case T_DropUserMappingStmt:
		case T_DropdbStmt:
		case T_GrantRoleStmt:
		case T_GrantStmt:
		case T_ImportForeignSchemaStmt:
		case T_IndexStmt:
		case T_ReassignOwnedStmt:
		case T_RefreshMatViewStmt:
		case T_ReindexStmt:
		case T_RenameStmt:
		case T_RuleStmt:
		case T_SecLabelStmt:
		case T_TruncateStmt:
		case T_ViewStmt:
			return true;
		case T_VacuumStmt:
			{
				ListCell   *lc;

				foreach(lc, ((VacuumStmt *) parsetree)->options)
					if (strcmp(((DefElem *) lfirst(lc))->defname, "full") == 0)
						return true;
				return false;
			}
		case T_LockStmt:
			return ((LockStmt *) parsetree)->mode >= ShareUpdateExclusiveLock;
		default:
			return false;
	}
}

#endif							/* MO_DDL_GUARD_H */
