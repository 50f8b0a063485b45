/* h_cluster.c - ClusterStatus and Metadata (docs/PROTOCOL.md): the live brokers as this
 * broker's membership (broker/cluster/member.h) lists them, and for Metadata who leads
 * each shard of the streams asked, as the replica manager (broker/cluster/replicas.h)
 * last read it.
 *
 * A shard the replica manager knows nothing of (a single broker, or a stream that is not
 * replicated) is led by the answering broker itself at epoch 0, its only replica: the
 * client then sends its produces and fetches where it asked.
 *
 * Bounds: a Metadata names at most SL_NATIVE_METADATA_STREAMS_MAX streams, and an answer
 * that would not fit one frame is refused with ETOOBIG (ask fewer streams) rather than
 * closing the connection.
 */
#include "broker/native/handlers.h"

#include "broker/cluster/ctrl_run.h"
#include "broker/cluster/member.h"
#include "broker/cluster/replicas.h"
#include "broker/engine/catalog.h"
#include "broker/version.h"
#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The live brokers with this one, as both requests answer them. */
struct broker_list {
    Sluice__V1__BrokerInfo *bi; /* owned */
    Sluice__V1__BrokerInfo **bp; /* owned */
    size_t n;
};

static void broker_list_free(struct broker_list *l)
{
    free(l->bi);
    free(l->bp);
    l->bi = NULL;
    l->bp = NULL;
    l->n = 0;
}

/* Fills `l` from the membership (borrowed strings: valid until the next store callback,
 * which cannot run before the response is packed). `connected`: the session's. */
static int broker_list_build(const struct sl_native *srv, bool connected, struct broker_list *l)
{
    const struct sl_member_info *list = NULL, *self = NULL;
    size_t n = 0;
    if (srv->member != NULL) {
        self = sl_member_self(srv->member);
        n = sl_member_brokers(srv->member, &list);
    }
    /* one more for this broker when it is not listed (single, or re-registering) */
    l->bi = calloc(n + 1, sizeof(*l->bi));
    l->bp = calloc(n + 1, sizeof(*l->bp));
    if (l->bi == NULL || l->bp == NULL) {
        broker_list_free(l);
        return SL_ENOMEM;
    }
    bool self_listed = false;
    for (size_t i = 0; i < n; i++) {
        const struct sl_member_info *b = &list[i];
        bool is_self =
            b->node_id == self->node_id && strcmp(b->native_addr, self->native_addr) == 0;
        self_listed = self_listed || is_self;
        sluice__v1__broker_info__init(&l->bi[i]);
        l->bi[i].node_id = b->node_id;
        l->bi[i].address = (char *)b->native_addr;
        l->bi[i].http_address = (char *)b->http_addr;
        l->bi[i].version = (char *)b->version;
        l->bi[i].start_time_ms = b->start_ms;
        l->bi[i].self = is_self;
        l->bi[i].state = (char *)(is_self ? "up" : "alive");
        l->bp[i] = &l->bi[i];
    }
    size_t total = n;
    if (!self_listed) {
        Sluice__V1__BrokerInfo *s = &l->bi[total];
        sluice__v1__broker_info__init(s);
        s->self = true;
        s->version = (char *)SL_BROKER_VERSION;
        if (self != NULL) {
            s->node_id = self->node_id;
            s->address = (char *)self->native_addr;
            s->http_address = (char *)self->http_addr;
            s->start_time_ms = self->start_ms;
            s->state = (char *)(connected ? "joining" : "disconnected");
        } else {
            s->state = (char *)"up";
        }
        l->bp[total++] = s;
    }
    l->n = total;
    SL_ASSERT(l->n >= 1 && l->n <= n + 1);
    return SL_OK;
}

void sl_native_cluster_status(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    Sluice__V1__ClusterStatusResponse cr = SLUICE__V1__CLUSTER_STATUS_RESPONSE__INIT;
    if (srv->member != NULL) {
        cr.cluster = true;
        cr.node_id = sl_member_self(srv->member)->node_id;
        cr.connected = sl_member_connected(srv->member);
        cr.controller = sl_ctrl_run_active(srv->ctrl, &cr.controller_epoch);
    }
    struct broker_list bl = {0};
    if (broker_list_build(srv, cr.connected, &bl) != SL_OK) {
        sl_native_fail(c, req->id, SL_ENOMEM, "out of memory listing the brokers");
        return;
    }
    cr.n_brokers = bl.n;
    cr.brokers = bl.bp;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_CLUSTER_STATUS;
    resp.cluster_status = &cr;
    sl_native_respond(c, &resp);
    broker_list_free(&bl);
    sl_conn_request_done(c);
}

