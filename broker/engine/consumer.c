/* consumer.c - consumer-group checkpoints and lag (see consumer.h). The
 * store is storage/checkpoint (one per stream, group-committed), opened by
 * the stream's first commit (sl_catalog_ckpt): until then st->ckpt is NULL
 * and the stream has no checkpoint. */
#include "broker/engine/consumer.h"

#include "broker/engine/catalog.h"
#include "broker/engine/control.h"
#include "broker/engine/coord.h"
#include "broker/engine/engine.h"
#include "broker/engine/produce.h"
#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/partition.h"
#include "storage/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* room for a commit's refusal: a group name (128) and the store's cause (160) */
#define COMMIT_WHY_MAX 352u

struct commit_op {
    struct sl_engine *e;
    uint64_t start_ns;
    struct sl_stream *stream;
    sl_done_cb cb;
    void *ctx;
    /* a cluster stream's commit: the checkpoint, durable in the home's store, then appended
     * to the group's shard */
    struct sl_control_ckpt ckpt;
    uint8_t batch[SL_CONTROL_CKPT_BATCH_MAX];
    size_t batch_len;
    uint32_t home_shard;
};

static void on_committed(void *ctx, int err)
{
    struct commit_op *op = ctx;
    sl_op_stats_record(&op->e->stats.op[SL_OP_COMMIT], err, sl_clock_mono_ns() - op->start_ns);
    op->stream->inflight--;
    op->cb(op->ctx, err, err == SL_OK ? "" : "checkpoint commit failed");
    free(op);
}

/* The checkpoint store's refusal, with its cause (out of descriptors named as such). */
static void commit_refused(struct sl_ckpt_store *cs, int rc, const char *group, char *why,
                           size_t why_len)
{
    struct sl_ckpt_stats cst;
    sl_ckpt_stats(cs, &cst);
    char cause[160];
    if (rc == SL_ELIMIT && cst.parked) { /* its files could not be reopened */
        sl_nofile_why(cause, sizeof(cause));
    } else {
        snprintf(cause, sizeof(cause), "%s", sl_strerror(rc));
    }
    snprintf(why, why_len, "cannot commit checkpoint for group %.128s: %s", group, cause);
}

int sl_consumer_group_home(struct sl_engine *e, struct sl_stream *st, const char *group,
                           struct sl_bshard **home, char *why, size_t why_len)
{
    *home = NULL;
    if (e->repl == NULL || !st->cluster) {
        return SL_OK;
    }
    uint32_t k = sl_partition_group_shard(group, strlen(group), st->shard_count);
    SL_ASSERT(k < st->shard_count);
    struct sl_bshard *b = st->shards[k];
    uint64_t end = 0;
    if (b->repl == NULL || e->repl->readable(e->repl->ctx, b, &end) != SL_OK) {
        snprintf(why, why_len,
                 "group %s of stream %s keeps its state in shard %u, which this broker does "
                 "not lead: ask that shard's leader (Metadata)",
                 group, st->name, k);
        return SL_ENOT_LEADER;
    }
    *home = b;
    return SL_OK;
}

/* A cluster stream's checkpoint is durable on the ISR in the group's shard (and in this
 * home's store, before: the followers' stores took it before their logs, replicas.c). */
static void on_control_appended(void *ctx, const struct sl_produce_result *r)
{
    struct commit_op *op = ctx;
    char why[COMMIT_WHY_MAX];
    snprintf(why, sizeof(why), "checkpoint of group %s not replicated: %s", op->ckpt.group, r->why);
    sl_op_stats_record(&op->e->stats.op[SL_OP_COMMIT], r->err, sl_clock_mono_ns() - op->start_ns);
    op->stream->inflight--;
    op->cb(op->ctx, r->err, r->err == SL_OK ? "" : why);
    free(op);
}

/* The home's store holds the checkpoint durably: now the group's shard takes it. The log
 * never holds a checkpoint its broker's store may lack after a crash. */
