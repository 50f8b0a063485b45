/* reshard.c - splitting and merging a stream's shards (see reshard.h). */
#include "broker/engine/reshard.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "broker/engine/queue.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_reshard_op {
    struct sl_engine *e;
    struct sl_stream *st;
    sl_reshard_cb cb;
    void *ctx;
    uint64_t start_ns; /* submitted */
    uint64_t drained_ns; /* the closing shards' appends were done */
    struct sl_catalog_reshard r;
};

/* Ends the change: the appends held behind it are refused (made: the
 * children take them) or started (not made), unless the stream is being
 * freed (`going`: its logs are closed, the held appends go with it). */
static void finish(struct sl_reshard_op *op, int err, const char *why, bool going)
{
    struct sl_stream *st = op->st;
    SL_ASSERT(st->reshard == op && st->inflight > 0);
    SL_ASSERT(err != SL_OK || st->shard_count > op->r.first_new);
    st->reshard = NULL;
    st->inflight--;
    for (uint32_t i = 0; i < op->r.n_closed; i++) {
        struct sl_bshard *b = st->shards[op->r.closed[i]];
        SL_ASSERT(b->closing && (err != SL_OK || st->lineage.shard[b->id].closed));
        b->closing = false;
        if (going) {
            continue;
        } else if (err == SL_OK) {
            sl_produce_refuse_closed(b);
        } else {
            sl_produce_shard_progress(b); /* as before: its waiting appends go on */
        }
    }
    /* (commit moved the new lineage out of r: the count is the stream's) */
    struct sl_reshard_result res = {.err = err, .why = err == SL_OK ? "" : why,
                                    .closed = op->r.closed, .n_closed = op->r.n_closed,
                                    .first_new = op->r.first_new,
                                    .n_new = err == SL_OK ? st->shard_count - op->r.first_new : 0};
    op->cb(op->ctx, &res);
    sl_catalog_reshard_free(&op->r);
    free(op);
}

/* Every shard being closed has no append in flight: commit. */
static void commit(struct sl_reshard_op *op)
{
    struct sl_stream *st = op->st;
    SL_ASSERT(st->reshard == op);
    char why[512];
    if (st->deleted) {
        finish(op, SL_ECLOSED, "the stream was deleted during the change", false);
        return;
    }
    if (op->e->stopping) { /* (the catalog may be closing its logs: open none) */
        finish(op, SL_ECLOSED, "the broker is stopping: the change was not made", false);
        return;
    }
    uint32_t count = op->r.next.n;
    int rc = sl_produce_stream_grow(st, count);
    if (rc == SL_OK) {
        rc = sl_fetch_stream_grow(st, count);
    }
    if (rc != SL_OK) {
        finish(op, rc, "out of memory growing the stream's per-shard tables", false);
        return;
    }
    /* (grown before the commit: a failed commit leaves queue groups with
     * shards the stream does not have yet, which nothing reads) */
    rc = sl_queue_stream_grow(st, count, why, sizeof(why));
    if (rc != SL_OK) {
        finish(op, rc, why, false);
        return;
    }
    op->drained_ns = sl_clock_mono_ns();
    rc = sl_catalog_reshard_commit(op->e->catalog, st, &op->r, why, sizeof(why));
    if (rc == SL_OK) { /* what the producers of the closed shards waited for */
        uint64_t now = sl_clock_mono_ns();
        sl_info("reshard", "stream %s: %u shard(s) closed after %.1f ms waiting for their "
                "appends in flight and %.1f ms making the change durable",
                st->name, op->r.n_closed, (double)(op->drained_ns - op->start_ns) / 1e6,
                (double)(now - op->drained_ns) / 1e6);
    }
    finish(op, rc, why, false);
}

static bool drained(const struct sl_reshard_op *op)
{
    for (uint32_t i = 0; i < op->r.n_closed; i++) {
        if (op->st->shards[op->r.closed[i]]->appends > 0) {
            return false;
        }
    }
    return true;
}

void sl_reshard_drained(struct sl_stream *st)
{
    struct sl_reshard_op *op = st->reshard;
    if (op != NULL && drained(op)) {
        commit(op);
    }
}

void sl_reshard_stream_gone(struct sl_stream *st)
{
    if (st->reshard != NULL) {
        finish(st->reshard, SL_ECLOSED, "the broker is stopping: the change was not made", true);
    }
}

