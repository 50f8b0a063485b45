/* queue_recv.c - a queue group's receives (leases from the shards' frontiers and the
 * redeliveries, answered once their delivery counts are durable) and its dead letters (see
 * queue.c for the group's state and queue_int.h for what the two share). Main loop only.
 */
#include "broker/engine/queue.h"
#include "broker/engine/queue_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/filter.h"
#include "broker/engine/filter_set.h"
#include "broker/engine/produce.h"
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

/* ---- receive ---------------------------------------------------------- */

/* A leased record as collected: its bytes in the receive's arena (offsets:
 * the arena grows), pointers made when the receive answers. */
struct qrec {
    uint32_t shard;
    uint32_t delivery_count;
    uint64_t seq;
    uint64_t timestamp_ms;
    uint64_t produced_ms;
    size_t receipt_off;
    size_t key_off;
    size_t value_off;
    uint32_t key_len;
    uint32_t value_len;
    uint32_t attr_first; /* in attr_offs */
    uint32_t attr_count;
};

struct attr_off {
    size_t key_off;
    size_t value_off;
    uint32_t key_len;
    uint32_t value_len;
};

struct recv_op {
    struct sl_engine *e;
    uint64_t start_ns;
    sl_receive_cb cb;
    void *ctx;
    struct qgroup *g;
    struct sl_stream *stream;
    uint32_t max;
    uint32_t vis_ms;
    uint64_t deadline_ms; /* monotonic; 0 = no wait */
    struct qrec *recs;    /* max entries */
    uint32_t n;
    struct attr_off *attrs; /* grown by doubling */
    uint32_t n_attrs;
    uint32_t attrs_cap;
    uint8_t *arena; /* receipts, keys, values, attributes; grown by doubling */
    size_t arena_len;
    size_t arena_cap;
    uint32_t persisting; /* delivery counts not yet durable */
    int err;
    bool collecting;
    /* the read in flight */
    struct sl_wshard_read wr;
    uint8_t *buf;
    uint32_t buf_cap;
    uint32_t shard;
    uint32_t claimed;     /* slot of the redelivery being read, or NO_SLOT: frontier read */
    uint32_t tried;       /* shards tried in this pass */
    struct recv_op *next; /* parked */
    bool parked;
};

static void recv_step(struct recv_op *op);

static void recv_free(struct recv_op *op)
{
    free(op->recs);
    free(op->attrs);
    free(op->arena);
    free(op->buf);
    free(op);
}

/* Answers with the collected records, pointers resolved into the arena. */
static void recv_finish(struct recv_op *op)
{
    op->stream->inflight--;
    struct sl_qrecord *out = op->err == SL_OK && op->n > 0 ? calloc(op->n, sizeof(*out)) : NULL;
    struct sl_attr *attrs =
        out != NULL && op->n_attrs > 0 ? calloc(op->n_attrs, sizeof(*attrs)) : NULL;
    if (op->err == SL_OK && op->n > 0 && (out == NULL || (op->n_attrs > 0 && attrs == NULL))) {
        op->err = SL_ENOMEM; /* the leases stand: they expire and are delivered again */
    }
    for (uint32_t i = 0; i < op->n_attrs && attrs != NULL; i++) {
        const struct attr_off *a = &op->attrs[i];
        attrs[i] = (struct sl_attr){(const char *)op->arena + a->key_off, a->key_len,
                                    (const char *)op->arena + a->value_off, a->value_len};
    }
    for (uint32_t i = 0; i < op->n && op->err == SL_OK; i++) {
        const struct qrec *q = &op->recs[i];
        out[i] = (struct sl_qrecord){.receipt = (const char *)op->arena + q->receipt_off,
                                     .shard = q->shard,
                                     .seq = q->seq,
                                     .timestamp_ms = q->timestamp_ms,
                                     .produced_ms = q->produced_ms,
                                     .delivery_count = q->delivery_count,
                                     .key = op->arena + q->key_off,
                                     .key_len = q->key_len,
                                     .value = op->arena + q->value_off,
                                     .value_len = q->value_len,
                                     .attrs = attrs != NULL ? attrs + q->attr_first : NULL,
                                     .attr_count = q->attr_count};
    }
    struct sl_receive_result r = {.err = op->err,
                                  .why = op->err == SL_OK      ? ""
                                         : op->g->deposed      ? "this broker no longer leads the "
                                                                 "group's shard: ask its leader"
                                         : op->g->deleted      ? "the group was deleted"
                                         : op->stream->deleted ? "the stream was deleted"
                                                               : sl_strerror(op->err),
                                  .records = out,
                                  .n = op->err == SL_OK ? op->n : 0};
    sl_op_stats_record(&op->e->stats.op[SL_OP_RECEIVE], op->err, sl_clock_mono_ns() - op->start_ns);
    struct qgroup *g = op->g;
    op->cb(op->ctx, &r);
    free(out);
    free(attrs);
    recv_free(op);
    qg_group_put(g);
}

