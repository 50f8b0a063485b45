/* queue.c - queue groups on the log: leases, acks, nacks, redelivery, dead
 * letters, filters.
 *
 * Runtime state per group (struct qgroup): a table of at most max_inflight
 * entries (allocated as leases need them: QUEUE_TABLE_MIN, doubled up to
 * max_inflight, so an idle group costs little and a bus of many rules many
 * groups; entries are named by slot, never held by pointer across a call
 * that may allocate one), each a record that is LEASED (to a receiver until
 * due_ms), READY (to be delivered again at due_ms: expired or nacked) or CLAIMED (being
 * re-read for a receive); and per shard the read frontier: every record
 * below it was either delivered (and is in the table or acked) or skipped.
 * A receipt names an entry by slot and generation, so an ack with a stale
 * receipt (the lease ended, the record went to someone else) is refused.
 *
 * Durable state (storage/qstate): the group definition, ack floors and
 * ranges, delivery counts, counters. A receive answers only after the
 * delivery counts of what it hands out are durable; an ack only after it is
 * durable. After a restart the frontier starts at the floor: every record
 * not acked is delivered again (at-least-once) with its delivery count.
 *
 * Cluster streams (docs/REPLICATION.md "Queue groups"): a group is served by
 * its home, the leader of the group's shard (qg_group_home), which reads
 * every shard from its own replicas up to their high watermark
 * (qg_shard_end); its durable changes also go to the group's shard as
 * control records (qlog.h), and a runtime group built in another leader
 * epoch is dropped (group_stale): the next home starts as after a restart.
 *
 * Ordered groups (SQS FIFO): records with the same partition key form a
 * chain in sequence order (a small open-addressing map from the key's hash
 * to the chain's head and tail entries); only the head may be leased, the
 * others wait BLOCKED, and releasing the head (ack, dead letter) makes the
 * next one READY. Different keys proceed in parallel. Blocked records hold
 * table entries, so a hot key stalls the frontier at max_inflight, never
 * memory. (Keys are compared by their 64-bit hash: two keys that collide
 * are ordered together, which is safe, only slower.)
 *
 * Filters: the filtered groups of a stream file their patterns in the
 * stream's filter set (filter_set.h), and a record is matched against the
 * whole set once; the answer (a bitset, one bit per group) goes into the
 * engine's memo under (set version, shard, seq), where the stream's other
 * groups reading the same record find their bit. The memo is a fixed
 * SL_FILTER_MEMO_ENTRIES records, whatever the number of streams, groups or
 * backlog: a group far behind the others finds its records evicted and
 * matches them again (bounded memory over a perfect one-match guarantee).
 * A group joins the set when its runtime state is built and leaves it when
 * deleted or freed; every change makes a new version, so no answer computed
 * for another set of filters is ever read. A group the set cannot take (more
 * than SL_FILTER_SET_MAX, no memory) matches its filter alone.
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

/* ---- groups: runtime state ------------------------------------------- */

/* Files the group's filter in its stream's set (see the top). */
static void group_index(struct sl_engine *e, struct sl_queue_state *qs, struct qgroup *g)
{
    SL_ASSERT(g->filter != NULL && g->filter_slot == NO_SLOT);
    if (qs->filters == NULL) {
        qs->filters = sl_filter_set_new();
    }
    if (e->filter_memo == NULL) {
        e->filter_memo = sl_filter_memo_new();
    }
    if (qs->filters == NULL || e->filter_memo == NULL ||
        sl_filter_set_add(qs->filters, g->filter, &g->filter_slot) != SL_OK) {
        g->filter_slot = NO_SLOT; /* matched alone: slower, the same answers */
    }
}

/* Takes the group's filter out of its stream's set: before the filter is
 * freed, and when the group leaves the stream's list (deleted). */
static void group_unindex(struct qgroup *g)
{
    if (g->filter_slot != NO_SLOT) {
        SL_ASSERT(g->stream->queues != NULL && g->stream->queues->filters != NULL);
        sl_filter_set_remove(g->stream->queues->filters, g->filter_slot);
        g->filter_slot = NO_SLOT;
    }
}

static void group_free(struct qgroup *g)
{
    if (g == NULL) {
        return;
    }
    group_unindex(g);
    sl_filter_free(g->filter);
    free(g->keys);
    free(g->frontier);
    free(g->reading);
    free(g->readable);
    free(g->ctl_from);
    free(g->e);
    free(g);
}