/* ---- Metadata ---- */

/* One Metadata answer's storage: every array sized once from the streams asked. */
struct meta_answer {
    Sluice__V1__MetadataResponse mr;
    struct broker_list brokers;
    Sluice__V1__StreamRoute *streams;   /* [n_streams] */
    Sluice__V1__StreamRoute **sp;       /* [n_streams] */
    Sluice__V1__ShardRoute *shards;     /* [n_shards], every stream's in turn */
    Sluice__V1__ShardRoute **shp;       /* [n_shards] */
    struct sl_repl_meta *meta;          /* [n_shards]: replicas/isr the routes point into */
    int32_t *targets;                   /* [n_shards * SL_REPL_REPLICAS_MAX]: moves' targets */
    /* the cluster streams' shards only (at most SL_REPL_REPLICAS_MAX followers each): a
     * local stream's thousands of shards have no lag to carry */
    Sluice__V1__ReplicaLag *lags;       /* [cluster shards * SL_REPL_REPLICAS_MAX] */
    Sluice__V1__ReplicaLag **lagp;      /* [cluster shards * SL_REPL_REPLICAS_MAX] */
};

static void meta_answer_free(struct meta_answer *a)
{
    broker_list_free(&a->brokers);
    free(a->streams);
    free(a->sp);
    free(a->shards);
    free(a->shp);
    free(a->meta);
    free(a->targets);
    free(a->lags);
    free(a->lagp);
}

/* Who leads shard `id` of `st`: the replica manager's view, or this broker alone; where
 * this broker leads it, its followers' lag (into lags/lagp, SL_REPL_REPLICAS_MAX each). */
static int shard_route(const struct sl_native *srv, const struct sl_stream *st, uint32_t id,
                       int32_t self_id, struct sl_repl_meta *m, int32_t *target,
                       Sluice__V1__ShardRoute *r, Sluice__V1__ReplicaLag *lags,
                       Sluice__V1__ReplicaLag **lagp)
{
    int rc = sl_replicas_route(srv->replicas, st->name, id, m);
    if (rc == SL_ENOTFOUND) { /* not replicated: this broker serves it */
        memset(m, 0, sizeof(*m));
        m->leader = self_id;
        m->leader_epoch = 0;
        m->n_replicas = m->n_isr = 1;
        m->replicas[0] = m->isr[0] = self_id;
    } else if (rc != SL_OK) {
        return rc;
    }
    SL_ASSERT(m->n_replicas <= SL_REPL_REPLICAS_MAX && m->n_isr <= SL_REPL_REPLICAS_MAX);
    sluice__v1__shard_route__init(r);
    r->shard = id;
    r->leader = m->leader;
    r->leader_epoch = m->leader_epoch;
    r->n_replicas = m->n_replicas;
    r->replicas = m->replicas;
    r->n_isr = m->n_isr;
    r->isr = m->isr;
    r->open = !st->lineage.shard[id].closed;
    r->n_target = sl_replicas_target(srv->replicas, st->name, id, target);
    r->target = r->n_target > 0 ? target : NULL;
    struct sl_replicas_lag lag[SL_REPL_REPLICAS_MAX];
    uint32_t n_lag = lags != NULL ? sl_replicas_lag(srv->replicas, st->name, id, lag) : 0;
    for (uint32_t i = 0; i < n_lag; i++) {
        sluice__v1__replica_lag__init(&lags[i]);
        lags[i].node = lag[i].node;
        lags[i].behind = lag[i].behind;
        lags[i].caught_up_ms_ago = lag[i].caught_up_ms_ago;
        lagp[i] = &lags[i];
    }
    r->n_lag = n_lag;
    r->lag = n_lag > 0 ? lagp : NULL;
    return SL_OK;
}

/* The streams asked, checked (known here, readable by the principal): SL_OK, or the error
 * with `why`. *n_shards counts the shards they list. */
