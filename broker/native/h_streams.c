/* h_streams.c - native CreateStream, DescribeStream, ListStreams,
 * DeleteStream over broker/engine/streams.h, and ReshardStream over
 * broker/engine/reshard.h. */
#include "broker/cluster/replicas.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/reshard.h"
#include "broker/engine/streams.h"
#include "broker/native/handlers.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>

static void stream_info(const struct sl_stream *st, Sluice__V1__StreamInfo *si)
{
    sluice__v1__stream_info__init(si);
    si->name = (char *)st->name;
    si->shard_count = st->shard_count;
    si->retention_hours = st->retention_hours;
    si->retention_bytes = st->retention_bytes;
    si->compression = (char *)st->compression;
    si->created_ms = st->created_ms;
    si->open_shards = st->lineage.open;
}

/* The ids of a lineage pair ({a, b}, {a, NONE} or {NONE, NONE}), borrowed. */
static size_t lineage_ids(const uint32_t pair[2], uint32_t **out)
{
    *out = (uint32_t *)pair;
    return pair[0] == SL_LINEAGE_NONE ? 0 : pair[1] == SL_LINEAGE_NONE ? 1 : 2;
}

/* A stream with each shard, as Create, Describe and Reshard answer it. */
struct stream_msg {
    Sluice__V1__StreamInfo si;
    Sluice__V1__ShardInfo *shards;
    Sluice__V1__ShardInfo **ptrs;
    struct sl_shard_info *info;
};

/* A replicated shard's end as its readers see it: its high watermark on a replica of this
 * broker (a leader's own writes are durable here before the other replicas have them);
 * libsluice asks each shard's leader (client/admin.c). */
static void shard_read_end(const struct sl_engine *e, const struct sl_stream *st, uint32_t i,
                           struct sl_shard_info *in)
{
    uint64_t end = 0;
    if (st->cluster && sl_engine_read_end(e, st->shards[i], &end) == SL_OK &&
        end < in->next_seq) {
        in->next_seq = end;
    }
}

static int stream_msg_build(const struct sl_engine *e, const struct sl_stream *st,
                            struct stream_msg *m)
{
    uint32_t n = st->shard_count;
    m->shards = calloc(n, sizeof(*m->shards));
    m->ptrs = calloc(n, sizeof(*m->ptrs));
    m->info = calloc(n, sizeof(*m->info));
    if (m->shards == NULL || m->ptrs == NULL || m->info == NULL) {
        return SL_ENOMEM;
    }
    stream_info(st, &m->si);
    uint32_t k = 0; /* shards listed: every id but those retention removed */
    for (uint32_t i = 0; i < n; i++) {
        const struct sl_lineage_shard *ls = &st->lineage.shard[i];
        if (ls->gone) {
            continue;
        }
        Sluice__V1__ShardInfo *sh = &m->shards[k];
        const struct sl_shard_info *in = &m->info[k];
        sl_streams_shard_info(st, i, &m->info[k]);
        shard_read_end(e, st, i, &m->info[k]);
        sluice__v1__shard_info__init(sh);
        sh->shard = i;
        sh->hash_start = in->hash_start;
        sh->hash_end = in->hash_end;
        sh->first_seq = in->first_seq;
        sh->next_seq = in->next_seq;
        sh->bytes = in->bytes;
        sh->segments = in->segments;
        sh->status = (Sluice__V1__ErrorCode)in->status;
        sh->status_message = (char *)in->status_message;
        sh->closed = ls->closed;
        sh->n_parents = lineage_ids(ls->parent, &sh->parents);
        sh->n_children = ls->closed ? lineage_ids(ls->child, &sh->children) : 0;
        m->ptrs[k++] = sh;
    }
    m->si.n_shards = k;
    m->si.shards = m->ptrs;
    return SL_OK;
}

static void stream_msg_free(struct stream_msg *m)
{
    free(m->shards);
    free(m->ptrs);
    free(m->info);
}