/* Lets go of a hold (a receive's); a deleted group goes with its last. */
void qg_group_put(struct qgroup *g)
{
    SL_ASSERT(g->receives > 0);
    g->receives--;
    if (g->deleted && g->receives == 0) {
        SL_ASSERT(g->waiters == NULL);
        group_free(g);
    }
}

/* An ordered group's parent shard is done when it is closed and every record
 * of it is acknowledged (its floor at its end): only then may the next
 * record of a key, in a child, be delivered (#16). */
static bool parent_done(void *ctx, uint32_t shard)
{
    const struct qgroup *g = ctx;
    const struct sl_stream *st = g->stream;
    if (!st->lineage.shard[shard].closed) {
        return false;
    }
    struct sl_shard_stats ss;
    sl_wshard_stats(&st->shards[shard]->ws, &ss);
    return sl_qstate_floor(st->qstate, g->name, shard) >= ss.next_seq;
}

/* Every ancestor closed and fully acknowledged (lineage.h: parents alone are not enough).
 * Once true it stays true - floors only rise, closed shards stay closed - so it is kept. */
bool qg_shard_readable(struct qgroup *g, uint32_t s)
{
    const struct sl_stream *st = g->stream;
    if (st->lineage.n == st->lineage.open || g->readable[s]) {
        return true;
    }
    g->readable[s] = sl_lineage_readable(&st->lineage, s, parent_done, g);
    return g->readable[s] != 0;
}