static void recv_maybe_finish(struct recv_op *op)
{
    if (!op->collecting && op->persisting == 0) {
        recv_finish(op);
    }
}

static void on_count_durable(void *ctx, int err)
{
    struct recv_op *op = ctx;
    if (err != SL_OK && op->err == SL_OK) {
        op->err = err;
    }
    op->persisting--;
    recv_maybe_finish(op);
}

/* Copies n bytes (NUL-terminated) into the arena; returns the offset or
 * SIZE_MAX without memory. Amortised: the arena doubles. */
static size_t arena_put(struct recv_op *op, const void *p, size_t n)
{
    if (op->arena_cap - op->arena_len < n + 1) {
        size_t cap = op->arena_cap > 0 ? op->arena_cap : 4096;
        while (cap - op->arena_len < n + 1) {
            cap *= 2;
        }
        uint8_t *a = realloc(op->arena, cap);
        if (a == NULL) {
            return SIZE_MAX;
        }
        op->arena = a;
        op->arena_cap = cap;
    }
    size_t off = op->arena_len;
    if (n > 0) {
        memcpy(op->arena + off, p, n);
    }
    op->arena[off + n] = '\0';
    op->arena_len += n + 1;
    return off;
}

/* Collects the record of a lease for the answer. */
static int add_record(struct recv_op *op, struct qentry *e, const struct sl_record_view *rv,
                      uint64_t append_ms)
{
    char receipt[RECEIPT_MAX];
    qg_receipt_format(op->g, e, receipt, sizeof(receipt));
    struct qrec q = {.shard = e->shard,
                     .delivery_count = e->count,
                     .seq = e->seq,
                     .timestamp_ms = append_ms,
                     .produced_ms = rv->timestamp_ms,
                     .key_len = rv->key_len,
                     .value_len = rv->value_len,
                     .attr_first = op->n_attrs};
    uint32_t arena_mark = (uint32_t)op->arena_len, attrs_mark = op->n_attrs;
    q.receipt_off = arena_put(op, receipt, strlen(receipt));
    q.key_off = arena_put(op, rv->key, rv->key_len);
    q.value_off = arena_put(op, rv->value, rv->value_len);
    bool ok = q.receipt_off != SIZE_MAX && q.key_off != SIZE_MAX && q.value_off != SIZE_MAX;
    uint32_t pos = 0;
    struct sl_attr a;
    while (ok && sl_record_attr_next(rv, &pos, &a)) {
        if (op->n_attrs == op->attrs_cap) {
            uint32_t cap = op->attrs_cap > 0 ? op->attrs_cap * 2 : 64;
            struct attr_off *n = realloc(op->attrs, cap * sizeof(*n));
            if (n == NULL) {
                ok = false;
                break;
            }
            op->attrs = n;
            op->attrs_cap = cap;
        }
        struct attr_off *ao = &op->attrs[op->n_attrs];
        ao->key_off = arena_put(op, a.key, a.key_len);
        ao->value_off = arena_put(op, a.value, a.value_len);
        ao->key_len = a.key_len;
        ao->value_len = a.value_len;
        ok = ao->key_off != SIZE_MAX && ao->value_off != SIZE_MAX;
        op->n_attrs++;
        q.attr_count++;
    }
    if (!ok) {
        op->arena_len = arena_mark;
        op->n_attrs = attrs_mark;
        return SL_ENOMEM;
    }
    op->recs[op->n++] = q;
    return SL_OK;
}

/* ---- dead letters ---- */

/* A dead letter on its way. Both streams are held (inflight) until it is
 * stored and acked or given up at shutdown, so neither can be deleted under
 * it. An append the dead-letter shard cannot take now (its buffers are full:
 * SL_EAGAIN, or an I/O error) waits on the engine's retry list and is tried
 * again from the tick: the record left the lease table, so nothing else
 * would ever bring it back before a restart. */
struct dlq_op {
    struct sl_engine *e;
    uint8_t *batch; /* owned; borrowed by an append until on_dlq_appended */
    uint32_t len;
    struct sl_stream *dst;
    struct sl_stream *src;
    char group[129];
    uint32_t shard;
    uint64_t seq;
    uint64_t key_hash; /* the record's key routes it on a replicated dead-letter stream */
    uint32_t key_len;
    uint32_t tries;
    uint64_t retry_ms; /* monotonic */
    struct dlq_op *next_retry;
};

#define DLQ_RETRY_STEP_MS 100u /* the wait grows by this per failed try */
#define DLQ_RETRY_MAX_MS  5000u
#define DLQ_RETRY_HELD    10000u /* dead letters waiting at most (each holds its record) */

static void dlq_release(struct dlq_op *op)
{
    op->dst->inflight--;
    op->src->inflight--;
    free(op->batch);
    free(op);
}

