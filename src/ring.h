/*-------------------------------------------------------------------------
 *
 * ring.h
 *	  A shared ring of variable-size events: the logs of recent events that
 *	  the views slow_queries and ddl_log show.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MO_RING_H
#define MO_RING_H

#include "storage/lwlock.h"
#include "utils/timestamp.h"

/* Where an event's bytes are in the data area of its ring. */
typedef struct MoRingRec
{
	uint32		off;
	uint32		len;
} MoRingRec;

/*
 * The ring proper, in shared memory: nslots MoRingRec, then nbytes of
 * events, each contiguous, written one after the other and wrapping to the
 * start of the area when the next one would not fit before its end.
 * Event n (numbered from 1) has its MoRingRec at (n - 1) % nslots; it stays
 * valid (mo_ring_lock_event) while neither its record nor its bytes are
 * reused and the ring is not reset: the ring keeps at most nslots events,
 * fewer when they are long.
 */
typedef struct MoRing
{
	LWLock	   *lock;
	uint64		next;			/* events since start; never reset */
	uint64		first;			/* first event since the last reset */
	uint64		lost;			/* events 1 .. lost are overwritten */
	int			nslots;			/* events kept at most */
	Size		slot_size;		/* bytes of one event at most */
	Size		nbytes;			/* bytes of the data area */
	Size		head;			/* where the next event goes */
	TimestampTz reset_at;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} MoRing;

/* What every event records about who caused it; it starts each slot. */
typedef struct MoRingEvent
{
	TimestampTz ts;				/* when the statement started */
	int			pid;
	Oid			userid;			/* current user, for the privacy rule */
	char		username[NAMEDATALEN];	/* fallback if the role is gone */
	char		datname[NAMEDATALEN];
	char		appname[NAMEDATALEN];
} MoRingEvent;

/* A private copy of a ring, to build rows from without holding its lock. */
typedef struct MoRingCopy
{
	char	   *data;
	MoRingRec  *recs;
	uint64		next;
	int			nslots;
	int			count;			/* events in the copy */
} MoRingCopy;

extern Size mo_ring_size(Size slot_size, int nslots, Size avg_size);
extern void mo_ring_attach(MoRing *ring, bool found, const char *area,
						   Size slot_size, int nslots, Size avg_size);
extern void *mo_ring_write_begin(MoRing *ring, Size len);
extern void *mo_ring_event(MoRing *ring, uint64 event);
extern uint64 mo_ring_write_end(MoRing *ring);
extern void *mo_ring_lock_event(MoRing *ring, uint64 event);
extern void mo_ring_unlock(MoRing *ring);
extern void mo_ring_copy(MoRing *ring, MoRingCopy *copy);
extern void mo_ring_reset(MoRing *ring);

extern void mo_ring_event_fill(MoRingEvent *ev, TimestampTz ts,
							   const char *username);
extern bool mo_ring_event_visible(const MoRingEvent *ev);
extern Datum mo_ring_event_username(const MoRingEvent *ev);

extern int	mo_copy_clipped(char *dst, const char *src, int len, int max);
extern const char *mo_statement_text(const char *s, int loc, int n, int *len);

/* The i-th newest event of a copy, 0 being the newest. */
static inline void *
mo_ring_copy_entry(const MoRingCopy *copy, int i)
{
	uint64		k = (copy->next - 1 - i) % copy->nslots;

	return copy->data + copy->recs[k].off;
}

#endif							/* MO_RING_H */
