/* dedup.c - producer and message de-duplication tables (see dedup.h).
 *
 * Producers: open addressing by producer id (XXH3 of the id), linear
 * probing, no deletion but by rebuilding. The slots are allocated by the
 * first producer with an id (SL_DEDUP_SLOTS_MIN) and doubled whenever a new
 * producer would make the table more than 3/4 full, up to SL_DEDUP_SLOTS;
 * there, the least recently used producer not being appended is evicted
 * instead (as a fixed 1024-slot table did: the same producers are
 * remembered, an idle shard holds no slots). Message ids: a bounded probe run per id hash; an id older than
 * the window is dead and its slot reusable, so the table never fills up.
 */
#include "broker/engine/dedup.h"

#include "broker/engine/seqgate.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <stdlib.h>

struct sl_msgdedup_slot {
    uint64_t hash;    /* XXH3-64 of the id; 0 = empty */
    uint64_t time_ms; /* when it was stored (0 = forgotten) */
};

struct sl_msgdedup {
    struct sl_msgdedup_slot slot[SL_MSGDEDUP_SLOTS];
};

void sl_dedup_init(struct sl_dedup *d)
{
    *d = (struct sl_dedup){0};
}

void sl_dedup_fini(struct sl_dedup *d)
{
    free(d->slots);
    d->slots = NULL;
    d->cap = 0;
    d->used = 0;
}

size_t sl_dedup_bytes(const struct sl_dedup *d)
{
    return (size_t)d->cap * sizeof(*d->slots);
}

/* The slot of `pid`, or the empty slot where it would go; NULL when the
 * table has no slots or none of either (full). */
static struct sl_dedup_entry *dedup_find(struct sl_dedup *d, uint64_t pid)
{
    if (d->cap == 0) {
        return NULL;
    }
    uint32_t mask = d->cap - 1;
    uint32_t i = (uint32_t)(sl_checksum64(&pid, sizeof(pid)) & mask);
    for (uint32_t probe = 0; probe < d->cap; probe++, i = (i + 1) & mask) {
        struct sl_dedup_entry *e = &d->slots[i];
        if (e->producer_id == pid || e->producer_id == 0) {
            return e;
        }
    }
    return NULL;
}

/* Re-inserts every producer of `old` (`old_cap` slots) but `drop` into
 * fresh slots of `cap` (unbroken probe chains). Errors: SL_ENOMEM (the table
 * is unchanged). */
static int dedup_rehash(struct sl_dedup *d, uint32_t cap, const struct sl_dedup_entry *drop)
{
    struct sl_dedup_entry *old = d->slots;
    uint32_t old_cap = d->cap;
    struct sl_dedup_entry *fresh = calloc(cap, sizeof(*fresh));
    if (fresh == NULL) {
        return SL_ENOMEM;
    }
    d->slots = fresh;
    d->cap = cap;
    d->used = 0;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].producer_id != 0 && &old[i] != drop) {
            struct sl_dedup_entry *e = dedup_find(d, old[i].producer_id);
            SL_ASSERT(e != NULL && e->producer_id == 0);
            *e = old[i];
            d->used++;
        }
    }
    free(old);
    return SL_OK;
}

/* Room for one more producer: the table is allocated, or doubled when the
 * newcomer would make it more than 3/4 full; at SL_DEDUP_SLOTS (or without
 * memory to grow) the least recently used producer not being appended is
 * evicted instead (rare: > 768 producers on one shard). */
static void dedup_make_room(struct sl_dedup *d)
{
    if (d->cap != 0 && (d->used + 1) * 4 <= d->cap * 3) {
        return;
    }
    if (d->cap < SL_DEDUP_SLOTS &&
        dedup_rehash(d, d->cap == 0 ? SL_DEDUP_SLOTS_MIN : d->cap * 2, NULL) == SL_OK) {
        return;
    }
    struct sl_dedup_entry *lru = NULL;
    for (uint32_t i = 0; i < d->cap; i++) {
        struct sl_dedup_entry *e = &d->slots[i];
        if (e->producer_id != 0 && e->pending == 0 && (lru == NULL || e->last_use < lru->last_use)) {
            lru = e;
        }
    }
    if (lru != NULL) {
        (void)dedup_rehash(d, d->cap, lru); /* without memory: no room, no de-dup for it */
    }
}

