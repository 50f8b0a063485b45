/* kinesis_subscribe.c - SubscribeToShard (enhanced fan-out): a registered
 * consumer's push subscription to one shard, answered as an AWS event stream
 * (application/vnd.amazon.eventstream, eventstream.c) over the call's HTTP
 * session: an initial-response event, then SubscribeToShardEvent events
 * {Records, ContinuationSequenceNumber, MillisBehindLatest}, until the
 * subscription's 5 minutes are up (AWS's lifetime; the client subscribes
 * again from ContinuationSequenceNumber), the stream goes away, the peer
 * leaves or the broker stops - or, for a closed shard (#16), the event that
 * reaches its end, which carries ChildShards and no ContinuationSequenceNumber.
 *
 * The subscription is a cursor: a loop of long-poll fetches (sl_fetch_start,
 * SUB_WAIT_MS each, so an event - maybe empty - goes out at least that often),
 * each turned into one event of at most SUB_EVENT_BYTES_MAX of data. Memory
 * is bounded by the session's streaming buffer: when it is full
 * (sl_http_respond_data says SL_EAGAIN) the encoded event waits in the op and
 * the loop waits on a short fetch at the shard's tail (the loop's only
 * timer) before trying again. The consumer's registration is checked when
 * it subscribes (its properties, kinesis_streams.c).
 *
 * Threading: the main loop; fetch callbacks may run before sl_fetch_start
 * returns (errors: they end the subscription; a trimmed position moves
 * forward once), so the loop cannot recurse without bound. Ownership: the
 * op owns the call (and so holds the connection) until the stream's end.
 */
#include "broker/api/eventstream.h"
#include "broker/api/kinesis_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/fetch.h"
#include "broker/engine/streams.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB_LIFETIME_MS (5u * 60u * 1000u)
#define SUB_WAIT_MS     1000u
#define SUB_RETRY_MS    200u
/* Data per event: base64 (4/3) and JSON keep an event well below the
 * session's 1 MiB streaming buffer (server.c API_STREAM_OUT_BYTES_MAX). */
#define SUB_EVENT_BYTES_MAX (512u << 10)
#define WHY_MAX             256u
#define EVENTSTREAM_TYPE    "application/vnd.amazon.eventstream"

struct sub_op {
    struct sl_api_call *call; /* owned until the end */
    char stream[SL_STREAM_NAME_MAX + 1];
    uint64_t created_ms;
    uint32_t shard;
    uint32_t kind; /* enum sl_kin_iter_kind: SEQ, TRIM or TIME */
    uint64_t value;
    uint64_t end_ms;  /* monotonic */
    uint8_t *pending; /* owned: an event the session could not take yet */
    size_t pending_len;
    bool waiting; /* the fetch in flight is the retry timer */
    bool last;    /* the pending event ends a closed shard: then the stream ends */
};

static void sub_step(struct sub_op *op);

static void sub_end(struct sub_op *op)
{
    struct sl_api_call *call = op->call;
    if (call->req != NULL) {
        sl_http_respond_end(call->session, call->id);
    }
    /* frees the call; its answer is already complete, so nothing more is sent */
    sl_api_reply(call, 200, EVENTSTREAM_TYPE, "", 0);
    free(op->pending);
    free(op);
}

static bool sub_over(const struct sub_op *op)
{
    struct sl_engine *e = op->call->api->engine;
    const struct sl_stream *st = sl_catalog_find(e->catalog, op->stream);
    return op->call->req == NULL || sl_conn_is_closed(op->call->conn) || e->stopping ||
           sl_clock_mono_ms() >= op->end_ms || st == NULL ||
           st->created_ms != op->created_ms;
}

/* Encodes one event (owned result in *out). */
static int sub_event(const char *type, const void *payload, size_t len, uint8_t **out,
                     size_t *out_len)
{
    const struct sl_es_header h[] = {
        {":message-type", "event"}, {":event-type", type}, {":content-type", "application/json"}};
    size_t n = sl_es_size(h, 3, len);
    *out = malloc(n);
    if (*out == NULL) {
        return SL_ENOMEM;
    }
    sl_es_write(*out, h, 3, payload, len);
    *out_len = n;
    return SL_OK;
}

