/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of moltres_ops: a registry of areas, one per subsystem,
 *	  requested and attached through the server's shmem hooks.
 *
 * Each area is a separate ShmemInitStruct named "moltres_ops <area>", with
 * its own named LWLock tranche; the locking protocol inside an area is
 * described in the banner of the file that owns it.  This file keeps only a
 * small core area, written once by the postmaster at start-up and read-only
 * afterwards, so it needs no lock: the sizes of every area, which the view
 * moltres_ops.shmem_usage reports as the server allocates them (rounded up
 * to a cache line, as pg_shmem_allocations shows them), so that their sum
 * is the true total.
 *
 * Runs in the postmaster (request, first attach) and, under EXEC_BACKEND,
 * in every backend (attach).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "moltres_ops.h"
#include "shmem.h"

#define MO_MAX_AREAS	16
#define MO_AREA_NAMELEN 48

typedef struct MoShmemArea
{
	char		name[MO_AREA_NAMELEN];
	MoShmemSizeFn size_fn;
	MoShmemStartupFn startup_fn;
	int			nlocks;
} MoShmemArea;

/* What the postmaster wrote at start-up; read-only afterwards. */
typedef struct MoShmemCore
{
	TimestampTz started_at;
	int			nareas;
	struct
	{
		char		name[MO_AREA_NAMELEN];
		Size		bytes;
	}			areas[MO_MAX_AREAS];
} MoShmemCore;

/* Process-local registry, filled in by _PG_init in the postmaster. */
static MoShmemArea registry[MO_MAX_AREAS];
static int	nregistered = 0;

static MoShmemCore *core = NULL;

#ifdef MO_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void mo_shmem_request(void);
static void mo_shmem_startup(void);

void
mo_shmem_register(const char *name, MoShmemSizeFn size_fn,
				  MoShmemStartupFn startup_fn, int nlocks)
{
	MoShmemArea *area;

	if (nregistered >= MO_MAX_AREAS)
		elog(ERROR, "too many moltres_ops shared memory areas");
	Assert(strlen(name) < MO_AREA_NAMELEN - 16);

	area = &registry[nregistered++];
	snprintf(area->name, MO_AREA_NAMELEN, "%s %s", MO_EXTNAME, name);
	area->size_fn = size_fn;
	area->startup_fn = startup_fn;
	area->nlocks = nlocks;
}

LWLockPadded *
mo_shmem_locks(const char *name)
{
	char		tranche[MO_AREA_NAMELEN];

	snprintf(tranche, MO_AREA_NAMELEN, "%s %s", MO_EXTNAME, name);
	return GetNamedLWLockTranche(tranche);
}

/*
 * mo_shmem_init - install the shmem hooks.  Called from _PG_init, only while
 * shared_preload_libraries is processed, after every subsystem registered its
 * area (before PostgreSQL 15 the request is made right here).
 */
void
mo_shmem_init(void)
{
#ifdef MO_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = mo_shmem_request;
#else
	mo_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mo_shmem_startup;
}

static void
mo_shmem_request(void)
{
	Size		total = CACHELINEALIGN(sizeof(MoShmemCore));

#ifdef MO_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif

	for (int i = 0; i < nregistered; i++)
	{
		total = add_size(total, CACHELINEALIGN(registry[i].size_fn()));
		if (registry[i].nlocks > 0)
			RequestNamedLWLockTranche(registry[i].name, registry[i].nlocks);
	}
	RequestAddinShmemSpace(total);
}

static void
mo_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	core = ShmemInitStruct(MO_EXTNAME " core", sizeof(MoShmemCore), &found);
	if (!found)
	{
		memset(core, 0, sizeof(MoShmemCore));
		core->started_at = GetCurrentTimestamp();
		strlcpy(core->areas[0].name, MO_EXTNAME " core", MO_AREA_NAMELEN);
		core->areas[0].bytes = CACHELINEALIGN(sizeof(MoShmemCore));
		core->nareas = 1;
	}

	for (int i = 0; i < nregistered; i++)
	{
		Size		size = registry[i].size_fn();
		void	   *ptr;
		bool		area_found;

		ptr = ShmemInitStruct(registry[i].name, size, &area_found);
		if (!found && core->nareas < MO_MAX_AREAS)
		{
			strlcpy(core->areas[core->nareas].name, registry[i].name,
					MO_AREA_NAMELEN);
			core->areas[core->nareas].bytes = CACHELINEALIGN(size);
			core->nareas++;
		}
		registry[i].startup_fn(ptr, area_found);
	}

	LWLockRelease(AddinShmemInitLock);
}

bool
mo_shmem_available(void)
{
	return core != NULL;
}

/*
 * mo_require_shmem - raise the error that every SQL function needing shared
 * memory raises when the library was not preloaded.
 */
void
mo_require_shmem(void)
{
	if (core == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("moltres_ops must be loaded via shared_preload_libraries"),
				 errdetail("This function reads shared memory, which exists only when the library is preloaded at server start."),
				 errhint("Add this line to postgresql.conf and restart the server: shared_preload_libraries = 'moltres_ops'")));
}

/*
 * Total bytes of shared memory used by all areas, for the statistics views:
 * the sum of what shmem_usage reports.
 */
Size
mo_shmem_total_bytes(void)
{
	Size		total = 0;

	mo_require_shmem();
	for (int i = 0; i < core->nareas; i++)
		total += core->areas[i].bytes;
	return total;
}

PG_FUNCTION_INFO_V1(moltres_ops_shmem_usage);

/*
 * moltres_ops_shmem_usage - one row per shared memory area: its name and
 * size in bytes, so an operator can check the memory budget.
 */
Datum
moltres_ops_shmem_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < core->nareas; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(core->areas[i].name + strlen(MO_EXTNAME " "));
		values[1] = Int64GetDatum((int64) core->areas[i].bytes);
		values[2] = TimestampTzGetDatum(core->started_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
