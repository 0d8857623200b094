/*-------------------------------------------------------------------------
 *
 * query_stats.c
 *	  The statistics table: one entry per (userid, dbid, queryid, toplevel)
 *	  with counters, a latency histogram and the normalised text; its
 *	  views, reset, and persistence across a clean restart.
 *
 * Layout (one shared memory area, "query_stats", sized at start):
 *
 *	header		counters of the table itself, the clock hands, free list
 *	index		open-addressing hash index, 2^k >= 2 * max_statements
 *				pg_atomic_uint64 words, 0 = empty, else
 *				(39 bits of the key's hash << 25) | has-text bit << 24
 *				| (slot + 1); linear probing, backward-shift deletion.
 *				The hash bits give the home position (their low k bits)
 *				and a fingerprint, so a probe dereferences an entry only
 *				when its fingerprint matches (false match ~ 2^-(39-k)).
 *	usage		max_statements uint8 usage counts, dense: one cache line
 *				holds 64 entries' counts, so the eviction sweep reads
 *				one or two lines and no entry
 *	entries		max_statements fixed entries of 248 bytes: key, counters,
 *				the head of a sparse histogram (see histogram.h)
 *	chunks		MO_HIST_CHUNKS_PER_ENTRY x max_statements histogram chunks
 *				of 104 bytes (one octave each); chunk i < max_statements
 *				is entry i's own, the others a free list
 *	text links	one int32 per text block: the next block of the same text,
 *				or of the free list; -1 ends either
 *	texts		max_statements x avg_query_text bytes of normalised text in
 *				MO_TEXT_BLOCK-byte blocks; block i < max_statements is
 *				entry i's first, the others a free list
 *
 * So memory follows what entries hold: ~1.2 kB per entry at defaults, not
 * the 3 kB histogram and max_query_text bytes of text that a statement
 * could use at most.  A full text pool first evicts entries that hold long
 * texts (text_make_room); past that, and for the histogram pool, it costs
 * precision, never correctness: a text is cut at a character boundary
 * (texts_truncated), a duration in an octave its entry has no chunk for is
 * left out of the histogram (hist_dropped).
 *
 * Locking protocol:
 *
 *	- The area's LWLock ("moltres_ops query_stats"), held EXCLUSIVE, is
 *	  needed to change any index word (insert, delete, shift, set the
 *	  has-text bit), to give an entry a key or take it away (create, evict,
 *	  reset), to write an entry's text, and for the free list, the clock
 *	  and aging hands, the entry count and the text pool (its free list and
 *	  the links).  It is never held by the hot path.
 *	- Each entry's spinlock `mutex` protects its key, in_use, gen and
 *	  counters, its histogram and the contents of its chunks.  Whoever
 *	  changes the key also holds it.
 *	- `chunk_lock`, a spinlock, protects the free list of chunks.  The hot
 *	  path takes it (inside the entry's spinlock, never the other way
 *	  round) only for an entry's first duration in a new octave; an entry's
 *	  chunks go back to it when the entry is freed, after in_use is cleared.
 *	- Lookups read the index without any lock, one atomic 64-bit word at a
 *	  time.  A hit is only a candidate (a fingerprint match, or a key read
 *	  without the lock): the caller takes the entry's spinlock and
 *	  re-checks the key before touching counters, so an entry evicted or
 *	  reused meanwhile is never updated under the wrong key.  A miss is not
 *	  trusted either (a concurrent backward shift can hide a key for an
 *	  instant): the slow path looks again, comparing keys, under the
 *	  LWLock before creating anything.
 *	- Usage counts (the dense array) have no lock of their own: a backend
 *	  adds a call holding only its entry's spinlock, while evict_one reads
 *	  and halves them and entry_create (or the file load) sets a new
 *	  entry's holding only the LWLock.  Plain byte stores, so a race loses
 *	  at most one update of an estimate: an entry is judged a call more or
 *	  less used, or one halving less aged, than it was; nothing else
 *	  depends on the count.
 *	- An entry's text is written before its index word is published, or,
 *	  for an entry created without text, once under the LWLock followed by
 *	  a write barrier and the atomic text_len; it is never changed again
 *	  until the entry is evicted (which bumps gen, then frees its blocks).
 *	  Readers copy text without a lock, following the block links with
 *	  every link range-checked, and discard the copy if gen changed
 *	  meanwhile.
 *
 * The metrics export (metrics_statements_internal) reads a bounded, stable
 * set of entries without scanning the table: `exported`, a list of at most
 * moltres_ops.metrics_statements slots under the LWLock.  An entry joins
 * once, the first time it is recorded with at least
 * moltres_ops.metrics_min_calls calls while the list has room (the only
 * time the hot path takes the LWLock for an entry that exists), and leaves
 * when it is freed (evicted or reset).  Its `exported` flag changes only
 * with both the LWLock and its spinlock held, so either suffices to read it.
 *
 * So in steady state a statement costs one lock-free probe, one spinlock
 * on its own entry held for a few dozen instructions, and nothing global
 * (its usage byte is written only while below MO_USAGE_MAX, so a hot
 * statement's line of the usage array stays shared, not bounced).
 *
 * Eviction (evict_one) is a sampled least-frequently-used choice with slow
 * aging, in O(1) under the LWLock: no sort, no pause a query could feel.
 *	- Usage counts calls, saturating at MO_USAGE_MAX (255).  A new entry
 *	  starts at 0 (1 after its first call; an entry loaded from the file
 *	  at its calls, capped), so a statement run once is worth less than
 *	  any that ran twice: one-off statements go first.
 *	- A victim is the least used of the MO_EVICT_SCAN (64) entries at the
 *	  clock hand (the first of them on a tie); the hand then moves past
 *	  all 64.  Only the usage array is read: one or two cache lines.
 *	- Aging: every MO_AGE_EVERY (256) evictions the next 64 counts at a
 *	  second hand are halved, so each count halves once per 4 x
 *	  max_statements evictions.  That lets a statement that was hot long
 *	  ago leave, yet is slow enough that frequency, not recency, decides:
 *	  halving at every pass of the clock hand (a classic CLOCK) forgets a
 *	  statement's history between two of its calls and keeps fewer of the
 *	  calls than pg_stat_statements' usage, which decays by 1 % per
 *	  5 % evicted (about x0.82 per max_statements evictions).
 *
 * Processes: every backend records and reads; the postmaster initialises
 * the area, loads the file at start and writes it at clean shutdown (when
 * no backend is left).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "histogram.h"
#include "moltres_ops.h"
#include "normalize.h"
#include "query_stats.h"
#include "shmem.h"

#define MO_STATS_AREA		"query_stats"
#define MO_STATS_FILE		"pg_stat/moltres_ops_query_stats.stat"
#define MO_STATS_FILE_TMP	MO_STATS_FILE ".tmp"
#define MO_FILE_MAGIC		0x4d4f5153	/* "MOQS" */
#define MO_FILE_FORMAT		2	/* 2: sparse histograms, texts of any length */

#define MO_USAGE_MAX		255 /* cap of an entry's usage count (uint8) */
#define MO_EVICT_SCAN		64	/* usage counts an eviction compares */
#define MO_AGE_EVERY		256 /* evictions between two agings of 64 counts */

/* Index words: see the banner. */
#define MO_IX_SLOT_BITS		24
#define MO_IX_SLOT_MASK		((UINT64CONST(1) << MO_IX_SLOT_BITS) - 1)
#define MO_IX_TEXT			(UINT64CONST(1) << MO_IX_SLOT_BITS)
#define MO_IX_HASH_SHIFT	(MO_IX_SLOT_BITS + 1)

StaticAssertDecl(MO_USAGE_MAX <= PG_UINT8_MAX, "usage counts are uint8");

#define MO_HIST_CHUNKS_PER_ENTRY 4	/* histogram chunks in the pool, per entry */
#define MO_TEXT_BLOCK		64	/* bytes of text per block of the text pool */
#define MO_TEXT_EVICT_MAX	8	/* evictions one text may cause, at most */
#define MO_TEXT_SCAN_MAX	16	/* windows of MO_EVICT_SCAN it looks at, at most */

typedef struct MoCounters
{
	int64		calls;			/* executions, failed ones included */
	int64		errors;
	int64		timeouts;
	int64		cancels;
	int64		lock_timeouts;
	int64		deadlocks;
	int64		serialization_failures;
	int64		rows;
	int64		shared_blks_hit;
	int64		shared_blks_read;
	int64		temp_blks_written;
	uint64		wal_bytes;
	int64		slow_calls;
	double		total_ms;
	double		min_ms;
	double		max_ms;
	double		mean_ms;
	double		sum_var_ms;		/* Welford's running sum of squares */
	TimestampTz first_seen;
	TimestampTz last_seen;
} MoCounters;