static void on_home_committed(void *ctx, int err)
{
    struct commit_op *op = ctx;
    if (err != SL_OK) {
        on_committed(op, err);
        return;
    }
    struct sl_produce_req pr = {.stream = op->stream->name,
                                .shard = op->home_shard,
                                .batch = op->batch,
                                .len = op->batch_len,
                                .ack = SL_ACK_DURABLE,
                                .caller_routed = true,
                                .control = true};
    sl_produce_submit(op->e, &pr, on_control_appended, op);
}

void sl_consumer_commit(struct sl_engine *e, const struct sl_commit_req *req, sl_done_cb cb,
                        void *ctx)
{
    char why[COMMIT_WHY_MAX];
    int rc;
    struct sl_bshard *b = sl_engine_shard(e, req->stream, req->shard, why, sizeof(why), &rc);
    if (b == NULL) {
        cb(ctx, rc, why);
        return;
    }
    const char *group = req->group != NULL ? req->group : "";
    struct sl_bshard *home = NULL;
    rc = sl_consumer_group_home(e, b->stream, group, &home, why, sizeof(why));
    if (rc != SL_OK) {
        cb(ctx, rc, why);
        return;
    }
    /* The tail bound: known here for a local shard, or a cluster shard this broker leads
     * (another broker's shard is checked by nobody: a position past its tail only makes
     * the group wait there). */
    uint64_t tail = UINT64_MAX, hw = 0;
    if (home == NULL) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&b->ws, &ss);
        tail = ss.visible_seq;
    } else if (b->repl != NULL && e->repl->readable(e->repl->ctx, b, &hw) == SL_OK) {
        tail = hw; /* what its consumers can have read */
    }
    if (req->seq > tail) {
        snprintf(why, sizeof(why),
                 "checkpoint %" PRIu64 " is beyond the shard's tail (%" PRIu64 ")", req->seq, tail);
        cb(ctx, SL_EINVAL, why);
        return;
    }
    bool member = req->member_id != NULL && req->member_id[0] != '\0';
    if (member) {
        rc = sl_coord_owns(e, b->stream->name, group, req->member_id, req->shard, why, sizeof(why));
        if (rc != SL_OK) {
            cb(ctx, rc, why);
            return;
        }
    }
    struct sl_ckpt_store *cs = NULL; /* opened by the stream's first commit */
    rc = sl_catalog_ckpt(e->catalog, b->stream, &cs, why, sizeof(why));
    if (rc != SL_OK) {
        cb(ctx, rc, why);
        return;
    }
    uint64_t cur = 0, updated = 0;
    if (member && !req->seek && sl_ckpt_get(cs, group, req->shard, &cur, &updated) == SL_OK &&
        req->seq < cur) {
        /* Only an explicit seek (sl_consumer_reset) moves a group back: a
         * member's commit below the checkpoint is a stale or confused one. */
        snprintf(why, sizeof(why),
                 "checkpoint of group %s on shard %u would move backwards (%" PRIu64 " -> %" PRIu64
                 "): refused; `sluice group reset` seeks a group explicitly",
                 group, req->shard, cur, req->seq);
        cb(ctx, SL_EINVAL, why);
        return;
    }
    struct commit_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    *op = (struct commit_op){
        .e = e, .start_ns = sl_clock_mono_ns(), .stream = b->stream, .cb = cb, .ctx = ctx};
    b->stream->inflight++;
    if (home != NULL) {
        /* Durable in this home's store first, then replicated as a control batch of the
         * group's shard (control.h): answered once durable on min_insync_replicas brokers. */
        op->ckpt.shard = req->shard;
        op->ckpt.seq = req->seq;
        op->ckpt.updated_ms = sl_clock_wall_ms();
        snprintf(op->ckpt.group, sizeof(op->ckpt.group), "%s", group);
        if (strlen(group) > SL_CKPT_GROUP_NAME_MAX ||
            sl_control_ckpt_batch(&op->ckpt, op->batch, sizeof(op->batch), &op->batch_len) !=
                SL_OK) {
            b->stream->inflight--;
            free(op);
            snprintf(why, sizeof(why), "a group name is 1 to %u bytes without NUL",
                     SL_CKPT_GROUP_NAME_MAX);
            cb(ctx, SL_EINVAL, why);
            return;
        }
        op->home_shard = home->id;
        rc = sl_ckpt_commit(cs, group, req->shard, req->seq, op->ckpt.updated_ms, on_home_committed,
                            op);
        if (rc != SL_OK) {
            b->stream->inflight--;
            free(op);
            commit_refused(cs, rc, group, why, sizeof(why));
            cb(ctx, rc, why);
        }
        return;
    }
    rc = sl_ckpt_commit(cs, group, req->shard, req->seq, sl_clock_wall_ms(), on_committed, op);
    if (rc != SL_OK) {
        b->stream->inflight--;
        free(op);
        commit_refused(cs, rc, group, why, sizeof(why));
        cb(ctx, rc, why);
    }
}

