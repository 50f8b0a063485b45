/* kinesis_records.c - the Kinesis data path: PutRecord, PutRecords and
 * GetRecords over the produce and fetch engines.
 *
 * Routing (the Kinesis rule, not the native XXH3 one): a record's hash key
 * is MD5(partition key) read as a 128-bit big-endian integer, or its
 * ExplicitHashKey; shard i of N owns [floor(i * 2^128 / N),
 * floor((i + 1) * 2^128 / N) - 1] (kinesis_codec.c). The partition key is
 * stored as the record's key; the batch is submitted with caller_routed, so
 * the engine does not hold it to its XXH3 ranges.
 * Sequence numbers: the decimal string of the engine's per-shard sequence
 * (increasing per shard, starting at 0) - shorter than AWS's 56-digit ones
 * but ordered the same way within a shard, which is all AWS promises.
 *
 * PutRecords: one batch per shard touched, all in one buffer, each appended
 * through sl_produce_submit (ack durable); the answer goes out when every
 * shard answered, each record's result taken from its shard's (records of
 * one shard succeed or fail together). No allocation per record: the
 * request's entries and decoded data are two arrays (kinesis_codec.c), the
 * batches one buffer. (jansson's parse tree does allocate per JSON node:
 * bounded by the body limit; a streaming decoder would remove it.)
 *
 * GetRecords: one fetch (no long-poll: Kinesis answers at once), the
 * batches decoded with the front-end's zstd context and scratch, the answer
 * written straight into one growing buffer.
 *
 * Threading: the main loop; the engine callbacks run there (maybe before
 * the submit returns). Ownership: an op owns its call, a reference to the
 * parsed body (its strings are the partition keys) and its buffers until
 * it answers.
 */
#include "broker/api/batches.h"
#include "broker/api/kinesis_crypto.h"
#include "broker/api/kinesis_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY_MAX              256u
#define PART_WHY_MAX         160u
#define RECORD_JSON_OVERHEAD 160u                      /* field names, sequence, time, quotes */

/* ---- PutRecord(s) ------------------------------------------------------- */

struct put_op;

/* The batch of one shard. */
struct put_part {
    struct put_op *op;
    uint32_t shard;
    uint32_t count;
    size_t off;
    size_t len;
    struct sl_batch_builder b;
    int err;
    uint64_t base_seq;
    char why[PART_WHY_MAX];
};

struct put_op {
    struct sl_api_call *call; /* owned until answered */
    json_t *body; /* a reference when decoded from a tree (the entries borrow its strings) */
    struct sl_kin_put put;
    bool single;
    uint32_t pending; /* parts not answered, + 1 while submitting */
    uint32_t n_parts;
    struct put_part *parts; /* owned */
    uint32_t *part_of;      /* owned: entry -> part */
    uint8_t *batches;       /* owned: every part's batch */
    char stream[SL_STREAM_NAME_MAX + 1];
};

static void put_op_free(struct put_op *op)
{
    sl_kin_put_free(&op->put);
    json_decref(op->body);
    free(op->parts);
    free(op->part_of);
    free(op->batches);
    free(op);
}

/* One record's result fields (without braces). */
static void put_result(struct sl_kin_buf *b, const struct put_op *op, uint32_t i)
{
    const struct sl_kin_entry *e = &op->put.entries[i];
    const struct put_part *p = &op->parts[op->part_of[i]];
    char id[SL_KIN_SHARD_ID_LEN + 1];
    sl_kin_shard_id(e->shard, id);
    if (p->err == SL_OK) {
        sl_kin_buf_fmt(b, "\"SequenceNumber\":\"%" PRIu64 "\",\"ShardId\":\"%s\"",
                       p->base_seq + e->index, id);
    } else {
        sl_kin_buf_fmt(
            b, "\"ErrorCode\":\"%s\",\"ErrorMessage\":", sl_kin_err_name(sl_kin_err_of(p->err)));
        sl_kin_buf_json_str(b, p->why, strlen(p->why));
    }
}