typedef struct MoEntry
{
	slock_t		mutex;			/* protects all below but text_len */
	bool		in_use;
	bool		exported;		/* in mss->exported */
	uint32		gen;			/* bumped whenever the entry is freed */
	int			encoding;		/* of the text */
	int			next_free;		/* free list link (under the LWLock) */
	pg_atomic_uint32 text_len;	/* 0 = no text yet */
	MoStatsKey	key;
	MoCounters	c;
	MoSparseHist hist;			/* its chunks are in mchunks */
} MoEntry;

typedef struct MoStatsShared
{
	LWLock	   *lock;
	int			max_entries;
	int			text_max;
	uint32		index_mask;
	/* under the LWLock */
	int			nentries;
	int			free_head;
	int			clock_hand;		/* next usage count an eviction looks at */
	int			age_hand;		/* next usage count to halve */
	uint32		age_tick;		/* evictions, modulo MO_AGE_EVERY */
	TimestampTz stats_reset;
	int			nexported;		/* read without the lock as a hint */
	int			exported[MO_METRICS_STATEMENTS_MAX];	/* slots, oldest first */
	/* the text pool, under the LWLock */
	int32		text_nblocks;
	int32		text_free_head;
	int32		text_nfree;
	/* the histogram chunk pool, under chunk_lock */
	slock_t		chunk_lock;
	int32		nchunks;
	int32		chunk_free_head;
	/* atomics */
	pg_atomic_uint64 evictions;
	pg_atomic_uint64 dropped;
	pg_atomic_uint64 hist_dropped;
	pg_atomic_uint64 texts_truncated;
} MoStatsShared;

/*
 * Layout of the persistence file: the header, then each entry as a
 * MoFileEntry, its npairs non-empty histogram buckets as MoFilePair in
 * ascending bucket order, and its text_len bytes of text; then the CRC.
 */
typedef struct MoFileHeader
{
	uint32		magic;
	uint32		format;
	uint32		pg_major;
	uint32		nbuckets;
	uint32		entry_size;
	int32		nentries;
	TimestampTz stats_reset;
	uint64		evictions;
	uint64		dropped;
} MoFileHeader;

typedef struct MoFileEntry
{
	MoStatsKey	key;
	MoCounters	c;
	int32		encoding;
	int32		text_len;
	uint32		hist_shift;
	int32		npairs;
} MoFileEntry;

typedef struct MoFilePair
{
	uint32		bucket;			/* 0 .. MO_HIST_FINE_NBUCKETS - 1 */
	uint32		count;
} MoFilePair;

/* This process's view of the area. */
static MoStatsShared *mss = NULL;
static pg_atomic_uint64 *mindex = NULL;
static uint8 *musage = NULL;
static MoEntry *mentries = NULL;
static MoHistChunk *mchunks = NULL;
static char *mtexts = NULL;
static int32 *mtext_next = NULL;

static void mo_stats_shmem_shutdown(int code, Datum arg);
static void text_make_room(int keep, int32 need);
static void mo_stats_load_file(void);

/* ---------- sizing and start-up ---------- */

static uint32
index_size(int max_entries)
{
	uint32		n = 1;

	while (n < (uint32) max_entries * 2)
		n <<= 1;
	return n;
}

/*
 * Blocks of the text pool: max_statements x avg_query_text bytes, and at
 * least one block per entry (an entry's first block is its own).
 */
static int32
text_nblocks(int max_entries)
{
	Size		n = mul_size(max_entries, mo_avg_query_text) / MO_TEXT_BLOCK;

	return (int32) Max(n, (Size) max_entries);
}

static Size
mo_stats_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(MoStatsShared));
	int32		nblocks = text_nblocks(mo_max_statements);

	size = add_size(size, MAXALIGN(mul_size(index_size(mo_max_statements),
											sizeof(pg_atomic_uint64))));
	size = add_size(size, MAXALIGN(mo_max_statements));
	size = add_size(size, MAXALIGN(mul_size(mo_max_statements, sizeof(MoEntry))));
	size = add_size(size, MAXALIGN(mul_size(mul_size(mo_max_statements,
													 MO_HIST_CHUNKS_PER_ENTRY),
											sizeof(MoHistChunk))));
	size = add_size(size, MAXALIGN(mul_size(nblocks, sizeof(int32))));
	size = add_size(size, mul_size(nblocks, MO_TEXT_BLOCK));
	return size;
}

static void
mo_stats_shmem_startup(void *area, bool found)
{
	char	   *p = area;
	uint32		nindex = index_size(mo_max_statements);
	int32		nchunks = mo_max_statements * MO_HIST_CHUNKS_PER_ENTRY;
	int32		nblocks = text_nblocks(mo_max_statements);

	mss = (MoStatsShared *) p;
	p += MAXALIGN(sizeof(MoStatsShared));
	mindex = (pg_atomic_uint64 *) p;
	p += MAXALIGN(sizeof(pg_atomic_uint64) * nindex);
	musage = (uint8 *) p;
	p += MAXALIGN(mo_max_statements);
	mentries = (MoEntry *) p;
	p += MAXALIGN(sizeof(MoEntry) * mo_max_statements);
	mchunks = (MoHistChunk *) p;
	p += MAXALIGN(sizeof(MoHistChunk) * nchunks);
	mtext_next = (int32 *) p;
	p += MAXALIGN(sizeof(int32) * nblocks);
	mtexts = p;

	if (found)
		return;

	memset(mss, 0, sizeof(MoStatsShared));
	mss->lock = &(mo_shmem_locks(MO_STATS_AREA))[0].lock;
	mss->max_entries = mo_max_statements;
	mss->text_max = mo_max_query_text;
	mss->index_mask = nindex - 1;
	mss->stats_reset = GetCurrentTimestamp();
	pg_atomic_init_u64(&mss->evictions, 0);
	pg_atomic_init_u64(&mss->dropped, 0);
	pg_atomic_init_u64(&mss->hist_dropped, 0);
	pg_atomic_init_u64(&mss->texts_truncated, 0);
	/* slot + 1 must fit an index word (the setting's maximum does) */
	Assert(mss->max_entries < (int) MO_IX_SLOT_MASK);
	for (uint32 i = 0; i < nindex; i++)
		pg_atomic_init_u64(&mindex[i], 0);
	memset(musage, 0, mss->max_entries);
	for (int i = 0; i < mss->max_entries; i++)
	{
		MoEntry    *e = &mentries[i];

		memset(e, 0, sizeof(MoEntry));
		SpinLockInit(&e->mutex);
		pg_atomic_init_u32(&e->text_len, 0);
		mo_shist_init(&e->hist);
		e->next_free = (i + 1 < mss->max_entries) ? i + 1 : -1;
	}
	mss->free_head = 0;
	mss->nexported = 0;

	/*
	 * Chunk i and text block i (i < max_entries) belong to entry i; the
	 * others start on the free lists.
	 */
	SpinLockInit(&mss->chunk_lock);
	mss->nchunks = nchunks;
	for (int32 i = 0; i < nchunks; i++)
		mchunks[i].next = (i >= mss->max_entries && i + 1 < nchunks) ? i + 1 : -1;
	mss->chunk_free_head = nchunks > mss->max_entries ? mss->max_entries : -1;
	mss->text_nblocks = nblocks;
	for (int32 i = 0; i < nblocks; i++)
		mtext_next[i] = (i >= mss->max_entries && i + 1 < nblocks) ? i + 1 : -1;
	mss->text_free_head = nblocks > mss->max_entries ? mss->max_entries : -1;
	mss->text_nfree = nblocks - mss->max_entries;

	/* The postmaster (or a single-user backend) owns the file. */
	if (!IsUnderPostmaster)
	{
		mo_stats_load_file();
		on_shmem_exit(mo_stats_shmem_shutdown, (Datum) 0);
	}
}

/*
 * mo_query_stats_init - register the area; called from _PG_init while the
 * library is preloaded.
 */
void
mo_query_stats_init(void)
{
	mo_shmem_register(MO_STATS_AREA, mo_stats_shmem_size,
					  mo_stats_shmem_startup, 1);
}

bool
mo_query_stats_ready(void)
{
	return mss != NULL;
}

/* ---------- the index ---------- */

static inline uint64
key_hash(const MoStatsKey *key)
{
	uint64		h;

	/* queryid is already a good hash; fold in the rest and finalise */
	h = key->queryid ^ ((((uint64) key->userid << 32) | key->dbid) *
						UINT64CONST(0x9e3779b97f4a7c15));
	h ^= (uint64) key->toplevel;
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}

static inline bool
key_equal(const MoStatsKey *a, const MoStatsKey *b)
{
	return a->queryid == b->queryid && a->userid == b->userid &&
		a->dbid == b->dbid && a->toplevel == b->toplevel;
}

/* The index word for slot, whose key hashes to h. */
static inline uint64
index_word(uint64 h, int slot, bool has_text)
{
	return (h << MO_IX_HASH_SHIFT) | (has_text ? MO_IX_TEXT : 0) |
		(uint64) (slot + 1);
}

