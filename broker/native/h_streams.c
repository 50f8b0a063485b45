/* h_streams.c - native CreateStream, DescribeStream, ListStreams,
 * DeleteStream over broker/engine/streams.h. */
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
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
}

/* Create and Describe answer with the stream and each shard. */
static void respond_stream(struct sl_conn *c, uint64_t id, const struct sl_stream *st,
                           bool create)
{
    uint32_t n = st->shard_count;
    Sluice__V1__ShardInfo *shards = calloc(n, sizeof(*shards));
    Sluice__V1__ShardInfo **ptrs = calloc(n, sizeof(*ptrs));
    struct sl_shard_info *info = calloc(n, sizeof(*info));
    if (shards == NULL || ptrs == NULL || info == NULL) {
        free(shards);
        free(ptrs);
        free(info);
        sl_native_respond_error(c, id, SL_ENOMEM, NULL);
        return;
    }
    Sluice__V1__StreamInfo si;
    stream_info(st, &si);
    for (uint32_t i = 0; i < n; i++) {
        sl_streams_shard_info(st, i, &info[i]);
        sluice__v1__shard_info__init(&shards[i]);
        shards[i].shard = i;
        shards[i].hash_start = info[i].hash_start;
        shards[i].hash_end = info[i].hash_end;
        shards[i].first_seq = info[i].first_seq;
        shards[i].next_seq = info[i].next_seq;
        shards[i].bytes = info[i].bytes;
        shards[i].segments = info[i].segments;
        shards[i].status = (Sluice__V1__ErrorCode)info[i].status;
        shards[i].status_message = info[i].status_message;
        ptrs[i] = &shards[i];
    }
    si.n_shards = n;
    si.shards = ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = id;
    Sluice__V1__CreateStreamResponse cr = SLUICE__V1__CREATE_STREAM_RESPONSE__INIT;
    Sluice__V1__DescribeStreamResponse dr = SLUICE__V1__DESCRIBE_STREAM_RESPONSE__INIT;
    if (create) {
        cr.stream = &si;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_CREATE_STREAM;
        resp.create_stream = &cr;
    } else {
        dr.stream = &si;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_DESCRIBE_STREAM;
        resp.describe_stream = &dr;
    }
    sl_native_respond(c, &resp);
    free(shards);
    free(ptrs);
    free(info);
}

struct create_op {
    struct sl_conn *conn;
    uint64_t req_id;
};

static void on_stream_created(void *ctx, int err, const char *why, struct sl_stream *st)
{
    struct create_op *op = ctx;
    if (err != SL_OK) {
        sl_native_respond_error(op->conn, op->req_id, err, why);
    } else {
        respond_stream(op->conn, op->req_id, st, true);
    }
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    free(op);
}

/* Answered by the catalog's creator threads' work: the loop does not wait
 * on the create's fsyncs. */
void sl_native_create_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__CreateStream *m = req->create_stream;
    struct create_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    *op = (struct create_op){.conn = c, .req_id = req->id};
    sl_conn_hold(c);
    struct sl_stream_spec spec = {.name = m->name, .shard_count = m->shard_count,
                                  .retention_hours = m->retention_hours,
                                  .retention_bytes = m->retention_bytes,
                                  .compression = m->compression};
    sl_streams_create_async(srv->engine, &spec, on_stream_created, op);
}

void sl_native_describe_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    char why[200];
    int rc;
    struct sl_stream *st = sl_engine_stream(srv->engine, req->describe_stream->name, why,
                                            sizeof(why), &rc);
    if (st == NULL) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    respond_stream(c, req->id, st, false);
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

void sl_native_delete_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    char why[200];
    int rc = sl_streams_delete(srv->engine, req->delete_stream->name, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__DeleteStreamResponse dr = SLUICE__V1__DELETE_STREAM_RESPONSE__INIT;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_DELETE_STREAM;
    resp.delete_stream = &dr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}
