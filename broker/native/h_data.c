/* h_data.c - native Produce and Fetch over broker/engine/produce.h and
 * fetch.h. A produce keeps its unpacked request (which owns the batch
 * bytes) until the engine's callback; a fetch answers with the engine's
 * buffer, borrowed for the callback. */
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "broker/native/handlers.h"
#include "common/error.h"

#include <stdlib.h>

struct produce_op {
    struct sl_conn *conn;
    sl_request *req; /* owns the batch until the callback */
};

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct produce_op *op = ctx;
    struct sl_conn *c = op->conn;
    if (op->req->produce->ack != SLUICE__V1__ACK_MODE__ACK_NONE) {
        if (r->err != SL_OK && r->err != SL_ESHARD_CLOSED) {
            sl_native_respond_error(c, op->req->id, r->err, r->why);
        } else {
            /* a closed shard's refusal carries the body: the children */
            Sluice__V1__ProduceResponse pr = SLUICE__V1__PRODUCE_RESPONSE__INIT;
            pr.shard = r->shard;
            pr.base_seq = r->base_seq;
            pr.count = r->count;
            pr.duplicate = r->duplicate;
            pr.n_dropped = r->n_dropped;
            pr.dropped = (uint32_t *)r->dropped;
            pr.n_children = r->n_children;
            pr.children = (uint32_t *)r->children;
            sl_response resp = SLUICE__V1__RESPONSE__INIT;
            resp.id = op->req->id;
            resp.code = (Sluice__V1__ErrorCode)r->err;
            if (r->err != SL_OK) {
                resp.message = (char *)r->why;
            }
            resp.body_case = SLUICE__V1__RESPONSE__BODY_PRODUCE;
            resp.produce = &pr;
            sl_native_respond(c, &resp);
        }
    }
    sl_conn_request_done(c);
    sl_conn_release(c);
    sl_request_free(op->req);
    free(op);
}

static enum sl_ack ack_of(Sluice__V1__AckMode m)
{
    switch (m) {
    case SLUICE__V1__ACK_MODE__ACK_WRITTEN:
        return SL_ACK_WRITTEN;
    case SLUICE__V1__ACK_MODE__ACK_NONE:
        return SL_ACK_NONE;
    default:
        return SL_ACK_DURABLE;
    }
}

void sl_native_produce(struct sl_native *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__Produce *m = req->produce;
    struct produce_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        sl_request_free(req);
        return;
    }
    op->conn = c;
    op->req = req;
    sl_conn_hold(c);
    struct sl_produce_req pr = {.stream = m->stream, .shard = m->shard, .in_order = m->in_order,
                                .batch = m->batch.data,
                                .len = m->batch.len, .ack = ack_of(m->ack)};
    sl_produce_submit(srv->engine, &pr, on_produced, op);
}

struct fetch_op {
    struct sl_conn *conn;
    uint64_t req_id;
};

static void on_fetched(void *ctx, const struct sl_fetch_result *r)
{
    struct fetch_op *op = ctx;
    struct sl_conn *c = op->conn;
    if (!r->read) {
        sl_native_respond_error(c, op->req_id, r->err, r->why);
    } else {
        Sluice__V1__FetchResponse fr = SLUICE__V1__FETCH_RESPONSE__INIT;
        fr.shard = r->shard;
        fr.first_seq = r->first_seq;
        fr.tail_seq = r->tail_seq;
        fr.tail_time_ms = r->tail_time_ms;
        fr.next_seq = r->next_seq;
        fr.batches.data = (uint8_t *)r->batches;
        fr.batches.len = r->len;
        fr.closed = r->closed;
        fr.n_children = r->n_children;
        fr.children = (uint32_t *)r->children;
        sl_response resp = SLUICE__V1__RESPONSE__INIT;
        resp.id = op->req_id;
        resp.code = (Sluice__V1__ErrorCode)r->err;
        resp.message = (char *)r->why;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_FETCH;
        resp.fetch = &fr;
        sl_native_respond(c, &resp);
    }
    sl_conn_request_done(c);
    sl_conn_release(c);
    free(op);
}

void sl_native_fetch(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__Fetch *m = req->fetch;
    struct fetch_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    op->conn = c;
    op->req_id = req->id;
    sl_conn_hold(c);
    struct sl_fetch_req fr = {.stream = m->stream, .shard = m->shard,
                              .pos = sl_native_position(m->position), .max_bytes = m->max_bytes,
                              .max_wait_ms = m->max_wait_ms, .group = m->group,
                              .member_id = m->member_id};
    sl_fetch_start(srv->engine, &fr, on_fetched, op);
}