/* Whether index word v (not empty) holds hash h's fingerprint. */
static inline bool
index_word_matches(uint64 v, uint64 h)
{
	return ((v ^ (h << MO_IX_HASH_SHIFT)) >> MO_IX_HASH_SHIFT) == 0;
}

static inline uint32
index_word_home(uint64 v)
{
	return (uint32) (v >> MO_IX_HASH_SHIFT) & mss->index_mask;
}

static inline int
index_word_slot(uint64 v)
{
	return (int) (v & MO_IX_SLOT_MASK) - 1;
}

/*
 * Lock-free probe: the index word of the first slot whose fingerprint
 * matches h and, with verify, whose key (read without a lock) equals key;
 * 0 if none.  Either way unverified (see the banner): callers re-check
 * under the entry's spinlock.  Without verify no entry is touched.
 */
static inline uint64
index_probe_word(const MoStatsKey *key, uint64 h, bool verify)
{
	uint32		mask = mss->index_mask;
	uint32		pos = (uint32) h & mask;

	for (uint32 n = 0; n <= mask; n++)
	{
		uint64		v = pg_atomic_read_u64(&mindex[pos]);

		if (v == 0)
			return 0;
		if (index_word_matches(v, h) &&
			(!verify || key_equal(&mentries[index_word_slot(v)].key, key)))
			return v;
		pos = (pos + 1) & mask;
	}
	return 0;
}

/* The slot of key (keys compared), or -1.  See index_probe_word. */
static inline int
index_probe(const MoStatsKey *key, uint64 h)
{
	return index_word_slot(index_probe_word(key, h, true));
}

/* Index position holding slot, or -1.  LWLock held. */
static int
index_find_slot(int slot)
{
	uint32		mask = mss->index_mask;
	uint32		pos = (uint32) key_hash(&mentries[slot].key) & mask;

	for (uint32 n = 0; n <= mask; n++)
	{
		uint64		v = pg_atomic_read_u64(&mindex[pos]);

		if (v == 0)
			return -1;
		if (index_word_slot(v) == slot)
			return (int) pos;
		pos = (pos + 1) & mask;
	}
	return -1;
}

/* Publish slot in the index.  LWLock held exclusive; entry initialised. */
static void
index_insert_slot(int slot, bool has_text)
{
	uint32		mask = mss->index_mask;
	uint64		h = key_hash(&mentries[slot].key);
	uint32		pos = (uint32) h & mask;

	while (pg_atomic_read_u64(&mindex[pos]) != 0)
		pos = (pos + 1) & mask;
	pg_write_barrier();
	pg_atomic_write_u64(&mindex[pos], index_word(h, slot, has_text));
}

/* Set the has-text bit of slot's index word.  LWLock held exclusive. */
static void
index_set_text(int slot)
{
	int			pos = index_find_slot(slot);

	if (pos >= 0)
		pg_atomic_write_u64(&mindex[pos],
							pg_atomic_read_u64(&mindex[pos]) | MO_IX_TEXT);
}

/*
 * Remove slot from the index by backward shift, so that no tombstones
 * accumulate.  LWLock held exclusive; slot's key still set.
 */
