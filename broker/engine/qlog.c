/* qlog.c - a queue group's durable changes, replicated on cluster streams (see qlog.h).
 *
 * One batch is filled at a time (e->qlog_open), for one (stream, home shard); a change for
 * another target, or one that does not fit, seals it first. It is sealed by a deferred call
 * at the end of the loop turn, so a receive's counts or a settle's acks go as one batch.
 * A sealed batch is appended to its shard once every store change it carries is durable
 * (the store answers in call order, so batches are appended in the order they were filled),
 * and is done when that append is answered (or a store change failed: nothing appended);
 * its callbacks then run in call order.
 */
#include "broker/engine/qlog.h"

#include "broker/engine/catalog.h"
#include "broker/engine/control.h"
#include "broker/engine/engine.h"
#include "broker/engine/produce.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/partition.h"
#include "common/ring.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qlog_waiter {
    sl_qstate_cb cb;
    void *ctx;
};

struct sl_qlog_batch {
    struct sl_deferred defer; /* the send at the end of the loop turn */
    struct sl_engine *e;
    struct sl_stream *st; /* held: st->inflight */
    uint32_t shard;       /* the groups' home shard it goes to */
    bool sealed;          /* no more changes: it goes once the store made them durable */
    bool submitted;       /* its produce is out */
    bool done;            /* answered: freed by its deferred call, still queued */
    uint32_t stores;      /* the store changes not durable yet */
    int err;              /* the first failure */
    char why[256];
    struct sl_batch_builder bb;
    size_t len;
    uint32_t n_waiters;
    struct qlog_waiter w[SL_QLOG_CHANGES_MAX];
    uint8_t buf[SL_QLOG_BATCH_BYTES];
};

/* The record of a change being added, and room for the largest. */
static uint8_t qlog_value[SL_CONTROL_Q_VALUE_MAX];

static void batch_done(struct sl_qlog_batch *q)
{
    SL_ASSERT(q->sealed && q->stores == 0);
    if (q->err != SL_OK) {
        sl_warn("queue", "stream %s: queue-group changes in shard %u not made durable: %s",
                q->st->name, q->shard, q->why);
    }
    for (uint32_t i = 0; i < q->n_waiters; i++) {
        q->w[i].cb(q->w[i].ctx, q->err);
    }
    q->st->inflight--;
    if (q->defer.queued) {
        q->done = true; /* (sent before the end of its turn: the ring still names it) */
        return;
    }
    free(q);
}

static void batch_fail(struct sl_qlog_batch *q, int err, const char *why)
{
    if (err != SL_OK && q->err == SL_OK) {
        q->err = err;
        snprintf(q->why, sizeof(q->why), "%s", why);
    }
}

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct sl_qlog_batch *q = ctx;
    SL_ASSERT(q->submitted);
    batch_fail(q, r->err, r->why);
    batch_done(q);
}

/* The batch goes to the log only once this broker's store holds its changes durably: a log
 * never holds a change its broker's store may lack after a crash (as a follower's:
 * replicas.c fwrite_hold). A store that failed sends nothing. */
static void batch_submit(struct sl_qlog_batch *q)
{
    SL_ASSERT(q->sealed && q->stores == 0 && !q->submitted);
    if (q->bb.count == 0 || q->err != SL_OK) {
        SL_ASSERT(q->bb.count > 0 || q->n_waiters == 0);
        batch_done(q);
        return;
    }
    q->submitted = true;
    struct sl_produce_req pr = {.stream = q->st->name,
                                .shard = q->shard,
                                .batch = q->buf,
                                .len = q->len,
                                .ack = SL_ACK_DURABLE,
                                .caller_routed = true,
                                .control = true};
    sl_produce_submit(q->e, &pr, on_produced, q);
}

static void on_store_done(void *ctx, int err)
{
    struct sl_qlog_batch *q = ctx;
    batch_fail(q, err, "this broker's queue-state store failed its write");
    SL_ASSERT(q->stores > 0);
    if (--q->stores == 0 && q->sealed) {
        batch_submit(q);
    }
}

static void batch_send(struct sl_qlog_batch *q)
{
    SL_ASSERT(!q->sealed);
    if (q->e->qlog_open == q) {
        q->e->qlog_open = NULL;
    }
    q->sealed = true;
    if (q->bb.count > 0) {
        int rc =
            sl_batch_builder_finish(&q->bb, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &q->len);
        SL_ASSERT(rc == SL_OK); /* records were added, each within the buffer */
        sl_batch_mark_control(q->buf, q->len);
    }
    if (q->stores == 0) {
        batch_submit(q);
    }
}

static void on_defer(struct sl_deferred *d)
{
    struct sl_qlog_batch *q = sl_container_of(d, struct sl_qlog_batch, defer);
    if (q->done) {
        free(q);
    } else if (!q->sealed) {
        batch_send(q);
    }
}