static void put_answer(struct put_op *op)
{
    struct sl_kin_buf b = {0};
    uint32_t failed = 0;
    for (uint32_t i = 0; i < op->n_parts; i++) {
        failed += op->parts[i].err != SL_OK ? op->parts[i].count : 0;
    }
    if (op->single && failed > 0) {
        const struct put_part *p = &op->parts[0];
        sl_kin_fail(op->call, sl_kin_err_of(p->err), "%s", p->why);
        return;
    }
    sl_kin_buf_reserve(&b, (size_t)op->put.n * 96 + 64);
    if (op->single) {
        sl_kin_buf_str(&b, "{");
        put_result(&b, op, 0);
    } else {
        sl_kin_buf_fmt(&b, "{\"FailedRecordCount\":%u,\"Records\":[", failed);
        for (uint32_t i = 0; i < op->put.n; i++) {
            sl_kin_buf_str(&b, i > 0 ? ",{" : "{");
            put_result(&b, op, i);
            sl_kin_buf_str(&b, "}");
        }
        sl_kin_buf_str(&b, "]");
    }
    sl_kin_buf_str(&b, ",\"EncryptionType\":\"NONE\"}");
    sl_kin_reply_buf(op->call, &b);
    sl_kin_buf_free(&b);
}

static void put_finish_one(struct put_op *op)
{
    SL_ASSERT(op->pending > 0);
    if (--op->pending == 0) {
        put_answer(op);
        put_op_free(op);
    }
}

static void on_put_done(void *ctx, const struct sl_produce_result *r)
{
    struct put_part *p = ctx;
    p->err = r->err;
    p->base_seq = r->base_seq;
    if (r->err == SL_OK && r->count != p->count && !r->duplicate) {
        p->err = SL_ECORRUPT; /* the engine stored another number of records */
    }
    snprintf(p->why, sizeof(p->why), "%s",
             r->err == SL_EAGAIN ? "Rate exceeded for shard (its buffers are full); retry"
             : r->why != NULL && r->why[0] != '\0' ? r->why
                                                   : sl_strerror(p->err));
    put_finish_one(p->op);
}

/* Routes every entry and counts each shard's records and bytes. */
static int put_route(struct put_op *op, const struct sl_stream *st, uint64_t now_ms)
{
    uint32_t shard_count = st->shard_count;
    /* A resharded stream routes by its lineage, over the hash's high 64 bits
     * (the lineage's space); one never resharded keeps Kinesis's exact
     * 128-bit uniform ranges. */
    bool resharded = st->lineage.n != st->lineage.open;
    uint32_t *part_of_shard = malloc(shard_count * sizeof(uint32_t));
    op->part_of = malloc(op->put.n * sizeof(uint32_t));
    op->parts = calloc(op->put.n < shard_count ? op->put.n : shard_count, sizeof(*op->parts));
    if (part_of_shard == NULL || op->part_of == NULL || op->parts == NULL) {
        free(part_of_shard);
        return SL_ENOMEM;
    }
    memset(part_of_shard, 0xff, shard_count * sizeof(uint32_t));
    for (uint32_t i = 0; i < op->put.n; i++) {
        struct sl_kin_entry *e = &op->put.entries[i];
        if (!e->explicit_hash) {
            e->hash = sl_kin_md5(e->key, e->key_len);
        }
        e->shard = resharded ? sl_catalog_route(st, (uint64_t)(e->hash >> 64))
                             : sl_kin_shard_of(e->hash, shard_count);
        if (part_of_shard[e->shard] == UINT32_MAX) {
            part_of_shard[e->shard] = op->n_parts;
            op->parts[op->n_parts++] =
                (struct put_part){.op = op, .shard = e->shard, .len = SL_BATCH_HEADER_BYTES + 16};
        }
        struct put_part *p = &op->parts[part_of_shard[e->shard]];
        struct sl_record rec = {.key = e->key,
                                .key_len = e->key_len,
                                .value = e->data,
                                .value_len = e->data_len,
                                .timestamp_ms = now_ms};
        e->index = p->count++;
        p->len += sl_batch_record_bytes(&rec, 0);
        op->part_of[i] = part_of_shard[e->shard];
    }
    free(part_of_shard);
    uint32_t routed = 0;
    for (uint32_t i = 0; i < op->n_parts; i++) {
        routed += op->parts[i].count;
    }
    SL_ASSERT(op->n_parts >= 1 && op->n_parts <= shard_count && routed == op->put.n);
    return SL_OK;
}