static void
index_delete(int slot)
{
	uint32		mask = mss->index_mask;
	int			found = index_find_slot(slot);
	uint32		i;
	uint32		j;

	if (found < 0)
		return;
	i = (uint32) found;
	j = i;
	for (;;)
	{
		uint64		v;
		uint32		k;

		j = (j + 1) & mask;
		v = pg_atomic_read_u64(&mindex[j]);
		if (v == 0)
			break;
		k = index_word_home(v);
		/* leave v where it is if its home lies cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		pg_atomic_write_u64(&mindex[i], v);
		i = j;
	}
	pg_atomic_write_u64(&mindex[i], 0);
}

/* ---------- the histogram chunk pool and the text pool ---------- */

/*
 * A chunk for the histogram of entry `arg` (its slot): the entry's own
 * chunk for its first octave, then one from the pool, or -1 when the pool
 * is empty.  Called with the entry's spinlock held (from the hot path), so
 * chunk_lock nests inside it, never the other way round.
 */
static int32
chunk_alloc(const MoSparseHist *h, void *arg)
{
	int32		c;

	if (h->nchunks == 0)
		return (int32) (intptr_t) arg;
	SpinLockAcquire(&mss->chunk_lock);
	c = mss->chunk_free_head;
	if (c >= 0)
		mss->chunk_free_head = mchunks[c].next;
	SpinLockRelease(&mss->chunk_lock);
	return c;
}

/*
 * Give the pool back the chunks of entry slot's histogram, and empty it.
 * The entry is out of service (in_use false), so nothing adds to it.
 */
static void
hist_free(int slot)
{
	MoSparseHist *h = &mentries[slot].hist;
	int32		first = -1;
	int32		tail = -1;
	int32		c = h->head;

	for (int n = 0; c >= 0 && n <= MO_HIST_OCTAVES; n++)
	{
		int32		next = mchunks[c].next;

		if (c != slot)
		{
			mchunks[c].next = first;
			if (first < 0)
				tail = c;
			first = c;
		}
		c = next;
	}
	if (first >= 0)
	{
		SpinLockAcquire(&mss->chunk_lock);
		mchunks[tail].next = mss->chunk_free_head;
		mss->chunk_free_head = first;
		SpinLockRelease(&mss->chunk_lock);
	}
	mo_shist_init(h);
}

/*
 * Store text (len bytes, in encoding) as entry slot's text: its own block,
 * then blocks from the pool, chained by mtext_next.  When the pool is short
 * of blocks, entries holding long texts are evicted to make room
 * (text_make_room); if it still cannot hold the text whole, the text is cut
 * at a character boundary (and counted).  Returns the length stored.
 * LWLock held exclusive; the entry has no text.
 */
static int
text_store(int slot, const char *text, int len, int encoding)
{
	int32		blk = slot;

	if ((len - 1) / MO_TEXT_BLOCK > mss->text_nfree)
		text_make_room(slot, (len - 1) / MO_TEXT_BLOCK);
	if ((len - 1) / MO_TEXT_BLOCK > mss->text_nfree)
	{
		len = pg_encoding_mbcliplen(encoding, text, len,
									(mss->text_nfree + 1) * MO_TEXT_BLOCK);
		pg_atomic_fetch_add_u64(&mss->texts_truncated, 1);
	}
	for (int off = 0; off < len; off += MO_TEXT_BLOCK)
	{
		if (off > 0)
		{
			int32		nb = mss->text_free_head;

			mss->text_free_head = mtext_next[nb];
			mss->text_nfree--;
			mtext_next[blk] = nb;
			blk = nb;
		}
		memcpy(mtexts + (Size) blk * MO_TEXT_BLOCK, text + off,
			   Min(MO_TEXT_BLOCK, len - off));
	}
	mtext_next[blk] = -1;
	return len;
}

/* Give the pool back the blocks of entry slot's text.  LWLock exclusive. */
static void
text_free(int slot)
{
	int32		b = mtext_next[slot];

	mtext_next[slot] = -1;
	while (b >= 0)
	{
		int32		next = mtext_next[b];

		mtext_next[b] = mss->text_free_head;
		mss->text_free_head = b;
		mss->text_nfree++;
		b = next;
	}
}

/*
 * Copy len bytes of entry slot's text into dst, following its chain.
 * Without a lock: the chain may be freed and reused meanwhile, so every
 * link is range-checked (false if one is not) and the caller discards the
 * copy unless the entry's gen is unchanged afterwards.
 */
static bool
text_copy(int slot, uint32 len, char *dst)
{
	int32		blk = slot;
	uint32		off = 0;

	for (;;)
	{
		uint32		n = Min(MO_TEXT_BLOCK, len - off);

		memcpy(dst + off, mtexts + (Size) blk * MO_TEXT_BLOCK, n);
		off += n;
		if (off >= len)
			return true;
		blk = mtext_next[blk];
		if (blk < 0 || blk >= mss->text_nblocks)
			return false;
	}
}

/* ---------- entries ---------- */

/* Take an entry out of service.  LWLock held exclusive. */
static void
entry_free(int slot)
{
	MoEntry    *e = &mentries[slot];

	index_delete(slot);
	SpinLockAcquire(&e->mutex);
	e->in_use = false;
	e->gen++;
	SpinLockRelease(&e->mutex);
	hist_free(slot);
	text_free(slot);
	if (e->exported)
	{
		for (int i = 0; i < mss->nexported; i++)
			if (mss->exported[i] == slot)
			{
				memmove(&mss->exported[i], &mss->exported[i + 1],
						sizeof(int) * (mss->nexported - i - 1));
				mss->nexported--;
				break;
			}
		e->exported = false;
	}
	pg_atomic_write_u32(&e->text_len, 0);
	e->next_free = mss->free_head;
	mss->free_head = slot;
	mss->nentries--;
}

/*
 * Pick a victim and free it: the least used of the MO_EVICT_SCAN usage
 * counts at the clock hand (the first on a tie), and age the counts every
 * MO_AGE_EVERY evictions (see the banner).  Reads the dense usage array
 * only: no entry but the victim is touched, no spinlock is taken but the
 * victim's.  LWLock held exclusive; table full, so every slot is in use.
 */
static int
evict_one(void)
{
	int			max = mss->max_entries;
	int			n = Min(MO_EVICT_SCAN, max);
	int			slot = mss->clock_hand;
	int			best = slot;
	int			best_usage = PG_UINT8_MAX + 1;

	for (int i = 0; i < n; i++)
	{
		int			u = musage[slot];

		if (u < best_usage)
		{
			best = slot;
			best_usage = u;
			if (u == 0)
				break;
		}
		if (++slot == max)
			slot = 0;
	}
	mss->clock_hand = (mss->clock_hand + n) % max;

	if (++mss->age_tick >= MO_AGE_EVERY)
	{
		mss->age_tick = 0;
		slot = mss->age_hand;
		for (int i = 0; i < n; i++)
		{
			musage[slot] >>= 1;
			if (++slot == max)
				slot = 0;
		}
		mss->age_hand = slot;
	}

	entry_free(best);
	pg_atomic_fetch_add_u64(&mss->evictions, 1);
	return best;
}

/*
 * Free at least need blocks of the text pool, if entries hold them: evict,
 * at most MO_TEXT_EVICT_MAX times, the least used of the MO_EVICT_SCAN
 * entries at the clock hand that hold more than their own block (never
 * keep, the entry the room is for), moving the hand on past windows that
 * hold none, MO_TEXT_SCAN_MAX windows at most.  Evicting an entry whose
 * text fits its own block would free nothing, so those are passed over;
 * with none in reach, the text is cut instead.  Rare (the pool is sized for
 * the average text), so it may read the candidates' entries: a bounded
 * 1,024 of them at most.  LWLock held exclusive.
 */
static void
text_make_room(int keep, int32 need)
{
	int			max = mss->max_entries;
	int			n = Min(MO_EVICT_SCAN, max);
	int			evicted = 0;

	for (int w = 0; w < MO_TEXT_SCAN_MAX && evicted < MO_TEXT_EVICT_MAX &&
		 mss->text_nfree < need; w++)
	{
		int			slot = mss->clock_hand;
		int			best = -1;
		int			best_usage = PG_UINT8_MAX + 1;

		for (int i = 0; i < n; i++)
		{
			if (slot != keep && mentries[slot].in_use &&
				pg_atomic_read_u32(&mentries[slot].text_len) > MO_TEXT_BLOCK &&
				musage[slot] < best_usage)
			{
				best = slot;
				best_usage = musage[slot];
			}
			if (++slot == max)
				slot = 0;
		}
		mss->clock_hand = slot;
		if (best < 0)
			continue;
		entry_free(best);
		pg_atomic_fetch_add_u64(&mss->evictions, 1);
		evicted++;
	}
}

/*
 * Create the entry for key (LWLock held exclusive, key known absent), with
 * text if given.  Returns the slot.
 */
static int
entry_create(const MoStatsKey *key, const char *text, int text_len)
{
	int			slot;
	MoEntry    *e;

	if (mss->free_head < 0 && evict_one() < 0)
		return -1;
	slot = mss->free_head;
	e = &mentries[slot];
	mss->free_head = e->next_free;
	mss->nentries++;

	if (text_len > 0)
		text_len = text_store(slot, text, text_len, GetDatabaseEncoding());
	pg_atomic_write_u32(&e->text_len, (uint32) text_len);

	SpinLockAcquire(&e->mutex);
	e->key = *key;
	memset(&e->c, 0, sizeof(MoCounters));
	mo_shist_init(&e->hist);
	e->exported = false;
	e->encoding = GetDatabaseEncoding();
	/* the clock of last_seen, so that first_seen <= last_seen always */
	e->c.first_seen = GetCurrentStatementStartTimestamp();
	e->c.last_seen = e->c.first_seen;
	e->in_use = true;
	SpinLockRelease(&e->mutex);
	musage[slot] = 0;			/* one-off statements go first */

	index_insert_slot(slot, text_len > 0);
	return slot;
}

/* Give an entry without text its text.  LWLock held exclusive. */
static void
entry_set_text(int slot, const char *text, int text_len)
{
	MoEntry    *e = &mentries[slot];

	if (text_len <= 0 || pg_atomic_read_u32(&e->text_len) != 0)
		return;
	text_len = text_store(slot, text, text_len, e->encoding);
	pg_write_barrier();
	pg_atomic_write_u32(&e->text_len, (uint32) text_len);
	index_set_text(slot);
}

/*
 * mo_stats_has_text - whether key has an entry with text.  Lock-free and
 * unverified: reads index words only (fingerprint and has-text bit), no
 * entry.  A stale yes, or a false one from a fingerprint shared with
 * another key, costs at most a text, which mo_stats_record then supplies
 * from the statement's source text.
 */
bool
mo_stats_has_text(const MoStatsKey *key)
{
	return (index_probe_word(key, key_hash(key), false) & MO_IX_TEXT) != 0;
}

/*
 * mo_stats_create - make sure key has an entry with normalised text.
 * Called by the post-parse-analyze hook after mo_stats_has_text() said no;
 * normalises outside the lock.
 */
void
mo_stats_create(const MoStatsKey *key, const char *query, int location,
				int len, const JumbleState *jstate)
{
	char	   *text;
	int			text_len;
	int			slot;

	text = mo_normalize_query(query, location, len, jstate, false,
							  mss->text_max, &text_len);

	LWLockAcquire(mss->lock, LW_EXCLUSIVE);
	slot = index_probe(key, key_hash(key));
	if (slot >= 0)
		entry_set_text(slot, text, text_len);
	else if (entry_create(key, text, text_len) < 0)
		pg_atomic_fetch_add_u64(&mss->dropped, 1);
	LWLockRelease(mss->lock);
	pfree(text);
}

/* Lock e if it still holds key; true if so (spinlock then held). */
static inline bool
entry_lock_if(MoEntry *e, const MoStatsKey *key)
{
	SpinLockAcquire(&e->mutex);
	if (likely(e->in_use && key_equal(&e->key, key)))
		return true;
	SpinLockRelease(&e->mutex);
	return false;
}

/* Count one failed execution of class err.  Entry spinlock held. */
static inline void
counters_add_error(MoCounters *c, MoErrClass err)
{
	c->errors++;
	switch (err)
	{
		case MO_ERR_TIMEOUT:
			c->timeouts++;
			break;
		case MO_ERR_CANCEL:
			c->cancels++;
			break;
		case MO_ERR_LOCK_TIMEOUT:
			c->lock_timeouts++;
			break;
		case MO_ERR_DEADLOCK:
			c->deadlocks++;
			break;
		case MO_ERR_SERIALIZATION:
			c->serialization_failures++;
			break;
		default:
			break;
	}
}

/*
 * Normalise and store the text of an entry that has none yet (its first
 * execution failed, so the error path could not allocate it).
 */
static void
entry_supply_text(const MoStatsKey *key, const char *query, int location,
				  int len)
{
	char	   *text;
	int			text_len;
	int			slot;

	text = mo_normalize_query(query, location, len, NULL, true,
							  mss->text_max, &text_len);
	LWLockAcquire(mss->lock, LW_EXCLUSIVE);
	slot = index_probe(key, key_hash(key));
	if (slot >= 0)
		entry_set_text(slot, text, text_len);
	LWLockRelease(mss->lock);
	pfree(text);
}

/*
 * Put slot, which holds key, on the list of exported entries if it still
 * holds key and the list has room.  Once per entry: see the banner.
 */
static void
export_join(int slot, const MoStatsKey *key)
{
	MoEntry    *e = &mentries[slot];

	LWLockAcquire(mss->lock, LW_EXCLUSIVE);
	if (mss->nexported < Min(mo_metrics_statements, MO_METRICS_STATEMENTS_MAX) &&
		entry_lock_if(e, key))
	{
		if (!e->exported)
		{
			e->exported = true;
			mss->exported[mss->nexported++] = slot;
		}
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(mss->lock);
}

/*
 * mo_stats_record - add one execution to key's entry, creating the entry if
 * needed.  in_error: we are in a PG_CATCH block or in emit_log_hook,
 * possibly out of memory, so allocate nothing (an entry created now gets
 * its text at the statement's next successful run).  query/location/len
 * locate the text for a new entry.  A failed execution adds its time but
 * no rows: what it did was rolled back.
 */
void
mo_stats_record(const MoStatsKey *key, const MoExecResult *res,
				const char *query, int location, int len, bool in_error)
{
	uint64		h = key_hash(key);
	int			slot = index_word_slot(index_probe_word(key, h, false));
	MoEntry    *e;
	MoCounters *c;
	double		ms;
	bool		join;
	bool		hist_kept;
	TimestampTz now_ts = GetCurrentStatementStartTimestamp();

	/*
	 * The first fingerprint match is the entry in all but one case in
	 * millions; entry_lock_if compares the key.  If it is another key's,
	 * look again comparing keys before taking the slow path.
	 */
	if (unlikely((slot < 0 || !entry_lock_if(&mentries[slot], key)) &&
				 ((slot = index_probe(key, h)) < 0 ||
				  !entry_lock_if(&mentries[slot], key))))
	{
		char	   *text = NULL;
		int			text_len = 0;

		/* slow path: a key not seen yet, or not seen since its eviction */
		if (!in_error && query != NULL)
			text = mo_normalize_query(query, location, len, NULL, true,
									  mss->text_max, &text_len);
		LWLockAcquire(mss->lock, LW_EXCLUSIVE);
		slot = index_probe(key, h);
		if (slot < 0)
			slot = entry_create(key, text, text_len);
		else if (text)
			entry_set_text(slot, text, text_len);
		LWLockRelease(mss->lock);
		if (text)
			pfree(text);
		if (slot < 0 || !entry_lock_if(&mentries[slot], key))
		{
			pg_atomic_fetch_add_u64(&mss->dropped, 1);
			return;
		}
	}

	/* entry spinlock held: a few dozen instructions, no calls out */
	e = &mentries[slot];
	c = &e->c;
	ms = (double) res->duration_ns / 1000000.0;
	c->calls++;
	if (unlikely(res->err != MO_OK))
		counters_add_error(c, res->err);
	else
		c->rows += res->rows;
	c->total_ms += ms;
	if (c->calls == 1)
	{
		c->min_ms = c->max_ms = c->mean_ms = ms;
		c->sum_var_ms = 0.0;
	}
	else
	{
		double		old_mean = c->mean_ms;

		if (ms < c->min_ms)
			c->min_ms = ms;
		if (ms > c->max_ms)
			c->max_ms = ms;
		c->mean_ms += (ms - old_mean) / c->calls;
		c->sum_var_ms += (ms - old_mean) * (ms - c->mean_ms);
	}
	c->shared_blks_hit += res->shared_blks_hit;
	c->shared_blks_read += res->shared_blks_read;
	c->temp_blks_written += res->temp_blks_written;
	c->wal_bytes += res->wal_bytes;
	if (mo_slow_query_ms >= 0 && ms >= mo_slow_query_ms)
		c->slow_calls++;
	c->last_seen = now_ts;
	if (musage[slot] < MO_USAGE_MAX)
		musage[slot]++;
	hist_kept = mo_shist_add(&e->hist, mchunks, (uint64) res->duration_ns,
							 chunk_alloc, (void *) (intptr_t) slot);
	join = unlikely(!e->exported && c->calls >= mo_metrics_min_calls &&
					mss->nexported < mo_metrics_statements);
	SpinLockRelease(&e->mutex);

	if (unlikely(!hist_kept))
		pg_atomic_fetch_add_u64(&mss->hist_dropped, 1);

	if (unlikely(!in_error && query != NULL &&
				 pg_atomic_read_u32(&e->text_len) == 0))
		entry_supply_text(key, query, location, len);
	if (join)
		export_join(slot, key);
}

/*
 * mo_stats_reclassify - an execution that mo_stats_record counted as a
 * success (res) failed after all, with an error of class err raised after
 * the executor had finished (while the result was sent, or at commit):
 * count the error and take its rows back.  Called from emit_log_hook:
 * takes the entry's spinlock only, allocates nothing.
 */
void
mo_stats_reclassify(const MoStatsKey *key, const MoExecResult *res,
					MoErrClass err)
{
	int			slot = index_probe(key, key_hash(key));
	MoEntry    *e;

	if (slot < 0 || !entry_lock_if(&mentries[slot], key))
		return;
	e = &mentries[slot];
	counters_add_error(&e->c, err);
	e->c.rows -= Min((int64) res->rows, e->c.rows);
	SpinLockRelease(&e->mutex);
}

/* ---------- reading ---------- */

/*
 * A consistent copy of one entry, taken under its spinlock.  Of the
 * histogram only the octaves in use are copied (see histogram.h).
 */
typedef struct MoEntrySnap
{
	MoStatsKey	key;
	MoCounters	c;
	uint32		gen;
	int			encoding;
	MoHistSnap	hist;
} MoEntrySnap;

static bool
entry_snapshot(int slot, MoEntrySnap *snap, bool with_hist)
{
	MoEntry    *e = &mentries[slot];

	/*
	 * A free slot is skipped without its spinlock: an entry that is being
	 * created meanwhile may or may not be seen either way.
	 */
	if (!e->in_use)
		return false;
	SpinLockAcquire(&e->mutex);
	if (!e->in_use)
	{
		SpinLockRelease(&e->mutex);
		return false;
	}
	snap->key = e->key;
	snap->c = e->c;
	snap->gen = e->gen;
	snap->encoding = e->encoding;
	if (with_hist)
		mo_shist_snapshot(&e->hist, mchunks, &snap->hist);
	SpinLockRelease(&e->mutex);
	return true;
}

/*
 * Slot's text as a text datum in the server encoding, built in place (no
 * C string in between); false if it has none or was evicted meanwhile.
 */
static bool
entry_text_datum(int slot, uint32 gen, int encoding, Datum *result)
{
	MoEntry    *e = &mentries[slot];
	uint32		len = pg_atomic_read_u32(&e->text_len);
	text	   *t;
	bool		same;

	if (len == 0 || len >= (uint32) mss->text_max)
		return false;
	pg_read_barrier();
	t = (text *) palloc(VARHDRSZ + len + 1);
	same = text_copy(slot, len, VARDATA(t));
	pg_read_barrier();
	SpinLockAcquire(&e->mutex);
	same = same && e->in_use && e->gen == gen;
	SpinLockRelease(&e->mutex);
	if (!same)
	{
		pfree(t);
		return false;
	}
	SET_VARSIZE(t, VARHDRSZ + len);
	if (encoding != GetDatabaseEncoding())
	{
		char	   *buf = VARDATA(t);
		char	   *conv;

		buf[len] = '\0';
		conv = pg_any_to_server(buf, len, encoding);
		if (conv != buf)
		{
			*result = CStringGetTextDatum(conv);
			pfree(t);
			return true;
		}
	}
	*result = PointerGetDatum(t);
	return true;
}

/* Whether the caller may see other users' texts and query ids. */
static bool
reader_sees_all(void)
{
	return superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

/*
 * A uint64 as numeric, built directly (no detour through text): as an
 * int64 when it fits, else as INT64_MAX plus the rest.
 */
static Datum
uint64_numeric(uint64 v)
{
	static Datum zero = (Datum) 0;

	/* most statements write no WAL: one zero, made once per process */
	if (v == 0)
	{
		if (zero == (Datum) 0)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			zero = NumericGetDatum(int64_to_numeric(0));
			MemoryContextSwitchTo(old);
		}
		return zero;
	}
	if (v <= (uint64) PG_INT64_MAX)
		return NumericGetDatum(int64_to_numeric((int64) v));
	return DirectFunctionCall2(numeric_add,
							   NumericGetDatum(int64_to_numeric(PG_INT64_MAX)),
							   NumericGetDatum(int64_to_numeric((int64) (v - PG_INT64_MAX))));
}

#define QS_COLS 31

PG_FUNCTION_INFO_V1(moltres_ops_query_stats);

/*
 * moltres_ops_query_stats - one row per entry, for the view query_stats.
 * Each entry is copied under its own spinlock; no table-wide lock is held,
 * so reading never blocks a statement that creates an entry.
 */
Datum
moltres_ops_query_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		showtext = PG_ARGISNULL(0) ? true : PG_GETARG_BOOL(0);
	bool		sees_all;
	Oid			me = GetUserId();
	MoEntrySnap *snap;
	static const double fractions[] = {0.5, 0.9, 0.95, 0.99, 0.999};

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	sees_all = reader_sees_all();
	snap = palloc(sizeof(MoEntrySnap));

	for (int slot = 0; slot < mss->max_entries; slot++)
	{
		Datum		values[QS_COLS];
		bool		nulls[QS_COLS];
		MoCounters *c = &snap->c;
		bool		mine;
		double		pct[5];
		int			i = 0;

		if (!entry_snapshot(slot, snap, true))
			continue;
		if (c->calls == 0)
			continue;			/* parsed but never executed */
		mine = sees_all || snap->key.userid == me;
		memset(nulls, 0, sizeof(nulls));

		values[i++] = ObjectIdGetDatum(snap->key.userid);
		values[i++] = ObjectIdGetDatum(snap->key.dbid);
		if (mine)
			values[i++] = Int64GetDatum((int64) snap->key.queryid);
		else
			nulls[i++] = true;
		values[i++] = BoolGetDatum(snap->key.toplevel);
		if (!showtext)
			nulls[i++] = true;
		else if (!mine)
			values[i++] = CStringGetTextDatum("<insufficient privilege>");
		else if (entry_text_datum(slot, snap->gen, snap->encoding, &values[i]))
			i++;
		else
			nulls[i++] = true;
		values[i++] = Int64GetDatum(c->calls);
		values[i++] = Int64GetDatum(c->errors);
		values[i++] = Int64GetDatum(c->timeouts);
		values[i++] = Int64GetDatum(c->cancels);
		values[i++] = Int64GetDatum(c->lock_timeouts);
		values[i++] = Int64GetDatum(c->deadlocks);
		values[i++] = Int64GetDatum(c->serialization_failures);
		values[i++] = Float8GetDatum(c->total_ms);
		values[i++] = Float8GetDatum(c->min_ms);
		values[i++] = Float8GetDatum(c->max_ms);
		values[i++] = Float8GetDatum(c->mean_ms);
		values[i++] = Float8GetDatum(c->calls > 1 ? sqrt(c->sum_var_ms / c->calls) : 0.0);
		mo_hist_snap_percentiles(&snap->hist, fractions, 5,
								 c->min_ms, c->max_ms, pct);
		for (int k = 0; k < 5; k++)
			values[i++] = Float8GetDatum(pct[k]);
		values[i++] = Int64GetDatum(c->rows);
		values[i++] = Int64GetDatum(c->shared_blks_hit);
		values[i++] = Int64GetDatum(c->shared_blks_read);
		values[i++] = Int64GetDatum(c->temp_blks_written);
		values[i++] = uint64_numeric(c->wal_bytes);
		values[i++] = Int64GetDatum(c->slow_calls);
		values[i++] = TimestampTzGetDatum(c->first_seen);
		values[i++] = TimestampTzGetDatum(c->last_seen);
		Assert(i == QS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_query_histogram);

/*
 * moltres_ops_query_histogram - cumulative bucket counts per entry, one row
 * per non-empty bucket (its upper bound in ms) plus the final +Infinity,
 * as Prometheus histograms expect.  Others' query ids are hidden, as in
 * query_stats.
 */
Datum
moltres_ops_query_histogram(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		sees_all;
	Oid			me = GetUserId();
	MoEntrySnap *snap;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	sees_all = reader_sees_all();
	snap = palloc(sizeof(MoEntrySnap));

	for (int slot = 0; slot < mss->max_entries; slot++)
	{
		int64		cum = 0;
		bool		mine;
		int			nb;

		if (!entry_snapshot(slot, snap, true) || snap->c.calls == 0)
			continue;
		mine = sees_all || snap->key.userid == me;
		nb = mo_hist_snap_nbuckets(&snap->hist);
		for (int i = 0; i < nb; i++)
		{
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};
			bool		last = (i == nb - 1);
			int			b;
			uint32		count = mo_hist_snap_bucket(&snap->hist, i, &b);

			if (count == 0 && !last)
				continue;
			cum += (int64) count << snap->hist.shift;
			values[0] = ObjectIdGetDatum(snap->key.userid);
			values[1] = ObjectIdGetDatum(snap->key.dbid);
			if (mine)
				values[2] = Int64GetDatum((int64) snap->key.queryid);
			else
				nulls[2] = true;
			values[3] = BoolGetDatum(snap->key.toplevel);
			values[4] = Float8GetDatum(mo_hist_bucket_upper_ms(b, MO_HIST_FINE_SUB));
			values[5] = Int64GetDatum(cum);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

#define MS_COLS 11

PG_FUNCTION_INFO_V1(moltres_ops_metrics_statements);

/*
 * moltres_ops_metrics_statements - the exported entries (see the banner),
 * in the order they joined, at most moltres_ops.metrics_statements: key,
 * errors, timeouts, rows, the sum of durations (s), and the histogram on
 * the Prometheus bounds (s), cumulative, +Inf last.  Reads only those
 * entries.  Entries of other users are left out unless the caller may
 * see their query ids.
 */
Datum
moltres_ops_metrics_statements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		sees_all;
	Oid			me = GetUserId();
	int			n;
	int		   *slots;
	uint32	   *gens;
	MoEntrySnap *snap;
	Datum		le;

	mo_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	sees_all = reader_sees_all();

	slots = palloc(sizeof(int) * MO_METRICS_STATEMENTS_MAX);
	gens = palloc(sizeof(uint32) * MO_METRICS_STATEMENTS_MAX);
	LWLockAcquire(mss->lock, LW_SHARED);
	n = Min(mss->nexported, mo_metrics_statements);
	for (int i = 0; i < n; i++)
	{
		slots[i] = mss->exported[i];
		gens[i] = mentries[slots[i]].gen;	/* changes only under the LWLock */
	}
	LWLockRelease(mss->lock);

	le = mo_prom_bounds_datum();
	snap = palloc(sizeof(MoEntrySnap));
	for (int i = 0; i < n; i++)
	{
		Datum		values[MS_COLS];
		bool		nulls[MS_COLS];
		uint64		counts[MO_PROM_NBUCKETS];
		uint64		total;
		Datum		cum;
		int			k = 0;

		if (!entry_snapshot(slots[i], snap, true) || snap->gen != gens[i])
			continue;			/* evicted since */
		if (!sees_all && snap->key.userid != me)
			continue;
		mo_hist_snap_to_prom(&snap->hist, counts);
		cum = mo_prom_cumulative_datum(counts, &total);
		memset(nulls, 0, sizeof(nulls));
		values[k++] = ObjectIdGetDatum(snap->key.userid);
		values[k++] = ObjectIdGetDatum(snap->key.dbid);
		values[k++] = Int64GetDatum((int64) snap->key.queryid);
		values[k++] = BoolGetDatum(snap->key.toplevel);
		values[k++] = Int64GetDatum(snap->c.errors);
		values[k++] = Int64GetDatum(snap->c.timeouts);
		values[k++] = Int64GetDatum(snap->c.rows);
		values[k++] = Float8GetDatum(snap->c.total_ms / 1000.0);
		values[k++] = Int64GetDatum((int64) total);
		values[k++] = le;
		values[k++] = cum;
		Assert(k == MS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moltres_ops_stats_info);

/* moltres_ops_stats_info - the one row of the view stats_info. */
Datum
moltres_ops_stats_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};
	int64		entries;
	TimestampTz reset;

	mo_require_shmem();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(mss->lock, LW_SHARED);
	entries = mss->nentries;
	reset = mss->stats_reset;
	LWLockRelease(mss->lock);

	values[0] = Int64GetDatum(entries);
	values[1] = Int64GetDatum(mss->max_entries);
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&mss->evictions));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&mss->dropped));
	values[4] = Int64GetDatum((int64) mo_shmem_total_bytes());
	values[5] = TimestampTzGetDatum(reset);
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&mss->hist_dropped));
	values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&mss->texts_truncated));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Count a measurement that could not be kept. */
