/*-------------------------------------------------------------------------
 *
 * moltres_ops.c
 *	  Module entry point.  _PG_init registers the settings, then calls one
 *	  init function per subsystem (each registers its shared memory area and
 *	  installs its hooks), then requests the shared memory; nothing else.
 *	  Also the checks every subsystem shares: the library version, whether
 *	  it is preloaded, and mo_require_primary() (refuse writes on a
 *	  standby).
 *
 * Shared memory and hooks exist only when the library is loaded through
 * shared_preload_libraries.  Loaded any other way (CREATE EXTENSION without
 * preload, LOAD), the settings are still defined so that SHOW and SET work,
 * the pure-SQL parts of the extension work, and every function that needs
 * shared memory raises a clear error (see mo_require_shmem()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "ddl_guard.h"
#include "exec_hooks.h"
#include "moltres_ops.h"
#include "query_stats.h"
#include "slowlog.h"
#include "waits.h"

MO_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	mo_guc_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	mo_connections_init();
	mo_query_stats_init();
	mo_latency_init();
	mo_exec_hooks_init();
	mo_errors_init();
	mo_slowlog_init();
	mo_index_worker_init();
	mo_health_worker_init();
	mo_ddl_init();
	mo_waits_init();
	mo_shmem_init();
}

PG_FUNCTION_INFO_V1(moltres_ops_library_version);

/*
 * moltres_ops_library_version - the version of the loaded shared library, so
 * that an operator can tell when ALTER EXTENSION UPDATE is due after an
 * upgrade of the package.
 */
Datum
moltres_ops_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(MO_LIBRARY_VERSION));
}

PG_FUNCTION_INFO_V1(moltres_ops_preloaded);

/*
 * moltres_ops_preloaded - whether the library was loaded via
 * shared_preload_libraries, i.e. whether hooks and shared memory are live.
 */
Datum
moltres_ops_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(mo_shmem_available());
}

/*
 * mo_require_primary - refuse, with one message for every entry point, a
 * function that writes (tables, the migration ledger, indexes) on a server
 * that is in recovery.  Without this, a standby answers with whatever the
 * first write happens to be ("cannot execute SELECT FOR UPDATE in a
 * read-only transaction"), which does not say where to go instead.
 */
void
mo_require_primary(const char *what)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("moltres_ops.%s() cannot run on a standby", what),
				 errdetail("This server is in recovery (a hot standby), so it is read-only."),
				 errhint("Run it on the primary server; its changes reach the standbys through replication.")));
}

PG_FUNCTION_INFO_V1(moltres_ops_require_primary);

/*
 * moltres_ops_require_primary - SQL entry point of mo_require_primary(), for
 * the PL/pgSQL procedures (migrations, safe-migration procedures).
 */
Datum
moltres_ops_require_primary(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(0));

	mo_require_primary(what);
	PG_RETURN_VOID();
}
