/* queue_admin.c - a queue group's administration (queue.h): create (on a cluster stream by
 * its home, which must hold a replica of every shard), delete, list, stats and purge. The
 * group's runtime state is queue.c's (queue_int.h). Main loop only.
 */
#include "broker/engine/queue.h"
#include "broker/engine/queue_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/filter.h"
#include "broker/engine/filter_set.h"
#include "broker/engine/qlog.h"
#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/partition.h"
#include "storage/batch.h"
#include "storage/qstate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- create / delete / list ------------------------------------------ */

/* Each shard's floor for a new group starting at `start`. */
static void start_floors(const struct sl_engine *e, struct sl_stream *st,
                         const struct sl_position *start, uint64_t *floors)
{
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        ss.visible_seq = qg_shard_end(e, st->shards[s], &ss);
        uint64_t f = ss.first_seq;
        switch (start->kind) {
        case SL_POS_LATEST:
            f = ss.visible_seq;
            break;
        case SL_POS_AT_SEQ:
        case SL_POS_AFTER_SEQ:
            f = start->seq + (start->kind == SL_POS_AFTER_SEQ ? 1 : 0);
            f = f < ss.first_seq ? ss.first_seq : (f > ss.visible_seq ? ss.visible_seq : f);
            break;
        default: /* TRIM_HORIZON; AT_TIME skips older records as it reads */
            break;
        }
        floors[s] = f;
    }
}

/* The durable definition of a new group from its configuration. */
static int group_def(const char *group, const struct sl_qgroup_config *qc,
                     struct sl_qgroup_def *def, char *why, uint32_t why_len)
{
    memset(def, 0, sizeof(*def));
    size_t glen = strlen(group);
    if (glen == 0 || glen > SL_QUEUE_GROUP_NAME_MAX) {
        snprintf(why, why_len, "group name must be 1-128 bytes");
        return SL_EINVAL;
    }
    snprintf(def->name, sizeof(def->name), "%s", group);
    def->created_ms = sl_clock_wall_ms();
    if (qc == NULL) {
        return SL_OK;
    }
    const char *dlq = qc->dead_letter_stream != NULL ? qc->dead_letter_stream : "";
    if (qc->max_inflight > SL_QUEUE_INFLIGHT_MAX) {
        snprintf(why, why_len, "max_inflight must be at most %u", SL_QUEUE_INFLIGHT_MAX);
        return SL_EINVAL;
    }
    if (strlen(dlq) > SL_STREAM_NAME_MAX) {
        snprintf(why, why_len, "dead_letter_stream name too long");
        return SL_EINVAL;
    }
    def->visibility_timeout_ms = qc->visibility_timeout_ms;
    def->max_deliveries = qc->max_deliveries;
    def->max_inflight = qc->max_inflight;
    def->ordered = qc->ordered;
    snprintf(def->dead_letter_stream, sizeof(def->dead_letter_stream), "%s", dlq);
    if (qc->filter != NULL && qc->filter[0] != '\0') {
        struct sl_filter *f = NULL;
        char fwhy[256];
        enum sl_filter_scope scope =
            qc->filter_body ? SL_FILTER_SCOPE_BODY : SL_FILTER_SCOPE_ATTRIBUTES;
        int rc = sl_filter_parse(qc->filter, strlen(qc->filter), scope, &f, fwhy, sizeof(fwhy));
        if (rc != SL_OK) {
            snprintf(why, why_len, "invalid filter: %s", fwhy);
            return rc;
        }
        sl_filter_free(f);
        def->filter = (char *)qc->filter; /* borrowed for the call */
        def->filter_body = qc->filter_body;
    }
    if (qc->start.kind > SL_POS_AT_TIME) {
        snprintf(why, why_len, "unknown start position kind %u", qc->start.kind);
        return SL_EINVAL;
    }
    def->start_kind = qc->start.kind;
    def->start_seq = qc->start.seq;
    def->start_time_ms = qc->start.time_ms;
    def->end_time_ms = qc->end_time_ms;
    return SL_OK;
}