/* The batch a change of `group` on cluster stream st goes into, with room for one more. */
static struct sl_qlog_batch *batch_for(struct sl_engine *e, struct sl_stream *st, const char *group)
{
    uint32_t shard = sl_partition_group_shard(group, strlen(group), st->shard_count);
    struct sl_qlog_batch *q = e->qlog_open;
    if (q != NULL && (q->st != st || q->shard != shard || q->n_waiters == SL_QLOG_CHANGES_MAX ||
                      q->bb.count == SL_QLOG_CHANGES_MAX ||
                      q->bb.cap - q->bb.len < SL_CONTROL_Q_VALUE_MAX + 64u)) {
        batch_send(q);
        q = NULL;
    }
    if (q == NULL) {
        q = malloc(sizeof(*q));
        if (q == NULL) {
            return NULL;
        }
        memset(q, 0, offsetof(struct sl_qlog_batch, w));
        q->e = e;
        q->st = st;
        q->shard = shard;
        q->defer.fn = on_defer;
        sl_batch_builder_init(&q->bb, q->buf, sizeof(q->buf));
        st->inflight++;
        e->qlog_open = q;
        sl_ring_defer(sl_catalog_ring(e->catalog), &q->defer);
    }
    return q;
}

/* Adds the change `op`, already made in this broker's store (which answers on_store_done). */
static void batch_add(struct sl_qlog_batch *q, const struct sl_control_qop *op, sl_qstate_cb cb,
                      void *ctx)
{
    struct sl_record rec;
    int rc = sl_control_qop_record(op, sl_clock_wall_ms(), qlog_value, &rec);
    SL_ASSERT(rc == SL_OK); /* the store took the same names and bounds */
    rc = sl_batch_builder_add(&q->bb, &rec);
    SL_ASSERT(rc == SL_OK); /* batch_for left room for the largest */
    q->stores++;
    if (cb != NULL) {
        q->w[q->n_waiters++] = (struct qlog_waiter){cb, ctx};
    }
}

/* The change was tried on this broker's store (rc): made, it goes into the batch too. */
static int added(struct sl_qlog_batch *q, int rc, const struct sl_control_qop *op, sl_qstate_cb cb,
                 void *ctx)
{
    if (rc == SL_OK) {
        batch_add(q, op, cb, ctx);
    }
    return rc;
}

int sl_qlog_create_group(struct sl_engine *e, struct sl_stream *st, const struct sl_qgroup_def *def,
                         uint32_t shard_count, const uint64_t *start_floor, sl_qstate_cb cb,
                         void *ctx)
{
    if (!st->cluster) {
        return sl_qstate_create_group(st->qstate, def, shard_count, start_floor, cb, ctx);
    }
    struct sl_qlog_batch *q = batch_for(e, st, def->name);
    if (q == NULL) {
        return SL_ENOMEM;
    }
    struct sl_control_qop op = {.kind = SL_CONTROL_Q_CREATE,
                                .def = *def,
                                .shard_count = shard_count,
                                .floors = start_floor};
    return added(
        q, sl_qstate_create_group(st->qstate, def, shard_count, start_floor, on_store_done, q), &op,
        cb, ctx);
}

int sl_qlog_delete_group(struct sl_engine *e, struct sl_stream *st, const char *group,
                         sl_qstate_cb cb, void *ctx)
{
    if (!st->cluster) {
        return sl_qstate_delete_group(st->qstate, group, cb, ctx);
    }
    struct sl_qlog_batch *q = batch_for(e, st, group);
    if (q == NULL) {
        return SL_ENOMEM;
    }
    struct sl_control_qop op = {.kind = SL_CONTROL_Q_DELETE};
    snprintf(op.group, sizeof(op.group), "%s", group);
    return added(q, sl_qstate_delete_group(st->qstate, group, on_store_done, q), &op, cb, ctx);
}

int sl_qlog_ack(struct sl_engine *e, struct sl_stream *st, const char *group, uint32_t shard,
                uint64_t first, uint64_t end, sl_qstate_cb cb, void *ctx)
{
    if (!st->cluster) {
        return sl_qstate_ack(st->qstate, group, shard, first, end, cb, ctx);
    }
    struct sl_qlog_batch *q = batch_for(e, st, group);
    if (q == NULL) {
        return SL_ENOMEM;
    }
    struct sl_control_qop op = {.kind = SL_CONTROL_Q_ACK, .shard = shard, .a = first, .b = end};
    snprintf(op.group, sizeof(op.group), "%s", group);
    return added(q, sl_qstate_ack(st->qstate, group, shard, first, end, on_store_done, q), &op, cb,
                 ctx);
}

int sl_qlog_set_count(struct sl_engine *e, struct sl_stream *st, const char *group, uint32_t shard,
                      uint64_t seq, uint32_t count, sl_qstate_cb cb, void *ctx)
{
    if (!st->cluster) {
        return sl_qstate_set_count(st->qstate, group, shard, seq, count, cb, ctx);
    }
    struct sl_qlog_batch *q = batch_for(e, st, group);
    if (q == NULL) {
        return SL_ENOMEM;
    }
    struct sl_control_qop op = {.kind = SL_CONTROL_Q_COUNT, .shard = shard, .a = seq, .b = count};
    snprintf(op.group, sizeof(op.group), "%s", group);
    return added(q, sl_qstate_set_count(st->qstate, group, shard, seq, count, on_store_done, q),
                 &op, cb, ctx);
}