static struct qgroup *group_build(struct sl_stream *st, const struct sl_qgroup_def *def)
{
    struct qgroup *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->stream = st;
    g->filter_slot = NO_SLOT;
    snprintf(g->name, sizeof(g->name), "%s", def->name);
    g->visibility_ms =
        def->visibility_timeout_ms ? def->visibility_timeout_ms : QUEUE_VISIBILITY_DEFAULT_MS;
    g->max_deliveries = def->max_deliveries;
    g->max_inflight = def->max_inflight ? def->max_inflight : QUEUE_INFLIGHT_DEFAULT;
    g->start_time_ms = def->start_kind == 4 ? def->start_time_ms : 0;
    g->end_time_ms = def->end_time_ms;
    if (def->dead_letter_stream[0] != '\0') {
        snprintf(g->dlq, sizeof(g->dlq), "%s", def->dead_letter_stream);
    } else {
        snprintf(g->dlq, sizeof(g->dlq), "%.*s.%.*s.dlq", 60, st->name, 60, def->name);
    }
    g->frontier = calloc(st->shard_count, sizeof(*g->frontier));
    g->reading = calloc(st->shard_count, sizeof(*g->reading));
    g->readable = calloc(st->shard_count, sizeof(*g->readable));
    g->ctl_from = malloc(st->shard_count * sizeof(*g->ctl_from));
    g->n_shards = st->shard_count;
    g->home_epoch = -1;
    g->cap = g->max_inflight < QUEUE_TABLE_MIN ? g->max_inflight : QUEUE_TABLE_MIN;
    g->e = calloc(g->cap, sizeof(*g->e));
    g->ordered = def->ordered;
    if (g->ordered) {
        g->keys_cap = 2 * g->cap;
        g->keys = calloc(g->keys_cap, sizeof(*g->keys));
    }
    if (g->frontier == NULL || g->reading == NULL || g->readable == NULL || g->ctl_from == NULL ||
        g->e == NULL || (g->ordered && g->keys == NULL)) {
        group_free(g);
        return NULL;
    }
    if (def->filter != NULL && def->filter[0] != '\0') {
        char why[256];
        enum sl_filter_scope scope =
            def->filter_body ? SL_FILTER_SCOPE_BODY : SL_FILTER_SCOPE_ATTRIBUTES;
        if (sl_filter_parse(def->filter, strlen(def->filter), scope, &g->filter, why,
                            sizeof(why)) != SL_OK) {
            sl_error("queue", "group %s/%s: stored filter no longer parses: %s", st->name,
                     def->name, why);
            group_free(g);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < g->cap; i++) {
        g->e[i].next_free = i + 1 < g->cap ? i + 1 : UINT32_MAX;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        g->frontier[s] = sl_qstate_floor(st->qstate, def->name, s);
        g->ctl_from[s] = NO_SEQ;
    }
    /* The stream was resharded but the group's growth was not durable yet
     * (a crash between the two): it grows now, the same way (from floor 0). */
    if (sl_qstate_shard_count(st->qstate, def->name) < st->shard_count &&
        sl_qstate_grow_group(st->qstate, def->name, st->shard_count, NULL, NULL) != SL_OK) {
        sl_error("queue",
                 "group %s/%s: cannot take the stream's %u shards (the stream was "
                 "resharded): its new shards are not read until it can",
                 st->name, def->name, st->shard_count);
        group_free(g);
        return NULL;
    }
    return g;
}

static struct qgroup *groups_of(const struct sl_stream *st)
{
    return st->queues != NULL ? st->queues->groups : NULL;
}

/* ---- cluster streams ------------------------------------------------- */

/* Where this broker's reads of shard b end: the log's visible tail and, on a cluster
 * stream, its replica's high watermark (0 without a live replica here: nothing to read).
 * A queue group's home reads every shard from its own replicas (docs/REPLICATION.md). */
uint64_t qg_shard_end(const struct sl_engine *e, const struct sl_bshard *b,
                      const struct sl_shard_stats *ss)
{
    if (!b->stream->cluster) {
        return ss->visible_seq;
    }
    uint64_t end = 0;
    int32_t epoch = -1;
    if (e->repl == NULL || e->repl->replica(e->repl->ctx, b, &end, &epoch) != SL_OK) {
        return 0;
    }
    return end < ss->visible_seq ? end : ss->visible_seq;
}

/* A cluster stream's group is served by its home, the leader of the group's shard (as a
 * consumer group's): SL_OK with *epoch its leader epoch (-1 on a local stream), or
 * SL_ENOT_LEADER naming the shard whose leader to ask. */
int qg_group_home(struct sl_engine *e, struct sl_stream *st, const char *group, int32_t *epoch,
                  char *why, size_t why_len)
{
    *epoch = -1;
    if (!st->cluster) {
        return SL_OK;
    }
    struct sl_bshard *home = NULL;
    uint64_t end = 0;
    int rc = e->repl != NULL ? sl_consumer_group_home(e, st, group, &home, why, why_len)
                             : SL_ENOT_LEADER;
    if (rc == SL_OK && home != NULL && e->repl->replica(e->repl->ctx, home, &end, epoch) == SL_OK &&
        *epoch >= 0) {
        return SL_OK;
    }
    if (rc == SL_OK || e->repl == NULL) { /* (no replica manager: a broker without --cluster) */
        snprintf(why, why_len, "group %s of stream %s: this broker does not lead its shard", group,
                 st->name);
    }
    *epoch = -1;
    return SL_ENOT_LEADER;
}

/* Takes the runtime group off its stream's list (nothing new finds it); receives parked on
 * it end with `err`, those reading when their read returns, and it is freed with the last. */
void qg_group_retire(struct qgroup *g, int err)
{
    struct sl_queue_state *qs = g->stream->queues;
    for (struct qgroup **pp = &qs->groups; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    g->next = NULL;
    group_unindex(g);
    g->deleted = true;
    g->deposed = err == SL_ENOT_LEADER;
    g->receives++; /* held while its parked receives answer */
    qg_recv_fail_waiters(g, err);
    qg_group_put(g);
}

/* A home that lost its shard's leadership, or led it again in a later epoch (another
 * broker led in between), drops its runtime group: the leases it held are not the state
 * any more. The next call on the new home builds it from the store (records not acked
 * delivered again: at-least-once). */
static bool group_stale(struct sl_engine *e, struct qgroup *g)
{
    if (g->home_epoch < 0) {
        return false;
    }
    char why[8];
    int32_t epoch = -1;
    return qg_group_home(e, g->stream, g->name, &epoch, why, sizeof(why)) != SL_OK ||
           epoch != g->home_epoch;
}

/* The runtime group, built from the durable definition on first use. `epoch`: the home's
 * (qg_group_home). */
static struct qgroup *group_get(struct sl_engine *e, struct sl_stream *st, const char *name,
                                int32_t epoch)
{
    for (struct qgroup *g = groups_of(st); g != NULL; g = g->next) {
        if (strcmp(g->name, name) == 0) {
            if (g->home_epoch == epoch) {
                return g;
            }
            qg_group_retire(g, SL_ENOT_LEADER);
            break;
        }
    }
    const struct sl_qgroup_def *def =
        st->qstate != NULL ? sl_qstate_group(st->qstate, name) : NULL; /* NULL: no group */
    if (def == NULL) {
        return NULL;
    }
    if (st->queues == NULL) {
        struct sl_queue_state *qs = calloc(1, sizeof(*qs));
        if (qs == NULL) {
            return NULL;
        }
        *qs = (struct sl_queue_state){.e = e, .st = st, .next = e->queue_streams};
        if (qs->next != NULL) {
            qs->next->prev = qs;
        }
        e->queue_streams = qs;
        st->queues = qs;
    }
    struct qgroup *g = group_build(st, def);
    if (g != NULL) {
        g->home_epoch = epoch;
        if (g->filter != NULL) {
            group_index(e, st->queues, g);
        }
        g->next = st->queues->groups;
        st->queues->groups = g;
    }
    return g;
}

static void keys_rehash(struct qgroup *g, uint32_t cap);

/* Doubles the table (up to max_inflight) when every entry is taken; the new
 * entries go on the free list. The ordered map grows first (2 x cap
 * slots: never more than half full). False: at max_inflight, or no memory
 * (the group works on with the entries it has). Moves g->e: no entry
 * pointer may be held across it. */
static bool table_grow(struct qgroup *g)
{
    SL_ASSERT(g->free_head == UINT32_MAX && g->used == g->cap);
    if (g->cap >= g->max_inflight) {
        return false;
    }
    uint32_t cap = g->cap > g->max_inflight / 2 ? g->max_inflight : g->cap * 2;
    if (g->ordered && g->keys_cap < 2 * cap) {
        keys_rehash(g, 2 * cap);
        if (g->keys_cap < 2 * cap) {
            return false; /* no memory for the map: no more entries than it can hold */
        }
    }
    struct qentry *n = realloc(g->e, (size_t)cap * sizeof(*n));
    if (n == NULL) {
        return false;
    }
    memset(n + g->cap, 0, (size_t)(cap - g->cap) * sizeof(*n));
    for (uint32_t i = g->cap; i < cap; i++) {
        n[i].next_free = i + 1 < cap ? i + 1 : UINT32_MAX;
    }
    g->e = n;
    g->free_head = g->cap;
    g->cap = cap;
    SL_ASSERT(g->cap <= g->max_inflight && g->free_head < g->cap);
    return true;
}

struct qentry *qg_entry_alloc(struct qgroup *g)
{
    if (g->free_head == UINT32_MAX && !table_grow(g)) {
        return NULL;
    }
    struct qentry *e = &g->e[g->free_head];
    g->free_head = e->next_free;
    g->used++;
    e->gen++;
    return e;
}

struct keyslot *qg_key_find(struct qgroup *g, uint64_t hash, bool for_insert)
{
    uint32_t i = (uint32_t)(hash % g->keys_cap);
    struct keyslot *tomb = NULL;
    for (uint32_t probe = 0; probe < g->keys_cap; probe++, i = (i + 1) % g->keys_cap) {
        struct keyslot *k = &g->keys[i];
        if (k->state == KS_EMPTY) {
            return for_insert ? (tomb != NULL ? tomb : k) : NULL;
        }
        if (k->state == KS_TOMB) {
            tomb = tomb == NULL ? k : tomb;
        } else if (k->hash == hash) {
            return k;
        }
    }
    return for_insert ? tomb : NULL;
}

/* Rebuilds the key map into `cap` slots without tombstones (when they pile
 * up, or the table grew). */
static void keys_rehash(struct qgroup *g, uint32_t cap)
{
    struct keyslot *old = g->keys;
    uint32_t old_cap = g->keys_cap;
    struct keyslot *fresh = calloc(cap, sizeof(*fresh));
    if (fresh == NULL) {
        return; /* keep working with tombstones, or a fuller map */
    }
    g->keys = fresh;
    g->keys_cap = cap;
    g->keys_tomb = 0;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i].state == KS_USED) {
            *qg_key_find(g, old[i].hash, true) = old[i];
        }
    }
    free(old);
}

