/* h_data.c - native Produce and Fetch over broker/engine/produce.h and
 * fetch.h. A fetch answers with the engine's buffer, borrowed for the
 * callback.
 *
 * A produce reaches the engine two ways. The hot path (sl_native_produce_view):
 * the frame parsed in place (pview.h), the batch referenced where it was
 * received - no unpack copy, no allocation. What must hold: the engine
 * borrows the batch until its callback (produce.h), and the shard copies it
 * into staging (verifying its checksum) somewhere before that, possibly on
 * another worker's thread; so the receive buffer holding it is pinned
 * (sl_conn_pin) until the callback, and the loop neither compacts, reuses
 * nor frees a pinned buffer (broker/net/net.c). Asserted: the batch lies in
 * the pinned buffer when submitted, and the pin is still held when the
 * callback runs. The other path (sl_native_produce): a request protobuf-c
 * unpacked (a frame the in-place parser does not claim), which owns its
 * batch copy until the callback.
 *
 * Ops come from a free list on the front-end (main loop only; at most
 * NATIVE_PRODUCE_OPS_CACHED kept), not a malloc per request. */
#include "broker/engine/catalog.h"
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "broker/native/handlers.h"
#include "broker/native/pview.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

/* Free produce ops kept for reuse: a few connections' max_inflight. */
#define NATIVE_PRODUCE_OPS_CACHED 1024u

struct sl_native_produce_op {
    struct sl_conn *conn;
    uint64_t id;
    bool answer;                 /* not ACK_NONE */
    sl_request *req;             /* protobuf-c's path: owns the batch until the callback */
    struct sl_in_blk *pin;       /* the in-place path: holds the receive buffer */
    struct sl_native *srv;
    struct sl_native_produce_op *next; /* in srv->produce_free */
};

static struct sl_native_produce_op *op_get(struct sl_native *srv)
{
    struct sl_native_produce_op *op = srv->produce_free;
    if (op != NULL) {
        srv->produce_free = op->next;
        srv->produce_free_n--;
    } else {
        op = malloc(sizeof(*op));
    }
    return op;
}

static void op_put(struct sl_native *srv, struct sl_native_produce_op *op)
{
    if (srv->produce_free_n >= NATIVE_PRODUCE_OPS_CACHED) {
        free(op);
        return;
    }
    op->next = srv->produce_free;
    srv->produce_free = op;
    srv->produce_free_n++;
}

void sl_native_produce_fini(struct sl_native *srv)
{
    while (srv->produce_free != NULL) {
        struct sl_native_produce_op *op = srv->produce_free;
        srv->produce_free = op->next;
        free(op);
    }
    srv->produce_free_n = 0;
}

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct sl_native_produce_op *op = ctx;
    struct sl_conn *c = op->conn;
    if (op->answer) {
        if (r->err != SL_OK && r->err != SL_ESHARD_CLOSED) {
            sl_native_respond_error(c, op->id, r->err, r->why);
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
            uint64_t trace[SL_PTRACE_N + 1]; /* the engine's stages, then "answer queued" */
            if (r->trace_ns != NULL) {
                memcpy(trace, r->trace_ns, SL_PTRACE_N * sizeof(trace[0]));
                trace[SL_PTRACE_N] = sl_clock_mono_ns();
                pr.n_trace_ns = SL_PTRACE_N + 1;
                pr.trace_ns = trace;
            }
            sl_response resp = SLUICE__V1__RESPONSE__INIT;
            resp.id = op->id;
            resp.code = (Sluice__V1__ErrorCode)r->err;
            if (r->err != SL_OK) {
                resp.message = (char *)r->why;
            }
            resp.body_case = SLUICE__V1__RESPONSE__BODY_PRODUCE;
            resp.produce = &pr;
            sl_native_respond(c, &resp);
        }
    }
    if (op->pin != NULL) {
        sl_conn_unpin(c, op->pin); /* the engine is done with the batch */
    }
    sl_conn_request_done(c);
    sl_conn_release(c);
    sl_request_free(op->req);
    op_put(op->srv, op);
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
    struct sl_native_produce_op *op = op_get(srv);
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        sl_request_free(req);
        return;
    }
    *op = (struct sl_native_produce_op){.conn = c, .id = req->id, .req = req, .srv = srv,
                                        .answer = m->ack != SLUICE__V1__ACK_MODE__ACK_NONE};
    sl_conn_hold(c);
    struct sl_produce_req pr = {.stream = m->stream, .shard = m->shard, .in_order = m->in_order,
                                .caller_routed = m->caller_routed,
                                .batch = m->batch.data,
                                .len = m->batch.len, .ack = ack_of(m->ack),
                                .trace_ns = m->trace ? sl_clock_mono_ns() : 0};
    sl_produce_submit(srv->engine, &pr, on_produced, op);
}

bool sl_native_produce_view(struct sl_native *srv, struct sl_conn *c, const struct sl_pview *v)
{
    uint64_t received_ns = v->trace ? sl_clock_mono_ns() : 0;
    char stream[SL_STREAM_NAME_MAX + 1];
    if (v->stream_len >= sizeof(stream)) {
        return false; /* no such stream: protobuf-c's path answers it as it always did */
    }
    if (v->stream_len > 0) {
        memcpy(stream, v->stream, v->stream_len); /* the engine wants a C string */
    }
    stream[v->stream_len] = '\0';
    sl_conn_request_begin(c);
    if (!(c->proto_flags & SL_NATIVE_HELLO_DONE)) {
        sl_native_fail(c, v->id, SL_EPROTO, "the first request on a connection must be Hello");
        return true;
    }
    char why[256];
    int rc = sl_native_authorize_op(srv, c, SL_ACL_PRODUCE, stream, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, v->id, rc, why);
        return true;
    }
    struct sl_native_produce_op *op = op_get(srv);
    if (op == NULL) {
        sl_native_fail(c, v->id, SL_ENOMEM, NULL);
        return true;
    }
    *op = (struct sl_native_produce_op){.conn = c, .id = v->id, .srv = srv,
                                        .answer = v->ack != SLUICE__V1__ACK_MODE__ACK_NONE};
    op->pin = sl_conn_pin(c);
    /* the lifetime rule's premise: the batch is in the buffer just pinned */
    SL_ASSERT(v->batch == NULL || sl_conn_pin_holds(op->pin, v->batch, v->batch_len));
    sl_conn_hold(c);
    struct sl_produce_req pr = {.stream = stream, .shard = v->shard, .in_order = v->in_order,
                                .caller_routed = v->caller_routed,
                                .batch = v->batch, .len = v->batch_len,
                                .ack = ack_of((Sluice__V1__AckMode)v->ack),
                                .trace_ns = received_ns};
    sl_produce_submit(srv->engine, &pr, on_produced, op);
    return true;
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
        uint64_t trace[SL_FTRACE_N + 1]; /* the engine's stages, then "answer queued" */
        if (r->trace_ns != NULL) {
            memcpy(trace, r->trace_ns, SL_FTRACE_N * sizeof(trace[0]));
            trace[SL_FTRACE_N] = sl_clock_mono_ns();
            fr.n_trace_ns = SL_FTRACE_N + 1;
            fr.trace_ns = trace;
        }
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
                              .member_id = m->member_id,
                              .trace_ns = m->trace ? sl_clock_mono_ns() : 0};
    sl_fetch_start(srv->engine, &fr, on_fetched, op);
}
