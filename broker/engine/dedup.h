/* dedup.h - de-duplication tables: per shard, the producers' last batches
 * (idempotent retries); per stream, recently seen message de-dup ids
 * (sluice.dedup_id).
 *
 * Threading: a table is used by one thread at a time: the main loop once
 * its stream is loaded; before, the thread that loads it (sl_dedup_rebuild,
 * a creator thread or the main loop itself). Memory: nothing until used. A shard's table is embedded in
 * the shard (struct sl_dedup, 32 bytes) and allocates its slots when the
 * first producer with an id writes: SL_DEDUP_SLOTS_MIN, doubled when 3/4
 * full up to SL_DEDUP_SLOTS (224 bytes each: 224 KiB at most), where the least
 * recently used producer is evicted instead. A stream's message ids take
 * SL_MSGDEDUP_SLOTS x 16 bytes (1 MiB) on the first record with an id.
 */
#ifndef SL_DEDUP_H
#define SL_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_shard;

#define SL_DEDUP_SLOTS 1024u    /* producers remembered per shard (power of two) */
#define SL_DEDUP_SLOTS_MIN 16u  /* the first allocation (power of two) */
#define SL_MSGDEDUP_SLOTS 65536u /* message ids per stream (power of two) */
#define SL_MSGDEDUP_ATTR "sluice.dedup_id"

/* One remembered producer: the last batch it got acknowledged, and the
 * batches being appended. A producer may have several batches of a shard in
 * flight (at most SL_DEDUP_INFLIGHT_MAX); they begin in producer_seq order,
 * [pending_lo, pending_hi], and may end in any order (a batch waiting for
 * staging space can fail after later ones ended): bit i of pending_mask is
 * batch pending_lo + i, still being appended. */
#define SL_DEDUP_INFLIGHT_MAX 64u
/* The positions of a producer's last SL_DEDUP_RECENT stored batches are kept,
 * so the retry of any batch a producer had in flight (the client keeps at
 * most SLUICE_INFLIGHT_BATCHES_MAX) is answered with where it was stored. */
#define SL_DEDUP_RECENT 8u

struct sl_dedup_recent {
    uint64_t base_seq;
    uint32_t count;
    uint32_t back; /* batch producer_seq - back (back < SL_DEDUP_RECENT); UINT32_MAX: empty */
};
struct sl_dedup_entry {
    uint64_t producer_id;  /* 0 = empty slot */
    uint64_t producer_seq; /* of the last acknowledged batch (valid if has_last) */
    uint64_t base_seq;     /* of that batch */
    uint64_t pending_lo; /* the run begun (valid if pending > 0) */
    uint64_t pending_hi;
    uint64_t pending_mask; /* of the run, those not ended (pending = its bit count) */
    uint64_t last_use;
    uint64_t hold_seq; /* a batch refused as out of order (valid if hold) */
    uint64_t hold_ms;  /* when (monotonic) */
    uint32_t count;
    uint32_t pending;
    bool has_last;
    bool hold;
    bool in_order; /* its last batch came with Produce.in_order */
    /* the batches stored before the last one: recent[i] is producer_seq - 1 - i */
    struct sl_dedup_recent recent[SL_DEDUP_RECENT - 1];
};

_Static_assert((SL_DEDUP_SLOTS & (SL_DEDUP_SLOTS - 1)) == 0 &&
                   (SL_DEDUP_SLOTS_MIN & (SL_DEDUP_SLOTS_MIN - 1)) == 0 &&
                   SL_DEDUP_SLOTS_MIN >= 4 && SL_DEDUP_SLOTS_MIN <= SL_DEDUP_SLOTS,
               "de-dup tables are powers of two, doubled from the minimum to the cap");

/* A shard's producers, embedded in the shard; private to dedup.c. */
struct sl_dedup {
    struct sl_dedup_entry *slots; /* `cap` of them; NULL until a producer with an id */
    uint64_t clock;
    uint32_t cap;  /* 0 or SL_DEDUP_SLOTS_MIN .. SL_DEDUP_SLOTS */
    uint32_t used; /* slots holding a producer */
};

struct sl_msgdedup; /* a stream's message ids */

/* An empty table (allocates nothing). */
void sl_dedup_init(struct sl_dedup *d);
void sl_dedup_fini(struct sl_dedup *d); /* idempotent */
/* Heap bytes the table holds (0 while no producer with an id wrote). */
size_t sl_dedup_bytes(const struct sl_dedup *d);

/* Looks up the batch's producer: returns SL_EEXIST with *e filled when
 * (producer_id, producer_seq) is the last acknowledged batch of that
 * producer or an earlier one (a retry), SL_EAGAIN when that same batch is
 * still being appended, SL_ECONFLICT when batches of the
 * producer are being appended and this one does not follow the last of them
 * (a gap: an earlier one failed or is being resent; resend in order) - and
 * then every later batch of it too, until that one comes again (or
 * SL_SEQGATE_TTL_MS passed: a producer that gave it up) - else
 * SL_OK and records it as pending in *e (may be NULL when producer_id == 0).
 * *e is borrowed until the next call. With nothing in flight, a producer
 * that keeps its batches in order (`in_order`) must send the one after its
 * last acknowledged batch (else SL_ECONFLICT); any other producer may skip
 * ahead (one that gave a batch up goes on). */
int sl_dedup_begin(struct sl_dedup *d, uint64_t producer_id, uint64_t producer_seq,
                   bool in_order, struct sl_dedup_entry **e);
/* Where batch `producer_seq` of the producer of entry `e` (from a begin that
 * answered SL_EEXIST) was stored, if it is among its last SL_DEDUP_RECENT:
 * true with *base_seq and *count. */
bool sl_dedup_stored(const struct sl_dedup_entry *e, uint64_t producer_seq, uint64_t *base_seq,
                     uint32_t *count);
/* (A new producer may grow the table; without memory for that it is
 * evicted room for, or - nothing allocated yet - not de-duplicated.) */
/* Completes a pending entry: on success remembers base_seq/count; on
 * failure forgets the batch so that a retry is written. */
void sl_dedup_end(struct sl_dedup *d, uint64_t producer_id, uint64_t producer_seq, int err,
                  uint64_t base_seq, uint32_t count);

/* Remembers a batch stored without passing through begin/end: a follower's copy of its
 * leader's batch (#14), so that a producer's retry after a failover is answered as a
 * duplicate, not stored twice. */
struct sl_batch_header;
void sl_dedup_note(struct sl_dedup *d, const struct sl_batch_header *h);

/* Re-learns the producers' last batches from the newest batches of `log`
 * appended in the last few minutes (bounded in bytes; headers only), so that
 * a retry sent across a broker restart is still recognised. Synchronous
 * (sl_shard_scan_recent): when the shard's stream is loaded, before its
 * first use. Returns that scan's error (the table then holds what was seen). */
int sl_dedup_rebuild(struct sl_dedup *d, struct sl_shard *log);

/* Message de-dup: returns true when `hash` was stored within `window_ms`
 * before `now_ms` (a duplicate); else remembers it and returns false. The
 * table (*t, allocated on first use) is bounded: when a probe run is full,
 * the oldest id in it goes. Without memory, nothing is a duplicate. */
bool sl_msgdedup_seen(struct sl_msgdedup **t, uint64_t hash, uint64_t now_ms,
                      uint64_t window_ms);
/* Forgets `hash` (its append failed, so a retry must be stored). */
void sl_msgdedup_forget(struct sl_msgdedup *t, uint64_t hash);
void sl_msgdedup_free(struct sl_msgdedup *t); /* NULL-safe */

#endif