void
mo_stats_count_dropped(void)
{
	if (mss)
		pg_atomic_fetch_add_u64(&mss->dropped, 1);
}

PG_FUNCTION_INFO_V1(moltres_ops_reset);

/*
 * moltres_ops_reset - forget the entries matching (userid, dbid, queryid),
 * 0 meaning any.  With all three 0 also the latency windows, the eviction
 * and drop counters, and stats_reset.  EXECUTE is revoked from PUBLIC.
 */
Datum
moltres_ops_reset(PG_FUNCTION_ARGS)
{
	Oid			userid;
	Oid			dbid;
	uint64		queryid;
	bool		all;

	mo_require_shmem();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("reset arguments must not be NULL"),
				 errhint("Use 0 to mean any user, database or query id.")));
	userid = PG_GETARG_OID(0);
	dbid = PG_GETARG_OID(1);
	queryid = (uint64) PG_GETARG_INT64(2);
	all = (userid == InvalidOid && dbid == InvalidOid && queryid == 0);

	LWLockAcquire(mss->lock, LW_EXCLUSIVE);
	for (int slot = 0; slot < mss->max_entries; slot++)
	{
		MoEntry    *e = &mentries[slot];

		/* keys change only under the LWLock, which we hold */
		if (!e->in_use)
			continue;
		if ((userid == InvalidOid || e->key.userid == userid) &&
			(dbid == InvalidOid || e->key.dbid == dbid) &&
			(queryid == 0 || e->key.queryid == queryid))
			entry_free(slot);
	}
	if (all)
	{
		mss->stats_reset = GetCurrentTimestamp();
		pg_atomic_write_u64(&mss->evictions, 0);
		pg_atomic_write_u64(&mss->dropped, 0);
		pg_atomic_write_u64(&mss->hist_dropped, 0);
		pg_atomic_write_u64(&mss->texts_truncated, 0);
	}
	LWLockRelease(mss->lock);

	if (all)
		mo_latency_reset();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(moltres_ops_flush);