static void dlq_retry_later(struct dlq_op *op, int err)
{
    if (op->e->stopping || op->e->dlq_retry_count >= DLQ_RETRY_HELD) {
        if (!op->e->stopping) {
            sl_error("queue",
                     "dead-lettering %s/%u/%" PRIu64 " into %s failed (%s) with %u "
                     "others waiting: it is delivered again after a restart (fix the "
                     "dead-letter stream: %s)",
                     op->src->name, op->shard, op->seq, op->dst->name, sl_strerror(err),
                     DLQ_RETRY_HELD, sl_strerror(err));
        }
        dlq_release(op); /* not acked: delivered again after the restart */
        return;
    }
    op->e->dlq_retry_count++;
    op->tries++;
    uint64_t wait = (uint64_t)op->tries * DLQ_RETRY_STEP_MS;
    op->retry_ms = sl_clock_mono_ms() + (wait < DLQ_RETRY_MAX_MS ? wait : DLQ_RETRY_MAX_MS);
    if (op->tries == 1 || op->tries % 100 == 0) {
        sl_warn("queue",
                "dead-lettering %s/%u/%" PRIu64 " into %s failed (%s, try %u): trying "
                "again",
                op->src->name, op->shard, op->seq, op->dst->name, sl_strerror(err), op->tries);
    }
    op->next_retry = op->e->dlq_retry;
    op->e->dlq_retry = op;
}

static void on_dlq_acked(void *ctx, int err)
{
    struct dlq_op *op = ctx;
    if (err != SL_OK) {
        sl_warn("queue", "dead-letter ack of %s/%u/%" PRIu64 " failed: %s", op->src->name,
                op->shard, op->seq, sl_strerror(err));
    }
    dlq_release(op);
}

static void on_dlq_appended(void *ctx, int err, uint64_t base, uint32_t count)
{
    (void)base;
    (void)count;
    struct dlq_op *op = ctx;
    struct sl_stream *st = op->src;
    if (err != SL_OK && !st->deleted && !op->dst->deleted) {
        dlq_retry_later(op, err);
        return;
    }
    if (err == SL_OK && !st->deleted &&
        sl_qlog_ack(op->e, st, op->group, op->shard, op->seq, op->seq + 1, on_dlq_acked, op) ==
            SL_OK) {
        sl_qlog_add_counters(op->e, st, op->group, 1, 0, NULL, NULL);
        return; /* on_dlq_acked releases */
    }
    dlq_release(op);
}

static void on_dlq_produced(void *ctx, const struct sl_produce_result *r)
{
    on_dlq_appended(ctx, r->err, r->base_seq, r->count);
}

static void on_dlq_forwarded(void *ctx, int err, const char *why, uint64_t base_seq)
{
    struct dlq_op *op = ctx;
    if (err != SL_OK && op->tries == 0) {
        sl_warn("queue",
                "dead letter of %s/%u/%" PRIu64 " not taken by the leader of its "
                "shard of %s: %s",
                op->src->name, op->shard, op->seq, op->dst->name, why);
    }
    on_dlq_appended(ctx, err, base_seq, 1);
}

/* A replicated dead-letter stream takes appends only through its leaders: the shard of the
 * record's key (keyless: of its source position), appended here through the replicated
 * produce when this broker leads it, else handed to its leader (peer.h). Answered once
 * durable on min_insync_replicas brokers; retried (at-least-once) until then. */
static void dlq_start_replicated(struct dlq_op *op)
{
    struct sl_engine *e = op->e;
    struct sl_stream *dst = op->dst;
    uint32_t k = op->key_len > 0 ? sl_catalog_route(dst, op->key_hash)
                                 : (uint32_t)((op->shard + op->seq) % dst->shard_count);
    const struct sl_bshard *b = dst->shards[k];
    uint64_t end = 0;
    int32_t epoch = -1;
    if (e->repl == NULL) {
        dlq_retry_later(op, SL_ENOT_LEADER);
        return;
    }
    if (e->repl->replica(e->repl->ctx, b, &end, &epoch) == SL_OK && epoch >= 0) {
        struct sl_produce_req pr = {.stream = dst->name,
                                    .shard = k,
                                    .batch = op->batch,
                                    .len = op->len,
                                    .ack = SL_ACK_DURABLE,
                                    .caller_routed = true};
        sl_produce_submit(e, &pr, on_dlq_produced, op);
        return;
    }
    int rc = e->repl->forward(e->repl->ctx, b, op->batch, op->len, false, on_dlq_forwarded,
                               op);
    if (rc != SL_OK) {
        dlq_retry_later(op, rc);
    }
}

static void dlq_start(struct dlq_op *op)
{
    if (op->dst->cluster) {
        dlq_start_replicated(op);
        return;
    }
    /* (an open shard: a dead-letter stream may have been resharded) */
    struct sl_bshard *dst = op->dst->shards[sl_catalog_open_shard(op->dst, 0)];
    int rc = sl_wshard_append(&dst->ws, op->batch, op->len, 0, on_dlq_appended, op);
    if (rc != SL_OK) {
        dlq_retry_later(op, rc);
    }
}

