/* queue.c - queue groups on the log: leases, acks, nacks, redelivery, dead
 * letters, filters.
 *
 * Runtime state per group (struct qgroup): a table of at most max_inflight
 * entries, each a record that is LEASED (to a receiver until due_ms), READY
 * (to be delivered again at due_ms: expired or nacked) or CLAIMED (being
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
 */
#include "broker/queue.h"

#include "broker/catalog.h"
#include "broker/workers.h"
#include "broker/filter.h"
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
#define QUEUE_INFLIGHT_MAX 1000000u
#define QUEUE_RECEIVE_MAX 10000u
#define QUEUE_READ_BYTES (256u << 10)

enum { QE_FREE = 0, QE_LEASED, QE_READY, QE_CLAIMED, QE_BLOCKED };

#define NO_SLOT UINT32_MAX

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

struct qgroup {
    struct qgroup *next;
    struct sl_stream *stream;
    char name[129];
    uint32_t visibility_ms;
    uint32_t max_deliveries;
    uint32_t max_inflight;
    uint64_t start_time_ms; /* AT_TIMESTAMP groups skip records appended before */
    char dlq[SL_STREAM_NAME_MAX + 1];
    struct sl_filter *filter;
    bool ordered;
    struct keyslot *keys; /* ordered: 2 x max_inflight slots */
    uint32_t keys_cap;
    uint32_t keys_tomb;
    uint64_t *frontier;
    bool *reading;
    struct qentry *e;
    uint32_t free_head; /* UINT32_MAX: none */
    uint32_t used;      /* entries not FREE */
    uint32_t rr;
    struct recv_op *waiters;
};

static uint64_t now_ms(void)
{
    return sl_clock_wall_ms();
}

static uint64_t mono_ms(void)
{
    return sl_clock_mono_ns() / 1000000u;
}

/* ---- groups: runtime state ------------------------------------------- */

static void group_free(struct qgroup *g)
{
    if (g == NULL) {
        return;
    }
    sl_filter_free(g->filter);
    free(g->keys);
    free(g->frontier);
    free(g->reading);
    free(g->e);
    free(g);
}