/*
 * moltres_ops_flush - make this backend's pending counts visible.  Every
 * statement's counts go to shared memory when it ends, so nothing is ever
 * pending; returns the number of records flushed, always 0.
 */
Datum
moltres_ops_flush(PG_FUNCTION_ARGS)
{
	mo_require_shmem();
	pg_memory_barrier();
	PG_RETURN_INT64(0);
}

/* ---------- persistence ---------- */

/*
 * Write every entry to MO_STATS_FILE at clean shutdown (postmaster, no
 * backend left, so no locks are needed).  Temporary file, then
 * durable_rename, so a crash while writing leaves the old state.
 */
static void
mo_stats_shmem_shutdown(int code, Datum arg)
{
	FILE	   *f;
	MoFileHeader hdr;
	MoFileEntry *fe;
	MoFilePair *pairs;
	char	   *text;
	pg_crc32c	crc;

	if (code != 0 || mss == NULL)
		return;
	if (!mo_save)
	{
		unlink(MO_STATS_FILE);
		return;
	}

	f = AllocateFile(MO_STATS_FILE_TMP, PG_BINARY_W);
	if (f == NULL)
		goto error;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = MO_FILE_MAGIC;
	hdr.format = MO_FILE_FORMAT;
	hdr.pg_major = PG_VERSION_NUM / 100;
	hdr.nbuckets = MO_HIST_FINE_NBUCKETS;
	hdr.entry_size = sizeof(MoFileEntry);
	hdr.nentries = 0;
	for (int slot = 0; slot < mss->max_entries; slot++)
		if (mentries[slot].in_use)
			hdr.nentries++;
	hdr.stats_reset = mss->stats_reset;
	hdr.evictions = pg_atomic_read_u64(&mss->evictions);
	hdr.dropped = pg_atomic_read_u64(&mss->dropped);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &hdr, sizeof(hdr));
	if (fwrite(&hdr, sizeof(hdr), 1, f) != 1)
		goto error;

	fe = palloc0(sizeof(MoFileEntry));
	pairs = palloc(sizeof(MoFilePair) * MO_HIST_FINE_NBUCKETS);
	text = palloc(mss->text_max);
	for (int slot = 0; slot < mss->max_entries; slot++)
	{
		MoEntry    *e = &mentries[slot];
		int			np = 0;

		if (!e->in_use)
			continue;
		memset(fe, 0, sizeof(MoFileEntry));
		fe->key = e->key;
		fe->c = e->c;
		fe->encoding = e->encoding;
		fe->text_len = (int32) pg_atomic_read_u32(&e->text_len);
		if (fe->text_len >= mss->text_max ||
			(fe->text_len > 0 && !text_copy(slot, fe->text_len, text)))
			fe->text_len = 0;	/* cannot happen: no backend is left */
		/* the non-empty buckets, ascending, straight from the chunks */
		fe->hist_shift = e->hist.shift;
		if (e->hist.under > 0)
		{
			pairs[np].bucket = 0;
			pairs[np++].count = e->hist.under;
		}
		for (int32 c = e->hist.head; c >= 0; c = mchunks[c].next)
		{
			uint32		b0 = 1 + mchunks[c].octave * MO_HIST_FINE_SUB;

			for (int j = 0; j < MO_HIST_FINE_SUB; j++)
				if (mchunks[c].count[j] > 0)
				{
					pairs[np].bucket = b0 + j;
					pairs[np++].count = mchunks[c].count[j];
				}
		}
		if (e->hist.over > 0)
		{
			pairs[np].bucket = MO_HIST_FINE_NBUCKETS - 1;
			pairs[np++].count = e->hist.over;
		}
		fe->npairs = np;
		COMP_CRC32C(crc, fe, sizeof(MoFileEntry));
		COMP_CRC32C(crc, pairs, sizeof(MoFilePair) * np);
		COMP_CRC32C(crc, text, fe->text_len);
		if (fwrite(fe, sizeof(MoFileEntry), 1, f) != 1 ||
			(np > 0 && fwrite(pairs, sizeof(MoFilePair), np, f) != (size_t) np) ||
			(fe->text_len > 0 && fwrite(text, fe->text_len, 1, f) != 1))
			goto error;
	}
	FIN_CRC32C(crc);
	if (fwrite(&crc, sizeof(crc), 1, f) != 1)
		goto error;
	if (FreeFile(f))
	{
		f = NULL;
		goto error;
	}
	(void) durable_rename(MO_STATS_FILE_TMP, MO_STATS_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write moltres_ops statistics file \"%s\": %m",
					MO_STATS_FILE_TMP)));
	if (f)
		FreeFile(f);
	unlink(MO_STATS_FILE_TMP);
}