/* Builds every part's batch into one buffer. */
static int put_build(struct put_op *op, uint64_t now_ms)
{
    size_t total = 0;
    for (uint32_t i = 0; i < op->n_parts; i++) {
        op->parts[i].off = total;
        total += op->parts[i].len;
    }
    op->batches = malloc(total);
    if (op->batches == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < op->n_parts; i++) {
        struct put_part *p = &op->parts[i];
        sl_batch_builder_init(&p->b, op->batches + p->off, p->len);
    }
    for (uint32_t i = 0; i < op->put.n; i++) {
        const struct sl_kin_entry *e = &op->put.entries[i];
        struct sl_record rec = {.key = e->key,
                                .key_len = e->key_len,
                                .value = e->data,
                                .value_len = e->data_len,
                                .timestamp_ms = now_ms};
        int rc = sl_batch_builder_add(&op->parts[op->part_of[i]].b, &rec);
        SL_ASSERT(rc == SL_OK); /* sized exactly by put_route, limits checked by the codec */
    }
    for (uint32_t i = 0; i < op->n_parts; i++) {
        struct put_part *p = &op->parts[i];
        int rc =
            sl_batch_builder_finish(&p->b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &p->len);
        SL_ASSERT(rc == SL_OK && p->b.count == p->count);
    }
    return SL_OK;
}

static void put_submit(struct put_op *op)
{
    struct sl_engine *e = op->call->api->engine;
    SL_ASSERT(op->pending == 0 && op->n_parts > 0);
    op->pending = op->n_parts + 1; /* + 1: callbacks may run inside the submit */
    for (uint32_t i = 0; i < op->n_parts; i++) {
        struct put_part *p = &op->parts[i];
        struct sl_produce_req req = {.stream = op->stream,
                                     .shard = p->shard,
                                     .batch = op->batches + p->off,
                                     .len = p->len,
                                     .ack = SL_ACK_DURABLE,
                                     .caller_routed = true,
                                     .forward = true};
        sl_produce_submit(e, &req, on_put_done, p);
    }
    put_finish_one(op);
}

/* After the body is decoded (rc): routes, builds and submits, or fails. */
static void put_start(struct put_op *op, int rc, bool ser, const char *why)
{
    struct sl_api_call *call = op->call;
    if (rc != SL_OK) {
        sl_kin_fail(call,
                    ser               ? SL_KIN_SERIALIZATION
                    : rc == SL_ENOMEM ? SL_KIN_INTERNAL_FAILURE
                                      : SL_KIN_INVALID_ARGUMENT,
                    "%s", why);
        put_op_free(op);
        return;
    }
    struct sl_stream *st = sl_kin_stream_named(call, op->put.stream, op->put.stream_arn);
    if (st == NULL) {
        put_op_free(op);
        return;
    }
    snprintf(op->stream, sizeof(op->stream), "%s", st->name);
    uint64_t now_ms = sl_clock_wall_ms();
    rc = put_route(op, st, now_ms);
    rc = rc == SL_OK ? put_build(op, now_ms) : rc;
    if (rc != SL_OK) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        put_op_free(op);
        return;
    }
    put_submit(op);
}

static struct put_op *put_op_new(struct sl_api_call *call, bool single)
{
    struct put_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return NULL;
    }
    op->call = call;
    op->single = single;
    return op;
}

/* A body already parsed (CBOR requests arrive as a tree). */
static void put(struct sl_api_call *call, json_t *body, bool single)
{
    struct put_op *op = put_op_new(call, single);
    if (op == NULL) {
        return;
    }
    op->body = json_incref(body);
    bool ser = false;
    char why[WHY_MAX];
    int rc = sl_kin_decode_put(body, single, &op->put, &ser, why, sizeof(why));
    put_start(op, rc, ser, why);
}

void sl_kin_put_raw(struct sl_api_call *call, bool single)
{
    struct put_op *op = put_op_new(call, single);
    if (op == NULL) {
        return;
    }
    bool ser = false;
    char why[WHY_MAX];
    int rc = sl_kin_scan_put(call->req->body, call->req->body_len, single, &op->put, &ser, why,
                             sizeof(why));
    put_start(op, rc, ser, why);
}