/* A group of a cluster stream is made by its home, which must hold a live replica of every
 * shard (it reads them all from its own replicas: docs/REPLICATION.md "Queue groups"). */
static int cluster_group_check(struct sl_engine *e, struct sl_stream *st, const char *group,
                               char *why, size_t why_len)
{
    int32_t epoch = -1;
    int rc = qg_group_home(e, st, group, &epoch, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        uint64_t end = 0;
        int32_t ep = -1;
        rc = e->repl->replica(e->repl->ctx, st->shards[s], &end, &ep);
        uint32_t k = sl_partition_group_shard(group, strlen(group), st->shard_count);
        if (rc == SL_EAGAIN) {
            snprintf(why, why_len,
                     "queue group %s of stream %s: its home (this broker, leader of shard %u) "
                     "holds a replica of shard %u that is not live yet (the stream was just "
                     "made, or the shard has no leader now): retry",
                     group, st->name, k, s);
            return SL_EAGAIN;
        }
        if (rc != SL_OK) {
            snprintf(why, why_len,
                     "queue group %s of stream %s: its home (this broker, leader of shard %u) "
                     "reads every shard from its own replicas and holds no live replica of "
                     "shard %u: queue groups need every shard replicated on the home's broker "
                     "(replication factor = brokers), or the shard's replica to recover",
                     group, st->name, k, s);
            return SL_EUNSUPPORTED;
        }
    }
    return SL_OK;
}

/* A replicated stream's dead letters go to a replicated stream, which must exist (a local
 * one, made on demand, would keep them on one broker; a replicated one is made through
 * ZooKeeper, by CreateStream). They reach it through its shards' leaders (queue_recv.c). */
static int dlq_check(const struct sl_engine *e, const struct sl_stream *st,
                     const struct sl_qgroup_def *def, char *why, size_t why_len)
{
    if (def->max_deliveries == 0 || !st->cluster) {
        return SL_OK;
    }
    char name[SL_STREAM_NAME_MAX + 1];
    if (def->dead_letter_stream[0] != '\0') {
        snprintf(name, sizeof(name), "%s", def->dead_letter_stream);
    } else {
        snprintf(name, sizeof(name), "%.*s.%.*s.dlq", 60, st->name, 60, def->name);
    }
    const struct sl_stream *dst = sl_catalog_find(e->catalog, name);
    if (dst == NULL && e->repl != NULL && e->repl->creating(e->repl->ctx, name)) {
        snprintf(why, why_len,
                 "queue group %s: its dead-letter stream %s is being created on this broker: "
                 "try again",
                 def->name, name);
        return SL_EAGAIN;
    }
    if (dst == NULL || !dst->cluster) {
        snprintf(why, why_len,
                 "queue group %s of replicated stream %s dead-letters into %s, which %s: "
                 "create it first as a replicated stream (`sluice stream create %s`), or name "
                 "another (dead_letter_stream)",
                 def->name, st->name, name, dst == NULL ? "does not exist" : "is a local stream",
                 name);
        return dst == NULL ? SL_ENOTFOUND : SL_EINVAL;
    }
    return SL_OK;
}