struct apply_ctx {
    struct sl_stream *st;
    struct sl_ckpt_store *cs;
    int err; /* the first refusal */
    char why[COMMIT_WHY_MAX];
};

static void apply_one(void *ctx, const struct sl_control_ckpt *c)
{
    struct apply_ctx *a = ctx;
    int rc = c->shard < a->st->shard_count
                 ? sl_ckpt_commit(a->cs, c->group, c->shard, c->seq, c->updated_ms, NULL, NULL)
                 : SL_EINVAL;
    if (rc != SL_OK && a->err == SL_OK) {
        a->err = rc;
        if (rc == SL_EINVAL) {
            snprintf(a->why, sizeof(a->why), "group %s: shard %u is not one of the stream's %u",
                     c->group, c->shard, a->st->shard_count);
        } else {
            commit_refused(a->cs, rc, c->group, a->why, sizeof(a->why));
        }
    }
}

void sl_consumer_apply_control(struct sl_engine *e, struct sl_bshard *b, const uint8_t *batch,
                               const struct sl_batch_header *h)
{
    SL_ASSERT(h->control);
    struct apply_ctx a = {.st = b->stream, .err = SL_OK};
    char why[COMMIT_WHY_MAX];
    int rc = sl_catalog_ckpt(e->catalog, b->stream, &a.cs, why, sizeof(why));
    if (rc == SL_OK) {
        rc = sl_control_each_ckpt(batch, h, apply_one, &a);
        if (rc != SL_OK) {
            snprintf(why, sizeof(why), "the control batch does not decode (%s)", sl_strerror(rc));
        } else if (a.err != SL_OK) {
            rc = a.err;
            snprintf(why, sizeof(why), "%s", a.why);
        }
    }
    if (rc != SL_OK) {
        /* The log holds the checkpoint; this replica's store lacks it, so were it to lead
         * the group would restart from an older one: read again, never lost. */
        sl_warn("consumer",
                "stream %s shard %u: a replicated checkpoint at %" PRIu64
                " was not applied to this broker's store: %s",
                b->stream->name, b->id, h->base_seq, why);
    }
}

/* One reset: its commits count down; the first error is the answer. */
struct reset_op {
    struct sl_engine *e;
    char *stream;
    char *group;
    uint32_t pending;
    int err;
    char why[200];
    sl_done_cb cb;
    void *ctx;
};

static void reset_done(void *ctx, int err, const char *why)
{
    struct reset_op *op = ctx;
    if (err != SL_OK && op->err == SL_OK) {
        op->err = err;
        snprintf(op->why, sizeof(op->why), "%s", why);
    }
    SL_ASSERT(op->pending > 0);
    if (--op->pending > 0) {
        return;
    }
    /* Members that joined while the commits were in flight may have read the
     * old checkpoints: they start over too. */
    sl_coord_evict(op->e, op->stream, op->group);
    op->cb(op->ctx, op->err, op->err == SL_OK ? "" : op->why);
    free(op->stream);
    free(op->group);
    free(op);
}

