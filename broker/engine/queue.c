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

#define QUEUE_VISIBILITY_DEFAULT_MS 30000u
#define QUEUE_INFLIGHT_DEFAULT 10000u
#define QUEUE_TABLE_MIN 64u /* entries first allocated; doubled up to max_inflight */
#define QUEUE_READ_BYTES (256u << 10)
#define RECEIPT_MAX 64u

enum { QE_FREE = 0, QE_LEASED, QE_READY, QE_CLAIMED, QE_BLOCKED };

#define NO_SLOT UINT32_MAX
#define NO_SEQ UINT64_MAX
/* Control batches skipped at a shard's frontier are acked with the group's next change of
 * that shard, or once this many sequences of them gathered (see ctl_skip). */
#define QUEUE_CTL_LAZY_MAX 1024u

struct qentry {
    uint64_t seq;
    uint64_t due_ms;
    uint64_t key_hash; /* ordered groups: the record's key (when keyed) */
    uint32_t shard;
    uint32_t count;
    uint32_t gen;
    uint32_t next_free;
    uint32_t next_same; /* ordered: the next entry of the same key */
    uint8_t state;
    bool keyed;
};

/* Ordered groups: key hash -> chain of entries (head is the one that may be
 * leased). Open addressing, linear probing, tombstones. */
enum { KS_EMPTY = 0, KS_USED, KS_TOMB };
struct keyslot {
    uint64_t hash;
    uint32_t head;
    uint32_t tail;
    uint8_t state;
};

struct recv_op;

/* Per stream: its groups' runtime state, built on first use; linked in
 * e->queue_streams so that the tick walks the streams with groups, not the
 * catalog. */
struct sl_queue_state {
    struct qgroup *groups;
    struct sl_filter_set *filters; /* the groups' filters; NULL until one has one */
    struct sl_engine *e;
    struct sl_stream *st;
    struct sl_queue_state *prev;
    struct sl_queue_state *next;
};

struct qgroup {
    struct qgroup *next;
    struct sl_stream *stream;
    char name[SL_QUEUE_GROUP_NAME_MAX + 1];
    uint32_t visibility_ms;
    uint32_t max_deliveries;
    uint32_t max_inflight;
    uint64_t start_time_ms; /* AT_TIMESTAMP groups skip records appended before */
    uint64_t end_time_ms;   /* 0 or: records appended at or after it are skipped */
    char dlq[SL_STREAM_NAME_MAX + 1];
    struct sl_filter *filter;
    uint32_t filter_slot; /* in the stream's filter set, or NO_SLOT: matched alone */
    bool ordered;
    struct keyslot *keys; /* ordered: 2 x cap slots */
    uint32_t keys_cap;
    uint32_t keys_tomb;
    uint64_t *frontier; /* n_shards of them (the stream's shards may grow: reshard) */
    bool *reading;
    uint8_t *readable; /* ordered groups: shards known readable (it only ever becomes true) */
    uint32_t n_shards;
    struct qentry *e;   /* cap entries (<= max_inflight) */
    uint32_t cap;
    uint32_t free_head; /* UINT32_MAX: none */
    uint32_t used;      /* entries not FREE */
    uint32_t rr;
    struct recv_op *waiters;
    /* Receives holding this group. A deleted group leaves its stream's list
     * at once (nothing new finds it) and is freed when the last one ends. */
    uint32_t receives;
    bool deleted;
    bool deposed;       /* (deleted too) this broker no longer leads its cluster home */
    int32_t home_epoch; /* cluster stream: the home shard's epoch it was built in; else -1 */
    /* Per shard, the start of a run of control batches skipped at the frontier but not acked
     * yet (NO_SEQ: none): see ctl_skip. */
    uint64_t *ctl_from;
};

