/* forward.c - forward targets: a push batch appended to a stream (forward.h).
 *
 * One forward is one op: the records are rendered (SNS, EVENTBRIDGE) or
 * taken as they are (SLUICE), ordered by destination shard (stably, so each
 * shard sees them in the batch's order), cut into chunks of at most
 * batch_bytes_max and produced, every chunk at once. The op counts the
 * produces out plus one for the submitting loop itself, so a produce that
 * answers before sl_produce_submit returns cannot finish the op while
 * chunks are still being submitted.
 *
 * Ownership: the op owns the rendered values and each chunk's batch buffer
 * until the op finishes (a produce borrows its batch until its callback).
 * Memory: one allocation per chunk and, for the rendered formats, one value
 * per record - jansson builds each message anyway.
 */
#include "broker/push/forward.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/produce.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY_MAX 256u

struct fwd_chunk {
    uint8_t *batch;
    uint32_t first, count; /* a run of the op's `order` */
};

struct fwd_op {
    sl_push_forward_cb cb;
    void *ctx;
    bool *failed;
    uint32_t n;
    uint32_t pending; /* produces out, + 1 while submitting */
    uint32_t nfailed;
    int err;
    char why[WHY_MAX];
    char **values;     /* rendered values (NULL for SLUICE) */
    size_t *value_lens;
    uint32_t *shard;   /* destination shard per record */
    uint32_t *order;   /* record indexes by destination shard, stable */
    struct fwd_chunk *chunks;
    uint32_t nchunks;
};

const char *sl_push_forward_stream(const char *url)
{
    size_t n = sizeof(SL_PUSH_FORWARD_PREFIX) - 1;
    return strncmp(url, SL_PUSH_FORWARD_PREFIX, n) == 0 ? url + n : NULL;
}

bool sl_push_forward_format_ok(enum sl_push_format f)
{
    return f == SL_PUSH_FORMAT_SLUICE || f == SL_PUSH_FORMAT_SNS ||
           f == SL_PUSH_FORMAT_EVENTBRIDGE;
}

static void op_free(struct fwd_op *op)
{
    for (uint32_t i = 0; op->values != NULL && i < op->n; i++) {
        free(op->values[i]);
    }
    for (uint32_t i = 0; i < op->nchunks; i++) {
        free(op->chunks[i].batch);
    }
    free(op->values);
    free(op->value_lens);
    free(op->shard);
    free(op->order);
    free(op->chunks);
    free(op);
}

/* Marks records [first, first + count) of `order` failed, the first cause kept. */
static void fail_run(struct fwd_op *op, uint32_t first, uint32_t count, int err, const char *why)
{
    for (uint32_t k = first; k < first + count; k++) {
        uint32_t i = op->order[k];
        if (!op->failed[i]) {
            op->failed[i] = true;
            op->nfailed++;
        }
    }
    if (op->err == SL_OK) {
        op->err = err;
        snprintf(op->why, sizeof(op->why), "%s", why != NULL && why[0] != '\0' ? why
                                                                                : sl_strerror(err));
    }
}

static void op_put(struct fwd_op *op)
{
    SL_ASSERT(op->pending > 0);
    if (--op->pending > 0) {
        return;
    }
    SL_ASSERT(op->nfailed <= op->n);
    SL_ASSERT((op->nfailed == 0) == (op->err == SL_OK));
    op->cb(op->ctx, op->err, op->why, op->nfailed);
    op_free(op);
}

struct fwd_call {
    struct fwd_op *op;
    uint32_t chunk;
};

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct fwd_call *call = ctx;
    struct fwd_op *op = call->op;
    const struct fwd_chunk *c = &op->chunks[call->chunk];
    free(call);
    if (r->err != SL_OK) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "appending to the destination stream: %.200s",
                 r->why != NULL && r->why[0] != '\0' ? r->why : sl_strerror(r->err));
        fail_run(op, c->first, c->count, r->err, why);
    }
    op_put(op);
}

static struct sl_record record_of(const struct fwd_op *op, enum sl_push_format f,
                                  const struct sl_push_record *r, uint32_t i)
{
    struct sl_record rec = {.key = r->key, .key_len = r->key_len,
                            .timestamp_ms = r->produced_ms};
    if (f == SL_PUSH_FORMAT_SLUICE) {
        rec.value = r->value;
        rec.value_len = r->value_len;
        rec.attrs = r->attrs;
        rec.attr_count = r->attr_count;
    } else {
        rec.value = op->values[i];
        rec.value_len = (uint32_t)op->value_lens[i];
    }
    return rec;
}

/* Builds and submits the chunk of order[first, first + count), all on one shard. */
static void submit_chunk(struct sl_engine *e, struct fwd_op *op, enum sl_push_format f,
                         const char *dest, const struct sl_push_record *recs, uint32_t first,
                         uint32_t count, size_t bytes)
{
    struct fwd_chunk *c = &op->chunks[op->nchunks];
    *c = (struct fwd_chunk){.first = first, .count = count};
    struct fwd_call *call = malloc(sizeof(*call));
    c->batch = malloc(SL_BATCH_HEADER_BYTES + bytes);
    if (call == NULL || c->batch == NULL) {
        free(call);
        fail_run(op, first, count, SL_ENOMEM, "out of memory building a batch");
        return;
    }
    *call = (struct fwd_call){.op = op, .chunk = op->nchunks++};
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, c->batch, SL_BATCH_HEADER_BYTES + bytes);
    int rc = SL_OK;
    for (uint32_t k = first; rc == SL_OK && k < first + count; k++) {
        struct sl_record rec = record_of(op, f, &recs[op->order[k]], op->order[k]);
        rc = sl_batch_builder_add(&b, &rec);
    }
    size_t len = 0;
    if (rc == SL_OK) {
        rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len);
    }
    if (rc != SL_OK) {
        free(call);
        fail_run(op, first, count, rc, "a record does not fit in a batch of the destination");
        return;
    }
    op->pending++;
    struct sl_produce_req req = {.stream = dest, .shard = op->shard[op->order[first]],
                                 .batch = c->batch, .len = len, .ack = SL_ACK_DURABLE};
    sl_produce_submit(e, &req, on_produced, call);
}