/* From the tick: dead letters whose wait is over are tried again. */
void qg_dlq_retry_due(struct sl_engine *e, uint64_t now, bool give_up)
{
    struct dlq_op *due = NULL, **pp = &e->dlq_retry;
    while (*pp != NULL) {
        struct dlq_op *op = *pp;
        if (give_up || op->retry_ms <= now || op->src->deleted || op->dst->deleted) {
            *pp = op->next_retry;
            op->next_retry = due;
            due = op;
            SL_ASSERT(e->dlq_retry_count > 0);
            e->dlq_retry_count--;
        } else {
            pp = &op->next_retry;
        }
    }
    while (due != NULL) {
        struct dlq_op *op = due;
        due = op->next_retry;
        op->next_retry = NULL;
        if (give_up || op->src->deleted || op->dst->deleted) {
            dlq_release(op); /* not acked: delivered again after a restart */
        } else {
            dlq_start(op);
        }
    }
}

/* Appends the record to the group's dead-letter stream (created on demand,
 * one shard) with attributes naming its source; acks it once stored. */
static void dead_letter(struct recv_op *op, uint32_t shard, uint64_t seq,
                        const struct sl_record_view *rv, uint32_t count)
{
    struct qgroup *g = op->g;
    struct sl_stream *dst = sl_catalog_find(op->e->catalog, g->dlq);
    char why[256];
    if (dst == NULL && g->stream->cluster) {
        sl_error("queue",
                 "group %s/%s: its dead-letter stream %s is gone: %s/%u/%" PRIu64 " stays "
                 "(delivered again after a restart); create %s as a replicated stream",
                 g->stream->name, g->name, g->dlq, g->stream->name, shard, seq, g->dlq);
        return;
    }
    if (dst == NULL &&
        sl_catalog_create(op->e->catalog, g->dlq, 1, 0, 0, NULL, &dst, why, sizeof(why)) != SL_OK) {
        sl_error("queue", "cannot create dead-letter stream %s: %s", g->dlq, why);
        return;
    }
    if (g->stream->cluster && !dst->cluster) { /* (queue_admin.c dlq_check) */
        sl_error("queue",
                 "group %s/%s: dead-letter stream %s is a local stream, which would keep the "
                 "dead letters of a replicated stream on one broker: %s/%u/%" PRIu64
                 " stays (delivered again after a restart); create %s as a replicated stream",
                 g->stream->name, g->name, g->dlq, g->stream->name, shard, seq, g->dlq);
        return;
    }
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    uint32_t na = 0, pos = 0;
    while (na < SL_RECORD_ATTRS_MAX - 4 && sl_record_attr_next(rv, &pos, &attrs[na])) {
        na++;
    }
    char shard_s[16], seq_s[24], count_s[16];
    snprintf(shard_s, sizeof(shard_s), "%u", shard);
    snprintf(seq_s, sizeof(seq_s), "%" PRIu64, seq);
    snprintf(count_s, sizeof(count_s), "%u", count);
    const char *k[4] = {"sluice.source_stream", "sluice.source_shard", "sluice.source_seq",
                        "sluice.delivery_count"};
    const char *v[4] = {g->stream->name, shard_s, seq_s, count_s};
    for (int i = 0; i < 4; i++) {
        attrs[na++] = (struct sl_attr){k[i], (uint32_t)strlen(k[i]), v[i], (uint32_t)strlen(v[i])};
    }
    size_t cap = SL_BATCH_HEADER_BYTES + rv->key_len + rv->value_len + 64 * 1024;
    uint8_t *buf = malloc(cap);
    struct dlq_op *d = calloc(1, sizeof(*d));
    if (buf == NULL || d == NULL) {
        free(buf);
        free(d);
        return;
    }
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    struct sl_record rec = {.key = rv->key,
                            .key_len = rv->key_len,
                            .value = rv->value,
                            .value_len = rv->value_len,
                            .attrs = attrs,
                            .attr_count = na,
                            .timestamp_ms = rv->timestamp_ms};
    size_t len = 0;
    int rc = sl_batch_builder_add(&b, &rec);
    if (rc == SL_OK) {
        rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len);
    }
    if (rc != SL_OK) {
        free(buf);
        free(d);
        sl_warn("queue",
                "dead-lettering %s/%u/%" PRIu64 ": %s (delivered again after a "
                "restart)",
                g->stream->name, shard, seq, sl_strerror(rc));
        return;
    }
    d->e = op->e;
    d->src = g->stream;
    snprintf(d->group, sizeof(d->group), "%s", g->name);
    d->shard = shard;
    d->seq = seq;
    d->key_len = rv->key_len;
    d->key_hash = rv->key_len > 0 ? sl_partition_hash(rv->key, rv->key_len) : 0;
    d->batch = buf;
    d->len = (uint32_t)len;
    d->dst = dst;
    g->stream->inflight++;
    dst->inflight++; /* a delete of the dead-letter stream waits for it */
    dlq_start(d);
}

/* Hands one record to this receive (or dead-letters it). `e` is a claimed
 * redelivery entry or NULL for a new record. Returns false when the group
 * has no room for another lease. */
/* Delay on send: a record with attribute sluice.not_before (Unix ms) is not
 * delivered before then. Returns the monotonic time it may go, or 0. */
