/*-------------------------------------------------------------------------
 *
 * waits.h
 *	  Where the time goes: the per-backend slot in which the executor hooks
 *	  publish the statement a backend is running, for the wait sampler
 *	  (wait_sampler.c) to attribute each sample to it.
 *
 * The slot is written only by its own backend, with plain stores and no
 * lock, and read without a lock by the sampler; a sample taken at the very
 * instant of a transition may go to the statement on either side of it.
 * The calls come in pairs around every execution step that can wait
 * (ExecutorRun, ExecutorFinish, ProcessUtility), and the end call runs on
 * the error path too, so the slot is never left naming a statement that
 * has ended.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_WAITS_H
#define MO_WAITS_H

#include "miscadmin.h"

/*
 * One backend's slot, indexed by its PGPROC number.  top_* name the
 * top-level statement of the backend (last one when running is false),
 * nested_* the innermost nested statement (0 when none: every nested end,
 * normal or by error, puts back what its start found, down to the 0 that
 * mo_waits_attach wrote).
 */
typedef struct MoWaitSlot
{
	volatile uint64 top_queryid;
	volatile uint64 nested_queryid;
	volatile Oid top_userid;
	volatile Oid nested_userid;
	volatile bool running;		/* a top-level statement is running */
	volatile int pid;			/* the backend that last attached */
} MoWaitSlot;

/* What a nested statement's start overwrote, for its end to put back. */
typedef struct MoWaitSaved
{
	uint64		queryid;
	Oid			userid;
} MoWaitSaved;

/* This backend's slot; NULL until its first statement (or not preloaded). */
extern PGDLLIMPORT MoWaitSlot *mo_wait_slot;

extern MoWaitSlot *mo_waits_attach(void);
extern void mo_waits_init(void);

/*
 * mo_waits_publish_start - a statement (queryid, 0 when it has none) run by
 * userid (GetUserId(), which the caller usually has at hand) starts a step
 * of its execution at the top level or nested.  A handful of plain stores;
 * saved receives what a nested start overwrote.
 */
static inline void
mo_waits_publish_start(MoWaitSaved *saved, uint64 queryid, Oid userid,
					   bool toplevel)
{
	MoWaitSlot *s = mo_wait_slot;

	if (unlikely(s == NULL) && (s = mo_waits_attach()) == NULL)
		return;
	if (toplevel)
	{
		s->top_queryid = queryid;
		s->top_userid = userid;
		s->running = true;
	}
	else
	{
		saved->queryid = s->nested_queryid;
		saved->userid = s->nested_userid;
		s->nested_queryid = queryid;
		s->nested_userid = userid;
	}
}

/*
 * mo_waits_publish_end - the step that mo_waits_publish_start announced has
 * ended, normally or by an error (call it from PG_CATCH as well).
 */
static inline void
mo_waits_publish_end(const MoWaitSaved *saved, bool toplevel)
{
	MoWaitSlot *s = mo_wait_slot;

	if (unlikely(s == NULL))
		return;
	if (toplevel)
		s->running = false;
	else
	{
		s->nested_queryid = saved->queryid;
		s->nested_userid = saved->userid;
	}
}

#endif							/* MO_WAITS_H */
