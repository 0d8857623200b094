/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Registry of the shared memory areas of moltres_ops.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_SHMEM_H
#define MO_SHMEM_H

#include "storage/lwlock.h"

/*
 * A subsystem that needs shared memory registers an area from its init
 * function, which _PG_init calls while shared_preload_libraries is being
 * processed.  size_fn is called when memory is requested (settings are
 * final by then); startup_fn is called once per process that attaches, with
 * AddinShmemInitLock held, found = false in the first one (the postmaster)
 * where it must initialise the area.  nlocks LWLocks are requested in a
 * tranche named after the area; mo_shmem_locks() returns them.
 */
typedef Size (*MoShmemSizeFn) (void);
typedef void (*MoShmemStartupFn) (void *area, bool found);

extern void mo_shmem_register(const char *name, MoShmemSizeFn size_fn,
							  MoShmemStartupFn startup_fn, int nlocks);
extern LWLockPadded *mo_shmem_locks(const char *name);

#endif							/* MO_SHMEM_H */