static uint64_t not_before_mono(const struct sl_record_view *rv)
{
    static const char name[] = "sluice.not_before";
    uint32_t pos = 0;
    struct sl_attr a;
    while (sl_record_attr_next(rv, &pos, &a)) {
        if (a.key_len == sizeof(name) - 1 && memcmp(a.key, name, a.key_len) == 0) {
            char buf[24];
            uint32_t n = a.value_len < sizeof(buf) - 1 ? a.value_len : (uint32_t)sizeof(buf) - 1;
            memcpy(buf, a.value, n);
            buf[n] = '\0';
            uint64_t at = strtoull(buf, NULL, 10), wall = sl_clock_wall_ms();
            return at > wall ? sl_clock_mono_ms() + (at - wall) : 0;
        }
    }
    return 0;
}

static bool deliver(struct recv_op *op, struct qentry *e, uint32_t shard, uint64_t seq,
                    const struct sl_record_view *rv, uint64_t append_ms)
{
    struct qgroup *g = op->g;
    struct sl_stream *st = g->stream;
    uint64_t delay_until = e == NULL && rv->attr_count > 0 ? not_before_mono(rv) : 0;
    uint32_t count = e != NULL ? e->count : sl_qstate_count(st->qstate, g->name, shard, seq);
    bool key_busy = e == NULL && g->ordered && rv->key_len > 0 &&
                    qg_key_find(g, sl_partition_hash(rv->key, rv->key_len), false) != NULL;
    if (g->max_deliveries > 0 && count >= g->max_deliveries && !key_busy) {
        if (e != NULL) {
            qg_entry_release(g, e);
        }
        dead_letter(op, shard, seq, rv, count);
        return true;
    }
    if (e == NULL) {
        e = qg_entry_alloc(g);
        if (e == NULL) {
            return false;
        }
        if (g->ordered && rv->key_len > 0) {
            e->keyed = true;
            e->key_hash = sl_partition_hash(rv->key, rv->key_len);
            e->shard = shard;
            e->seq = seq;
            e->count = count;
            if (!qg_key_chain_add(g, e)) {
                e->state = QE_BLOCKED; /* an earlier record of its key is out */
                return true;
            }
        }
        if (delay_until > 0) { /* delayed on send: waits in the table */
            e->state = QE_READY;
            e->due_ms = delay_until;
            e->shard = shard;
            e->seq = seq;
            e->count = count;
            return true;
        }
    }
    e->state = QE_LEASED;
    e->gen++; /* a new lease: receipts of earlier deliveries go stale */
    e->shard = shard;
    e->seq = seq;
    e->count = count + 1;
    e->due_ms = sl_clock_mono_ms() + op->vis_ms;
    if (add_record(op, e, rv, append_ms) != SL_OK) {
        e->state = QE_READY; /* could not answer: visible again at once */
        e->due_ms = 0;
        return true;
    }
    op->persisting++;
    if (sl_qlog_set_count(op->e, st, g->name, shard, seq, e->count, on_count_durable, op) !=
        SL_OK) {
        op->persisting--;
    }
    return true;
}

static void recv_skip(struct recv_op *op, uint32_t shard, uint64_t first, uint64_t end,
                      uint64_t filtered)
{
    if (end > first) {
        struct qgroup *g = op->g;
        sl_qlog_ack(op->e, g->stream, g->name, shard, first, end, NULL, NULL);
        if (filtered > 0) {
            sl_qlog_add_counters(op->e, g->stream, g->name, 0, filtered, NULL, NULL);
        }
    }
}

/* True when the group's filter matches the record: its bit of the answer
 * for the stream's whole filter set, found in the memo or computed there
 * (see the top), or its filter alone when the set does not hold it. */
static bool group_admits(struct sl_engine *e, struct qgroup *g, uint32_t shard,
                         const struct sl_record_view *rv)
{
    SL_ASSERT(g->filter != NULL);
    sl_filter_subject_set(&e->filter_subject, rv);
    if (g->filter_slot == NO_SLOT) {
        return sl_filter_match(g->filter, &e->filter_subject);
    }
    const uint64_t *bits = sl_filter_memo_match(e->filter_memo, g->stream->queues->filters,
                                                &e->filter_subject, shard, rv->seq);
    return sl_filter_set_bit(bits, g->filter_slot);
}

/* Walks the batches of a frontier read: leases records in order, skips acked
 * ones, filtered ones (acked, counted), and those before a start time. */