void sl_queue_create_group(struct sl_engine *e, const char *stream, const char *group,
                           const struct sl_qgroup_config *cfg, sl_done_cb cb, void *ctx)
{
    char why[700];
    int rc;
    struct sl_stream *st = sl_engine_stream(e, stream, why, sizeof(why), &rc);
    struct sl_qgroup_def def;
    struct sl_qstate *qs = NULL;
    if (st != NULL && st->cluster &&
        (rc = cluster_group_check(e, st, group != NULL ? group : "", why, sizeof(why))) != SL_OK) {
        cb(ctx, rc, why);
        return;
    }
    if (st != NULL && st->shard_count > SL_QSTATE_SHARDS_MAX) {
        snprintf(why, sizeof(why),
                 "stream %s has %u shards (closed ones included) and a queue group holds at "
                 "most %u: use a stream with fewer shards for queue groups",
                 st->name, st->shard_count, SL_QSTATE_SHARDS_MAX);
        cb(ctx, SL_ELIMIT, why);
        return;
    }
    if (st == NULL ||
        (rc = group_def(group != NULL ? group : "", cfg, &def, why, sizeof(why))) != SL_OK ||
        (rc = dlq_check(e, st, &def, why, sizeof(why))) != SL_OK ||
        (rc = sl_catalog_qstate(e->catalog, st, &qs, why, sizeof(why))) != SL_OK) {
        cb(ctx, rc, why);
        return;
    }
    uint64_t *floors = calloc(st->shard_count, sizeof(*floors));
    struct simple_op *op = floors != NULL ? qg_simple_new(e, st, cb, NULL, ctx) : NULL;
    if (op == NULL) {
        free(floors);
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    start_floors(e, st,
                 &(struct sl_position){
                     .kind = def.start_kind, .seq = def.start_seq, .time_ms = def.start_time_ms},
                 floors);
    op->outstanding++;
    rc = sl_qlog_create_group(e, st, &def, st->shard_count, floors, qg_simple_cb, op);
    free(floors);
    if (rc != SL_OK) {
        op->outstanding--;
        op->err = rc;
    }
    qg_simple_start(op);
}

/* The group (*g) and a new operation on it, or NULL once cb was answered why not. */
static struct simple_op *group_op(struct sl_engine *e, const char *stream, const char *group,
                                  sl_done_cb cb, void *ctx, struct qgroup **g)
{
    char why[300];
    int rc;
    *g = qg_lookup(e, stream, group, why, sizeof(why), &rc);
    if (*g == NULL) {
        cb(ctx, rc, why);
        return NULL;
    }
    struct simple_op *op = qg_simple_new(e, (*g)->stream, cb, NULL, ctx);
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
    }
    return op;
}

/* Receives in flight on the group end with SL_ENOTFOUND (parked ones at
 * once, others when their read returns); their leases go with the group. */
void sl_queue_delete_group(struct sl_engine *e, const char *stream, const char *group,
                           sl_done_cb cb, void *ctx)
{
    struct qgroup *g = NULL;
    struct simple_op *op = group_op(e, stream, group, cb, ctx, &g);
    if (op == NULL) {
        return;
    }
    struct sl_stream *st = g->stream;
    op->outstanding++;
    int rc = sl_qlog_delete_group(e, st, g->name, qg_simple_cb, op);
    if (rc != SL_OK) {
        op->outstanding--;
        op->err = rc;
    } else {
        qg_group_retire(g, SL_ENOTFOUND);
    }
    qg_simple_start(op);
}

struct groups_walk {
    void (*fn)(void *ctx, const char *name);
    void *ctx;
};

static void walk_group(void *ctx, const struct sl_qgroup_def *def)
{
    struct groups_walk *w = ctx;
    w->fn(w->ctx, def->name);
}

int sl_queue_groups(struct sl_engine *e, const char *stream,
                    void (*fn)(void *ctx, const char *name), void *ctx, char *why, uint32_t why_len)
{
    int rc;
    struct sl_stream *st = sl_engine_stream(e, stream, why, why_len, &rc);
    if (st == NULL) {
        return rc;
    }
    struct groups_walk w = {fn, ctx};
    if (st->qstate != NULL) { /* none yet: no group */
        sl_qstate_foreach_group(st->qstate, walk_group, &w);
    }
    return SL_OK;
}

/* ---- stats / purge ---------------------------------------------------- */