/* Log why the file is ignored, and remove it so it is not tried again. */
static void
ignore_file(const char *why)
{
	ereport(LOG,
			(errmsg("ignoring moltres_ops statistics file \"%s\": %s",
					MO_STATS_FILE, why)));
	unlink(MO_STATS_FILE);
}

/*
 * Why one entry of the file cannot be loaded, or NULL.  Every field that
 * loading or a later reader relies on is checked: a counter that is
 * negative or not finite would print as nonsense in every view and metric,
 * a text that is not valid in its encoding makes every reader of the views
 * fail, a histogram shift past 31 would overflow the cumulative counts, and
 * histogram buckets must be known, ascending and non-empty, as written.
 */
static const char *
file_entry_problem(const MoFileEntry *fe, const char *pairs_at,
				   const char *text)
{
	uint8		toplevel;
	const MoCounters *c = &fe->c;

	memcpy(&toplevel, &fe->key.toplevel, 1);
	if (toplevel > 1)
		return "its key is not valid";
	if (c->calls < 0 || c->errors < 0 || c->timeouts < 0 || c->cancels < 0 ||
		c->lock_timeouts < 0 || c->deadlocks < 0 ||
		c->serialization_failures < 0 || c->rows < 0 ||
		c->shared_blks_hit < 0 || c->shared_blks_read < 0 ||
		c->temp_blks_written < 0 || c->slow_calls < 0)
		return "a counter is negative";
	if (!isfinite(c->total_ms) || !isfinite(c->min_ms) || !isfinite(c->max_ms) ||
		!isfinite(c->mean_ms) || !isfinite(c->sum_var_ms) ||
		c->total_ms < 0 || c->min_ms < 0 || c->max_ms < 0 || c->mean_ms < 0 ||
		c->sum_var_ms < 0)
		return "a time is negative or not finite";
	if (fe->hist_shift > 31)
		return "its histogram scale is out of range";
	for (int i = 0, prev = -1; i < fe->npairs; i++)
	{
		MoFilePair	pr;

		memcpy(&pr, pairs_at + i * sizeof(MoFilePair), sizeof(pr));
		if (pr.bucket >= MO_HIST_FINE_NBUCKETS || (int) pr.bucket <= prev)
			return "its histogram buckets are out of range or out of order";
		if (pr.count == 0 || pr.count >= MO_HIST_HALVE_AT)
			return "a histogram count is out of range";
		prev = (int) pr.bucket;
	}
	if (!PG_VALID_BE_ENCODING(fe->encoding))
		return "its encoding is not a server encoding";
	if (fe->text_len > 0 &&
		!pg_verify_mbstr(fe->encoding, text, fe->text_len, true))
		return psprintf("its text is not valid %s",
						pg_encoding_to_char(fe->encoding));
	return NULL;
}

/* For the entries kept when the file holds more than max_statements. */
typedef struct FileEntryRef
{
	const char *p;				/* the entry in the file buffer */
	int64		calls;
} FileEntryRef;

static int
file_entry_cmp(const void *a, const void *b)
{
	const FileEntryRef *x = a;
	const FileEntryRef *y = b;

	if (x->calls != y->calls)
		return x->calls > y->calls ? -1 : 1;
	return x->p < y->p ? -1 : (x->p > y->p ? 1 : 0);
}

/*
 * No file to load: say so when statistics were lost, that is when the
 * server restarts after a crash (shared memory is reinitialised by this
 * postmaster) or after an unclean stop (pg_control says the last run did
 * not shut down).  A first start and a clean stop with save off are quiet.
 */
static void
note_missing_file(bool reinit)
{
	const char *why = NULL;

	if (reinit)
		why = "the server is restarting after a crash";
	else
	{
		bool		crc_ok;
		ControlFileData *cf = get_controlfile(DataDir, &crc_ok);

		if (crc_ok && cf->state != DB_SHUTDOWNED &&
			cf->state != DB_SHUTDOWNED_IN_RECOVERY)
			why = "the server was not shut down cleanly";
		pfree(cf);
	}
	if (why)
		ereport(LOG,
				(errmsg("moltres_ops statement statistics start empty: %s", why),
				 errdetail("They are saved only at a clean shutdown (moltres_ops.save = on).")));
}