int sl_qlog_add_counters(struct sl_engine *e, struct sl_stream *st, const char *group,
                         uint64_t dead_lettered, uint64_t filtered_out, sl_qstate_cb cb, void *ctx)
{
    if (!st->cluster) {
        return sl_qstate_add_counters(st->qstate, group, dead_lettered, filtered_out, cb, ctx);
    }
    struct sl_qlog_batch *q = batch_for(e, st, group);
    if (q == NULL) {
        return SL_ENOMEM;
    }
    struct sl_control_qop op = {.kind = SL_CONTROL_Q_COUNTERS};
    snprintf(op.group, sizeof(op.group), "%s", group);
    int rc =
        sl_qstate_add_counters(st->qstate, group, dead_lettered, filtered_out, on_store_done, q);
    /* the totals, not the increments: a replica that applies the record twice (control.h:
     * fetched again after a crash) counts once */
    sl_qstate_counters(st->qstate, group, &op.a, &op.b);
    return added(q, rc, &op, cb, ctx);
}

/* ---- followers ------------------------------------------------------------------------ */

struct apply_ctx {
    struct sl_stream *st;
    struct sl_qstate *qs;
    uint64_t floors[SL_QSTATE_SHARDS_MAX];
    uint32_t refused;
    int first_err;
    char first_group[SL_QSTATE_NAME_MAX + 1];
};

static void apply_one(void *ctx, const struct sl_control_qop *op)
{
    struct apply_ctx *a = ctx;
    struct sl_qstate *qs = a->qs;
    int rc;
    switch (op->kind) {
    case SL_CONTROL_Q_CREATE:
        for (uint32_t i = 0; i < op->shard_count; i++) {
            a->floors[i] = sl_get_u64(op->floors_be + 8u * i);
        }
        rc = sl_qstate_create_group(qs, &op->def, op->shard_count, a->floors, NULL, NULL);
        rc = rc == SL_EEXIST ? SL_OK : rc; /* made again after a truncation: the same one */
        break;
    case SL_CONTROL_Q_DELETE:
        rc = sl_qstate_delete_group(qs, op->group, NULL, NULL);
        rc = rc == SL_ENOTFOUND ? SL_OK : rc;
        break;
    case SL_CONTROL_Q_ACK:
        rc = sl_qstate_ack(qs, op->group, op->shard, op->a, op->b, NULL, NULL);
        break;
    case SL_CONTROL_Q_COUNT:
        rc = sl_qstate_set_count(qs, op->group, op->shard, op->a, (uint32_t)op->b, NULL, NULL);
        break;
    case SL_CONTROL_Q_COUNTERS: {
        uint64_t dead = 0, filtered = 0; /* the record holds totals: add what is missing */
        sl_qstate_counters(qs, op->group, &dead, &filtered);
        rc = op->a > dead || op->b > filtered
                 ? sl_qstate_add_counters(qs, op->group, op->a > dead ? op->a - dead : 0,
                                          op->b > filtered ? op->b - filtered : 0, NULL, NULL)
                 : SL_OK;
        break;
    }
    default:
        rc = SL_EINVAL;
        break;
    }
    if (rc != SL_OK && rc != SL_ENOTFOUND) { /* a change of a group deleted since: moot */
        if (a->refused++ == 0) {
            a->first_err = rc;
            snprintf(a->first_group, sizeof(a->first_group), "%s", op->group);
        }
    }
}

void sl_qlog_apply(struct sl_engine *e, struct sl_bshard *b, const uint8_t *batch,
                   const struct sl_batch_header *h)
{
    SL_ASSERT(h->control);
    struct sl_stream *st = b->stream;
    static struct apply_ctx a; /* main loop only; too large for the stack (floors) */
    static struct sl_control_qop scratch;
    memset(&a, 0, offsetof(struct apply_ctx, floors));
    a.st = st;
    char why[300];
    int rc = sl_catalog_qstate(e->catalog, st, &a.qs, why, sizeof(why));
    if (rc == SL_OK) {
        rc = sl_control_each_qop(batch, h, &scratch, apply_one, &a);
        if (rc != SL_OK) {
            snprintf(why, sizeof(why), "the control batch does not decode (%s)", sl_strerror(rc));
        } else if (a.refused > 0) {
            rc = a.first_err;
            snprintf(why, sizeof(why),
                     "%u change(s) refused by the store, the first of group "
                     "%s: %s",
                     a.refused, a.first_group, sl_strerror(a.first_err));
        }
    }
    if (rc != SL_OK) {
        /* The log holds the changes; this replica's store lacks them, so were it to lead
         * the group would deliver again what they acked (at-least-once), never lose one. */
        sl_warn("queue",
                "stream %s shard %u: replicated queue-group changes at %" PRIu64
                " not applied to this broker's store: %s",
                st->name, b->id, h->base_seq, why);
    }
}
