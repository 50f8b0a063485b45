/* produce_reroute.c - an ACK_NONE batch that reached a shard a reshard closed (#16).
 *
 * A producer that asks for no answer never hears SHARD_CLOSED, so it would go on sending to
 * the closed shard until its next look at the stream's layout, and every record it sent
 * meanwhile would be dropped. Instead the broker routes them itself: each record goes to
 * the open shard whose range holds its key's hash (an unkeyed one to the first open shard),
 * in one batch per destination - more when a destination's records pass batch_bytes_max
 * uncompressed - kept in the batch's order, without a producer id (there is no retry to
 * de-duplicate: the producer wanted no answer). Cold path: it runs only in the moments
 * after a change, so it allocates freely.
 *
 * Ownership: the op owns the new batches until every append has answered.
 */
#include "broker/engine/produce_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reroute {
    sl_produce_cb cb;
    void *ctx;
    uint32_t shard;   /* the closed one the batch was sent to */
    uint32_t pending; /* appends out, + 1 while submitting */
    int err;
    uint32_t stored;
    uint8_t **bufs;
    uint32_t n_bufs;
};

static void reroute_put(struct reroute *r)
{
    SL_ASSERT(r->pending > 0);
    if (--r->pending > 0) {
        return;
    }
    char why[160] = "";
    if (r->err != SL_OK) {
        snprintf(why, sizeof(why), "re-routing the records a closed shard got: %s",
                 sl_strerror(r->err));
    }
    struct sl_produce_result res = {.err = r->err, .why = why, .shard = r->shard,
                                    .count = r->stored};
    r->cb(r->ctx, &res);
    for (uint32_t i = 0; i < r->n_bufs; i++) {
        free(r->bufs[i]);
    }
    free(r->bufs);
    free(r);
}

static void on_part(void *ctx, const struct sl_produce_result *res)
{
    struct reroute *r = ctx;
    if (res->err != SL_OK && r->err == SL_OK) {
        r->err = res->err;
    }
    r->stored += res->err == SL_OK ? res->count : 0;
    reroute_put(r);
}

/* Appends the batch being built in b (if any) to `shard` and starts a new one. */
static int submit_part(struct sl_engine *e, struct reroute *r, const char *stream,
                       uint32_t shard, struct sl_batch_builder *bb)
{
    if (bb->count == 0) {
        return SL_OK;
    }
    size_t len = 0;
    int rc = sl_batch_builder_finish(bb, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len);
    if (rc != SL_OK) {
        return rc;
    }
    r->pending++;
    struct sl_produce_req req = {.stream = stream, .shard = shard, .batch = bb->buf, .len = len,
                                 .ack = SL_ACK_NONE};
    sl_produce_submit(e, &req, on_part, r);
    return SL_OK;
}

static int add_view(struct sl_batch_builder *bb, const struct sl_record_view *v)
{
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    uint32_t n = 0, pos = 0;
    while (n < SL_RECORD_ATTRS_MAX && sl_record_attr_next(v, &pos, &attrs[n]) == 1) {
        n++;
    }
    struct sl_record rec = {.key = v->key, .key_len = v->key_len, .value = v->value,
                            .value_len = v->value_len, .attrs = attrs, .attr_count = n,
                            .timestamp_ms = v->timestamp_ms};
    return sl_batch_builder_add(bb, &rec);
}

/* The records in `order` (grouped by destination, each group in the batch's order), in runs
 * of one destination, cut into batches of at most `cap` bytes. */