static int meta_streams(const struct sl_native *srv, const struct sl_conn *c,
                        const Sluice__V1__Metadata *m, struct sl_stream **sts, size_t *n_shards,
                        char *why, size_t why_len)
{
    *n_shards = 0;
    for (size_t i = 0; i < m->n_streams; i++) {
        int rc = sl_native_authorize_op(srv, c, SL_ACL_ANY, m->streams[i], why, why_len);
        if (rc != SL_OK) {
            return rc;
        }
        sts[i] = sl_engine_stream(srv->engine, m->streams[i], why, (uint32_t)why_len, &rc);
        if (sts[i] == NULL) {
            return rc;
        }
        *n_shards += sts[i]->shard_count - sts[i]->lineage.gone;
    }
    return SL_OK;
}

/* Fills `a` for the checked streams. SL_OK or SL_ENOMEM / the replica manager's error. */
static int meta_build(const struct sl_native *srv, struct sl_stream *const *sts, size_t n,
                      size_t n_shards, struct meta_answer *a)
{
    Sluice__V1__MetadataResponse *mr = &a->mr;
    sluice__v1__metadata_response__init(mr);
    bool connected = false;
    if (srv->member != NULL) {
        mr->cluster = true;
        mr->node_id = sl_member_self(srv->member)->node_id;
        connected = sl_member_connected(srv->member);
    }
    a->streams = calloc(n + 1, sizeof(*a->streams));
    a->sp = calloc(n + 1, sizeof(*a->sp));
    a->shards = calloc(n_shards + 1, sizeof(*a->shards));
    a->shp = calloc(n_shards + 1, sizeof(*a->shp));
    a->meta = calloc(n_shards + 1, sizeof(*a->meta));
    a->targets = calloc((n_shards + 1) * SL_REPL_REPLICAS_MAX, sizeof(*a->targets));
    size_t n_cluster = 0;
    for (size_t i = 0; i < n; i++) {
        n_cluster += sts[i]->cluster ? sts[i]->shard_count - sts[i]->lineage.gone : 0;
    }
    a->lags = calloc((n_cluster + 1) * SL_REPL_REPLICAS_MAX, sizeof(*a->lags));
    a->lagp = calloc((n_cluster + 1) * SL_REPL_REPLICAS_MAX, sizeof(*a->lagp));
    if (a->streams == NULL || a->sp == NULL || a->shards == NULL || a->shp == NULL ||
        a->meta == NULL || a->targets == NULL || a->lags == NULL || a->lagp == NULL ||
        broker_list_build(srv, connected, &a->brokers) != SL_OK) {
        return SL_ENOMEM;
    }
    mr->n_brokers = a->brokers.n;
    mr->brokers = a->brokers.bp;
    size_t k = 0, kc = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sl_stream *st = sts[i];
        Sluice__V1__StreamRoute *sr = &a->streams[i];
        sluice__v1__stream_route__init(sr);
        sr->name = (char *)st->name;
        sr->shards = &a->shp[k];
        for (uint32_t id = 0; id < st->shard_count; id++) {
            if (st->lineage.shard[id].gone) {
                continue;
            }
            SL_ASSERT(k < n_shards);
            SL_ASSERT(!st->cluster || kc < n_cluster);
            int rc = shard_route(srv, st, id, (int32_t)mr->node_id, &a->meta[k],
                                 &a->targets[k * SL_REPL_REPLICAS_MAX], &a->shards[k],
                                 st->cluster ? &a->lags[kc * SL_REPL_REPLICAS_MAX] : NULL,
                                 st->cluster ? &a->lagp[kc * SL_REPL_REPLICAS_MAX] : NULL);
            if (rc != SL_OK) {
                return rc;
            }
            kc += st->cluster;
            a->shp[k] = &a->shards[k];
            k++;
            sr->n_shards++;
        }
        a->sp[i] = sr;
    }
    SL_ASSERT(k == n_shards);
    mr->n_streams = n;
    mr->streams = a->sp;
    return SL_OK;
}