/* Ordered: adds entry `e` (keyed) to its key's chain; returns true when it
 * is the head (may be leased now), false when it must wait. */
bool qg_key_chain_add(struct qgroup *g, struct qentry *e)
{
    uint32_t slot = (uint32_t)(e - g->e);
    e->next_same = NO_SLOT;
    struct keyslot *k = qg_key_find(g, e->key_hash, true);
    SL_ASSERT(k != NULL); /* at least as many slots as entries: never full */
    if (k->state == KS_USED) {
        g->e[k->tail].next_same = slot;
        k->tail = slot;
        return false;
    }
    if (k->state == KS_TOMB) {
        g->keys_tomb--;
    }
    *k = (struct keyslot){.hash = e->key_hash, .head = slot, .tail = slot, .state = KS_USED};
    return true;
}

/* Ordered: `e` (the head of its chain) is done: the next one becomes READY. */
static void key_chain_pop(struct qgroup *g, struct qentry *e)
{
    struct keyslot *k = qg_key_find(g, e->key_hash, false);
    if (k == NULL || k->head != (uint32_t)(e - g->e)) {
        return;
    }
    if (e->next_same == NO_SLOT) {
        k->state = KS_TOMB;
        if (++g->keys_tomb > g->keys_cap / 4) {
            keys_rehash(g, g->keys_cap);
        }
        return;
    }
    k->head = e->next_same;
    struct qentry *n = &g->e[k->head];
    if (n->state == QE_BLOCKED) {
        n->state = QE_READY;
        n->due_ms = 0;
    }
}