static void on_frontier_read(struct recv_op *op, int err)
{
    struct qgroup *g = op->g;
    struct sl_stream *st = g->stream;
    uint32_t shard = op->shard;
    g->reading[shard] = false;
    if (err != SL_OK) {
        if (err == SL_ETRIMMED) {
            g->frontier[shard] = op->wr.rd.first_seq; /* retention passed us */
            g->ctl_from[shard] = NO_SEQ;              /* (below it: in the skip) */
            recv_skip(op, shard, sl_qstate_floor(st->qstate, g->name, shard), op->wr.rd.first_seq,
                      0);
        } else {
            op->err = err;
            op->collecting = false;
            recv_maybe_finish(op);
            return;
        }
        recv_step(op);
        return;
    }
    struct sl_shard_stats ss;
    sl_wshard_stats(&st->shards[shard]->ws, &ss);
    uint64_t end = qg_shard_end(op->e, st->shards[shard], &ss);
    uint64_t start = g->frontier[shard], next = start;
    uint32_t delivered = op->n;
    /* The range skipped so far (acked as one), and whether it holds only control batches:
     * the run at the frontier a previous read left unacked, and those read now. */
    uint64_t skip_from = g->ctl_from[shard], filtered = 0;
    bool ctl_only = skip_from != NO_SEQ;
    g->ctl_from[shard] = NO_SEQ;
    SL_ASSERT(skip_from == NO_SEQ || skip_from <= start);
    bool full = false;
    for (uint32_t off = 0; off < op->wr.rd.len && !full;) {
        struct sl_batch_header h;
        struct sl_batch_iter it;
        if (sl_batch_peek(op->buf + off, op->wr.rd.len - off, &h) != SL_OK ||
            h.base_seq + h.record_count > end) {
            break; /* (past a replica's high watermark: not committed yet) */
        }
        if (h.control) {
            /* The broker's own state (control.h), never delivered. Skipping it must not be
             * written at once: the ack would be a control batch of the group's home shard,
             * which the group reads, skips and acks again, for ever. It goes with the
             * group's next change of this shard, or once QUEUE_CTL_LAZY_MAX gathered. */
            if (h.base_seq + h.record_count > next) {
                if (skip_from == NO_SEQ) {
                    skip_from = next;
                    ctl_only = true;
                }
                next = h.base_seq + h.record_count;
            }
            off += h.length;
            continue;
        }
        if (sl_engine_scratch_reserve(op->e, h.codec, h.records_len) != SL_OK ||
            sl_batch_iter_init(&it, op->buf + off, &h, op->e->zctx, op->e->scratch,
                               op->e->scratch_cap) != SL_OK) {
            break; /* verified when read: only memory can fail here */
        }
        struct sl_record_view rv;
        while (sl_batch_iter_next(&it, &rv) == SL_OK) {
            if (rv.seq < next) {
                continue;
            }
            if (op->n >= op->max || (g->used >= g->max_inflight)) {
                full = true;
                break;
            }
            bool skip = sl_qstate_is_acked(st->qstate, g->name, shard, rv.seq) ||
                        h.append_time_ms < g->start_time_ms ||
                        (g->end_time_ms != 0 && h.append_time_ms >= g->end_time_ms);
            bool filt = false;
            if (!skip && g->filter != NULL) {
                filt = !group_admits(op->e, g, shard, &rv);
            }
            if (skip || filt) {
                filtered += filt ? 1 : 0;
                skip_from = skip_from == NO_SEQ ? rv.seq : skip_from;
                ctl_only = false;
                next = rv.seq + 1;
                continue;
            }
            if (skip_from != NO_SEQ) {
                recv_skip(op, shard, skip_from, rv.seq, filtered);
                skip_from = NO_SEQ;
                filtered = 0;
            }
            if (!deliver(op, NULL, shard, rv.seq, &rv, h.append_time_ms)) {
                full = true;
                break;
            }
            next = rv.seq + 1;
        }
        off += h.length;
    }
    if (skip_from != NO_SEQ && ctl_only && next - skip_from < QUEUE_CTL_LAZY_MAX) {
        g->ctl_from[shard] = skip_from; /* ends at the frontier, which moves to `next` */
    } else if (skip_from != NO_SEQ) {
        recv_skip(op, shard, skip_from, next, filtered);
    }
    g->frontier[shard] = next > g->frontier[shard] ? next : g->frontier[shard];
    if (full) {
        /* This receive has its fill; records may be left past the frontier.
         * Receives that parked while this shard was being read look again
         * (nothing else wakes them: no append, no lease coming due). */
        bool more = op->n >= op->max && g->used < g->max_inflight;
        op->collecting = false;
        recv_maybe_finish(op);
        if (more && g->waiters != NULL) {
            qg_recv_wake(g);
        }
        return;
    }
    if (next > start || op->n > delivered) {
        op->tried = 0; /* progress: every shard may be worth another look */
    }
    recv_step(op);
}

/* Ordered: the entry of record `rv` of `shard` when it heads its key's chain
 * and is due (READY: unblocked by the ack of the record before it, nacked, or
 * its lease ended), else NULL. The key map finds the head; (shard, seq) makes
 * sure it is this record, whatever the hash. */
static struct qentry *ready_head(struct qgroup *g, uint32_t shard, const struct sl_record_view *rv,
                                 uint64_t now)
{
    SL_ASSERT(g->ordered);
    if (rv->key_len == 0) {
        return NULL;
    }
    struct keyslot *k = qg_key_find(g, sl_partition_hash(rv->key, rv->key_len), false);
    if (k == NULL) {
        return NULL;
    }
    struct qentry *h = &g->e[k->head];
    bool due = h->state == QE_READY && h->due_ms <= now && h->shard == shard && h->seq == rv->seq;
    return due ? h : NULL; /* (deliver dead-letters it when it had its deliveries) */
}

