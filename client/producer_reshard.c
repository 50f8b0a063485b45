/* producer_reshard.c - the producer across resharding (#16): routing by the stream's
 * layout, and moving a closed shard's records to the shards after it.
 *
 * Records are routed by the open shards' hash ranges (client/layout.c),
 * learned from DescribeStream. A shard that refuses a batch with SL_ESHARD_CLOSED is marked
 * closed (for good: nothing is sent to it again but resends of batches it may have stored)
 * and the flusher describes the stream again. A closed shard with batches still pending
 * (open, queued or in flight) is "draining": once none is in flight, its queue is walked in
 * order and each batch known not to be stored there (refused as closed, or never sent) is
 * re-partitioned record by record into the next shards of each key - a younger draining
 * shard holding the key's hash, else the open one - with its delivery callbacks; a batch
 * that may have been stored (its send went out, no answer came) is resent alone first: the
 * broker answers a retry of a stored batch "duplicate", else SHARD_CLOSED. Per key order
 * holds because a key's records go to the oldest draining shard holding its hash (new ones
 * too), so they queue behind the ones waiting to move, and a batch moves only when every
 * batch before it in its shard has its answer. Shard ids only grow (children get the next
 * ones): `shards` is indexed by id; the pshard structs never move (the array holds pointers).
 *
 * Every function here runs under p->mu (the *_locked ones) or takes it; the layout is
 * replaced on the flusher thread only (batch_send reads p->shards there without mu).
 */
#include "client/producer_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/partition.h"

#include <stdlib.h>
#include <string.h>

/* Whether shard `s` is closed with batches pending: its keys' new records queue behind it. */
int sl_producer_shard_draining(const struct pshard *s)
{
    return s->closed && (s->open != NULL || s->head != NULL || s->inflight > 0);
}

/* Recounts p->draining (ascending ids). Under mu. */
void sl_producer_draining_recount_locked(struct sluice_producer *p)
{
    p->draining_len = 0;
    for (uint32_t i = 0; i < p->shard_count; i++) {
        const struct pshard *s = p->shards[i];
        if (sl_producer_shard_draining(s)) {
            p->draining[p->draining_len++] =
                (struct sl_layout_range){.start = s->hash_start, .end = s->hash_end, .shard = i};
        }
    }
}

/* The shard a record whose key hashes to `hash` goes to, among shards with ids >= min_id:
 * the oldest draining shard holding the hash (its pending records of the key come first),
 * else the open one. Under mu. */
uint32_t sl_producer_route_locked(const struct sluice_producer *p, uint64_t hash, uint32_t min_id)
{
    return sl_layout_route_draining(&p->layout, p->draining, p->draining_len, hash, min_id);
}

/* A batch the shard refused because it is closed: nothing of it was stored. It goes back
 * into the shard's queue (in order) to be re-partitioned by the flusher once the shard has
 * nothing in flight; the stream is described again unless the table knows it closed.
 * Called without mu. */
void sl_producer_refused_closed(struct sluice_producer *p, struct pbatch *b)
{
    pthread_mutex_lock(&p->mu);
    struct pshard *s = p->shards[b->shard];
    b->maybe_stored = 0;
    b->retry_at_ms = 0;
    sl_producer_requeue_locked(p, b);
    s->closed = 1;
    if (s->open_in_layout) {
        p->layout_stale = 1; /* learn its children */
        pthread_cond_signal(&p->wake_cv);
    }
    sl_producer_draining_recount_locked(p);
    SL_ASSERT(sl_producer_shard_draining(s));
    pthread_mutex_unlock(&p->mu);
}

struct reroute {
    struct sluice_producer *p;
    struct pbatch *from;
    uint32_t moved;
};

/* Appends one record of a batch leaving a closed shard to the next shard of its key, with
 * its delivery callback. Under mu. */
static int reroute_record(void *ctx, uint32_t index, const struct sl_record *rec)
{
    struct reroute *r = ctx;
    struct sluice_producer *p = r->p;
    SL_ASSERT(index == r->moved && index < r->from->b.count);
    uint32_t to = rec->key_len > 0
                      ? sl_producer_route_locked(p, sl_partition_hash(rec->key, rec->key_len),
                                                 r->from->shard + 1)
                      : p->layout.open[p->rr++ % p->layout.open_len].shard;
    /* The table is fresh (the caller checked): a key goes down its lineage - children have
     * higher ids than their parents - never back to the shard that refused it; a record
     * without key to an open shard. Ids come from the broker: checked, not asserted. */
    SL_ASSERT(to < p->shard_count);
    if (rec->key_len > 0 ? to <= r->from->shard : !p->shards[to]->open_in_layout) {
        sl_client_set_error("stream %s: shard %u's keys route to shard %u, not a child", p->stream,
                            r->from->shard, to);
        return SL_EPROTO;
    }
    size_t need = sl_producer_record_need(rec);
    const struct pdelivery *d = &r->from->dels[index];
    int rc = sl_producer_append_locked(p, to, rec, need, d->cb, d->ctx);
    if (rc != SL_OK) {
        return rc;
    }
    p->buffered += need;
    r->moved++;
    return SL_OK;
}