void sl_kin_put_record(struct sl_api_call *call, json_t *body)
{
    put(call, body, true);
}

void sl_kin_put_records(struct sl_api_call *call, json_t *body)
{
    put(call, body, false);
}

/* ---- GetRecords -------------------------------------------------------- */

struct get_op {
    struct sl_api_call *call; /* owned until answered */
    struct sl_kin_token tok;
    struct sl_stream *st; /* borrowed: valid during the call that found it only */
    uint32_t limit;
};

static void walk_record(struct sl_kin_walk *w, const struct sl_record_view *r, uint64_t append_ms)
{
    sl_kin_buf_reserve(&w->out, sl_b64_len(r->value_len) + (size_t)r->key_len * 6 +
                                    RECORD_JSON_OVERHEAD);
    sl_kin_buf_fmt(&w->out,
                   "%s{\"SequenceNumber\":\"%" PRIu64 "\",\"ApproximateArrivalTimestamp"
                   "\":%" PRIu64 ".%03u,\"Data\":\"",
                   w->records > 0 ? "," : "", r->seq, append_ms / 1000,
                   (unsigned)(append_ms % 1000));
    sl_kin_buf_b64(&w->out, r->value, r->value_len);
    sl_kin_buf_str(&w->out, "\",\"PartitionKey\":");
    sl_kin_buf_json_str(&w->out, r->key, r->key_len);
    sl_kin_buf_str(&w->out, "}");
    w->records++;
    w->bytes += r->value_len + r->key_len;
    w->next = r->seq + 1;
    w->last_append_ms = append_ms;
}

/* Walks one batch into w. */
static int walk_batch(struct sl_kin_walk *w, const uint8_t *p, size_t avail,
                      struct sl_batch_header *h)
{
    int rc = sl_api_batch_peek(p, avail, h);
    if (rc != SL_OK) {
        return rc;
    }
    if (w->kind == SL_KIN_ITER_TIME && h->append_time_ms < w->value) {
        return SL_OK; /* appended before the time asked */
    }
    struct sl_batch_iter it;
    rc = sl_api_batch_iter(p, h, &it);
    struct sl_record_view r;
    while (rc == SL_OK && !w->full && (rc = sl_batch_iter_next(&it, &r)) == SL_OK) {
        if (w->kind == SL_KIN_ITER_SEQ && r.seq < w->value) {
            continue;
        }
        walk_record(w, &r, h->append_time_ms);
        w->full = w->records >= w->limit || w->bytes >= w->bytes_max;
    }
    return rc == SL_ENOTFOUND ? SL_OK : rc;
}

int sl_kin_walk_fetch(struct sl_kin_walk *w, const struct sl_fetch_result *r)
{
    int rc = SL_OK;
    w->next = r->next_seq;
    sl_kin_buf_reserve(&w->out, r->len + r->len / 3 + 256);
    for (uint32_t off = 0; rc == SL_OK && off < r->len && !w->full;) {
        struct sl_batch_header h;
        rc = walk_batch(w, r->batches + off, r->len - off, &h);
        off += rc == SL_OK ? h.length : 0;
    }
    if (w->records == 0 && w->kind == SL_KIN_ITER_SEQ && w->next < w->value) {
        w->next = w->value;
    }
    SL_ASSERT(w->records <= w->limit);
    SL_ASSERT(rc != SL_OK || w->kind != SL_KIN_ITER_SEQ || w->next >= w->value);
    return rc;
}

uint64_t sl_kin_walk_behind(const struct sl_kin_walk *w, const struct sl_fetch_result *r)
{
    /* the tail's append time minus that of the last record returned */
    return w->next >= r->tail_seq || w->records == 0 || r->tail_time_ms < w->last_append_ms
               ? 0
               : r->tail_time_ms - w->last_append_ms;
}