void qg_entry_release(struct qgroup *g, struct qentry *e)
{
    if (g->ordered && e->keyed) {
        key_chain_pop(g, e);
    }
    e->keyed = false;
    e->state = QE_FREE;
    e->next_free = g->free_head;
    g->free_head = (uint32_t)(e - g->e);
    g->used--;
}

void qg_receipt_format(const struct qgroup *g, const struct qentry *e, char *out, size_t n)
{
    snprintf(out, n, "%x.%x.%x.%" PRIx64, (unsigned)(e - g->e), e->gen, e->shard, e->seq);
}

static struct qentry *receipt_find(struct qgroup *g, const char *r)
{
    unsigned slot, gen, shard;
    uint64_t seq;
    if (r == NULL || sscanf(r, "%x.%x.%x.%" SCNx64, &slot, &gen, &shard, &seq) != 4 ||
        slot >= g->cap) {
        return NULL;
    }
    struct qentry *e = &g->e[slot];
    if (e->gen != gen || e->shard != shard || e->seq != seq || e->state != QE_LEASED) {
        return NULL;
    }
    return e;
}

/* Finds stream and group, or says why not. */
struct qgroup *qg_lookup(struct sl_engine *e, const char *stream, const char *group, char *why,
                         uint32_t why_len, int *err)
{
    struct sl_stream *st = sl_engine_stream(e, stream, why, why_len, err);
    if (st == NULL) {
        return NULL;
    }
    int32_t epoch = -1;
    if ((*err = qg_group_home(e, st, group != NULL ? group : "", &epoch, why, why_len)) != SL_OK) {
        return NULL;
    }
    struct qgroup *g = group_get(e, st, group != NULL ? group : "", epoch);
    if (g == NULL) {
        snprintf(why, why_len, "queue group %s not found on stream %s", group != NULL ? group : "",
                 st->name);
        *err = SL_ENOTFOUND;
    }
    return g;
}

/* ---- operations answered once their durable steps are done ---------- */

static void simple_finish(struct simple_op *op)
{
    op->stream->inflight--;
    const char *why = op->err != SL_OK ? sl_strerror(op->err) : "";
    if (op->settled != NULL) {
        sl_op_stats_record(&op->e->stats.op[SL_OP_SETTLE], op->err,
                           sl_clock_mono_ns() - op->start_ns);
        op->settled(op->ctx, op->err, why, op->results, op->n_results);
    } else {
        op->done(op->ctx, op->err, why);
    }
    free(op->results);
    free(op);
}

void qg_simple_cb(void *ctx, int err)
{
    struct simple_op *op = ctx;
    if (err != SL_OK && op->err == SL_OK) {
        op->err = err;
    }
    SL_ASSERT(op->outstanding > 0);
    if (--op->outstanding == 0) {
        simple_finish(op);
    }
}