/* A redelivery read: find the claimed record in the batch. An ordered group
 * then also delivers, from the same read, the other records of the shard
 * there whose entries are due heads of their keys: records that waited
 * behind an earlier one of their key (BLOCKED) come back one by one, each
 * otherwise a read of QUEUE_READ_BYTES for one record - with a backlog over
 * many keys nearly every record, and the group ran at a few thousand a
 * second. Each is its key's head, so each key stays in order. */
static void on_redelivery_read(struct recv_op *op, int err)
{
    struct qgroup *g = op->g;
    SL_ASSERT(op->claimed < g->cap && g->e[op->claimed].state == QE_CLAIMED);
    struct qentry *e = &g->e[op->claimed]; /* (deliver allocates nothing for it) */
    op->claimed = NO_SLOT;
    uint32_t shard = e->shard;
    uint64_t seq = e->seq, now = sl_clock_mono_ms();
    bool found = false, more = true;
    if (err == SL_OK) {
        for (uint32_t off = 0; off < op->wr.rd.len && more;) {
            struct sl_batch_header h;
            struct sl_batch_iter it;
            if (sl_batch_peek(op->buf + off, op->wr.rd.len - off, &h) != SL_OK ||
                sl_engine_scratch_reserve(op->e, h.codec, h.records_len) != SL_OK ||
                sl_batch_iter_init(&it, op->buf + off, &h, op->e->zctx, op->e->scratch,
                                   op->e->scratch_cap) != SL_OK) {
                break;
            }
            struct sl_record_view rv;
            while (more && sl_batch_iter_next(&it, &rv) == SL_OK) {
                if (!found) {
                    if (rv.seq == seq) {
                        found = true;
                        deliver(op, e, shard, seq, &rv, h.append_time_ms);
                        more = g->ordered;
                    }
                    continue;
                }
                if (op->n >= op->max) {
                    more = false;
                    break;
                }
                struct qentry *n = ready_head(g, shard, &rv, now);
                if (n != NULL) {
                    deliver(op, n, shard, rv.seq, &rv, h.append_time_ms);
                }
            }
            off += h.length;
        }
    }
    if (!found) {
        /* Trimmed by retention (or unreadable): nothing left to deliver. */
        if (err != SL_OK) {
            sl_warn("queue", "group %s: redelivery of %u/%" PRIu64 " dropped: %s", g->name, shard,
                    seq, sl_strerror(err));
        }
        recv_skip(op, shard, seq, seq + 1, 0);
        qg_entry_release(g, e);
    }
    recv_step(op);
}

static void on_recv_read(struct sl_shard_read *rd, int err)
{
    struct recv_op *op = sl_container_of(rd, struct recv_op, wr.rd);
    if (err == SL_ETOOBIG && rd->need_bytes <= SL_BATCH_BYTES_MAX) {
        uint8_t *n = realloc(op->buf, rd->need_bytes); /* one batch larger than the buffer */
        if (n != NULL) {
            op->buf = n;
            op->buf_cap = rd->need_bytes;
            op->wr.rd.buf = n;
            op->wr.rd.buf_cap = rd->need_bytes;
            sl_wshard_read(&op->g->stream->shards[op->shard]->ws, &op->wr);
            return;
        }
    }
    if (op->g->deleted) {
        op->claimed = NO_SLOT; /* the group's state went with it: deliver nothing */
        recv_step(op);
    } else if (op->claimed != NO_SLOT) {
        on_redelivery_read(op, err);
    } else {
        on_frontier_read(op, err);
    }
}

static void recv_read(struct recv_op *op, uint32_t shard, uint64_t seq)
{
    memset(&op->wr, 0, sizeof(op->wr));
    op->shard = shard;
    op->wr.rd.from = SL_READ_SEQ;
    op->wr.rd.seq = seq;
    op->wr.rd.buf = op->buf;
    op->wr.rd.buf_cap = op->buf_cap;
    op->wr.rd.max_bytes = QUEUE_READ_BYTES;
    op->wr.rd.cb = on_recv_read;
    sl_wshard_read(&op->g->stream->shards[shard]->ws, &op->wr);
}

static struct qentry *ready_entry(struct qgroup *g, uint64_t now)
{
    if (g->used == 0) {
        return NULL;
    }
    for (uint32_t i = 0; i < g->cap; i++) {
        if (g->e[i].state == QE_READY && g->e[i].due_ms <= now) {
            return &g->e[i];
        }
    }
    return NULL;
}

static void recv_park(struct recv_op *op)
{
    op->parked = true;
    op->next = op->g->waiters;
    op->g->waiters = op;
}

/* The receive state machine: redeliveries first, then new records from the
 * shards' frontiers (round robin), one read at a time. */