void sl_consumer_reset(struct sl_engine *e, const struct sl_reset_req *req, sl_done_cb cb,
                       void *ctx)
{
    char why[512];
    int rc;
    struct sl_stream *st = sl_engine_stream(e, req->stream, why, sizeof(why), &rc);
    if (st == NULL) {
        cb(ctx, rc, why);
        return;
    }
    if (req->group == NULL || req->group[0] == '\0' || req->n == 0) {
        cb(ctx, SL_EINVAL, "a reset names a group and at least one shard");
        return;
    }
    if (sl_coord_active(e, st->name, req->group) && !req->force) {
        snprintf(why, sizeof(why),
                 "group %s has active members on stream %s: stop them first, or force the "
                 "reset (they are removed and resume from the new checkpoints)",
                 req->group, st->name);
        cb(ctx, SL_EINVAL, why);
        return;
    }
    sl_coord_evict(e, st->name, req->group);
    struct reset_op *op = calloc(1, sizeof(*op));
    if (op != NULL) {
        op->stream = strdup(st->name);
        op->group = strdup(req->group);
    }
    if (op == NULL || op->stream == NULL || op->group == NULL) {
        if (op != NULL) {
            free(op->stream);
            free(op->group);
            free(op);
        }
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    op->e = e;
    op->cb = cb;
    op->ctx = ctx;
    /* +1 held by this loop, so that a callback run before the call returns
     * cannot finish the op while shards are still to be submitted. */
    op->pending = req->n + 1;
    for (uint32_t i = 0; i < req->n; i++) {
        struct sl_commit_req cr = {.stream = req->stream,
                                   .group = req->group,
                                   .shard = req->shards[i],
                                   .seq = req->seqs[i]};
        sl_consumer_commit(e, &cr, reset_done, op);
    }
    reset_done(op, SL_OK, "");
}

int sl_consumer_checkpoints(struct sl_engine *e, const char *stream, const char *group,
                            sl_checkpoint_fn fn, void *ctx, char *why, uint32_t why_len)
{
    int rc;
    struct sl_stream *st = sl_engine_stream(e, stream, why, why_len, &rc);
    if (st == NULL) {
        return rc;
    }
    struct sl_bshard *home = NULL;
    if (group != NULL &&
        (rc = sl_consumer_group_home(e, st, group, &home, why, why_len)) != SL_OK) {
        return rc; /* its home answers: this broker's copy may be behind */
    }
    if (st->ckpt != NULL) { /* none yet: no checkpoint */
        sl_ckpt_foreach(st->ckpt, group, fn, ctx);
    }
    return SL_OK;
}

int sl_consumer_lag(struct sl_engine *e, const char *stream, const char *group,
                    struct sl_shard_lag **out, uint32_t *n, char *why, uint32_t why_len)
{
    int rc;
    struct sl_stream *st = sl_engine_stream(e, stream, why, why_len, &rc);
    if (st == NULL) {
        return rc;
    }
    struct sl_shard_lag *lag = calloc(st->shard_count, sizeof(*lag));
    if (lag == NULL) {
        snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    /* times at the checkpoints: one batch (a synchronous call per worker) */
    struct sl_wshard_time *q = calloc(st->shard_count, sizeof(*q));
    if (q == NULL) {
        free(lag);
        snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    uint32_t nq = 0;
    for (uint32_t i = 0; i < st->shard_count; i++) {
        struct sl_wshard *ws = &st->shards[i]->ws;
        struct sl_shard_stats ss;
        sl_wshard_stats(ws, &ss);
        uint64_t seq = 0, updated = 0;
        if (st->ckpt == NULL ||
            sl_ckpt_get(st->ckpt, group != NULL ? group : "", i, &seq, &updated) != SL_OK ||
            seq < ss.first_seq) {
            seq = ss.first_seq;
        }
        lag[i].shard = i;
        lag[i].checkpoint = seq;
        lag[i].tail_seq = ss.visible_seq;
        lag[i].records_behind = ss.visible_seq > seq ? ss.visible_seq - seq : 0;
        if (lag[i].records_behind > 0) {
            q[nq++] = (struct sl_wshard_time){.b = ws, .seq = seq};
        }
    }
    sl_wshard_times_near(sl_catalog_workers(e->catalog), q, nq);
    for (uint32_t k = 0; k < nq; k++) {
        const struct sl_bshard *b = sl_container_of(q[k].b, struct sl_bshard, ws);
        struct sl_shard_stats ss;
        sl_wshard_stats(q[k].b, &ss);
        if (q[k].rc == SL_OK && ss.visible_time_ms > q[k].time_ms) {
            lag[b->id].ms_behind = ss.visible_time_ms - q[k].time_ms;
        }
    }
    free(q);
    *out = lag;
    *n = st->shard_count;
    return SL_OK;
}

struct lag_walk {
    struct sl_stream *st;
    struct sl_group_lag *v;
    size_t n;
    size_t cap;
    int err;
};

/* One entry per shard of each group of the stream (a shard without a
 * checkpoint counts from the oldest retained record, as GroupLag does). */
static void walk_ckpt(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                      uint64_t updated_ms)
{
    (void)shard;
    (void)seq;
    (void)updated_ms;
    struct lag_walk *w = ctx;
    struct sl_stream *st = w->st;
    /* checkpoints come in group-name order: the first of a group's run adds it */
    if (w->err != SL_OK || (w->n > 0 && w->v[w->n - 1].stream == st->name &&
                            strcmp(w->v[w->n - 1].group, group) == 0)) {
        return;
    }
    if (w->cap - w->n < st->shard_count) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        while (cap - w->n < st->shard_count) {
            cap *= 2;
        }
        struct sl_group_lag *v = realloc(w->v, cap * sizeof(*v));
        if (v == NULL) {
            w->err = SL_ENOMEM;
            return;
        }
        w->v = v;
        w->cap = cap;
    }
    for (uint32_t i = 0; i < st->shard_count; i++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[i]->ws, &ss);
        uint64_t at = 0, updated = 0;
        if (sl_ckpt_get(st->ckpt, group, i, &at, &updated) != SL_OK || at < ss.first_seq) {
            at = ss.first_seq;
        }
        struct sl_group_lag *g = &w->v[w->n];
        *g = (struct sl_group_lag){
            .stream = st->name,
            .group = strdup(group),
            .lag = {.shard = i,
                    .checkpoint = at,
                    .tail_seq = ss.visible_seq,
                    .records_behind = ss.visible_seq > at ? ss.visible_seq - at : 0}};
        if (g->group == NULL) {
            w->err = SL_ENOMEM;
            return;
        }
        w->n++;
    }
}

int sl_consumer_lag_all(struct sl_engine *e, struct sl_group_lag **out, size_t *n)
{
    struct lag_walk w = {.err = SL_OK};
    for (struct sl_stream *st = sl_catalog_first(e->catalog); st != NULL && w.err == SL_OK;
         st = st->next) {
        w.st = st;
        if (st->ckpt != NULL) {
            sl_ckpt_foreach(st->ckpt, NULL, walk_ckpt, &w);
        }
    }
    /* Milliseconds behind: the append time at each checkpoint, looked up in
     * one batch; the tail's time comes with the shard's stats. */
    size_t behind = 0;
    for (size_t i = 0; i < w.n; i++) {
        behind += w.v[i].lag.records_behind > 0;
    }
    struct sl_wshard_time *q = behind > 0 ? calloc(behind, sizeof(*q)) : NULL;
    if (behind > 0 && q == NULL) {
        w.err = SL_ENOMEM;
    }
    if (w.err != SL_OK) {
        sl_consumer_lag_all_free(w.v, w.n);
        free(q);
        return w.err;
    }
    size_t k = 0;
    for (size_t i = 0; i < w.n; i++) {
        if (w.v[i].lag.records_behind > 0) {
            struct sl_stream *st = sl_catalog_find(e->catalog, w.v[i].stream);
            q[k++] = (struct sl_wshard_time){.b = &st->shards[w.v[i].lag.shard]->ws,
                                             .seq = w.v[i].lag.checkpoint};
        }
    }
    sl_wshard_times_near(sl_catalog_workers(e->catalog), q, (uint32_t)behind);
    k = 0;
    for (size_t i = 0; i < w.n; i++) {
        if (w.v[i].lag.records_behind > 0) {
            struct sl_shard_stats ss;
            sl_wshard_stats(q[k].b, &ss);
            if (q[k].rc == SL_OK && ss.visible_time_ms > q[k].time_ms) {
                w.v[i].lag.ms_behind = ss.visible_time_ms - q[k].time_ms;
            }
            k++;
        }
    }
    free(q);
    *out = w.v;
    *n = w.n;
    return SL_OK;
}

void sl_consumer_lag_all_free(struct sl_group_lag *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].group);
    }
    free(v);
}