/* Re-partitions batch `b` (off its closed shard's queue, known not stored there) into the
 * next shards of its keys, in order. Records it could not move (out of memory) are
 * reported failed. Under mu. */
static void reroute_batch_locked(struct sluice_producer *p, struct pbatch *b, struct pwork *w)
{
    SL_ASSERT(!b->maybe_stored && p->shards[b->shard]->closed && !p->layout_stale);
    int rc = SL_OK;
    if (!b->finished && b->b.count > 0) { /* never sent: seal it to read it back */
        rc = sl_batch_builder_finish(&b->b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &b->len);
        b->finished = rc == SL_OK;
    }
    struct reroute r = {.p = p, .from = b};
    if (rc == SL_OK && b->b.count > 0) {
        rc = sl_layout_batch_each(b->buf, b->len, p->z, reroute_record, &r);
    }
    p->stats.rerouted += r.moved;
    if (rc == SL_OK) {
        SL_ASSERT(r.moved == b->b.count && p->buffered >= b->acct_bytes);
        p->buffered -= b->acct_bytes; /* the moved records hold their own share now */
        sl_producer_batch_free(b);
        return;
    }
    /* the rest is reported failed: drop the moved ones' callbacks */
    memmove(b->dels, b->dels + r.moved, (b->b.count - r.moved) * sizeof(*b->dels));
    b->b.count -= r.moved;
    sl_producer_fail_locked(p, b, rc, w);
}

/* A closed shard's pass: once nothing of it is in flight and the table knows where its keys
 * go, its batches known not stored move on, in order; the first that may be stored is
 * resent alone (its answer decides: "duplicate" completes it, SHARD_CLOSED brings it back
 * known not stored), and the ones behind it wait for that answer. Under mu. */
void sl_producer_drain_locked(struct sluice_producer *p, struct pshard *s, uint64_t now,
                              uint64_t *wake_ms, struct pwork *w)
{
    if (p->layout_stale || s->inflight > 0) {
        return; /* an answer or the stream's description will wake the flusher */
    }
    sl_producer_seal_locked(p, s);
    /* The broker stores a producer's batches in sequence order (Produce.in_order): behind a
     * batch known not stored, the later ones of the same producer id were not stored
     * either (a resend of one could only be refused as out of order). */
    uint64_t unstored_id = 0, unstored_seq = 0;
    struct pbatch *h;
    while ((h = s->head) != NULL &&
           (!h->maybe_stored || (h->producer_id != 0 && h->producer_id == unstored_id &&
                                 h->producer_seq > unstored_seq))) {
        s->head = h->next;
        if (s->head == NULL) {
            s->tail = NULL;
        }
        h->next = NULL;
        h->maybe_stored = 0;
        if (h->producer_id != 0 && h->producer_id != unstored_id) {
            unstored_id = h->producer_id;
            unstored_seq = h->producer_seq;
        } else if (h->producer_id != 0 && h->producer_seq > unstored_seq) {
            unstored_seq = h->producer_seq;
        }
        reroute_batch_locked(p, h, w);
    }
    SL_ASSERT(s->open == NULL); /* nothing routes back to a closed shard */
    if (h != NULL) {
        if (h->retry_at_ms > now) {
            *wake_ms = h->retry_at_ms < *wake_ms ? h->retry_at_ms : *wake_ms;
            return;
        }
        sl_producer_take_head_locked(p, s, w);
    }
}

/* ---- the stream's layout ---- */

/* Grows the shard table to `count` ids (new shards start with the producer's id and
 * sequence 1). Under mu, on the flusher thread or before it starts (batch_send reads the
 * table without mu on that thread). Errors: SL_ENOMEM (the table is unchanged). */
static int shards_grow_locked(struct sluice_producer *p, uint32_t count)
{
    if (count <= p->shard_count) {
        return SL_OK;
    }
    struct pshard **ns = realloc(p->shards, count * sizeof(*ns));
    if (ns == NULL) {
        return SL_ENOMEM;
    }
    p->shards = ns;
    struct sl_layout_range *nd = realloc(p->draining, count * sizeof(*nd));
    if (nd == NULL) {
        return SL_ENOMEM;
    }
    p->draining = nd;
    for (uint32_t i = p->shard_count; i < count; i++) {
        ns[i] = calloc(1, sizeof(**ns));
        if (ns[i] == NULL) {
            while (i-- > p->shard_count) {
                free(ns[i]);
            }
            return SL_ENOMEM;
        }
        /* producer_seq starts at 1 (earlier brokers took the retry of a failed batch 0 for
         * a duplicate: they stepped a failed batch's sequence back to "seq - 1"). */
        ns[i]->producer_id = p->producer_id;
        ns[i]->next_producer_seq = 1;
    }
    __atomic_store_n(&p->shard_count, count, __ATOMIC_RELAXED); /* read by shard_count() */
    return SL_OK;
}