/* A target count: the plan's splits and merges (lineage.h), applied in order. */
static int to_target(const struct sl_stream *st, uint32_t target, struct sl_lineage *next,
                     char *why, size_t why_len)
{
    if (target == 0 || target > SL_STREAM_SHARDS_MAX) {
        snprintf(why, why_len, "a target of %u open shards: 1 to %u", target,
                 SL_STREAM_SHARDS_MAX);
        return SL_EINVAL;
    }
    uint32_t cap = st->lineage.open + target + 2, n = 0;
    struct sl_reshard_step *steps = calloc(cap, sizeof(*steps));
    if (steps == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_lineage_plan(&st->lineage, target, steps, cap, &n);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot plan %u open shards: %s", target, sl_strerror(rc));
    } else if (n == 0) {
        snprintf(why, why_len, "stream %s has %u open shards of those ranges already", st->name,
                 st->lineage.open);
        rc = SL_EINVAL;
    }
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        rc = sl_lineage_apply(next, &steps[i], why, why_len);
    }
    free(steps);
    return rc;
}

/* The stream's lineage with the change made (lineage.h checks what the request names: the
 * shards exist and are open, a split point is inside its shard, merged shards touch). */
static int build(const struct sl_stream *st, const struct sl_reshard_req *req,
                 struct sl_lineage *next, char *why, size_t why_len)
{
    int rc = sl_lineage_copy(next, &st->lineage);
    if (rc != SL_OK) {
        snprintf(why, why_len, "%s", sl_strerror(rc));
        return rc;
    }
    uint32_t kids[2], child;
    if (req->kind == SL_RESHARD_SPLIT) {
        uint64_t at = req->has_at || req->shard >= next->n ? req->at
                                                           : sl_lineage_middle(next, req->shard);
        rc = sl_lineage_split(next, req->shard, at, kids, why, why_len);
    } else if (req->kind == SL_RESHARD_MERGE) {
        rc = sl_lineage_merge(next, req->shard, req->adjacent, &child, why, why_len);
    } else {
        rc = to_target(st, req->target, next, why, why_len);
    }
    if (rc == SL_ELIMIT) {
        snprintf(why, why_len,
                 "stream %s would have more than %u shard ids (open, closed and removed "
                 "by retention: an id is never reused): reshard in fewer, larger steps, or "
                 "move to a new stream",
                 st->name, SL_LINEAGE_SHARDS_MAX);
    }
    return rc;
}

void sl_reshard_submit(struct sl_engine *e, const struct sl_reshard_req *req, sl_reshard_cb cb,
                       void *ctx)
{
    char why[512] = "";
    int rc = SL_OK;
    struct sl_reshard_result fail = {.why = why};
    struct sl_stream *st = sl_engine_stream(e, req->stream, why, sizeof(why), &rc);
    if (st != NULL && sl_stream_replicated(st)) {
        rc = SL_EUNSUPPORTED;
        snprintf(why, sizeof(why), SL_STREAM_REPLICATED_WHY("resharding"));
    } else if (st != NULL && st->reshard != NULL) {
        rc = SL_EAGAIN;
        snprintf(why, sizeof(why), "a change of stream %s's shards is under way: retry after it",
                 st->name);
    }
    struct sl_lineage next = {0};
    if (st != NULL && rc == SL_OK) {
        rc = build(st, req, &next, why, sizeof(why));
    }
    struct sl_reshard_op *op = NULL;
    if (rc == SL_OK && (op = calloc(1, sizeof(*op))) == NULL) {
        rc = SL_ENOMEM;
    }
    if (rc == SL_OK) {
        rc = sl_catalog_reshard_prepare(e->catalog, st, &next, &op->r, why, sizeof(why));
        if (rc != SL_OK) {
            sl_catalog_reshard_free(&op->r);
        }
    }
    sl_lineage_fini(&next); /* (empty once prepare took it) */
    if (rc != SL_OK) {
        free(op);
        if (why[0] == '\0') {
            snprintf(why, sizeof(why), "%s", sl_strerror(rc));
        }
        fail.err = rc;
        cb(ctx, &fail);
        return;
    }
    op->e = e;
    op->st = st;
    op->cb = cb;
    op->ctx = ctx;
    op->start_ns = sl_clock_mono_ns();
    SL_ASSERT(op->r.n_closed > 0 && op->r.first_new == st->shard_count);
    st->reshard = op;
    st->inflight++;
    for (uint32_t i = 0; i < op->r.n_closed; i++) {
        struct sl_bshard *b = st->shards[op->r.closed[i]];
        SL_ASSERT(!b->closing);
        b->closing = true;
    }
    if (drained(op)) {
        commit(op);
    } /* else: the last append in flight calls sl_reshard_drained */
}