/* Renders every value (SNS, EVENTBRIDGE). */
static int render_all(struct fwd_op *op, enum sl_push_format f,
                      const struct sl_push_transform *tf, const struct sl_push_source *src,
                      const struct sl_push_record *recs)
{
    op->values = calloc(op->n, sizeof(*op->values));
    op->value_lens = calloc(op->n, sizeof(*op->value_lens));
    if (op->values == NULL || op->value_lens == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < op->n; i++) {
        int rc = sl_push_payload_message(f, src, &recs[i], &op->values[i], &op->value_lens[i]);
        if (rc == SL_OK && tf != NULL) {
            char *out = NULL;
            size_t out_len = 0;
            rc = sl_push_transform_apply(tf, op->values[i], op->value_lens[i],
                                         recs[i].timestamp_ms, &out, &out_len);
            free(op->values[i]);
            op->values[i] = out;
            op->value_lens[i] = out_len;
        }
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

/* order[] = record indexes grouped by shard, each group in the batch's order. */
static int route(struct fwd_op *op, const struct sl_push_record *recs,
                 const struct sl_stream *st, uint32_t unkeyed_shard)
{
    uint32_t shard_count = st->shard_count;
    uint32_t *count = calloc(shard_count + 1u, sizeof(*count));
    op->shard = malloc(op->n * sizeof(*op->shard));
    op->order = malloc(op->n * sizeof(*op->order));
    if (count == NULL || op->shard == NULL || op->order == NULL) {
        free(count);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < op->n; i++) {
        const struct sl_push_record *r = &recs[i];
        op->shard[i] = r->key_len > 0 ? sl_catalog_route(st, sl_partition_hash(r->key, r->key_len))
                                      : unkeyed_shard;
        SL_ASSERT(op->shard[i] < shard_count);
        count[op->shard[i] + 1]++;
    }
    for (uint32_t s = 1; s <= shard_count; s++) {
        count[s] += count[s - 1]; /* count[s] = where shard s starts */
    }
    for (uint32_t i = 0; i < op->n; i++) {
        op->order[count[op->shard[i]]++] = i;
    }
    free(count);
    return SL_OK;
}

void sl_push_forward(struct sl_engine *e, enum sl_push_format f,
                     const struct sl_push_transform *tf, const struct sl_push_source *src,
                     const char *dest, const struct sl_push_record *recs, uint32_t n,
                     bool *failed, uint32_t *rr, sl_push_forward_cb cb, void *ctx)
{
    SL_ASSERT(n > 0 && recs != NULL && failed != NULL && sl_push_forward_format_ok(f));
    memset(failed, 0, n * sizeof(*failed));
    struct fwd_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        for (uint32_t i = 0; i < n; i++) {
            failed[i] = true;
        }
        cb(ctx, SL_ENOMEM, "out of memory", n);
        return;
    }
    *op = (struct fwd_op){.cb = cb, .ctx = ctx, .failed = failed, .n = n, .pending = 1};
    char why[WHY_MAX];
    int err = SL_OK;
    struct sl_stream *st = sl_engine_stream(e, dest, why, sizeof(why), &err);
    int rc = st == NULL ? err : SL_OK;
    if (st == NULL) {
        snprintf(op->why, sizeof(op->why), "the destination: %.200s", why);
    }
    if (rc == SL_OK && f != SL_PUSH_FORMAT_SLUICE) {
        rc = render_all(op, f, tf, src, recs);
    }
    if (rc == SL_OK) {
        rc = route(op, recs, st, sl_catalog_open_shard(st, (*rr)++ % st->lineage.open));
    }
    if (rc == SL_OK) {
        op->chunks = calloc(n, sizeof(*op->chunks)); /* at most one chunk per record */
        rc = op->chunks == NULL ? SL_ENOMEM : SL_OK;
    }
    if (rc != SL_OK) {
        op->err = rc;
        if (op->why[0] == '\0') {
            snprintf(op->why, sizeof(op->why), "%s", sl_strerror(rc));
        }
        for (uint32_t i = 0; i < n; i++) {
            failed[i] = true;
        }
        op->nfailed = n;
        op_put(op);
        return;
    }
    /* Chunks: runs of one shard, cut before batch_bytes_max (bytes are an
     * upper bound: every timestamp delta counted at its widest). */
    size_t budget = e->cfg.batch_bytes_max - SL_BATCH_HEADER_BYTES;
    uint32_t first = 0;
    size_t bytes = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = op->order[k];
        struct sl_record rec = record_of(op, f, &recs[i], i);
        size_t rb = sl_batch_record_bytes(&rec, UINT64_MAX);
        bool new_shard = k > first && op->shard[i] != op->shard[op->order[first]];
        if (k > first && (new_shard || bytes + rb > budget)) {
            submit_chunk(e, op, f, dest, recs, first, k - first, bytes);
            first = k;
            bytes = 0;
        }
        bytes += rb;
    }
    submit_chunk(e, op, f, dest, recs, first, n - first, bytes);
    op_put(op);
}