struct simple_op *qg_simple_new(struct sl_engine *e, struct sl_stream *st, sl_done_cb done,
                                sl_settle_cb settled, void *ctx)
{
    struct simple_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    *op = (struct simple_op){.e = e,
                             .start_ns = sl_clock_mono_ns(),
                             .stream = st,
                             .done = done,
                             .settled = settled,
                             .ctx = ctx,
                             .outstanding = 1 /* released by qg_simple_start */};
    st->inflight++;
    return op;
}

/* Drops the creator's hold: finishes now if nothing async is outstanding. */
void qg_simple_start(struct simple_op *op)
{
    qg_simple_cb(op, SL_OK);
}

/* ---- ack / nack / extend ---------------------------------------------- */

/* Settles one leased entry; an error when the durable ack could not start. */
static int settle_one(struct qgroup *g, struct simple_op *op, const struct sl_settle_req *req,
                      struct qentry *e, uint64_t now)
{
    switch (req->kind) {
    case SL_SETTLE_ACK: {
        op->outstanding++;
        int rc =
            sl_qlog_ack(op->e, g->stream, g->name, e->shard, e->seq, e->seq + 1, qg_simple_cb, op);
        if (rc != SL_OK) {
            op->outstanding--;
            return rc;
        }
        qg_entry_release(g, e);
        return SL_OK;
    }
    case SL_SETTLE_NACK:
        e->state = QE_READY;
        e->due_ms = now + req->ms;
        return SL_OK;
    default:
        e->due_ms = now + (req->ms ? req->ms : g->visibility_ms);
        return SL_OK;
    }
}

void sl_queue_settle(struct sl_engine *e, const struct sl_settle_req *req, sl_settle_cb cb,
                     void *ctx)
{
    char why[300];
    int rc;
    struct qgroup *g = qg_lookup(e, req->stream, req->group, why, sizeof(why), &rc);
    if (g == NULL) {
        cb(ctx, rc, why, NULL, 0);
        return;
    }
    struct simple_op *op = qg_simple_new(e, g->stream, NULL, cb, ctx);
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM), NULL, 0);
        return;
    }
    if ((op->results = calloc(req->n + 1, sizeof(*op->results))) == NULL) {
        op->err = SL_ENOMEM;
        qg_simple_start(op);
        return;
    }
    op->n_results = req->n;
    uint64_t now = sl_clock_mono_ms();
    bool woke = false;
    for (uint32_t i = 0; i < req->n; i++) {
        struct qentry *qe = receipt_find(g, req->receipts[i]);
        if (qe == NULL) {
            op->results[i] = SL_ENOTFOUND;
            continue;
        }
        op->results[i] = settle_one(g, op, req, qe, now);
        /* an ack makes room for another lease, a nack makes one visible */
        woke = woke || (op->results[i] == SL_OK && req->kind != SL_SETTLE_EXTEND);
    }
    if (woke && g->waiters != NULL) {
        qg_recv_wake(g);
    }
    qg_simple_start(op);
}

/* ---- tick, progress, stop ------------------------------------------- */

void sl_queue_tick(struct sl_engine *e)
{
    uint64_t t = sl_clock_mono_ms();
    qg_dlq_retry_due(e, t, false);
    for (struct sl_queue_state *qs = e->queue_streams; qs != NULL; qs = qs->next) {
        for (struct qgroup *g = qs->groups, *next = NULL; g != NULL; g = next) {
            next = g->next;
            if (group_stale(e, g)) {
                qg_group_retire(g, SL_ENOT_LEADER); /* its receives answer: ask the new home */
                continue;
            }
            bool ready = false;
            for (uint32_t i = 0; i < g->cap && g->used > 0; i++) {
                struct qentry *qe = &g->e[i];
                if (qe->state == QE_LEASED && qe->due_ms <= t) {
                    qe->state = QE_READY; /* the lease expired: visible again */
                    qe->due_ms = t;
                    ready = true;
                } else if (qe->state == QE_READY && qe->due_ms <= t) {
                    ready = true;
                }
            }
            qg_recv_expire(g, t); /* expired long-polls answer empty; a ready record wakes all */
            if (ready && g->waiters != NULL) {
                qg_recv_wake(g);
            }
        }
    }
}

void sl_queue_shard_progress(struct sl_bshard *b)
{
    for (struct qgroup *g = groups_of(b->stream); g != NULL; g = g->next) {
        if (g->waiters != NULL) {
            qg_recv_wake(g);
        }
    }
}

