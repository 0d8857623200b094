/*-------------------------------------------------------------------------
 *
 * ring.c
 *	  A shared ring of variable-size events, for the logs of recent events
 *	  (slowlog.c, ddl_guard.c): each owner defines its event layout, which
 *	  starts with a MoRingEvent and ends with its strings, packed; the ring
 *	  keeps the newest nslots events, fewer when they are long.  Its data
 *	  area is sized for nslots events of an average size the owner gives,
 *	  so memory follows what the events hold rather than their maximum
 *	  (see ring.h for the layout).
 *
 * Locking: one LWLock per ring.  A writer takes it exclusively between
 * mo_ring_write_begin and mo_ring_write_end, for the copy into one event
 * (the strings are built before, so the size is known); a reader takes it
 * shared to copy the whole ring out, and builds its rows after releasing
 * it.  The events are
 * rare (slow statements, DDL), so one lock is no point of contention.
 * Runs in backends; the postmaster only attaches.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "ring.h"
#include "shmem.h"

static inline MoRingRec *
ring_recs(MoRing *ring)
{
	return (MoRingRec *) ring->data;
}

static inline char *
ring_bytes(MoRing *ring)
{
	return ring->data + MAXALIGN(sizeof(MoRingRec) * ring->nslots);
}

/*
 * Bytes of the data area: nslots events of avg_size, and at least room for
 * one of slot_size (the largest an owner writes).
 */
static Size
ring_nbytes(Size slot_size, int nslots, Size avg_size)
{
	if (nslots <= 0)
		return 0;
	return MAXALIGN(Max(mul_size(avg_size, nslots), slot_size));
}

Size
mo_ring_size(Size slot_size, int nslots, Size avg_size)
{
	return add_size(add_size(offsetof(MoRing, data),
							 MAXALIGN(mul_size(sizeof(MoRingRec), Max(nslots, 0)))),
					ring_nbytes(slot_size, nslots, avg_size));
}

/*
 * mo_ring_attach - the shmem start-up of a ring registered as area: set it
 * up in the first process (found = false), find its lock in every one.
 */
void
mo_ring_attach(MoRing *ring, bool found, const char *area, Size slot_size,
			   int nslots, Size avg_size)
{
	if (!found)
	{
		ring->next = 0;
		ring->first = 0;
		ring->lost = 0;
		ring->nslots = nslots;
		ring->slot_size = MAXALIGN(slot_size);
		ring->nbytes = ring_nbytes(slot_size, nslots, avg_size);
		ring->head = 0;
		ring->reset_at = GetCurrentTimestamp();
	}
	ring->lock = &(mo_shmem_locks(area)[0].lock);
}

/*
 * mo_ring_write_begin - len zeroed bytes for the next event (at most the
 * ring's slot_size), with the lock held exclusively until
 * mo_ring_write_end.  The oldest events whose bytes or record it takes are
 * dropped.  Fill it without raising.
 */
void *
mo_ring_write_begin(MoRing *ring, Size len)
{
	MoRingRec  *recs = ring_recs(ring);
	Size		off;
	bool		wrapped = false;
	char	   *p;

	len = MAXALIGN(Min(len, ring->slot_size));
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	off = ring->head;
	if (off + len > ring->nbytes)
	{
		off = 0;
		wrapped = true;
	}

	/*
	 * Events lie in the area in the order they were written, so the oldest
	 * ones are those from head on (and, once we wrap, all of those).
	 */
	while (ring->lost < ring->next)
	{
		MoRingRec  *r = &recs[ring->lost % ring->nslots];

		if (ring->next - ring->lost < (uint64) ring->nslots &&
			!(wrapped && r->off >= ring->head) &&
			!(r->off < off + len && off < (Size) r->off + r->len))
			break;
		ring->lost++;
	}
	recs[ring->next % ring->nslots].off = (uint32) off;
	recs[ring->next % ring->nslots].len = (uint32) len;
	ring->head = off + len;
	p = ring_bytes(ring) + off;
	memset(p, 0, len);
	return p;
}

/* mo_ring_write_end - publish the slot; returns the event's number. */
uint64
mo_ring_write_end(MoRing *ring)
{
	uint64		event = ++ring->next;

	LWLockRelease(ring->lock);
	return event;
}