static int route_all(struct sl_engine *e, struct reroute *r, const char *stream,
                     const struct sl_record_view *views, const uint32_t *to,
                     const uint32_t *order, uint32_t n, size_t cap)
{
    struct sl_batch_builder bb = {0};
    uint32_t dest = UINT32_MAX;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        if (to[i] != dest && bb.buf != NULL) {
            int rc = submit_part(e, r, stream, dest, &bb);
            if (rc != SL_OK) {
                return rc;
            }
            bb.buf = NULL;
        }
        dest = to[i];
        for (int tries = 0; tries < 2; tries++) {
            if (bb.buf == NULL) {
                uint8_t **grown = realloc(r->bufs, (r->n_bufs + 1) * sizeof(*grown));
                uint8_t *buf = grown != NULL ? malloc(cap) : NULL;
                if (grown != NULL) {
                    r->bufs = grown;
                }
                if (buf == NULL) {
                    return SL_ENOMEM;
                }
                r->bufs[r->n_bufs++] = buf;
                sl_batch_builder_init(&bb, buf, cap);
            }
            int rc = add_view(&bb, &views[i]);
            if (rc == SL_OK) {
                break;
            }
            if ((rc != SL_ETOOBIG && rc != SL_ELIMIT) || bb.count == 0) {
                return rc; /* (a record alone fits: it came in a batch this size) */
            }
            rc = submit_part(e, r, stream, dest, &bb);
            if (rc != SL_OK) {
                return rc;
            }
            bb.buf = NULL;
        }
    }
    return bb.buf != NULL ? submit_part(e, r, stream, dest, &bb) : SL_OK;
}

void sl_produce_reroute(struct sl_engine *e, struct sl_bshard *b, const struct sl_produce_req *req,
                        const struct sl_batch_header *h, sl_produce_cb cb, void *ctx)
{
    struct sl_stream *st = b->stream;
    SL_ASSERT(st->lineage.shard[b->id].closed && req->ack == SL_ACK_NONE);
    struct reroute *r = calloc(1, sizeof(*r));
    uint32_t n = h->record_count;
    struct sl_record_view *views = malloc((size_t)n * sizeof(*views));
    uint32_t *to = malloc((size_t)n * sizeof(*to));
    int rc = r == NULL || views == NULL || to == NULL ? SL_ENOMEM : SL_OK;
    if (rc == SL_OK) {
        *r = (struct reroute){.cb = cb, .ctx = ctx, .shard = b->id, .pending = 1};
        rc = sl_batch_verify(req->batch, h);
    }
    struct sl_batch_iter it;
    if (rc == SL_OK && (rc = sl_engine_scratch_reserve(e, h->codec, h->records_len)) == SL_OK) {
        rc = sl_batch_iter_init(&it, req->batch, h, e->zctx, e->scratch, e->scratch_cap);
    }
    /* where each record goes: the open shard holding its key's hash */
    uint32_t unkeyed = sl_catalog_open_shard(st, 0);
    for (uint32_t i = 0; rc == SL_OK && i < n; i++) {
        rc = sl_batch_iter_next(&it, &views[i]);
        if (rc == SL_OK) {
            to[i] = views[i].key_len > 0
                        ? sl_catalog_route(st, sl_partition_hash(views[i].key, views[i].key_len))
                        : unkeyed;
        }
    }
    /* grouped by destination, each group in the batch's order (a counting sort over the
     * shard ids); views stay valid: the scratch is the engine's until this returns, and the
     * new batches are copies */
    uint32_t ids = st->shard_count;
    uint32_t *count = rc == SL_OK ? calloc((size_t)ids + 1, sizeof(*count)) : NULL;
    uint32_t *order = rc == SL_OK ? malloc((size_t)n * sizeof(*order)) : NULL;
    if (rc == SL_OK && (count == NULL || order == NULL)) {
        rc = SL_ENOMEM;
    }
    if (rc == SL_OK) {
        for (uint32_t i = 0; i < n; i++) {
            SL_ASSERT(to[i] < ids);
            count[to[i] + 1]++;
        }
        for (uint32_t s = 1; s <= ids; s++) {
            count[s] += count[s - 1];
        }
        for (uint32_t i = 0; i < n; i++) {
            order[count[to[i]]++] = i;
        }
        rc = route_all(e, r, st->name, views, to, order, n, e->cfg.batch_bytes_max);
    }
    free(count);
    free(order);
    free(views);
    free(to);
    if (r == NULL) {
        struct sl_produce_result res = {.err = SL_ENOMEM, .why = "out of memory", .shard = b->id};
        cb(ctx, &res);
        return;
    }
    if (rc != SL_OK && r->err == SL_OK) {
        r->err = rc;
    }
    reroute_put(r); /* the submitting loop's own count */
}