/*
 * Read MO_STATS_FILE into the freshly initialised table (postmaster, at
 * start, before any backend exists).  The whole file is checked (magic,
 * format, server major version, layout, CRC, then every entry's length,
 * key, counters, histogram and text encoding, and that the header's count
 * is exactly what the file holds) before anything is loaded, so a corrupt
 * or foreign file changes nothing and is reported with one LOG line.  When
 * the file holds more entries than max_statements, the most called ones
 * are loaded and one LOG line says how many were dropped.  The file is
 * removed after loading, so stats never come back from a state older than
 * the last clean shutdown.
 */
static void
mo_stats_load_file(void)
{
	static bool started_before = false;
	bool		reinit = started_before;
	FILE	   *f;
	struct stat st;
	char	   *buf;
	char	   *p;
	char	   *end;
	MoFileHeader hdr;
	pg_crc32c	crc;
	pg_crc32c	stored;
	int			loaded = 0;
	int			nvalid = 0;
	FileEntryRef *refs;
	HTAB	   *keys;
	HASHCTL		hctl;
	const char *why = NULL;

	started_before = true;
	if (!mo_save)
	{
		unlink(MO_STATS_FILE);
		return;
	}
	f = AllocateFile(MO_STATS_FILE, PG_BINARY_R);
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read moltres_ops statistics file \"%s\": %m",
							MO_STATS_FILE)));
		else
			note_missing_file(reinit);
		return;
	}
	if (fstat(fileno(f), &st) != 0 ||
		st.st_size < (off_t) (sizeof(MoFileHeader) + sizeof(pg_crc32c)) ||
		st.st_size > (off_t) MaxAllocSize)
	{
		FreeFile(f);
		ignore_file("file size is not plausible");
		return;
	}
	buf = palloc(st.st_size);
	if (fread(buf, 1, st.st_size, f) != (size_t) st.st_size)
	{
		pfree(buf);
		FreeFile(f);
		ignore_file("could not read it whole");
		return;
	}
	FreeFile(f);

	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.magic != MO_FILE_MAGIC)
	{
		ignore_file("not a moltres_ops statistics file");
		pfree(buf);
		return;
	}
	if (hdr.format != MO_FILE_FORMAT)
	{
		ignore_file(psprintf("it is in format %u, this version reads format %d",
							 hdr.format, MO_FILE_FORMAT));
		pfree(buf);
		return;
	}
	if (hdr.pg_major != PG_VERSION_NUM / 100 ||
		hdr.nbuckets != MO_HIST_FINE_NBUCKETS ||
		hdr.entry_size != sizeof(MoFileEntry))
	{
		ignore_file("written by a different version");
		pfree(buf);
		return;
	}
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, st.st_size - sizeof(pg_crc32c));
	FIN_CRC32C(crc);
	memcpy(&stored, buf + st.st_size - sizeof(pg_crc32c), sizeof(stored));
	if (!EQ_CRC32C(crc, stored))
	{
		ignore_file("checksum mismatch");
		pfree(buf);
		return;
	}

	/*
	 * Walk the entries once and check every one before loading any: a
	 * checksum only proves that the file is what was written, not that
	 * what was written is sound.
	 */
	end = buf + st.st_size - sizeof(pg_crc32c);
	p = buf + sizeof(hdr);
	if (hdr.nentries < 0 ||
		hdr.nentries > (end - p) / (ptrdiff_t) sizeof(MoFileEntry))
	{
		ignore_file(psprintf("the header says %d entries, more than the file can hold",
							 hdr.nentries));
		pfree(buf);
		return;
	}
	refs = palloc(sizeof(FileEntryRef) * Max(hdr.nentries, 1));
	hctl.keysize = sizeof(MoStatsKey);
	hctl.entrysize = sizeof(MoStatsKey);
	keys = hash_create("moltres_ops stats file keys", Max(hdr.nentries, 16), &hctl,
					   HASH_ELEM | HASH_BLOBS);
	for (int i = 0; i < hdr.nentries && why == NULL; i++)
	{
		MoFileEntry fe;
		MoStatsKey	k;
		bool		dup;

		if (end - p < (ptrdiff_t) sizeof(MoFileEntry))
		{
			why = psprintf("the header says %d entries, the file holds %d",
						   hdr.nentries, i);
			break;
		}
		memcpy(&fe, p, sizeof(fe));
		if (fe.npairs < 0 || fe.npairs > MO_HIST_FINE_NBUCKETS ||
			end - p - (ptrdiff_t) sizeof(fe) <
			(ptrdiff_t) (fe.npairs * sizeof(MoFilePair)))
		{
			why = psprintf("entry %d: histogram length %d is out of range",
						   i + 1, fe.npairs);
			break;
		}
		if (fe.text_len < 0 ||
			end - p - (ptrdiff_t) sizeof(fe) -
			(ptrdiff_t) (fe.npairs * sizeof(MoFilePair)) < fe.text_len)
		{
			why = psprintf("entry %d: text length %d is out of range", i + 1, fe.text_len);
			break;
		}
		why = file_entry_problem(&fe, p + sizeof(fe),
								 p + sizeof(fe) + fe.npairs * sizeof(MoFilePair));
		if (why)
		{
			why = psprintf("entry %d: %s", i + 1, why);
			break;
		}
		/* the key without its padding, so that equal keys hash equal */
		memset(&k, 0, sizeof(k));
		k.userid = fe.key.userid;
		k.dbid = fe.key.dbid;
		k.queryid = fe.key.queryid;
		k.toplevel = fe.key.toplevel;
		(void) hash_search(keys, &k, HASH_ENTER, &dup);
		if (dup)
		{
			why = psprintf("entry %d: its key appears twice", i + 1);
			break;
		}
		refs[nvalid].p = p;
		refs[nvalid].calls = fe.c.calls;
		nvalid++;
		p += sizeof(fe) + fe.npairs * sizeof(MoFilePair) + fe.text_len;
	}
	if (why == NULL && p != end)
		why = psprintf("the header says %d entries, the file holds more",
					   hdr.nentries);
	hash_destroy(keys);
	if (why)
	{
		ignore_file(why);
		pfree(refs);
		pfree(buf);
		return;
	}

	/* a smaller table now: keep the most called */
	if (nvalid > mss->max_entries)
	{
		qsort(refs, nvalid, sizeof(FileEntryRef), file_entry_cmp);
		ereport(LOG,
				(errmsg("moltres_ops dropped %d of the %d statement statistics in \"%s\": moltres_ops.max_statements is %d",
						nvalid - mss->max_entries, nvalid, MO_STATS_FILE,
						mss->max_entries),
				 errdetail("The %d most called statements were kept.",
						   mss->max_entries)));
		nvalid = mss->max_entries;
	}

	mss->stats_reset = hdr.stats_reset;
	pg_atomic_write_u64(&mss->evictions, hdr.evictions);
	pg_atomic_write_u64(&mss->dropped, hdr.dropped);
	for (int i = 0; i < nvalid; i++)
	{
		MoFileEntry fe;
		const char *pairs_at;
		const char *text;
		int			text_len;
		int			slot;
		MoEntry    *e;

		memcpy(&fe, refs[i].p, sizeof(fe));
		pairs_at = refs[i].p + sizeof(fe);
		text = pairs_at + fe.npairs * sizeof(MoFilePair);
		text_len = fe.text_len;
		if (text_len >= mss->text_max)
			text_len = pg_encoding_mbcliplen(fe.encoding, text, text_len,
											 mss->text_max - 1);
		slot = entry_create(&fe.key, text, text_len);
		if (slot < 0)
			break;				/* cannot happen: there is room for all */
		e = &mentries[slot];
		e->c = fe.c;
		musage[slot] = (uint8) Min(fe.c.calls, MO_USAGE_MAX);
		e->encoding = fe.encoding;
		e->hist.shift = (uint8) fe.hist_shift;
		for (int k = 0; k < fe.npairs; k++)
		{
			MoFilePair	pr;
			uint32	   *cnt;

			memcpy(&pr, pairs_at + k * sizeof(MoFilePair), sizeof(pr));
			if (pr.bucket == 0)
				cnt = &e->hist.under;
			else if (pr.bucket == MO_HIST_FINE_NBUCKETS - 1)
				cnt = &e->hist.over;
			else
			{
				cnt = mo_shist_counter(&e->hist, mchunks,
									   (pr.bucket - 1) / MO_HIST_FINE_SUB,
									   chunk_alloc, (void *) (intptr_t) slot);
				if (cnt == NULL)
				{
					/* a smaller pool now: the rest of it is left out */
					pg_atomic_fetch_add_u64(&mss->hist_dropped, pr.count);
					continue;
				}
				cnt += (pr.bucket - 1) % MO_HIST_FINE_SUB;
			}
			*cnt = pr.count;
		}
		loaded++;
	}
	pfree(refs);
	pfree(buf);
	unlink(MO_STATS_FILE);
	ereport(DEBUG1,
			(errmsg("moltres_ops loaded %d statement statistics from \"%s\"",
					loaded, MO_STATS_FILE)));
}