void sl_queue_stop(struct sl_engine *e)
{
    qg_dlq_retry_due(e, 0, true);
    /* Every stream with queue state, deleted ones waiting to be reaped
     * included (the catalog lists only live streams): a receive parked on a
     * deleted stream's group would otherwise never be answered. */
    for (struct sl_queue_state *qs = e->queue_streams; qs != NULL; qs = qs->next) {
        for (struct qgroup *g = qs->groups; g != NULL; g = g->next) {
            qg_recv_fail_waiters(g, SL_OK); /* empty answers */
        }
    }
}

void sl_queue_stream_deleted(struct sl_stream *st)
{
    SL_ASSERT(st->deleted);
    for (struct qgroup *g = groups_of(st); g != NULL; g = g->next) {
        qg_recv_fail_waiters(g, SL_ENOTFOUND);
    }
}

struct grow_ctx {
    struct sl_qstate *qs;
    uint32_t count;
    int rc;
    char *why;
    size_t why_len;
};

static void grow_durable(void *ctx, const struct sl_qgroup_def *def)
{
    struct grow_ctx *gc = ctx;
    if (gc->rc != SL_OK || sl_qstate_shard_count(gc->qs, def->name) >= gc->count) {
        return;
    }
    gc->rc = sl_qstate_grow_group(gc->qs, def->name, gc->count, NULL, NULL);
    if (gc->rc != SL_OK) {
        snprintf(gc->why, gc->why_len, "queue group %s cannot take %u shards: %s", def->name,
                 gc->count, sl_strerror(gc->rc));
    }
}

int sl_queue_stream_grow(struct sl_stream *st, uint32_t count, char *why, size_t why_len)
{
    if (st->qstate == NULL) {
        return SL_OK; /* no queue group */
    }
    if (count > SL_QSTATE_SHARDS_MAX) {
        snprintf(why, why_len,
                 "stream %s has queue groups, which hold at most %u shards (open and closed): "
                 "the change would make %u",
                 st->name, SL_QSTATE_SHARDS_MAX, count);
        return SL_ELIMIT;
    }
    for (struct qgroup *g = groups_of(st); g != NULL; g = g->next) {
        if (g->n_shards >= count) {
            continue;
        }
        uint64_t *fr = realloc(g->frontier, count * sizeof(*fr));
        if (fr != NULL) {
            g->frontier = fr;
        }
        bool *rd = fr != NULL ? realloc(g->reading, count * sizeof(*rd)) : NULL;
        if (rd != NULL) {
            g->reading = rd;
        }
        uint8_t *ok = rd != NULL ? realloc(g->readable, count * sizeof(*ok)) : NULL;
        if (ok != NULL) {
            g->readable = ok;
        }
        uint64_t *cf = ok != NULL ? realloc(g->ctl_from, count * sizeof(*cf)) : NULL;
        if (cf == NULL) {
            snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
            return SL_ENOMEM;
        }
        g->ctl_from = cf;
        for (uint32_t s = g->n_shards; s < count; s++) {
            g->frontier[s] = 0; /* a new shard: read from its start */
            g->reading[s] = false;
            g->readable[s] = 0;
            g->ctl_from[s] = NO_SEQ;
        }
        g->n_shards = count;
    }
    /* durable with the next batch of the store; a crash first is caught up when
     * the group is built again (group_build) */
    struct grow_ctx gc = {
        .qs = st->qstate, .count = count, .rc = SL_OK, .why = why, .why_len = why_len};
    sl_qstate_foreach_group(st->qstate, grow_durable, &gc);
    return gc.rc;
}

void sl_queue_stream_free(struct sl_stream *st)
{
    if (st->queues == NULL) {
        return;
    }
    while (st->queues->groups != NULL) {
        struct qgroup *g = st->queues->groups;
        st->queues->groups = g->next;
        group_free(g);
    }
    struct sl_queue_state *qs = st->queues;
    SL_ASSERT(qs->filters == NULL || sl_filter_set_count(qs->filters) == 0);
    sl_filter_set_free(qs->filters);
    if (qs->prev != NULL) {
        qs->prev->next = qs->next;
    } else {
        qs->e->queue_streams = qs->next;
    }
    if (qs->next != NULL) {
        qs->next->prev = qs->prev;
    }
    free(qs);
    st->queues = NULL;
}