/* Create and Describe answer with the stream and each shard. */
static void respond_stream(const struct sl_engine *e, struct sl_conn *c, uint64_t id,
                           const struct sl_stream *st, bool create)
{
    struct stream_msg m = {0};
    if (stream_msg_build(e, st, &m) != SL_OK) {
        stream_msg_free(&m);
        sl_native_respond_error(c, id, SL_ENOMEM, NULL);
        return;
    }
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = id;
    Sluice__V1__CreateStreamResponse cr = SLUICE__V1__CREATE_STREAM_RESPONSE__INIT;
    Sluice__V1__DescribeStreamResponse dr = SLUICE__V1__DESCRIBE_STREAM_RESPONSE__INIT;
    if (create) {
        cr.stream = &m.si;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_CREATE_STREAM;
        resp.create_stream = &cr;
    } else {
        dr.stream = &m.si;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_DESCRIBE_STREAM;
        resp.describe_stream = &dr;
    }
    sl_native_respond(c, &resp);
    stream_msg_free(&m);
}

struct create_op {
    struct sl_conn *conn;
    uint64_t req_id;
    struct sl_native *srv;
};

static void on_stream_created(void *ctx, int err, const char *why, struct sl_stream *st)
{
    struct create_op *op = ctx;
    if (err != SL_OK) {
        sl_native_respond_error(op->conn, op->req_id, err, why);
    } else {
        respond_stream(op->srv->engine, op->conn, op->req_id, st, true);
    }
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    free(op);
}

/* Answered by the catalog's creator threads' work: the loop does not wait
 * on the create's fsyncs. In a cluster the stream is written to ZooKeeper, and every
 * broker makes it from there (broker/cluster/replicas.h); answered once it exists here. */
void sl_native_create_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__CreateStream *m = req->create_stream;
    if (srv->replicas == NULL && m->replication_factor > 1) {
        /* one copy where more were asked would be a silent loss of durability */
        char why[200];
        snprintf(why, sizeof(why),
                 "replication factor %u needs a cluster: this broker was started without "
                 "--cluster and keeps one copy (ask for 1, or create the stream in a cluster)",
                 m->replication_factor);
        sl_native_fail(c, req->id, SL_EUNSUPPORTED, why);
        return;
    }
    struct create_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    *op = (struct create_op){.conn = c, .req_id = req->id, .srv = srv};
    sl_conn_hold(c);
    struct sl_stream_spec spec = {.name = m->name,
                                  .shard_count = m->shard_count,
                                  .retention_hours = m->retention_hours,
                                  .retention_bytes = m->retention_bytes,
                                  .compression = m->compression,
                                  .replication_factor = m->replication_factor};
    if (srv->replicas != NULL) {
        sl_streams_create_replicated_async(srv->engine, &spec, on_stream_created, op);
    } else {
        sl_streams_create_async(srv->engine, &spec, on_stream_created, op);
    }
}

void sl_native_describe_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    char why[200];
    int rc;
    struct sl_stream *st =
        sl_engine_stream(srv->engine, req->describe_stream->name, why, sizeof(why), &rc);
    if (st == NULL) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    respond_stream(srv->engine, c, req->id, st, false);
    sl_conn_request_done(c);
}

void sl_native_list_streams(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    struct sl_catalog *cat = srv->engine->catalog;
    uint32_t n = 0;
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        n++;
    }
    Sluice__V1__StreamInfo *infos = calloc(n + 1, sizeof(*infos));
    Sluice__V1__StreamInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
    if (infos == NULL || ptrs == NULL) {
        free(infos);
        free(ptrs);
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    uint32_t i = 0;
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        stream_info(st, &infos[i]);
        ptrs[i] = &infos[i];
        i++;
    }
    Sluice__V1__ListStreamsResponse lr = SLUICE__V1__LIST_STREAMS_RESPONSE__INIT;
    lr.n_streams = n;
    lr.streams = ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LIST_STREAMS;
    resp.list_streams = &lr;
    sl_native_respond(c, &resp);
    free(infos);
    free(ptrs);
    sl_conn_request_done(c);
}