/* Makes `info` (a fresh description) the producer's layout: the routing table, the ranges
 * and closed marks of every shard, new shards for new ids. Nothing changes on an error,
 * with the reason set. Under mu (see shards_grow_locked). Errors: SL_EPROTO (not a layout
 * of open shards partitioning the hash space, or a shard id out of range), SL_EAGAIN (a shard
 * that refused a batch as closed is described open: the change is not visible yet),
 * SL_ENOMEM. */
int sl_producer_layout_apply_locked(struct sluice_producer *p,
                                    const struct sluice_stream_info *info)
{
    if (info->shard_count > PRODUCER_SHARD_IDS_MAX) {
        sl_client_set_error("stream %s: %u shard ids, over the limit %u", p->stream,
                            info->shard_count, PRODUCER_SHARD_IDS_MAX);
        return SL_EPROTO;
    }
    for (uint32_t i = 0; i < info->shards_len; i++) {
        const struct sluice_shard_info *si = &info->shards[i];
        if (si->shard >= info->shard_count) {
            sl_client_set_error("stream %s: shard id %u out of its %u", p->stream, si->shard,
                                info->shard_count);
            return SL_EPROTO;
        }
        if (!si->closed && si->shard < p->shard_count && p->shards[si->shard]->closed) {
            sl_client_set_error("stream %s: shard %u refused a batch as closed but is described "
                                "open",
                                p->stream, si->shard);
            return SL_EAGAIN;
        }
    }
    char why[SL_LAYOUT_WHY_MAX];
    struct sl_layout nl = {0};
    int rc = sl_layout_build(&nl, info->shards, info->shards_len, why);
    if (rc != SL_OK) {
        sl_client_set_error("stream %s: %s", p->stream, why);
        return rc;
    }
    if (shards_grow_locked(p, info->shard_count) != SL_OK) {
        sl_layout_fini(&nl);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < p->shard_count; i++) {
        p->shards[i]->open_in_layout = 0;
    }
    for (uint32_t i = 0; i < info->shards_len; i++) {
        const struct sluice_shard_info *si = &info->shards[i];
        struct pshard *s = p->shards[si->shard];
        s->hash_start = si->hash_start;
        s->hash_end = si->hash_end;
        s->open_in_layout = !si->closed;
    }
    for (uint32_t i = 0; i < p->shard_count; i++) { /* described closed, or gone */
        p->shards[i]->closed |= !p->shards[i]->open_in_layout;
    }
    sl_layout_fini(&p->layout);
    p->layout = nl;
    p->layout_stale = 0;
    p->layout_failures = 0;
    p->stats.layout_refreshes++;
    sl_producer_draining_recount_locked(p);
    return SL_OK;
}

/* After a describe for a stale layout (`rc`, `info`): applies it, or schedules the next
 * try; past `retries` failures in a row the closed shards' pending batches are reported
 * failed (their records cannot be placed). Under mu. */
void sl_producer_layout_check_locked(struct sluice_producer *p, uint64_t now)
{
    if (p->opts.ack != SLUICE_ACK_NONE || now < p->layout_check_ms) {
        return;
    }
    if (p->stats.batches_sent != p->layout_check_batches && !p->layout_stale) {
        p->layout_stale = 1;
        p->layout_retry_at_ms = now;
    }
    p->layout_check_ms = now + PRODUCER_LAYOUT_CHECK_MS;
    p->layout_check_batches = p->stats.batches_sent;
}

void sl_producer_layout_refresh_done_locked(struct sluice_producer *p, int rc,
                                            const struct sluice_stream_info *info, struct pwork *w)
{
    if (rc == SL_OK) {
        rc = sl_producer_layout_apply_locked(p, info);
    }
    if (rc == SL_OK) {
        return;
    }
    uint32_t f = p->layout_failures++;
    uint64_t backoff = (uint64_t)p->opts.retry_backoff_ms << (f < 16 ? f : 16);
    p->layout_retry_at_ms = sl_clock_mono_ms() +
                            (backoff > PRODUCER_BACKOFF_MAX_MS ? PRODUCER_BACKOFF_MAX_MS : backoff);
    if (p->layout_failures <= p->opts.retries) {
        return;
    }
    p->layout_failures = 0;
    for (uint32_t i = 0; i < p->shard_count; i++) {
        struct pshard *s = p->shards[i];
        if (!s->closed || s->inflight > 0) {
            continue;
        }
        sl_producer_seal_locked(p, s);
        while (s->head != NULL) {
            struct pbatch *h = s->head;
            s->head = h->next;
            sl_producer_fail_locked(p, h, rc == SL_EAGAIN ? SL_ESHARD_CLOSED : rc, w);
        }
        s->tail = NULL;
    }
    sl_producer_draining_recount_locked(p);
}