static void on_sub_fetched(void *ctx, const struct sl_fetch_result *r);

static void sub_fetch(struct sub_op *op, bool wait_only)
{
    struct sl_fetch_req req = {.stream = op->stream,
                               .shard = op->shard,
                               .max_bytes = SUB_EVENT_BYTES_MAX,
                               .max_wait_ms = wait_only ? SUB_RETRY_MS : SUB_WAIT_MS};
    req.pos.kind = wait_only                      ? SL_POS_LATEST
                   : op->kind == SL_KIN_ITER_TRIM ? SL_POS_TRIM_HORIZON
                   : op->kind == SL_KIN_ITER_TIME ? SL_POS_AT_TIME
                                                  : SL_POS_AT_SEQ;
    req.pos.seq = op->value;
    req.pos.time_ms = op->value;
    op->waiting = wait_only;
    sl_fetch_start(op->call->api->engine, &req, on_sub_fetched, op);
}

/* Sends the pending event if any, then reads on (or ends). */
static void sub_step(struct sub_op *op)
{
    if (sub_over(op)) {
        sub_end(op);
        return;
    }
    if (op->pending != NULL) {
        int rc =
            sl_http_respond_data(op->call->session, op->call->id, op->pending, op->pending_len);
        if (rc == SL_EAGAIN) {
            sub_fetch(op, true);
            return;
        }
        free(op->pending);
        op->pending = NULL;
        if (rc != SL_OK || op->last) {
            sub_end(op);
            return;
        }
    }
    sub_fetch(op, false);
}

/* The records of r as one SubscribeToShardEvent, made pending. */
static int sub_records(struct sub_op *op, const struct sl_fetch_result *r)
{
    SL_ASSERT(op->pending == NULL); /* records are read only once the last event went out */
    struct sl_kin_walk w = {.kind = op->kind,
                            .value = op->value,
                            .limit = SL_KIN_GET_LIMIT_MAX,
                            .bytes_max = SUB_EVENT_BYTES_MAX};
    sl_kin_buf_str(&w.out, "{\"Records\":[");
    int rc = sl_kin_walk_fetch(&w, r);
    const struct sl_stream *st = sl_catalog_find(op->call->api->engine->catalog, op->stream);
    if (st != NULL && op->shard < st->shard_count && st->lineage.shard[op->shard].closed &&
        w.next >= r->tail_seq) {
        /* the end of a closed shard: its children, and the subscription ends */
        sl_kin_buf_str(&w.out, "],\"MillisBehindLatest\":0,");
        sl_kin_child_shards(&w.out, st, op->shard);
        sl_kin_buf_str(&w.out, "}");
        op->last = true;
    } else {
        sl_kin_buf_fmt(&w.out,
                       "],\"ContinuationSequenceNumber\":\"%" PRIu64 "\","
                       "\"MillisBehindLatest\":%" PRIu64 "}",
                       w.next, sl_kin_walk_behind(&w, r));
    }
    rc = rc == SL_OK && w.out.failed ? SL_ENOMEM : rc;
    if (rc == SL_OK) {
        rc = sub_event("SubscribeToShardEvent", w.out.p, w.out.len, &op->pending, &op->pending_len);
    }
    if (rc == SL_OK) {
        op->kind = SL_KIN_ITER_SEQ;
        op->value = w.next;
    }
    sl_kin_buf_free(&w.out);
    return rc;
}