static void respond_deleted(struct sl_conn *c, uint64_t req_id)
{
    Sluice__V1__DeleteStreamResponse dr = SLUICE__V1__DELETE_STREAM_RESPONSE__INIT;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req_id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_DELETE_STREAM;
    resp.delete_stream = &dr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

struct delete_op {
    struct sl_conn *conn;
    uint64_t req_id;
};

static void on_cluster_deleted(void *ctx, int err, const char *why)
{
    struct delete_op *op = ctx;
    if (err != SL_OK) {
        sl_native_fail(op->conn, op->req_id, err, why);
    } else {
        respond_deleted(op->conn, op->req_id);
    }
    sl_conn_release(op->conn);
    free(op);
}

/* In a cluster a stream is deleted in ZooKeeper, and every broker drops its copy from there
 * (broker/cluster/replicas.h); a local stream of the name (made through an HTTP API) is
 * deleted here as on a single broker. A name this broker does not hold yet may be a cluster
 * stream made a moment ago elsewhere: asked of the cluster too. */
void sl_native_delete_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    char why[200];
    const char *name = req->delete_stream->name;
    struct sl_stream *st = sl_catalog_find(srv->engine->catalog, name);
    if (srv->replicas != NULL && (st == NULL || st->cluster)) {
        struct delete_op *op = calloc(1, sizeof(*op));
        if (op == NULL) {
            sl_native_fail(c, req->id, SL_ENOMEM, NULL);
            return;
        }
        *op = (struct delete_op){.conn = c, .req_id = req->id};
        int rc = sl_replicas_delete_stream(srv->replicas, name, on_cluster_deleted, op, why,
                                           sizeof(why));
        if (rc != SL_OK) {
            free(op);
            sl_native_fail(c, req->id, rc, why);
            return;
        }
        sl_conn_hold(c);
        return;
    }
    int rc = sl_streams_delete(srv->engine, name, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    respond_deleted(c, req->id);
}

struct reshard_op {
    struct sl_native *srv;
    struct sl_conn *conn;
    uint64_t req_id;
    char stream[SL_STREAM_NAME_MAX + 1];
};

static void on_resharded(void *ctx, const struct sl_reshard_result *r)
{
    struct reshard_op *op = ctx;
    char why[200];
    int rc = r->err;
    struct sl_stream *st =
        rc == SL_OK ? sl_engine_stream(op->srv->engine, op->stream, why, sizeof(why), &rc) : NULL;
    struct stream_msg m = {0};
    uint32_t *opened = NULL;
    if (rc == SL_OK && (stream_msg_build(op->srv->engine, st, &m) != SL_OK ||
                        (opened = calloc(r->n_new + 1, sizeof(*opened))) == NULL)) {
        rc = SL_ENOMEM;
        snprintf(why, sizeof(why), "the change was made, but no memory was left to describe it");
    }
    if (rc != SL_OK) {
        sl_native_respond_error(op->conn, op->req_id, rc, r->err != SL_OK ? r->why : why);
    } else {
        for (uint32_t i = 0; i < r->n_new; i++) {
            opened[i] = r->first_new + i;
        }
        Sluice__V1__ReshardStreamResponse rr = SLUICE__V1__RESHARD_STREAM_RESPONSE__INIT;
        rr.stream = &m.si;
        rr.n_closed = r->n_closed;
        rr.closed = (uint32_t *)r->closed;
        rr.n_opened = r->n_new;
        rr.opened = opened;
        sl_response resp = SLUICE__V1__RESPONSE__INIT;
        resp.id = op->req_id;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_RESHARD_STREAM;
        resp.reshard_stream = &rr;
        sl_native_respond(op->conn, &resp);
    }
    free(opened);
    stream_msg_free(&m);
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    free(op);
}

/* Answered once the shards being closed have no append in flight and the
 * change is durable (reshard.h): a few milliseconds, a group commit. */
void sl_native_reshard_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__ReshardStream *m = req->reshard_stream;
    struct sl_reshard_req rr = {.stream = m->stream};
    switch (m->change_case) {
    case SLUICE__V1__RESHARD_STREAM__CHANGE_SPLIT:
        rr.kind = SL_RESHARD_SPLIT;
        rr.shard = m->split->shard;
        rr.has_at = m->split->has_at;
        rr.at = m->split->at;
        break;
    case SLUICE__V1__RESHARD_STREAM__CHANGE_MERGE:
        rr.kind = SL_RESHARD_MERGE;
        rr.shard = m->merge->shard;
        rr.adjacent = m->merge->adjacent;
        break;
    case SLUICE__V1__RESHARD_STREAM__CHANGE_TARGET_SHARDS:
        rr.kind = SL_RESHARD_TARGET;
        rr.target = m->target_shards;
        break;
    default:
        sl_native_fail(c, req->id, SL_EINVAL,
                       "ReshardStream names no change: split, merge or "
                       "target_shards");
        return;
    }
    struct reshard_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    *op = (struct reshard_op){.srv = srv, .conn = c, .req_id = req->id};
    snprintf(op->stream, sizeof(op->stream), "%s", m->stream != NULL ? m->stream : "");
    sl_conn_hold(c);
    sl_reshard_submit(srv->engine, &rr, on_resharded, op);
}