static void get_answer(struct get_op *op, const struct sl_fetch_result *r)
{
    struct sl_kin_walk w = {.kind = op->tok.kind,
                            .value = op->tok.value,
                            .limit = op->limit,
                            .bytes_max = SL_KIN_GET_BYTES_MAX};
    sl_kin_buf_str(&w.out, "{\"Records\":[");
    int rc = sl_kin_walk_fetch(&w, r);
    if (rc != SL_OK) {
        sl_kin_fail(op->call, SL_KIN_INTERNAL_FAILURE, "cannot decode the shard's records: %s",
                    sl_strerror(rc));
        sl_kin_buf_free(&w.out);
        return;
    }
    if (op->st->lineage.shard[op->tok.shard].closed && w.next >= r->tail_seq) {
        /* the end of a closed shard: no iterator, its children instead (what the KCL
         * follows; nothing more will ever be appended to this shard) */
        sl_kin_buf_str(&w.out, "],\"MillisBehindLatest\":0,");
        sl_kin_child_shards(&w.out, op->st, op->tok.shard);
        sl_kin_buf_str(&w.out, "}");
        sl_kin_reply_buf(op->call, &w.out);
        sl_kin_buf_free(&w.out);
        return;
    }
    char token[SL_KIN_TOKEN_BYTES_MAX + 1];
    sl_kin_iter_token(op->st, op->tok.shard, SL_KIN_ITER_SEQ, w.next, token);
    sl_kin_buf_fmt(&w.out, "],\"NextShardIterator\":\"%s\",\"MillisBehindLatest\":%" PRIu64 "}",
                   token, sl_kin_walk_behind(&w, r));
    sl_kin_reply_buf(op->call, &w.out);
    sl_kin_buf_free(&w.out);
}

static void on_fetched(void *ctx, const struct sl_fetch_result *r)
{
    struct get_op *op = ctx;
    struct sl_engine *e = op->call->api->engine;
    op->st = sl_catalog_find(e->catalog, op->tok.stream);
    if (op->st == NULL || r->err == SL_ENOTFOUND) {
        sl_kin_fail(op->call, SL_KIN_RESOURCE_NOT_FOUND,
                    "Stream %s under account " SL_KIN_ACCOUNT " not found.", op->tok.stream);
    } else if (r->err == SL_ETRIMMED) { /* past retention: continue at the oldest */
        char token[SL_KIN_TOKEN_BYTES_MAX + 1];
        sl_kin_iter_token(op->st, op->tok.shard, SL_KIN_ITER_SEQ, r->next_seq, token);
        struct sl_kin_buf b = {0};
        sl_kin_buf_fmt(&b, "{\"Records\":[],\"NextShardIterator\":\"%s\",", token);
        sl_kin_buf_str(&b, "\"MillisBehindLatest\":0}");
        sl_kin_reply_buf(op->call, &b);
        sl_kin_buf_free(&b);
    } else if (r->err != SL_OK) {
        sl_kin_fail(op->call, sl_kin_err_of(r->err), "%s", r->why);
    } else {
        get_answer(op, r);
    }
    free(op);
}

void sl_kin_get_records(struct sl_api_call *call, json_t *body)
{
    const char *token = NULL;
    uint32_t limit = 0;
    char why[WHY_MAX];
    int rc = sl_kin_decode_get(body, &token, &limit, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, rc == SL_EPROTO ? SL_KIN_SERIALIZATION : SL_KIN_INVALID_ARGUMENT, "%s",
                    why);
        return;
    }
    struct get_op *op = calloc(1, sizeof(*op));
    enum sl_kin_err err;
    if (op == NULL) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return;
    }
    if (!sl_kin_iter_check(call->api->engine, token, &op->tok, &op->st, &err, why, sizeof(why))) {
        sl_kin_fail(call, err, "%s", why);
        free(op);
        return;
    }
    if (!sl_kin_allowed(call, op->tok.stream)) { /* a token is not a right: whose is it now? */
        free(op);
        return;
    }
    op->call = call;
    op->limit = limit;
    struct sl_fetch_req req = {
        .stream = op->tok.stream, .shard = op->tok.shard, .max_bytes = SL_KIN_GET_BYTES_MAX};
    req.pos.kind = op->tok.kind == SL_KIN_ITER_TRIM   ? SL_POS_TRIM_HORIZON
                   : op->tok.kind == SL_KIN_ITER_TIME ? SL_POS_AT_TIME
                                                      : SL_POS_AT_SEQ;
    req.pos.seq = op->tok.value;
    req.pos.time_ms = op->tok.value;
    sl_fetch_start(call->api->engine, &req, on_fetched, op);
}