static void on_sub_fetched(void *ctx, const struct sl_fetch_result *r)
{
    struct sub_op *op = ctx;
    int rc = SL_OK;
    if (op->waiting) {
        /* the retry timer ran out (or records came): try the send again */
    } else if (r->err == SL_ETRIMMED && op->kind == SL_KIN_ITER_SEQ && r->next_seq <= op->value) {
        rc = SL_ETRIMMED; /* no progress: never loop on synchronous answers */
    } else if (r->err == SL_ETRIMMED) {
        op->kind = SL_KIN_ITER_SEQ;
        op->value = r->next_seq;
    } else if (r->err != SL_OK) {
        rc = r->err;
    } else {
        rc = sub_records(op, r);
    }
    if (rc != SL_OK) {
        sl_debug("kinesis", "subscription to %s/%u ends: %s", op->stream, op->shard,
                 sl_strerror(rc));
        sub_end(op);
        return;
    }
    sub_step(op);
}

/* The stream and registered consumer of the ARN; answers on failure. */
static struct sl_stream *sub_stream(struct sl_api_call *call, const char *arn)
{
    char name[SL_KIN_NAME_MAX + 1], key[SL_STREAM_PROP_KEY_MAX + SL_KIN_NAME_MAX + 2];
    const char *rest = NULL;
    size_t n = 0;
    if (sl_kin_arn_stream(arn, name, &rest) != SL_OK || strncmp(rest, "/consumer/", 10) != 0 ||
        (n = strcspn(rest + 10, ":")) == 0 || n > SL_KIN_NAME_MAX) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "ConsumerARN is not a consumer ARN");
        return NULL;
    }
    struct sl_stream *st = sl_kin_stream_named(call, name, NULL);
    snprintf(key, sizeof(key), SL_KIN_CONSUMER_PREFIX "%.*s", (int)n, rest + 10);
    if (st != NULL && sl_catalog_prop(st, key) == NULL) {
        sl_kin_fail(call, SL_KIN_RESOURCE_NOT_FOUND, "Consumer %.*s is not registered", (int)n,
                    rest + 10);
        return NULL;
    }
    return st;
}

/* Starts the event stream: headers and the initial-response event. */
static int sub_begin(struct sub_op *op)
{
    struct sl_api_call *call = op->call;
    struct sl_http_header h = {"content-type", 12, EVENTSTREAM_TYPE,
                               (uint32_t)strlen(EVENTSTREAM_TYPE)};
    int rc = sl_http_respond_begin(call->session, call->id, 200, &h, 1);
    uint8_t *ev = NULL;
    size_t len = 0;
    rc = rc == SL_OK ? sub_event("initial-response", "{}", 2, &ev, &len) : rc;
    rc = rc == SL_OK ? sl_http_respond_data(call->session, call->id, ev, len) : rc;
    free(ev);
    return rc;
}

void sl_kin_subscribe(struct sl_api_call *call, json_t *body)
{
    struct sl_kin_iter_req pos;
    const char *arn = NULL;
    char why[WHY_MAX];
    int rc = sl_kin_decode_subscribe(body, &arn, &pos, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, rc == SL_EPROTO ? SL_KIN_SERIALIZATION : SL_KIN_INVALID_ARGUMENT, "%s",
                    why);
        return;
    }
    struct sl_stream *st = sub_stream(call, arn);
    if (st == NULL) {
        return;
    }
    if (pos.shard >= st->shard_count) {
        sl_kin_fail(call, SL_KIN_RESOURCE_NOT_FOUND, "no shard %u in stream %s", pos.shard,
                    st->name);
        return;
    }
    struct sub_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return;
    }
    *op = (struct sub_op){.call = call,
                          .created_ms = st->created_ms,
                          .shard = pos.shard,
                          .kind = pos.kind,
                          .value = pos.value,
                          .end_ms = sl_clock_mono_ms() + SUB_LIFETIME_MS};
    snprintf(op->stream, sizeof(op->stream), "%s", st->name);
    if (pos.kind == SL_KIN_ITER_LATEST) {
        struct sl_shard_info si;
        sl_streams_shard_info(st, pos.shard, &si);
        op->kind = SL_KIN_ITER_SEQ;
        op->value = si.next_seq;
    }
    if (sub_begin(op) != SL_OK) {
        sub_end(op);
        return;
    }
    sub_step(op);
}