static uint64_t now_ms(void)
{
    return sl_clock_wall_ms();
}


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
static bool shard_readable(struct qgroup *g, uint32_t s)
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
    g->visibility_ms = def->visibility_timeout_ms ? def->visibility_timeout_ms
                                                  : QUEUE_VISIBILITY_DEFAULT_MS;
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
    if (g->frontier == NULL || g->reading == NULL || g->readable == NULL ||
        g->ctl_from == NULL || g->e == NULL || (g->ordered && g->keys == NULL)) {
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
        sl_error("queue", "group %s/%s: cannot take the stream's %u shards (the stream was "
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
static uint64_t shard_end(const struct sl_engine *e, const struct sl_bshard *b,
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
static int group_home(const struct sl_engine *e, const struct sl_stream *st, const char *group,
                      int32_t *epoch, char *why, size_t why_len)
{
    *epoch = -1;
    if (!st->cluster) {
        return SL_OK;
    }
    uint32_t k = sl_partition_group_shard(group, strlen(group), st->shard_count);
    uint64_t end = 0;
    if (e->repl == NULL ||
        e->repl->replica(e->repl->ctx, st->shards[k], &end, epoch) != SL_OK || *epoch < 0) {
        snprintf(why, why_len,
                 "queue group %s of stream %s keeps its state in shard %u, which this broker "
                 "does not lead: ask that shard's leader (Metadata)",
                 group, st->name, k);
        *epoch = -1;
        return SL_ENOT_LEADER;
    }
    return SL_OK;
}

static void recv_fail_waiters(struct qgroup *g, int err);
static void group_put(struct qgroup *g);

/* Takes the runtime group off its stream's list (nothing new finds it); receives parked on
 * it end with `err`, those reading when their read returns, and it is freed with the last. */
static void group_retire(struct qgroup *g, int err)
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
    recv_fail_waiters(g, err);
    group_put(g);
}

/* A home that lost its shard's leadership, or led it again in a later epoch (another
 * broker led in between), drops its runtime group: the leases it held are not the state
 * any more. The next call on the new home builds it from the store (records not acked
 * delivered again: at-least-once). */
static bool group_stale(const struct sl_engine *e, struct qgroup *g)
{
    if (g->home_epoch < 0) {
        return false;
    }
    char why[8];
    int32_t epoch = -1;
    return group_home(e, g->stream, g->name, &epoch, why, sizeof(why)) != SL_OK ||
           epoch != g->home_epoch;
}

/* The runtime group, built from the durable definition on first use. `epoch`: the home's
 * (group_home). */
static struct qgroup *group_get(struct sl_engine *e, struct sl_stream *st, const char *name,
                                int32_t epoch)
{
    for (struct qgroup *g = groups_of(st); g != NULL; g = g->next) {
        if (strcmp(g->name, name) == 0) {
            if (g->home_epoch == epoch) {
                return g;
            }
            group_retire(g, SL_ENOT_LEADER);
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

static struct qentry *entry_alloc(struct qgroup *g)
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

static struct keyslot *key_find(struct qgroup *g, uint64_t hash, bool for_insert)
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
            *key_find(g, old[i].hash, true) = old[i];
        }
    }
    free(old);
}

/* Ordered: adds entry `e` (keyed) to its key's chain; returns true when it
 * is the head (may be leased now), false when it must wait. */
static bool key_chain_add(struct qgroup *g, struct qentry *e)
{
    uint32_t slot = (uint32_t)(e - g->e);
    e->next_same = NO_SLOT;
    struct keyslot *k = key_find(g, e->key_hash, true);
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
    struct keyslot *k = key_find(g, e->key_hash, false);
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

static void entry_release(struct qgroup *g, struct qentry *e)
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

static void receipt_format(const struct qgroup *g, const struct qentry *e, char *out, size_t n)
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
static struct qgroup *lookup(struct sl_engine *e, const char *stream, const char *group,
                             char *why, uint32_t why_len, int *err)
{
    struct sl_stream *st = sl_engine_stream(e, stream, why, why_len, err);
    if (st == NULL) {
        return NULL;
    }
    int32_t epoch = -1;
    if ((*err = group_home(e, st, group != NULL ? group : "", &epoch, why, why_len)) != SL_OK) {
        return NULL;
    }
    struct qgroup *g = group_get(e, st, group != NULL ? group : "", epoch);
    if (g == NULL) {
        snprintf(why, why_len, "queue group %s not found on stream %s",
                 group != NULL ? group : "", st->name);
        *err = SL_ENOTFOUND;
    }
    return g;
}

/* ---- create / delete / list ------------------------------------------ */

/* An operation answered once every durable step it started is done. */
struct simple_op {
    struct sl_engine *e;
    uint64_t start_ns;
    struct sl_stream *stream;
    sl_done_cb done;   /* create, delete, purge */
    sl_settle_cb settled; /* ack, nack, extend: with per-receipt results */
    void *ctx;
    uint32_t outstanding;
    int err;
    int *results;
    uint32_t n_results;
};

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

static void simple_cb(void *ctx, int err)
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

static struct simple_op *simple_new(struct sl_engine *e, struct sl_stream *st, sl_done_cb done,
                                    sl_settle_cb settled, void *ctx)
{
    struct simple_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    *op = (struct simple_op){.e = e, .start_ns = sl_clock_mono_ns(), .stream = st,
                             .done = done, .settled = settled, .ctx = ctx,
                             .outstanding = 1 /* released by simple_start */};
    st->inflight++;
    return op;
}

/* Drops the creator's hold: finishes now if nothing async is outstanding. */
static void simple_start(struct simple_op *op)
{
    simple_cb(op, SL_OK);
}

/* Each shard's floor for a new group starting at `start`. */
static void start_floors(const struct sl_engine *e, struct sl_stream *st,
                         const struct sl_position *start, uint64_t *floors)
{
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        ss.visible_seq = shard_end(e, st->shards[s], &ss);
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
    def->created_ms = now_ms();
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
static int cluster_group_check(const struct sl_engine *e, const struct sl_stream *st,
                               const char *group, const struct sl_qgroup_config *cfg, char *why,
                               size_t why_len)
{
    int32_t epoch = -1;
    int rc = group_home(e, st, group, &epoch, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    if (cfg != NULL && cfg->max_deliveries > 0) {
        snprintf(why, why_len,
                 "queue group %s: dead-lettering (max_deliveries) is not built for replicated "
                 "streams yet (docs/REPLICATION.md \"Queue groups\"): create it without, or on a "
                 "local stream",
                 group);
        return SL_EUNSUPPORTED;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        uint64_t end = 0;
        int32_t ep = -1;
        if (e->repl->replica(e->repl->ctx, st->shards[s], &end, &ep) != SL_OK) {
            uint32_t k = sl_partition_group_shard(group, strlen(group), st->shard_count);
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

void sl_queue_create_group(struct sl_engine *e, const char *stream, const char *group,
                           const struct sl_qgroup_config *cfg, sl_done_cb cb, void *ctx)
{
    char why[700];
    int rc;
    struct sl_stream *st = sl_engine_stream(e, stream, why, sizeof(why), &rc);
    struct sl_qgroup_def def;
    struct sl_qstate *qs = NULL;
    if (st != NULL && st->cluster &&
        (rc = cluster_group_check(e, st, group != NULL ? group : "", cfg, why, sizeof(why))) !=
            SL_OK) {
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
        (rc = sl_catalog_qstate(e->catalog, st, &qs, why, sizeof(why))) != SL_OK) {
        cb(ctx, rc, why);
        return;
    }
    uint64_t *floors = calloc(st->shard_count, sizeof(*floors));
    struct simple_op *op = floors != NULL ? simple_new(e, st, cb, NULL, ctx) : NULL;
    if (op == NULL) {
        free(floors);
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    start_floors(e, st, &(struct sl_position){.kind = def.start_kind, .seq = def.start_seq,
                                              .time_ms = def.start_time_ms},
                 floors);
    op->outstanding++;
    rc = sl_qlog_create_group(e, st, &def, st->shard_count, floors, simple_cb, op);
    free(floors);
    if (rc != SL_OK) {
        op->outstanding--;
        op->err = rc;
    }
    simple_start(op);
}

/* Receives in flight on the group end with SL_ENOTFOUND (parked ones at
 * once, others when their read returns); their leases go with the group. */
void sl_queue_delete_group(struct sl_engine *e, const char *stream, const char *group,
                           sl_done_cb cb, void *ctx)
{
    char why[300];
    int rc;
    struct qgroup *g = lookup(e, stream, group, why, sizeof(why), &rc);
    if (g == NULL) {
        cb(ctx, rc, why);
        return;
    }
    struct sl_stream *st = g->stream;
    struct simple_op *op = simple_new(e, st, cb, NULL, ctx);
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    op->outstanding++;
    rc = sl_qlog_delete_group(e, st, g->name, simple_cb, op);
    if (rc != SL_OK) {
        op->outstanding--;
        op->err = rc;
    } else {
        group_retire(g, SL_ENOTFOUND);
    }
    simple_start(op);
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
                    void (*fn)(void *ctx, const char *name), void *ctx, char *why,
                    uint32_t why_len)
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
    uint32_t claimed; /* slot of the redelivery being read, or NO_SLOT: frontier read */
    uint32_t tried;         /* shards tried in this pass */
    struct recv_op *next;   /* parked */
    bool parked;
};

static void recv_step(struct recv_op *op);
static void recv_wake(struct qgroup *g);

static void recv_free(struct recv_op *op)
{
    free(op->recs);
    free(op->attrs);
    free(op->arena);
    free(op->buf);
    free(op);
}

/* Answers with the collected records, pointers resolved into the arena. */
static void group_put(struct qgroup *g)
{
    SL_ASSERT(g->receives > 0);
    g->receives--;
    if (g->deleted && g->receives == 0) {
        SL_ASSERT(g->waiters == NULL);
        group_free(g);
    }
}

static void recv_finish(struct recv_op *op)
{
    op->stream->inflight--;
    struct sl_qrecord *out = op->err == SL_OK && op->n > 0 ? calloc(op->n, sizeof(*out)) : NULL;
    struct sl_attr *attrs = out != NULL && op->n_attrs > 0 ? calloc(op->n_attrs, sizeof(*attrs))
                                                           : NULL;
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
        out[i] = (struct sl_qrecord){
            .receipt = (const char *)op->arena + q->receipt_off, .shard = q->shard,
            .seq = q->seq, .timestamp_ms = q->timestamp_ms, .produced_ms = q->produced_ms,
            .delivery_count = q->delivery_count, .key = op->arena + q->key_off,
            .key_len = q->key_len, .value = op->arena + q->value_off,
            .value_len = q->value_len, .attrs = attrs != NULL ? attrs + q->attr_first : NULL,
            .attr_count = q->attr_count};
    }
    struct sl_receive_result r = {.err = op->err,
                                  .why = op->err == SL_OK         ? ""
                                         : op->g->deposed ? "this broker no longer leads the "
                                                            "group's shard: ask its leader"
                                         : op->g->deleted ? "the group was deleted"
                                         : op->stream->deleted ? "the stream was deleted"
                                                               : sl_strerror(op->err),
                                  .records = out, .n = op->err == SL_OK ? op->n : 0};
    sl_op_stats_record(&op->e->stats.op[SL_OP_RECEIVE], op->err,
                       sl_clock_mono_ns() - op->start_ns);
    struct qgroup *g = op->g;
    op->cb(op->ctx, &r);
    free(out);
    free(attrs);
    recv_free(op);
    group_put(g);
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
    receipt_format(op->g, e, receipt, sizeof(receipt));
    struct qrec q = {.shard = e->shard, .delivery_count = e->count, .seq = e->seq,
                     .timestamp_ms = append_ms, .produced_ms = rv->timestamp_ms,
                     .key_len = rv->key_len, .value_len = rv->value_len,
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
    uint32_t tries;
    uint64_t retry_ms; /* monotonic */
    struct dlq_op *next_retry;
};

#define DLQ_RETRY_STEP_MS 100u   /* the wait grows by this per failed try */
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
            sl_error("queue", "dead-lettering %s/%u/%" PRIu64 " into %s failed (%s) with %u "
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
        sl_warn("queue", "dead-lettering %s/%u/%" PRIu64 " into %s failed (%s, try %u): trying "
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

static void dlq_start(struct dlq_op *op)
{
    /* (an open shard: a dead-letter stream may have been resharded) */
    struct sl_bshard *dst = op->dst->shards[sl_catalog_open_shard(op->dst, 0)];
    int rc = sl_wshard_append(&dst->ws, op->batch, op->len, 0, on_dlq_appended, op);
    if (rc != SL_OK) {
        dlq_retry_later(op, rc);
    }
}

/* From the tick: dead letters whose wait is over are tried again. */
static void dlq_retry_due(struct sl_engine *e, uint64_t now, bool give_up)
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
    if (dst == NULL && sl_catalog_create(op->e->catalog, g->dlq, 1, 0, 0, NULL, &dst, why,
                                         sizeof(why)) != SL_OK) {
        sl_error("queue", "cannot create dead-letter stream %s: %s", g->dlq, why);
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
    struct sl_record rec = {.key = rv->key, .key_len = rv->key_len, .value = rv->value,
                            .value_len = rv->value_len, .attrs = attrs, .attr_count = na,
                            .timestamp_ms = rv->timestamp_ms};
    size_t len = 0;
    int rc = sl_batch_builder_add(&b, &rec);
    if (rc == SL_OK) {
        rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len);
    }
    if (rc != SL_OK) {
        free(buf);
        free(d);
        sl_warn("queue", "dead-lettering %s/%u/%" PRIu64 ": %s (delivered again after a "
                "restart)", g->stream->name, shard, seq, sl_strerror(rc));
        return;
    }
    d->e = op->e;
    d->src = g->stream;
    snprintf(d->group, sizeof(d->group), "%s", g->name);
    d->shard = shard;
    d->seq = seq;
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
            uint64_t at = strtoull(buf, NULL, 10), wall = now_ms();
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
                    key_find(g, sl_partition_hash(rv->key, rv->key_len), false) != NULL;
    if (g->max_deliveries > 0 && count >= g->max_deliveries && !key_busy) {
        if (e != NULL) {
            entry_release(g, e);
        }
        dead_letter(op, shard, seq, rv, count);
        return true;
    }
    if (e == NULL) {
        e = entry_alloc(g);
        if (e == NULL) {
            return false;
        }
        if (g->ordered && rv->key_len > 0) {
            e->keyed = true;
            e->key_hash = sl_partition_hash(rv->key, rv->key_len);
            e->shard = shard;
            e->seq = seq;
            e->count = count;
            if (!key_chain_add(g, e)) {
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
    uint64_t end = shard_end(op->e, st->shards[shard], &ss);
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
            recv_wake(g);
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
    struct keyslot *k = key_find(g, sl_partition_hash(rv->key, rv->key_len), false);
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
        entry_release(g, e);
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
        if (g->ordered && !shard_readable(g, s)) {
            continue; /* a child of a parent with records not yet acked */
        }
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        if (g->frontier[s] < ss.first_seq) {
            g->frontier[s] = ss.first_seq;
        }
        if (g->reading[s] || g->frontier[s] >= shard_end(op->e, st->shards[s], &ss)) {
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

static void recv_wake(struct qgroup *g)
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
static void recv_fail_waiters(struct qgroup *g, int err)
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
    struct qgroup *g = lookup(e, req->stream, req->group, why, sizeof(why), &rc);
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
    uint32_t wait = req->wait_ms < e->cfg.fetch_wait_max_ms ? req->wait_ms
                                                            : e->cfg.fetch_wait_max_ms;
    *op = (struct recv_op){.e = e, .start_ns = sl_clock_mono_ns(), .cb = cb, .ctx = ctx, .g = g, .stream = g->stream,
                           .claimed = NO_SLOT, .max = req->max_records,
                           .vis_ms = req->visibility_timeout_ms ? req->visibility_timeout_ms
                                                                : g->visibility_ms,
                           .deadline_ms = wait > 0 ? sl_clock_mono_ms() + wait : 0, .recs = recs,
                           .collecting = true, .buf = buf, .buf_cap = QUEUE_READ_BYTES};
    g->stream->inflight++;
    g->receives++;
    recv_step(op);
}

/* ---- ack / nack / extend ---------------------------------------------- */

/* Settles one leased entry; an error when the durable ack could not start. */
static int settle_one(struct qgroup *g, struct simple_op *op, const struct sl_settle_req *req,
                      struct qentry *e, uint64_t now)
{
    switch (req->kind) {
    case SL_SETTLE_ACK: {
        op->outstanding++;
        int rc = sl_qlog_ack(op->e, g->stream, g->name, e->shard, e->seq, e->seq + 1, simple_cb,
                             op);
        if (rc != SL_OK) {
            op->outstanding--;
            return rc;
        }
        entry_release(g, e);
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
    struct qgroup *g = lookup(e, req->stream, req->group, why, sizeof(why), &rc);
    if (g == NULL) {
        cb(ctx, rc, why, NULL, 0);
        return;
    }
    struct simple_op *op = simple_new(e, g->stream, NULL, cb, ctx);
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM), NULL, 0);
        return;
    }
    if ((op->results = calloc(req->n + 1, sizeof(*op->results))) == NULL) {
        op->err = SL_ENOMEM;
        simple_start(op);
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
        recv_wake(g);
    }
    simple_start(op);
}

/* ---- stats / purge ---------------------------------------------------- */

int sl_queue_stats(struct sl_engine *e, const char *stream, const char *group,
                   struct sl_qgroup_stats *out, char *why, uint32_t why_len)
{
    int rc;
    struct qgroup *g = lookup(e, stream, group, why, why_len, &rc);
    if (g == NULL) {
        return rc;
    }
    memset(out, 0, sizeof(*out));
    struct sl_stream *st = g->stream;
    uint64_t now = sl_clock_mono_ms(), oldest = 0, wall = now_ms();
    /* the oldest unacked record's age: its time looked up on every shard in
     * one batch (one synchronous call per worker, not one per shard) */
    struct sl_wshard_time *q = calloc(st->shard_count, sizeof(*q));
    uint32_t nq = 0;
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        ss.visible_seq = shard_end(e, st->shards[s], &ss);
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
        qc->start = (struct sl_position){.kind = def->start_kind, .seq = def->start_seq,
                                         .time_ms = def->start_time_ms};
        qc->end_time_ms = def->end_time_ms;
    }
    return SL_OK;
}

void sl_queue_purge(struct sl_engine *e, const char *stream, const char *group, sl_done_cb cb,
                    void *ctx)
{
    char why[300];
    int rc;
    struct qgroup *g = lookup(e, stream, group, why, sizeof(why), &rc);
    if (g == NULL) {
        cb(ctx, rc, why);
        return;
    }
    struct sl_stream *st = g->stream;
    struct simple_op *op = simple_new(e, st, cb, NULL, ctx);
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[s]->ws, &ss);
        ss.visible_seq = shard_end(e, st->shards[s], &ss);
        uint64_t floor = sl_qstate_floor(st->qstate, g->name, s);
        if (ss.visible_seq > floor) {
            op->outstanding++;
            if (sl_qlog_ack(e, st, g->name, s, floor, ss.visible_seq, simple_cb, op) !=
                SL_OK) {
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
            entry_release(g, qe);
        }
    }
    if (g->keys != NULL) {
        memset(g->keys, 0, (size_t)g->keys_cap * sizeof(*g->keys));
        g->keys_tomb = 0;
    }
    simple_start(op);
}

/* ---- tick, progress, stop ------------------------------------------- */

void sl_queue_tick(struct sl_engine *e)
{
    uint64_t t = sl_clock_mono_ms();
    dlq_retry_due(e, t, false);
    for (struct sl_queue_state *qs = e->queue_streams; qs != NULL; qs = qs->next) {
        for (struct qgroup *g = qs->groups, *next = NULL; g != NULL; g = next) {
            next = g->next;
            if (group_stale(e, g)) {
                group_retire(g, SL_ENOT_LEADER); /* its receives answer: ask the new home */
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
            /* Expired long-polls answer empty; a ready record wakes all. */
            struct recv_op **pp = &g->waiters;
            while (*pp != NULL) {
                struct recv_op *op = *pp;
                if (op->deadline_ms <= t) {
                    *pp = op->next;
                    op->parked = false;
                    op->collecting = false;
                    recv_maybe_finish(op);
                } else {
                    pp = &op->next;
                }
            }
            if (ready && g->waiters != NULL) {
                recv_wake(g);
            }
        }
    }
}

void sl_queue_shard_progress(struct sl_bshard *b)
{
    for (struct qgroup *g = groups_of(b->stream); g != NULL; g = g->next) {
        if (g->waiters != NULL) {
            recv_wake(g);
        }
    }
}

void sl_queue_stop(struct sl_engine *e)
{
    dlq_retry_due(e, 0, true);
    /* Every stream with queue state, deleted ones waiting to be reaped
     * included (the catalog lists only live streams): a receive parked on a
     * deleted stream's group would otherwise never be answered. */
    for (struct sl_queue_state *qs = e->queue_streams; qs != NULL; qs = qs->next) {
        for (struct qgroup *g = qs->groups; g != NULL; g = g->next) {
            recv_fail_waiters(g, SL_OK); /* empty answers */
        }
    }
}

void sl_queue_stream_deleted(struct sl_stream *st)
{
    SL_ASSERT(st->deleted);
    for (struct qgroup *g = groups_of(st); g != NULL; g = g->next) {
        recv_fail_waiters(g, SL_ENOTFOUND);
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
    struct grow_ctx gc = {.qs = st->qstate, .count = count, .rc = SL_OK, .why = why,
                          .why_len = why_len};
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