static void recv_step(struct recv_op *op)
{
    struct qgroup *g = op->g;
    struct sl_stream *st = g->stream;
    if ((st->deleted || g->deleted) && op->err == SL_OK) {
        op->err = g->deposed ? SL_ENOT_LEADER : SL_ENOTFOUND;
    }
    if (op->err != SL_OK) {
        op->collecting = false;
        recv_maybe_finish(op);
        return;
    }
    if (op->n >= op->max) {
        op->collecting = false;
        recv_maybe_finish(op);
        return;
    }
    struct qentry *e = ready_entry(g, sl_clock_mono_ms());
    if (e != NULL) {
        e->state = QE_CLAIMED;
        op->claimed = (uint32_t)(e - g->e);
        recv_read(op, e->shard, e->seq);
        return;
    }
    while (op->tried < st->shard_count && g->used < g->max_inflight) {
        uint32_t s = g->rr++ % st->shard_count;
        op->tried++;
        if (g->ordered && !qg_shard_readable(g, s)) {
            continue; /* a child of a parent with records not yet acked */
        }
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        if (g->frontier[s] < ss.first_seq) {
            g->frontier[s] = ss.first_seq;
        }
        if (g->reading[s] || g->frontier[s] >= qg_shard_end(op->e, st->shards[s], &ss)) {
            continue;
        }
        g->reading[s] = true;
        op->claimed = NO_SLOT;
        recv_read(op, s, g->frontier[s]);
        return;
    }
    op->collecting = false;
    if (op->n == 0 && op->deadline_ms > sl_clock_mono_ms() && !op->e->stopping) {
        op->collecting = true;
        recv_park(op);
        return;
    }
    recv_maybe_finish(op);
}

void qg_recv_wake(struct qgroup *g)
{
    struct recv_op *op = g->waiters;
    g->waiters = NULL;
    while (op != NULL) {
        struct recv_op *next = op->next;
        op->parked = false;
        op->next = NULL;
        op->tried = 0;
        recv_step(op);
        op = next;
    }
}

/* Parked receives answer now (they hold no record: a receive parks only
 * empty), with `err` unless they already failed. */
void qg_recv_fail_waiters(struct qgroup *g, int err)
{
    while (g->waiters != NULL) {
        struct recv_op *op = g->waiters;
        SL_ASSERT(op->parked && op->n == 0);
        g->waiters = op->next;
        op->next = NULL;
        op->parked = false;
        op->collecting = false;
        if (op->err == SL_OK) {
            op->err = err;
        }
        recv_maybe_finish(op);
    }
}

void sl_queue_receive(struct sl_engine *e, const struct sl_receive_req *req, sl_receive_cb cb,
                      void *ctx)
{
    char why[300];
    int rc;
    struct qgroup *g = qg_lookup(e, req->stream, req->group, why, sizeof(why), &rc);
    struct sl_receive_result r = {.err = rc, .why = why};
    if (g == NULL) {
        cb(ctx, &r);
        return;
    }
    if (req->max_records == 0 || req->max_records > SL_QUEUE_RECEIVE_MAX) {
        snprintf(why, sizeof(why), "max_records must be in [1, %u]", SL_QUEUE_RECEIVE_MAX);
        r.err = SL_EINVAL;
        cb(ctx, &r);
        return;
    }
    struct recv_op *op = calloc(1, sizeof(*op));
    uint8_t *buf = malloc(QUEUE_READ_BYTES);
    struct qrec *recs = calloc(req->max_records, sizeof(*recs));
    if (op == NULL || buf == NULL || recs == NULL) {
        free(op);
        free(buf);
        free(recs);
        r.err = SL_ENOMEM;
        r.why = sl_strerror(SL_ENOMEM);
        cb(ctx, &r);
        return;
    }
    uint32_t wait =
        req->wait_ms < e->cfg.fetch_wait_max_ms ? req->wait_ms : e->cfg.fetch_wait_max_ms;
    *op = (struct recv_op){.e = e,
                           .start_ns = sl_clock_mono_ns(),
                           .cb = cb,
                           .ctx = ctx,
                           .g = g,
                           .stream = g->stream,
                           .claimed = NO_SLOT,
                           .max = req->max_records,
                           .vis_ms = req->visibility_timeout_ms ? req->visibility_timeout_ms
                                                                : g->visibility_ms,
                           .deadline_ms = wait > 0 ? sl_clock_mono_ms() + wait : 0,
                           .recs = recs,
                           .collecting = true,
                           .buf = buf,
                           .buf_cap = QUEUE_READ_BYTES};
    g->stream->inflight++;
    g->receives++;
    recv_step(op);
}

void qg_recv_expire(struct qgroup *g, uint64_t now)
{
    struct recv_op **pp = &g->waiters;
    while (*pp != NULL) {
        struct recv_op *op = *pp;
        if (op->deadline_ms <= now) {
            *pp = op->next;
            op->parked = false;
            op->collecting = false;
            recv_maybe_finish(op);
        } else {
            pp = &op->next;
        }
    }
}