int sl_dedup_begin(struct sl_dedup *d, uint64_t producer_id, uint64_t producer_seq,
                   bool in_order, struct sl_dedup_entry **out)
{
    *out = NULL;
    if (producer_id == 0) {
        return SL_OK;
    }
    struct sl_dedup_entry *e = dedup_find(d, producer_id);
    if (e != NULL && e->producer_id == producer_id) {
        *out = e;
        if (e->hold && e->has_last && e->producer_seq >= e->hold_seq) {
            e->hold = false; /* the held batch was stored after all (a resend of it) */
        }
        if (e->has_last && producer_seq <= e->producer_seq) {
            return SL_EEXIST; /* a retry of a stored batch */
        }
        if (e->pending > 0 && producer_seq >= e->pending_lo && producer_seq <= e->pending_hi &&
            (e->pending_mask >> (producer_seq - e->pending_lo) & 1u) != 0) {
            return SL_EAGAIN;
        }
        /* A refused batch will be resent: nothing after it may be stored first. */
        uint64_t now = sl_clock_mono_ms();
        if (e->hold && producer_seq > e->hold_seq && now - e->hold_ms <= SL_SEQGATE_TTL_MS) {
            return SL_ECONFLICT;
        }
        if (e->hold && producer_seq >= e->hold_seq) {
            e->hold = false; /* it came again (or lapsed) */
        }
        bool gap = e->pending > 0 ? producer_seq != e->pending_hi + 1 ||
                                        producer_seq - e->pending_lo >= SL_DEDUP_INFLIGHT_MAX
                                  : in_order && e->has_last && producer_seq != e->producer_seq + 1;
        if (gap) {
            if (!e->hold || producer_seq < e->hold_seq) {
                e->hold = true;
                e->hold_seq = producer_seq;
                e->hold_ms = now;
            }
            return SL_ECONFLICT;
        }
    } else {
        dedup_make_room(d);
        e = dedup_find(d, producer_id);
        if (e == NULL) {
            return SL_OK; /* no slots (no memory, or all pending): no de-dup for it */
        }
        SL_ASSERT(e->producer_id == 0 && d->used < d->cap);
        *e = (struct sl_dedup_entry){.producer_id = producer_id};
        d->used++;
    }
    if (e->pending == 0) {
        e->pending_lo = producer_seq;
        e->pending_mask = 0;
    }
    e->in_order = in_order;
    SL_ASSERT(e->pending == 0 || producer_seq == e->pending_hi + 1);
    SL_ASSERT(producer_seq - e->pending_lo < SL_DEDUP_INFLIGHT_MAX);
    e->pending_hi = producer_seq;
    e->pending_mask |= (uint64_t)1 << (producer_seq - e->pending_lo);
    e->pending++;
    SL_ASSERT(e->pending == (uint32_t)__builtin_popcountll(e->pending_mask));
    e->last_use = ++d->clock;
    *out = e;
    return SL_OK;
}

void sl_dedup_end(struct sl_dedup *d, uint64_t producer_id, uint64_t producer_seq, int err,
                  uint64_t base_seq, uint32_t count)
{
    if (producer_id == 0) {
        return;
    }
    struct sl_dedup_entry *e = dedup_find(d, producer_id);
    if (e == NULL || e->producer_id != producer_id) {
        return;
    }
    /* The run's oldest end moves up past what ended, so [lo, hi] stays the
     * span of what is in flight (hi is kept: the next batch follows it). */
    uint64_t bit = producer_seq - e->pending_lo;
    if (e->pending > 0 && producer_seq >= e->pending_lo && producer_seq <= e->pending_hi &&
        (e->pending_mask >> bit & 1u) != 0) {
        e->pending_mask &= ~((uint64_t)1 << bit);
        e->pending--;
        while (e->pending > 0 && (e->pending_mask & 1u) == 0) {
            e->pending_mask >>= 1;
            e->pending_lo++;
        }
    }
    SL_ASSERT(e->pending == (uint32_t)__builtin_popcountll(e->pending_mask));
    if (err != SL_OK && e->in_order && (!e->hold || producer_seq < e->hold_seq)) {
        /* It will be resent (or given up under a new producer id): the next
         * one may not take its place while earlier ones are still in flight. */
        e->hold = true;
        e->hold_seq = producer_seq;
        e->hold_ms = sl_clock_mono_ms();
    }
    if (err == SL_OK && (!e->has_last || producer_seq > e->producer_seq)) {
        /* the ones before it shift down: recent[i] is producer_seq - 1 - i */
        uint64_t shift = e->has_last ? producer_seq - e->producer_seq : SL_DEDUP_RECENT;
        for (uint32_t i = SL_DEDUP_RECENT - 1; i-- > 0;) {
            e->recent[i] = i >= shift ? e->recent[i - shift]
                           : i == shift - 1 && e->has_last
                               ? (struct sl_dedup_recent){.base_seq = e->base_seq, .count = e->count}
                               : (struct sl_dedup_recent){.back = UINT32_MAX};
        }
        e->has_last = true;
        e->producer_seq = producer_seq;
        e->base_seq = base_seq;
        e->count = count;
    }
    /* On failure nothing was stored: a retry of it will be written. */
}