void sl_native_metadata(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__Metadata *m = req->metadata;
    char why[256];
    if (m->n_streams > SL_NATIVE_METADATA_STREAMS_MAX) {
        snprintf(why, sizeof(why), "Metadata names %zu streams; at most %u per request (ask in "
                 "several requests)", m->n_streams, SL_NATIVE_METADATA_STREAMS_MAX);
        sl_native_fail(c, req->id, SL_ELIMIT, why);
        return;
    }
    uint64_t cut = sl_replicas_cut_ms(srv->replicas);
    if (cut != 0) {
        /* its leaders may have been replaced meanwhile: a client is better told to ask a
         * broker that hears ZooKeeper (libsluice does, down its bootstrap list) */
        snprintf(why, sizeof(why), "this broker has been cut from ZooKeeper for %" PRIu64
                 " ms and its view of the leaders may be stale: ask another broker", cut);
        sl_native_fail(c, req->id, SL_EAGAIN, why);
        return;
    }
    struct sl_stream *sts[SL_NATIVE_METADATA_STREAMS_MAX];
    size_t n_shards = 0;
    int rc = meta_streams(srv, c, m, sts, &n_shards, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    struct meta_answer a = {0};
    rc = meta_build(srv, sts, m->n_streams, n_shards, &a);
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_METADATA;
    resp.metadata = &a.mr;
    size_t size = rc == SL_OK ? sl_response_size(&resp) : 0;
    if (rc != SL_OK) {
        sl_native_respond_error(c, req->id, rc,
                                rc == SL_ENOMEM ? "out of memory building the metadata" : NULL);
    } else if (size + SL_NATIVE_FRAME_SLACK > srv->cfg.max_frame_bytes) {
        snprintf(why, sizeof(why), "the metadata of these %zu streams (%zu shards, %zu bytes) "
                 "does not fit a frame of %u bytes: ask for fewer streams per request",
                 m->n_streams, n_shards, size, srv->cfg.max_frame_bytes);
        sl_native_respond_error(c, req->id, SL_ETOOBIG, why);
    } else {
        sl_native_respond(c, &resp);
    }
    meta_answer_free(&a);
    sl_conn_request_done(c);
}

/* ---- ReassignShard ---- */

struct reassign_op {
    struct sl_conn *conn;
    uint64_t req_id;
};

static void reassign_answer(struct sl_conn *c, uint64_t id, int err, const char *why)
{
    if (err != SL_OK) {
        sl_native_respond_error(c, id, err, why);
        return;
    }
    Sluice__V1__ReassignShardResponse rr = SLUICE__V1__REASSIGN_SHARD_RESPONSE__INIT;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_REASSIGN_SHARD;
    resp.reassign_shard = &rr;
    sl_native_respond(c, &resp);
}

static void on_reassigned(void *ctx, int err, const char *why)
{
    struct reassign_op *op = ctx;
    reassign_answer(op->conn, op->req_id, err, why);
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    free(op);
}

/* Any broker of a cluster takes it, a move or its cancel (replicas_move.c writes the request
 * for the controller); answered once ZooKeeper holds the request, or at once with why not. */
void sl_native_reassign_shard(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__ReassignShard *m = req->reassign_shard;
    char why[320];
    if (srv->replicas == NULL) {
        sl_native_fail(c, req->id, SL_EUNSUPPORTED,
                       "this broker runs alone (no --cluster): its streams have one copy and "
                       "nothing to move");
        return;
    }
    if (m->cancel ? m->n_replicas != 0
                  : m->n_replicas == 0 || m->n_replicas > SL_REPL_REPLICAS_MAX) {
        if (m->cancel) {
            snprintf(why, sizeof(why), "ReassignShard with cancel names %zu replicas; it names "
                     "none", m->n_replicas);
        } else {
            snprintf(why, sizeof(why), "ReassignShard names %zu replicas; a shard has 1 to %u",
                     m->n_replicas, SL_REPL_REPLICAS_MAX);
        }
        sl_native_fail(c, req->id, SL_EINVAL, why);
        return;
    }
    struct reassign_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    *op = (struct reassign_op){.conn = c, .req_id = req->id};
    const char *stream = m->stream != NULL ? m->stream : "";
    int rc = m->cancel ? sl_replicas_reassign_cancel(srv->replicas, stream, m->shard,
                                                     on_reassigned, op, why, sizeof(why))
                       : sl_replicas_reassign(srv->replicas, stream, m->shard, m->replicas,
                                              (uint32_t)m->n_replicas, on_reassigned, op, why,
                                              sizeof(why));
    if (rc != SL_OK) {
        free(op);
        /* the same move in progress already: done, as far as the asker is concerned */
        reassign_answer(c, req->id, rc == SL_EEXIST ? SL_OK : rc, why);
        sl_conn_request_done(c);
        return;
    }
    sl_conn_hold(c);
}