static struct qgroup *group_build(struct sl_stream *st, const struct sl_qgroup_def *def)
{
    struct qgroup *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->stream = st;
    snprintf(g->name, sizeof(g->name), "%s", def->name);
    g->visibility_ms = def->visibility_timeout_ms ? def->visibility_timeout_ms
                                                  : QUEUE_VISIBILITY_DEFAULT_MS;
    g->max_deliveries = def->max_deliveries;
    g->max_inflight = def->max_inflight ? def->max_inflight : QUEUE_INFLIGHT_DEFAULT;
    g->start_time_ms = def->start_kind == 4 ? def->start_time_ms : 0;
    if (def->dead_letter_stream[0] != '\0') {
        snprintf(g->dlq, sizeof(g->dlq), "%s", def->dead_letter_stream);
    } else {
        snprintf(g->dlq, sizeof(g->dlq), "%.*s.%.*s.dlq", 60, st->name, 60, def->name);
    }
    g->frontier = calloc(st->shard_count, sizeof(*g->frontier));
    g->reading = calloc(st->shard_count, sizeof(*g->reading));
    g->e = calloc(g->max_inflight, sizeof(*g->e));
    g->ordered = def->ordered;
    if (g->ordered) {
        g->keys_cap = 2 * g->max_inflight;
        g->keys = calloc(g->keys_cap, sizeof(*g->keys));
    }
    if (g->frontier == NULL || g->reading == NULL || g->e == NULL ||
        (g->ordered && g->keys == NULL)) {
        group_free(g);
        return NULL;
    }
    if (def->filter != NULL && def->filter[0] != '\0') {
        char why[256];
        if (sl_filter_parse(def->filter, strlen(def->filter), &g->filter, why, sizeof(why)) !=
            SL_OK) {
            sl_error("queue", "group %s/%s: stored filter no longer parses: %s", st->name,
                     def->name, why);
            group_free(g);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < g->max_inflight; i++) {
        g->e[i].next_free = i + 1 < g->max_inflight ? i + 1 : UINT32_MAX;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        g->frontier[s] = sl_qstate_floor(st->qstate, def->name, s);
    }
    return g;
}

/* The runtime group, built from the durable definition on first use. */
static struct qgroup *group_get(struct sl_stream *st, const char *name)
{
    for (struct qgroup *g = st->qgroups; g != NULL; g = g->next) {
        if (strcmp(g->name, name) == 0) {
            return g;
        }
    }
    const struct sl_qgroup_def *def = sl_qstate_group(st->qstate, name);
    if (def == NULL) {
        return NULL;
    }
    struct qgroup *g = group_build(st, def);
    if (g != NULL) {
        g->next = st->qgroups;
        st->qgroups = g;
    }
    return g;
}

static struct qentry *entry_alloc(struct qgroup *g)
{
    if (g->free_head == UINT32_MAX) {
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

/* Rebuilds the key map without tombstones (when they pile up). */
static void keys_rehash(struct qgroup *g)
{
    struct keyslot *old = g->keys;
    struct keyslot *fresh = calloc(g->keys_cap, sizeof(*fresh));
    if (fresh == NULL) {
        return; /* keep working with tombstones */
    }
    g->keys = fresh;
    g->keys_tomb = 0;
    for (uint32_t i = 0; i < g->keys_cap; i++) {
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
    SL_ASSERT(k != NULL); /* 2x capacity: never full */
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
            keys_rehash(g);
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
        slot >= g->max_inflight) {
        return NULL;
    }
    struct qentry *e = &g->e[slot];
    if (e->gen != gen || e->shard != shard || e->seq != seq || e->state != QE_LEASED) {
        return NULL;
    }
    return e;
}

static struct sl_stream *find_stream(struct sl_server *srv, const char *name)
{
    return sl_catalog_find(srv->catalog, name != NULL ? name : "");
}

static void done_error(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_conn_respond_error(c, id, code, msg);
    sl_conn_request_done(c);
}

/* Finds stream and group or answers the error. */
static struct qgroup *lookup(struct sl_server *srv, struct sl_conn *c, uint64_t id,
                             const char *stream, const char *group)
{
    char why[300];
    struct sl_stream *st = find_stream(srv, stream);
    if (st == NULL) {
        snprintf(why, sizeof(why), "stream %s not found", stream != NULL ? stream : "");
        done_error(c, id, SL_ENOTFOUND, why);
        return NULL;
    }
    struct qgroup *g = group_get(st, group != NULL ? group : "");
    if (g == NULL) {
        snprintf(why, sizeof(why), "queue group %s not found on stream %s",
                 group != NULL ? group : "", st->name);
        done_error(c, id, SL_ENOTFOUND, why);
        return NULL;
    }
    return g;
}

/* ---- create / delete / list ------------------------------------------ */

struct simple_op {
    struct sl_conn *conn;
    struct sl_stream *stream;
    uint64_t req_id;
    Sluice__V1__Response__BodyCase body;
    uint32_t outstanding;
    int err;
    /* ack/nack/extend: per-receipt results */
    Sluice__V1__ErrorCode *results;
    size_t n_results;
};

static void simple_finish(struct simple_op *op)
{
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = op->req_id;
    resp.code = (Sluice__V1__ErrorCode)op->err;
    resp.message = op->err != SL_OK ? (char *)sl_strerror(op->err) : (char *)"";
    Sluice__V1__CreateGroupResponse cr = SLUICE__V1__CREATE_GROUP_RESPONSE__INIT;
    Sluice__V1__DeleteGroupResponse dr = SLUICE__V1__DELETE_GROUP_RESPONSE__INIT;
    Sluice__V1__PurgeResponse pr = SLUICE__V1__PURGE_RESPONSE__INIT;
    Sluice__V1__AckResponse ar = SLUICE__V1__ACK_RESPONSE__INIT;
    Sluice__V1__NackResponse nr = SLUICE__V1__NACK_RESPONSE__INIT;
    Sluice__V1__ExtendVisibilityResponse er = SLUICE__V1__EXTEND_VISIBILITY_RESPONSE__INIT;
    if (op->err == SL_OK) {
        resp.body_case = op->body;
        switch (op->body) {
        case SLUICE__V1__RESPONSE__BODY_CREATE_GROUP:
            resp.create_group = &cr;
            break;
        case SLUICE__V1__RESPONSE__BODY_DELETE_GROUP:
            resp.delete_group = &dr;
            break;
        case SLUICE__V1__RESPONSE__BODY_PURGE:
            resp.purge = &pr;
            break;
        case SLUICE__V1__RESPONSE__BODY_ACK:
            ar.n_results = op->n_results;
            ar.results = op->results;
            resp.ack = &ar;
            break;
        case SLUICE__V1__RESPONSE__BODY_NACK:
            nr.n_results = op->n_results;
            nr.results = op->results;
            resp.nack = &nr;
            break;
        case SLUICE__V1__RESPONSE__BODY_EXTEND_VISIBILITY:
            er.n_results = op->n_results;
            er.results = op->results;
            resp.extend_visibility = &er;
            break;
        default:
            resp.body_case = SLUICE__V1__RESPONSE__BODY__NOT_SET;
            break;
        }
    }
    sl_conn_respond(op->conn, &resp);
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    op->stream->inflight--;
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

static struct simple_op *simple_new(struct sl_conn *c, struct sl_stream *st, uint64_t id,
                                    Sluice__V1__Response__BodyCase body)
{
    struct simple_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    op->conn = c;
    op->stream = st;
    op->req_id = id;
    op->body = body;
    op->outstanding = 1; /* released by simple_start */
    sl_conn_hold(c);
    st->inflight++;
    return op;
}

/* Drops the creator's hold: finishes now if nothing async is outstanding. */
static void simple_start(struct simple_op *op)
{
    simple_cb(op, SL_OK);
}

void sl_queue_create_group(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__CreateGroup *m = req->create_group;
    char why[300];
    struct sl_stream *st = find_stream(srv, m->stream);
    if (st == NULL) {
        snprintf(why, sizeof(why), "stream %s not found", m->stream);
        done_error(c, req->id, SL_ENOTFOUND, why);
        return;
    }
    size_t glen = strlen(m->group);
    if (glen == 0 || glen > 128) {
        done_error(c, req->id, SL_EINVAL, "group name must be 1-128 bytes");
        return;
    }
    const Sluice__V1__QueueGroupConfig *qc = m->config;
    struct sl_qgroup_def def;
    memset(&def, 0, sizeof(def));
    snprintf(def.name, sizeof(def.name), "%s", m->group);
    def.created_ms = now_ms();
    if (qc != NULL) {
        if (qc->max_inflight > QUEUE_INFLIGHT_MAX) {
            done_error(c, req->id, SL_EINVAL, "max_inflight must be at most 1000000");
            return;
        }
        if (strlen(qc->dead_letter_stream) > SL_STREAM_NAME_MAX) {
            done_error(c, req->id, SL_EINVAL, "dead_letter_stream name too long");
            return;
        }
        def.visibility_timeout_ms = qc->visibility_timeout_ms;
        def.max_deliveries = qc->max_deliveries;
        def.max_inflight = qc->max_inflight;
        def.ordered = qc->ordered;
        snprintf(def.dead_letter_stream, sizeof(def.dead_letter_stream), "%s",
                 qc->dead_letter_stream);
        if (qc->filter != NULL && qc->filter[0] != '\0') {
            struct sl_filter *f = NULL;
            int rc = sl_filter_parse(qc->filter, strlen(qc->filter), &f, why, sizeof(why));
            if (rc != SL_OK) {
                char msg[400];
                snprintf(msg, sizeof(msg), "invalid filter: %s", why);
                done_error(c, req->id, rc, msg);
                return;
            }
            sl_filter_free(f);
            def.filter = qc->filter; /* borrowed for the call */
        }
        if (qc->start != NULL) {
            def.start_kind = (uint32_t)qc->start->kind;
            def.start_seq = qc->start->seq;
            def.start_time_ms = qc->start->time_ms;
        }
    }
    uint64_t *floors = calloc(st->shard_count, sizeof(*floors));
    if (floors == NULL) {
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_bshard_stats(&st->shards[s], &ss);
        uint64_t f = ss.first_seq;
        switch (def.start_kind) {
        case 1: /* LATEST */
            f = ss.visible_seq;
            break;
        case 2: /* AT_SEQUENCE */
        case 3: /* AFTER_SEQUENCE */
            f = def.start_seq + (def.start_kind == 3 ? 1 : 0);
            f = f < ss.first_seq ? ss.first_seq : (f > ss.visible_seq ? ss.visible_seq : f);
            break;
        default: /* TRIM_HORIZON; AT_TIMESTAMP skips older records as it reads */
            break;
        }
        floors[s] = f;
    }
    struct simple_op *op = simple_new(c, st, req->id, SLUICE__V1__RESPONSE__BODY_CREATE_GROUP);
    if (op == NULL) {
        free(floors);
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    op->outstanding++;
    int rc = sl_qstate_create_group(st->qstate, &def, st->shard_count, floors, simple_cb, op);
    free(floors);
    if (rc != SL_OK) {
        op->outstanding--;
        op->err = rc;
    }
    simple_start(op);
}

void sl_queue_delete_group(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__DeleteGroup *m = req->delete_group;
    struct qgroup *g = lookup(srv, c, req->id, m->stream, m->group);
    if (g == NULL) {
        return;
    }
    struct sl_stream *st = g->stream;
    if (g->waiters != NULL) {
        done_error(c, req->id, SL_EAGAIN, "receives are waiting on this group; retry");
        return;
    }
    struct simple_op *op = simple_new(c, st, req->id, SLUICE__V1__RESPONSE__BODY_DELETE_GROUP);
    if (op == NULL) {
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    op->outstanding++;
    int rc = sl_qstate_delete_group(st->qstate, g->name, simple_cb, op);
    if (rc != SL_OK) {
        op->outstanding--;
        op->err = rc;
    } else {
        for (struct qgroup **pp = &st->qgroups; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == g) {
                *pp = g->next;
                break;
            }
        }
        group_free(g);
    }
    simple_start(op);
}

struct name_list {
    char **names;
    size_t n;
    size_t cap;
};

static void collect_group(void *ctx, const struct sl_qgroup_def *def)
{
    struct name_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **n = realloc(l->names, cap * sizeof(*n));
        if (n == NULL) {
            return;
        }
        l->names = n;
        l->cap = cap;
    }
    l->names[l->n++] = (char *)def->name;
}

void sl_queue_list_groups(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    struct sl_stream *st = find_stream(srv, req->list_queue_groups->stream);
    if (st == NULL) {
        done_error(c, req->id, SL_ENOTFOUND, "stream not found");
        return;
    }
    struct name_list l = {0};
    sl_qstate_foreach_group(st->qstate, collect_group, &l);
    Sluice__V1__ListQueueGroupsResponse lr = SLUICE__V1__LIST_QUEUE_GROUPS_RESPONSE__INIT;
    lr.n_groups = l.n;
    lr.groups = l.names;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LIST_QUEUE_GROUPS;
    resp.list_queue_groups = &lr;
    sl_conn_respond(c, &resp);
    free(l.names);
    sl_conn_request_done(c);
}

/* ---- receive ---------------------------------------------------------- */

struct recv_op {
    struct sl_server *srv;
    struct sl_conn *conn;
    struct qgroup *g;
    struct sl_stream *stream;
    uint64_t req_id;
    uint32_t max;
    uint32_t vis_ms;
    uint64_t deadline_ms; /* monotonic; 0 = no wait */
    Sluice__V1__ReceivedRecord **recs;
    uint32_t n;
    uint32_t persisting; /* delivery counts not yet durable */
    int err;
    bool collecting;
    /* the read in flight */
    struct sl_shard_read rd;
    uint8_t *buf;
    uint32_t buf_cap;
    uint32_t shard;
    struct qentry *claimed; /* redelivery being read, or NULL: frontier read */
    uint32_t tried;         /* shards tried in this pass */
    struct recv_op *next;   /* parked */
    bool parked;
};

static void recv_step(struct recv_op *op);

static void free_record(Sluice__V1__ReceivedRecord *r)
{
    if (r == NULL) {
        return;
    }
    free(r->receipt);
    free(r->key.data);
    free(r->value.data);
    for (size_t i = 0; i < r->n_attributes; i++) {
        free(r->attributes[i]->key);
        free(r->attributes[i]->value);
        free(r->attributes[i]);
    }
    free(r->attributes);
    free(r);
}

static void recv_finish(struct recv_op *op)
{
    Sluice__V1__ReceiveResponse rr = SLUICE__V1__RECEIVE_RESPONSE__INIT;
    rr.n_records = op->n;
    rr.records = op->recs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = op->req_id;
    resp.code = (Sluice__V1__ErrorCode)op->err;
    resp.message = op->err != SL_OK ? (char *)sl_strerror(op->err) : (char *)"";
    resp.body_case = SLUICE__V1__RESPONSE__BODY_RECEIVE;
    resp.receive = &rr;
    if (op->err != SL_OK) {
        rr.n_records = 0;
    }
    sl_conn_respond(op->conn, &resp);
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    op->stream->inflight--;
    for (uint32_t i = 0; i < op->n; i++) {
        free_record(op->recs[i]);
    }
    free(op->recs);
    free(op->buf);
    free(op);
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

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        if (n > 0) {
            memcpy(d, p, n);
        }
        d[n] = '\0';
    }
    return d;
}

/* Builds the response record for a lease. */
static int add_record(struct recv_op *op, struct qentry *e, const struct sl_record_view *rv,
                      uint64_t append_ms)
{
    Sluice__V1__ReceivedRecord *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return SL_ENOMEM;
    }
    sluice__v1__received_record__init(r);
    char receipt[64];
    receipt_format(op->g, e, receipt, sizeof(receipt));
    r->receipt = dup_bytes(receipt, strlen(receipt));
    r->shard = e->shard;
    r->seq = e->seq;
    r->timestamp_ms = append_ms;
    r->produced_ms = rv->timestamp_ms;
    r->delivery_count = e->count;
    r->key.data = (uint8_t *)dup_bytes(rv->key, rv->key_len);
    r->key.len = rv->key_len;
    r->value.data = (uint8_t *)dup_bytes(rv->value, rv->value_len);
    r->value.len = rv->value_len;
    r->attributes = calloc(rv->attr_count + 1, sizeof(*r->attributes));
    bool ok = r->receipt != NULL && r->key.data != NULL && r->value.data != NULL &&
              r->attributes != NULL;
    uint32_t pos = 0;
    struct sl_attr a;
    while (ok && sl_record_attr_next(rv, &pos, &a)) {
        Sluice__V1__Attribute *at = calloc(1, sizeof(*at));
        if (at == NULL) {
            ok = false;
            break;
        }
        sluice__v1__attribute__init(at);
        at->key = dup_bytes(a.key, a.key_len);
        at->value = dup_bytes(a.value, a.value_len);
        r->attributes[r->n_attributes++] = at;
        ok = at->key != NULL && at->value != NULL;
    }
    if (!ok) {
        free_record(r);
        return SL_ENOMEM;
    }
    op->recs[op->n++] = r;
    return SL_OK;
}

/* ---- dead letters ---- */

struct dlq_op {
    uint8_t *batch; /* borrowed by the append until on_dlq_appended */
    struct sl_stream *dst; /* held (inflight) until the append completes */
    struct sl_stream *src;
    char group[129];
    uint32_t shard;
    uint64_t seq;
};

static void on_dlq_acked(void *ctx, int err)
{
    struct dlq_op *op = ctx;
    if (err != SL_OK) {
        sl_warn("queue", "dead-letter ack of %s/%u/%" PRIu64 " failed: %s", op->src->name,
                op->shard, op->seq, sl_strerror(err));
    }
    op->src->inflight--;
    free(op);
}

static void on_dlq_appended(void *ctx, int err, uint64_t base, uint32_t count)
{
    (void)base;
    (void)count;
    struct dlq_op *op = ctx;
    struct sl_stream *st = op->src;
    free(op->batch);
    op->batch = NULL;
    op->dst->inflight--;
    if (err == SL_OK && !st->deleted &&
        sl_qstate_ack(st->qstate, op->group, op->shard, op->seq, op->seq + 1, on_dlq_acked, op) ==
            SL_OK) {
        sl_qstate_add_counters(st->qstate, op->group, 1, 0, NULL, NULL);
        return; /* on_dlq_acked frees */
    }
    if (err != SL_OK) {
        /* Not acked: the record stays undelivered and is tried again after
         * a restart (it is below the frontier until then). */
        sl_warn("queue", "dead-lettering %s/%u/%" PRIu64 " failed: %s", st->name, op->shard,
                op->seq, sl_strerror(err));
    }
    st->inflight--;
    free(op);
}

/* Appends the record to the group's dead-letter stream (created on demand,
 * one shard) with attributes naming its source; acks it once stored. */
static void dead_letter(struct recv_op *op, uint32_t shard, uint64_t seq,
                        const struct sl_record_view *rv, uint32_t count)
{
    struct qgroup *g = op->g;
    struct sl_stream *dst = sl_catalog_find(op->srv->catalog, g->dlq);
    char why[256];
    if (dst == NULL && sl_catalog_create(op->srv->catalog, g->dlq, 1, 0, 0, NULL, &dst, why,
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
    d->src = g->stream;
    snprintf(d->group, sizeof(d->group), "%s", g->name);
    d->shard = shard;
    d->seq = seq;
    if (rc == SL_OK) {
        g->stream->inflight++;
        dst->inflight++; /* a delete of the dead-letter stream waits for it */
        d->batch = buf;
        d->dst = dst;
        rc = sl_bshard_append(&dst->shards[0], buf, len, 0, on_dlq_appended, d);
        if (rc != SL_OK) {
            g->stream->inflight--;
            dst->inflight--;
        }
    }
    if (rc != SL_OK) {
        free(buf);
        sl_warn("queue", "dead-lettering %s/%u/%" PRIu64 ": %s", g->stream->name, shard, seq,
                sl_strerror(rc));
        free(d);
    }
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
            return at > wall ? mono_ms() + (at - wall) : 0;
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
    e->due_ms = mono_ms() + op->vis_ms;
    if (add_record(op, e, rv, append_ms) != SL_OK) {
        e->state = QE_READY; /* could not answer: visible again at once */
        e->due_ms = 0;
        return true;
    }
    op->persisting++;
    if (sl_qstate_set_count(st->qstate, g->name, shard, seq, e->count, on_count_durable, op) !=
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
        sl_qstate_ack(g->stream->qstate, g->name, shard, first, end, NULL, NULL);
        if (filtered > 0) {
            sl_qstate_add_counters(g->stream->qstate, g->name, 0, filtered, NULL, NULL);
        }
    }
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
            g->frontier[shard] = op->rd.first_seq; /* retention passed us */
            recv_skip(op, shard, sl_qstate_floor(st->qstate, g->name, shard), op->rd.first_seq,
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
    uint64_t next = g->frontier[shard];
    uint64_t skip_from = UINT64_MAX, filtered = 0;
    bool full = false;
    for (uint32_t off = 0; off < op->rd.len && !full;) {
        struct sl_batch_header h;
        struct sl_batch_iter it;
        if (sl_batch_peek(op->buf + off, op->rd.len - off, &h) != SL_OK ||
            sl_server_scratch_reserve(op->srv, h.codec, h.records_len) != SL_OK ||
            sl_batch_iter_init(&it, op->buf + off, &h, op->srv->zctx, op->srv->scratch,
                               op->srv->scratch_cap) != SL_OK) {
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
                        h.append_time_ms < g->start_time_ms;
            bool filt = !skip && g->filter != NULL && !sl_filter_match(g->filter, &rv);
            if (skip || filt) {
                filtered += filt ? 1 : 0;
                skip_from = skip_from == UINT64_MAX ? rv.seq : skip_from;
                next = rv.seq + 1;
                continue;
            }
            if (skip_from != UINT64_MAX) {
                recv_skip(op, shard, skip_from, rv.seq, filtered);
                skip_from = UINT64_MAX;
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
    if (skip_from != UINT64_MAX) {
        recv_skip(op, shard, skip_from, next, filtered);
    }
    g->frontier[shard] = next > g->frontier[shard] ? next : g->frontier[shard];
    if (full) {
        op->collecting = false;
        recv_maybe_finish(op);
        return;
    }
    op->tried = 0; /* progress: every shard may be worth another look */
    recv_step(op);
}

/* A redelivery read: find the claimed record in the batch. */
static void on_redelivery_read(struct recv_op *op, int err)
{
    struct qgroup *g = op->g;
    struct qentry *e = op->claimed;
    op->claimed = NULL;
    bool found = false;
    if (err == SL_OK) {
        for (uint32_t off = 0; off < op->rd.len && !found;) {
            struct sl_batch_header h;
            struct sl_batch_iter it;
            if (sl_batch_peek(op->buf + off, op->rd.len - off, &h) != SL_OK ||
                sl_server_scratch_reserve(op->srv, h.codec, h.records_len) != SL_OK ||
                sl_batch_iter_init(&it, op->buf + off, &h, op->srv->zctx, op->srv->scratch,
                                   op->srv->scratch_cap) != SL_OK) {
                break;
            }
            struct sl_record_view rv;
            while (sl_batch_iter_next(&it, &rv) == SL_OK) {
                if (rv.seq == e->seq) {
                    found = true;
                    deliver(op, e, e->shard, e->seq, &rv, h.append_time_ms);
                    break;
                }
            }
            off += h.length;
        }
    }
    if (!found) {
        /* Trimmed by retention (or unreadable): nothing left to deliver. */
        if (err != SL_OK) {
            sl_warn("queue", "group %s: redelivery of %u/%" PRIu64 " dropped: %s", g->name,
                    e->shard, e->seq, sl_strerror(err));
        }
        recv_skip(op, e->shard, e->seq, e->seq + 1, 0);
        entry_release(g, e);
    }
    recv_step(op);
}

static void on_recv_read(struct sl_shard_read *rd, int err)
{
    struct recv_op *op = sl_container_of(rd, struct recv_op, rd);
    if (err == SL_ETOOBIG && rd->need_bytes <= SL_BATCH_BYTES_MAX) {
        uint8_t *n = realloc(op->buf, rd->need_bytes); /* one batch larger than the buffer */
        if (n != NULL) {
            op->buf = n;
            op->buf_cap = rd->need_bytes;
            op->rd.buf = n;
            op->rd.buf_cap = rd->need_bytes;
            sl_bshard_read(&op->g->stream->shards[op->shard], &op->rd);
            return;
        }
    }
    if (op->claimed != NULL) {
        on_redelivery_read(op, err);
    } else {
        on_frontier_read(op, err);
    }
}

static void recv_read(struct recv_op *op, uint32_t shard, uint64_t seq)
{
    memset(&op->rd, 0, sizeof(op->rd));
    op->shard = shard;
    op->rd.from = SL_READ_SEQ;
    op->rd.seq = seq;
    op->rd.buf = op->buf;
    op->rd.buf_cap = op->buf_cap;
    op->rd.max_bytes = QUEUE_READ_BYTES;
    op->rd.cb = on_recv_read;
    sl_bshard_read(&op->g->stream->shards[shard], &op->rd);
}

static struct qentry *ready_entry(struct qgroup *g, uint64_t now)
{
    if (g->used == 0) {
        return NULL;
    }
    for (uint32_t i = 0; i < g->max_inflight; i++) {
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
    if (st->deleted || op->err != SL_OK) {
        op->collecting = false;
        recv_maybe_finish(op);
        return;
    }
    if (op->n >= op->max) {
        op->collecting = false;
        recv_maybe_finish(op);
        return;
    }
    struct qentry *e = ready_entry(g, mono_ms());
    if (e != NULL) {
        e->state = QE_CLAIMED;
        op->claimed = e;
        recv_read(op, e->shard, e->seq);
        return;
    }
    while (op->tried < st->shard_count && g->used < g->max_inflight) {
        uint32_t s = g->rr++ % st->shard_count;
        op->tried++;
        struct sl_shard_stats ss;
        sl_bshard_stats(&st->shards[s], &ss);
        if (g->frontier[s] < ss.first_seq) {
            g->frontier[s] = ss.first_seq;
        }
        if (g->reading[s] || g->frontier[s] >= ss.visible_seq) {
            continue;
        }
        g->reading[s] = true;
        op->claimed = NULL;
        recv_read(op, s, g->frontier[s]);
        return;
    }
    op->collecting = false;
    if (op->n == 0 && op->deadline_ms > mono_ms() && !op->srv->stopping) {
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

void sl_queue_receive(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__Receive *m = req->receive;
    struct qgroup *g = lookup(srv, c, req->id, m->stream, m->group);
    if (g == NULL) {
        return;
    }
    if (m->max_records == 0 || m->max_records > QUEUE_RECEIVE_MAX) {
        done_error(c, req->id, SL_EINVAL, "max_records must be in [1, 10000]");
        return;
    }
    struct recv_op *op = calloc(1, sizeof(*op));
    uint8_t *buf = malloc(QUEUE_READ_BYTES);
    Sluice__V1__ReceivedRecord **recs = calloc(m->max_records, sizeof(*recs));
    if (op == NULL || buf == NULL || recs == NULL) {
        free(op);
        free(buf);
        free(recs);
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    uint32_t wait = m->wait_ms < srv->cfg.fetch_wait_max_ms ? m->wait_ms : srv->cfg.fetch_wait_max_ms;
    *op = (struct recv_op){.srv = srv, .conn = c, .g = g, .stream = g->stream,
                           .req_id = req->id, .max = m->max_records,
                           .vis_ms = m->visibility_timeout_ms ? m->visibility_timeout_ms
                                                              : g->visibility_ms,
                           .deadline_ms = wait > 0 ? mono_ms() + wait : 0, .recs = recs,
                           .collecting = true, .buf = buf, .buf_cap = QUEUE_READ_BYTES};
    sl_conn_hold(c);
    g->stream->inflight++;
    recv_step(op);
}

/* ---- ack / nack / extend ---------------------------------------------- */

static void receipts_op(struct sl_server *srv, struct sl_conn *c, sl_request *req, int kind)
{
    const char *stream, *group;
    size_t n;
    char **receipts;
    uint32_t arg = 0;
    Sluice__V1__Response__BodyCase body;
    if (kind == 0) {
        stream = req->ack->stream, group = req->ack->group;
        n = req->ack->n_receipts, receipts = req->ack->receipts;
        body = SLUICE__V1__RESPONSE__BODY_ACK;
    } else if (kind == 1) {
        stream = req->nack->stream, group = req->nack->group;
        n = req->nack->n_receipts, receipts = req->nack->receipts;
        arg = req->nack->delay_ms;
        body = SLUICE__V1__RESPONSE__BODY_NACK;
    } else {
        stream = req->extend_visibility->stream, group = req->extend_visibility->group;
        n = req->extend_visibility->n_receipts, receipts = req->extend_visibility->receipts;
        arg = req->extend_visibility->visibility_timeout_ms;
        body = SLUICE__V1__RESPONSE__BODY_EXTEND_VISIBILITY;
    }
    struct qgroup *g = lookup(srv, c, req->id, stream, group);
    if (g == NULL) {
        return;
    }
    struct simple_op *op = simple_new(c, g->stream, req->id, body);
    if (op == NULL || (op->results = calloc(n + 1, sizeof(*op->results))) == NULL) {
        if (op != NULL) {
            op->err = SL_ENOMEM;
            simple_start(op);
        } else {
            done_error(c, req->id, SL_ENOMEM, NULL);
        }
        return;
    }
    op->n_results = n;
    uint64_t now = mono_ms();
    bool woke = false;
    for (size_t i = 0; i < n; i++) {
        struct qentry *e = receipt_find(g, receipts[i]);
        if (e == NULL) {
            op->results[i] = SLUICE__V1__ERROR_CODE__ENOTFOUND;
            continue;
        }
        op->results[i] = SLUICE__V1__ERROR_CODE__OK;
        if (kind == 0) {
            op->outstanding++;
            int rc = sl_qstate_ack(g->stream->qstate, g->name, e->shard, e->seq, e->seq + 1,
                                   simple_cb, op);
            if (rc != SL_OK) {
                op->outstanding--;
                op->results[i] = (Sluice__V1__ErrorCode)rc;
                continue;
            }
            entry_release(g, e);
            woke = true; /* room for another lease */
        } else if (kind == 1) {
            e->state = QE_READY;
            e->due_ms = now + arg;
            woke = true;
        } else {
            e->due_ms = now + (arg ? arg : g->visibility_ms);
        }
    }
    if (woke && g->waiters != NULL) {
        recv_wake(g);
    }
    simple_start(op);
}

void sl_queue_ack(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    receipts_op(srv, c, req, 0);
}

void sl_queue_nack(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    receipts_op(srv, c, req, 1);
}

void sl_queue_extend(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    receipts_op(srv, c, req, 2);
}

/* ---- stats / purge ---------------------------------------------------- */

void sl_queue_stats(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__GroupStats *m = req->group_stats;
    struct qgroup *g = lookup(srv, c, req->id, m->stream, m->group);
    if (g == NULL) {
        return;
    }
    struct sl_stream *st = g->stream;
    Sluice__V1__GroupStatsResponse gr = SLUICE__V1__GROUP_STATS_RESPONSE__INIT;
    uint64_t now = mono_ms(), oldest = 0, wall = now_ms();
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_bshard_stats(&st->shards[s], &ss);
        uint64_t f = g->frontier[s] > ss.first_seq ? g->frontier[s] : ss.first_seq;
        gr.visible += ss.visible_seq > f ? ss.visible_seq - f : 0;
        uint64_t floor = sl_qstate_floor(st->qstate, g->name, s);
        uint64_t t = 0;
        if (floor < ss.visible_seq && floor >= ss.first_seq &&
            sl_bshard_time_near_seq(&st->shards[s], floor, &t) == SL_OK && wall > t) {
            oldest = wall - t > oldest ? wall - t : oldest;
        }
    }
    for (uint32_t i = 0; i < g->max_inflight && g->used > 0; i++) {
        const struct qentry *e = &g->e[i];
        if (e->state == QE_LEASED || e->state == QE_CLAIMED) {
            gr.inflight++;
        } else if (e->state == QE_BLOCKED) {
            gr.visible++;
        } else if (e->state == QE_READY) {
            if (e->due_ms <= now) {
                gr.visible++;
            } else {
                gr.delayed++;
            }
        }
    }
    sl_qstate_counters(st->qstate, g->name, &gr.dead_lettered, &gr.filtered_out);
    gr.oldest_age_ms = oldest;
    Sluice__V1__QueueGroupConfig qc = SLUICE__V1__QUEUE_GROUP_CONFIG__INIT;
    qc.visibility_timeout_ms = g->visibility_ms;
    qc.max_deliveries = g->max_deliveries;
    qc.dead_letter_stream = g->dlq;
    qc.max_inflight = g->max_inflight;
    const struct sl_qgroup_def *def = sl_qstate_group(st->qstate, g->name);
    qc.filter = def != NULL && def->filter != NULL ? def->filter : (char *)"";
    Sluice__V1__Position start = SLUICE__V1__POSITION__INIT;
    if (def != NULL) {
        qc.ordered = def->ordered;
        start.kind = (Sluice__V1__PositionKind)def->start_kind;
        start.seq = def->start_seq;
        start.time_ms = def->start_time_ms;
        qc.start = &start;
    }
    gr.config = &qc;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_GROUP_STATS;
    resp.group_stats = &gr;
    sl_conn_respond(c, &resp);
    sl_conn_request_done(c);
}

void sl_queue_purge(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__Purge *m = req->purge;
    struct qgroup *g = lookup(srv, c, req->id, m->stream, m->group);
    if (g == NULL) {
        return;
    }
    struct sl_stream *st = g->stream;
    struct simple_op *op = simple_new(c, st, req->id, SLUICE__V1__RESPONSE__BODY_PURGE);
    if (op == NULL) {
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    for (uint32_t s = 0; s < st->shard_count; s++) {
        struct sl_shard_stats ss;
        sl_bshard_stats(&st->shards[s], &ss);
        uint64_t floor = sl_qstate_floor(st->qstate, g->name, s);
        if (ss.visible_seq > floor) {
            op->outstanding++;
            if (sl_qstate_ack(st->qstate, g->name, s, floor, ss.visible_seq, simple_cb, op) !=
                SL_OK) {
                op->outstanding--;
                op->err = SL_EAGAIN;
            }
        }
        g->frontier[s] = ss.visible_seq > g->frontier[s] ? ss.visible_seq : g->frontier[s];
    }
    /* Everything goes: drop the key chains wholesale rather than pop them
     * one by one (a claimed entry being read keeps no chain either). */
    for (uint32_t i = 0; i < g->max_inflight; i++) {
        struct qentry *e = &g->e[i];
        e->keyed = false;
        if (e->state == QE_LEASED || e->state == QE_READY || e->state == QE_BLOCKED) {
            entry_release(g, e);
        }
    }
    if (g->keys != NULL) {
        memset(g->keys, 0, (size_t)g->keys_cap * sizeof(*g->keys));
        g->keys_tomb = 0;
    }
    simple_start(op);
}

/* ---- tick, progress, stop ------------------------------------------- */

void sl_queue_tick(struct sl_server *srv, uint64_t now)
{
    (void)now;
    uint64_t t = mono_ms();
    for (struct sl_stream *st = sl_catalog_first(srv->catalog); st != NULL; st = st->next) {
        for (struct qgroup *g = st->qgroups; g != NULL; g = g->next) {
            bool ready = false;
            for (uint32_t i = 0; i < g->max_inflight && g->used > 0; i++) {
                struct qentry *e = &g->e[i];
                if (e->state == QE_LEASED && e->due_ms <= t) {
                    e->state = QE_READY; /* the lease expired: visible again */
                    e->due_ms = t;
                    ready = true;
                } else if (e->state == QE_READY && e->due_ms <= t) {
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

void sl_queue_shard_progress(struct sl_server *srv, struct sl_bshard *b)
{
    (void)srv;
    for (struct qgroup *g = b->stream->qgroups; g != NULL; g = g->next) {
        if (g->waiters != NULL) {
            recv_wake(g);
        }
    }
}

void sl_queue_stop(struct sl_server *srv)
{
    for (struct sl_stream *st = sl_catalog_first(srv->catalog); st != NULL; st = st->next) {
        for (struct qgroup *g = st->qgroups; g != NULL; g = g->next) {
            while (g->waiters != NULL) {
                struct recv_op *op = g->waiters;
                g->waiters = op->next;
                op->parked = false;
                op->collecting = false;
                recv_maybe_finish(op);
            }
        }
    }
}

void sl_queue_stream_free(struct sl_stream *st)
{
    while (st->qgroups != NULL) {
        struct qgroup *g = st->qgroups;
        st->qgroups = g->next;
        group_free(g);
    }
}