int sl_queue_stats(struct sl_engine *e, const char *stream, const char *group,
                   struct sl_qgroup_stats *out, char *why, uint32_t why_len)
{
    int rc;
    struct qgroup *g = qg_lookup(e, stream, group, why, why_len, &rc);
    if (g == NULL) {
        return rc;
    }
    memset(out, 0, sizeof(*out));
    struct sl_stream *st = g->stream;
    uint64_t now = sl_clock_mono_ms(), oldest = 0, wall = sl_clock_wall_ms();
    /* the oldest unacked record's age: its time looked up on every shard in
     * one batch (one synchronous call per worker, not one per shard) */
    struct sl_wshard_time *q = calloc(st->shard_count, sizeof(*q));
    uint32_t nq = 0;
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        ss.visible_seq = qg_shard_end(e, st->shards[s], &ss);
        uint64_t f = g->frontier[s] > ss.first_seq ? g->frontier[s] : ss.first_seq;
        out->visible += ss.visible_seq > f ? ss.visible_seq - f : 0;
        uint64_t floor = sl_qstate_floor(st->qstate, g->name, s);
        if (q != NULL && floor < ss.visible_seq && floor >= ss.first_seq) {
            q[nq++] = (struct sl_wshard_time){.b = &st->shards[s]->ws, .seq = floor};
        }
    }
    sl_wshard_times_near(sl_catalog_workers(e->catalog), q, nq);
    for (uint32_t i = 0; i < nq; i++) {
        if (q[i].rc == SL_OK && wall > q[i].time_ms) {
            oldest = wall - q[i].time_ms > oldest ? wall - q[i].time_ms : oldest;
        }
    }
    free(q);
    for (uint32_t i = 0; i < g->cap && g->used > 0; i++) {
        const struct qentry *qe = &g->e[i];
        if (qe->state == QE_LEASED || qe->state == QE_CLAIMED) {
            out->inflight++;
        } else if (qe->state == QE_BLOCKED) {
            out->visible++;
        } else if (qe->state == QE_READY) {
            if (qe->due_ms <= now) {
                out->visible++;
            } else {
                out->delayed++;
            }
        }
    }
    sl_qstate_counters(st->qstate, g->name, &out->dead_lettered, &out->filtered_out);
    out->oldest_age_ms = oldest;
    struct sl_qgroup_config *qc = &out->config;
    qc->visibility_timeout_ms = g->visibility_ms;
    qc->max_deliveries = g->max_deliveries;
    qc->dead_letter_stream = g->dlq;
    qc->max_inflight = g->max_inflight;
    const struct sl_qgroup_def *def = sl_qstate_group(st->qstate, g->name);
    qc->filter = def != NULL && def->filter != NULL ? def->filter : "";
    if (def != NULL) {
        qc->ordered = def->ordered;
        qc->filter_body = def->filter_body;
        qc->start = (struct sl_position){
            .kind = def->start_kind, .seq = def->start_seq, .time_ms = def->start_time_ms};
        qc->end_time_ms = def->end_time_ms;
    }
    return SL_OK;
}

void sl_queue_purge(struct sl_engine *e, const char *stream, const char *group, sl_done_cb cb,
                    void *ctx)
{
    struct qgroup *g = NULL;
    struct simple_op *op = group_op(e, stream, group, cb, ctx, &g);
    if (op == NULL) {
        return;
    }
    struct sl_stream *st = g->stream;
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        ss.visible_seq = qg_shard_end(e, st->shards[s], &ss);
        uint64_t floor = sl_qstate_floor(st->qstate, g->name, s);
        if (ss.visible_seq > floor) {
            op->outstanding++;
            if (sl_qlog_ack(e, st, g->name, s, floor, ss.visible_seq, qg_simple_cb, op) != SL_OK) {
                op->outstanding--;
                op->err = SL_EAGAIN;
            }
        }
        g->frontier[s] = ss.visible_seq > g->frontier[s] ? ss.visible_seq : g->frontier[s];
        g->ctl_from[s] = NO_SEQ; /* (acked with the rest) */
    }
    /* Everything goes: drop the key chains wholesale rather than pop them
     * one by one (a claimed entry being read keeps no chain either). */
    for (uint32_t i = 0; i < g->cap; i++) {
        struct qentry *qe = &g->e[i];
        qe->keyed = false;
        if (qe->state == QE_LEASED || qe->state == QE_READY || qe->state == QE_BLOCKED) {
            qg_entry_release(g, qe);
        }
    }
    if (g->keys != NULL) {
        memset(g->keys, 0, (size_t)g->keys_cap * sizeof(*g->keys));
        g->keys_tomb = 0;
    }
    qg_simple_start(op);
}