/*
 * mo_ring_lock_event - the slot of event number event with the lock held
 * exclusive, to amend it; NULL (lock not held) when the event was reset
 * away or its slot reused since.  No allocation, no interrupt check:
 * callable from emit_log_hook.
 */
void *
mo_ring_lock_event(MoRing *ring, uint64 event)
{
	void	   *p;

	if (event == 0 || ring->nslots <= 0)
		return NULL;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	p = mo_ring_event(ring, event);
	if (p == NULL)
		LWLockRelease(ring->lock);
	return p;
}

/*
 * mo_ring_event - event number event, or NULL when it was reset away or
 * overwritten since.  The caller holds the lock.
 */
void *
mo_ring_event(MoRing *ring, uint64 event)
{
	if (event == 0 || event <= ring->first || event <= ring->lost ||
		event > ring->next)
		return NULL;
	return ring_bytes(ring) + ring_recs(ring)[(event - 1) % ring->nslots].off;
}

void
mo_ring_unlock(MoRing *ring)
{
	LWLockRelease(ring->lock);
}

/* mo_ring_copy - copy the ring into palloc'd memory under a shared lock. */
void
mo_ring_copy(MoRing *ring, MoRingCopy *copy)
{
	copy->nslots = ring->nslots;
	copy->data = palloc(Max(ring->nbytes, 1));
	copy->recs = palloc(sizeof(MoRingRec) * Max(ring->nslots, 1));
	LWLockAcquire(ring->lock, LW_SHARED);
	copy->next = ring->next;
	memcpy(copy->data, ring_bytes(ring), ring->nbytes);
	memcpy(copy->recs, ring_recs(ring), sizeof(MoRingRec) * ring->nslots);
	copy->count = (int) (ring->next - Max(ring->first, ring->lost));
	LWLockRelease(ring->lock);
}

void
mo_ring_reset(MoRing *ring)
{
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	ring->first = ring->next;
	ring->reset_at = GetCurrentTimestamp();
	LWLockRelease(ring->lock);
}

/*
 * mo_ring_event_fill - who caused the event: this backend, its current
 * user, database and application; username is the name to show if the
 * role is dropped later.  No catalog access: also used on error paths.
 */
void
mo_ring_event_fill(MoRingEvent *ev, TimestampTz ts, const char *username)
{
	ev->ts = ts;
	ev->pid = MyProcPid;
	ev->userid = GetUserId();
	strlcpy(ev->username, username ? username : "", NAMEDATALEN);
	strlcpy(ev->datname, MyProcPort && MyProcPort->database_name ?
			MyProcPort->database_name : "", NAMEDATALEN);
	strlcpy(ev->appname, application_name ? application_name : "", NAMEDATALEN);
}

/*
 * mo_ring_event_visible - the privacy rule of the event views: the texts
 * are as they ran, literals included, so other users' events only for
 * superusers and members of pg_read_all_stats.
 */
bool
mo_ring_event_visible(const MoRingEvent *ev)
{
	Oid			me = GetUserId();

	return ev->userid == me || superuser() ||
		has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
}

/* The role that caused the event, by its current name, as a name Datum. */
Datum
mo_ring_event_username(const MoRingEvent *ev)
{
	char	   *name = GetUserNameFromId(ev->userid, true);

	return DirectFunctionCall1(namein, CStringGetDatum(name ? name : ev->username));
}

/* Copy at most max bytes of src, cut at a character boundary; -1 if none. */
int
mo_copy_clipped(char *dst, const char *src, int len, int max)
{
	if (src == NULL || len < 0)
		return -1;
	if (len > max)
		len = pg_mbcliplen(src, len, max);
	memcpy(dst, src, len);
	dst[len] = '\0';
	return len;
}

/*
 * mo_statement_text - one statement's own text out of a query string that
 * may hold several (loc and n as in PlannedStmt; n = 0: to the end),
 * without the surrounding blanks and semicolons.
 */
const char *
mo_statement_text(const char *s, int loc, int n, int *len)
{
	if (s == NULL)
	{
		*len = 0;
		return "";
	}
	if (loc < 0 || loc > (int) strlen(s))
		loc = 0, n = 0;
	s += loc;
	if (n <= 0)
		n = strlen(s);
	while (n > 0 && scanner_isspace(*s))
		s++, n--;
	while (n > 0 && (scanner_isspace(s[n - 1]) || s[n - 1] == ';'))
		n--;
	*len = n;
	return s;
}