bool sl_dedup_stored(const struct sl_dedup_entry *e, uint64_t producer_seq, uint64_t *base_seq,
                     uint32_t *count)
{
    if (e == NULL || !e->has_last || producer_seq > e->producer_seq) {
        return false;
    }
    uint64_t back = e->producer_seq - producer_seq;
    const struct sl_dedup_recent *r = back == 0 ? NULL
                                      : back < SL_DEDUP_RECENT ? &e->recent[back - 1]
                                                               : NULL;
    if (back == 0) {
        *base_seq = e->base_seq;
        *count = e->count;
        return true;
    }
    if (r == NULL || r->back == UINT32_MAX) {
        return false;
    }
    *base_seq = r->base_seq;
    *count = r->count;
    return true;
}

/* ---- message de-dup ids ----------------------------------------------- */

#define MSGDEDUP_PROBE 64u /* bounded probe run; the table never fills up */

bool sl_msgdedup_seen(struct sl_msgdedup **t, uint64_t hash, uint64_t now_ms,
                      uint64_t window_ms)
{
    if (*t == NULL && (*t = calloc(1, sizeof(**t))) == NULL) {
        return false; /* no memory for de-dup: store it (at-least-once) */
    }
    hash = hash != 0 ? hash : 1;
    uint32_t mask = SL_MSGDEDUP_SLOTS - 1;
    struct sl_msgdedup_slot *free_slot = NULL, *oldest = NULL;
    for (uint32_t i = 0; i < MSGDEDUP_PROBE; i++) {
        struct sl_msgdedup_slot *sl = &(*t)->slot[(hash + i) & mask];
        bool live = sl->hash != 0 && sl->time_ms != 0 && sl->time_ms + window_ms > now_ms;
        if (live && sl->hash == hash) {
            return true;
        }
        if (!live) {
            free_slot = free_slot != NULL ? free_slot : sl;
        } else if (oldest == NULL || sl->time_ms < oldest->time_ms) {
            oldest = sl;
        }
    }
    struct sl_msgdedup_slot *victim = free_slot != NULL ? free_slot : oldest;
    victim->hash = hash;
    victim->time_ms = now_ms;
    return false;
}

void sl_msgdedup_forget(struct sl_msgdedup *t, uint64_t hash)
{
    if (t == NULL) {
        return;
    }
    hash = hash != 0 ? hash : 1;
    uint32_t mask = SL_MSGDEDUP_SLOTS - 1;
    for (uint32_t i = 0; i < MSGDEDUP_PROBE; i++) {
        struct sl_msgdedup_slot *sl = &t->slot[(hash + i) & mask];
        if (sl->hash == hash) {
            sl->time_ms = 0;
            return;
        }
    }
}

void sl_msgdedup_free(struct sl_msgdedup *t)
{
    free(t);
}

/* ---- producers after a restart -------------------------------------------- */

#define DEDUP_REBUILD_WINDOW_MS (5u * 60 * 1000)
#define DEDUP_REBUILD_BYTES_MAX (8u << 20) /* per shard: keeps start-up short */

void sl_dedup_note(struct sl_dedup *d, const struct sl_batch_header *h)
{
    struct sl_dedup_entry *e = NULL;
    if (h->producer_id != 0 &&
        sl_dedup_begin(d, h->producer_id, h->producer_seq, false, &e) == SL_OK) {
        sl_dedup_end(d, h->producer_id, h->producer_seq, SL_OK, h->base_seq, h->record_count);
    }
}

static void rebuild_one(void *ctx, const struct sl_batch_header *h)
{
    sl_dedup_note(ctx, h);
}

int sl_dedup_rebuild(struct sl_dedup *d, struct sl_shard *log)
{
    /* The newest DEDUP_REBUILD_BYTES_MAX of the log (a retry is of a recent
     * batch: reading the oldest bytes of the window instead missed the
     * newest ones whenever a shard took more than that in the window - found
     * by the long crash loop), of which the batches inside the window. */
    uint64_t now = sl_clock_wall_ms();
    uint64_t since = now > DEDUP_REBUILD_WINDOW_MS ? now - DEDUP_REBUILD_WINDOW_MS : 0;
    return sl_shard_scan_recent(log, since, DEDUP_REBUILD_BYTES_MAX, rebuild_one, d);
}
