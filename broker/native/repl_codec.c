/* repl_codec.c - replication messages <-> ReplMessage (see repl_codec.h). */
#include "broker/native/repl_codec.h"

#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int refuse(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(why, why_len, "replication message: ");
    if (n > 0 && (size_t)n < why_len) {
        vsnprintf(why + n, why_len - (size_t)n, fmt, ap);
    }
    va_end(ap);
    return SL_EPROTO;
}

static bool is_request(enum sl_repl_msg_type t)
{
    return t == SL_REPL_MSG_FETCH || t == SL_REPL_MSG_EPOCH_REQ;
}

/* The errors an answer may carry (repl.h). */
static bool answer_err_ok(int err)
{
    return err == SL_OK || err == SL_EFENCED || err == SL_ENOT_LEADER || err == SL_ENOTFOUND ||
           err == SL_ECONFLICT || err == SL_ETRIMMED;
}

static int decode_batches(const Sluice__V1__ReplMessage *in, struct sl_repl_msg *out,
                          struct sl_repl_batch *batches, char *why, size_t why_len)
{
    if (in->n_batches > SL_REPL_FETCH_BATCHES_MAX) {
        return refuse(why, why_len, "%zu batches in one answer (at most %u)", in->n_batches,
                      SL_REPL_FETCH_BATCHES_MAX);
    }
    int64_t next = out->offset;
    uint64_t bytes = 0;
    for (size_t i = 0; i < in->n_batches; i++) {
        const Sluice__V1__ReplBatch *rb = in->batches[i];
        if (rb == NULL) {
            return refuse(why, why_len, "batch %zu is empty", i);
        }
        if (rb->base_offset != next || rb->count == 0 || rb->epoch < 0) {
            return refuse(why, why_len,
                          "batch %zu: offset %" PRId64 " (expected %" PRId64
                          "), %u records, epoch %d",
                          i, rb->base_offset, next, rb->count, rb->epoch);
        }
        struct sl_batch_header h;
        const uint8_t *data = rb->data.data;
        if (data == NULL || sl_batch_peek(data, rb->data.len, &h) != SL_OK ||
            h.length != rb->data.len || sl_batch_verify(data, &h) != SL_OK) {
            return refuse(why, why_len, "batch %zu (%zu bytes) is not a whole, intact batch", i,
                          rb->data.len);
        }
        if (h.base_seq != (uint64_t)rb->base_offset || h.record_count != rb->count ||
            h.leader_epoch != (uint32_t)rb->epoch) {
            return refuse(why, why_len,
                          "batch %zu says offset %" PRId64 ", %u records and epoch %d; its header "
                          "%" PRIu64 ", %u and %u",
                          i, rb->base_offset, rb->count, rb->epoch, h.base_seq, h.record_count,
                          h.leader_epoch);
        }
        bytes += rb->data.len;
        if (i > 0 && bytes > SL_REPL_FETCH_BYTES_MAX) {
            return refuse(why, why_len, "the answer's batches pass %u bytes",
                          SL_REPL_FETCH_BYTES_MAX);
        }
        if (next > INT64_MAX - (int64_t)rb->count) {
            return refuse(why, why_len, "batch %zu ends past the largest offset", i);
        }
        next += rb->count;
        batches[i] = (struct sl_repl_batch){.base_offset = rb->base_offset, .count = rb->count,
                                            .epoch = rb->epoch, .data = data,
                                            .len = rb->data.len};
    }
    out->batches = in->n_batches > 0 ? batches : NULL;
    out->n_batches = (uint32_t)in->n_batches;
    return SL_OK;
}

int sl_repl_codec_decode(const Sluice__V1__ReplMessage *in, struct sl_repl_msg *out,
                         struct sl_repl_batch *batches, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (in == NULL) {
        return refuse(why, why_len, "missing");
    }
    switch (in->type) {
    case SLUICE__V1__REPL_MESSAGE__TYPE__FETCH:
        out->type = SL_REPL_MSG_FETCH;
        break;
    case SLUICE__V1__REPL_MESSAGE__TYPE__FETCH_RESP:
        out->type = SL_REPL_MSG_FETCH_RESP;
        break;
    case SLUICE__V1__REPL_MESSAGE__TYPE__EPOCH_REQ:
        out->type = SL_REPL_MSG_EPOCH_REQ;
        break;
    case SLUICE__V1__REPL_MESSAGE__TYPE__EPOCH_RESP:
        out->type = SL_REPL_MSG_EPOCH_RESP;
        break;
    default:
        return refuse(why, why_len, "unknown type %d", (int)in->type);
    }
    int err = (int)in->err;
    if (in->from < 0 || in->to < 0) {
        return refuse(why, why_len, "broker ids %d -> %d (ids are >= 0)", in->from, in->to);
    }
    if (in->leader_epoch < SL_REPL_NONE || in->epoch < SL_REPL_NONE) {
        return refuse(why, why_len, "epochs %d and %d (-1 or more)", in->leader_epoch, in->epoch);
    }
    if (in->offset < 0 || in->end_offset < SL_REPL_NONE || in->hw < 0 || in->log_start < 0) {
        return refuse(why, why_len,
                      "offset %" PRId64 ", end offset %" PRId64 ", high watermark %" PRId64
                      ", log start %" PRId64,
                      in->offset, in->end_offset, in->hw, in->log_start);
    }
    if (err == SL_ETRIMMED &&
        (out->type != SL_REPL_MSG_FETCH_RESP || in->log_start <= in->offset)) {
        return refuse(why, why_len,
                      "ETRIMMED with log start %" PRId64 " for offset %" PRId64
                      " (only a fetch answer, for an offset below the start)",
                      in->log_start, in->offset);
    }
    if (is_request(out->type) ? err != SL_OK : !answer_err_ok(err)) {
        return refuse(why, why_len, "error %d (%s) in a %s, which may not carry it", err,
                      sl_strerror(err), is_request(out->type) ? "request" : "answer");
    }
    if (in->n_batches > 0 && (out->type != SL_REPL_MSG_FETCH_RESP || err != SL_OK)) {
        return refuse(why, why_len, "batches outside a successful fetch answer");
    }
    out->from = in->from;
    out->to = in->to;
    out->leader_epoch = in->leader_epoch;
    out->err = err;
    out->req_id = in->req_id;
    out->offset = in->offset;
    out->epoch = in->epoch;
    out->end_offset = in->end_offset;
    out->hw = in->hw;
    out->log_start = in->log_start;
    return decode_batches(in, out, batches, why, why_len);
}

void sl_repl_codec_encode(const struct sl_repl_msg *in, struct sl_repl_wire *w)
{
    SL_ASSERT(in->n_batches <= SL_REPL_FETCH_BATCHES_MAX);
    sluice__v1__repl_message__init(&w->msg);
    static const Sluice__V1__ReplMessage__Type types[] = {
        [SL_REPL_MSG_FETCH] = SLUICE__V1__REPL_MESSAGE__TYPE__FETCH,
        [SL_REPL_MSG_FETCH_RESP] = SLUICE__V1__REPL_MESSAGE__TYPE__FETCH_RESP,
        [SL_REPL_MSG_EPOCH_REQ] = SLUICE__V1__REPL_MESSAGE__TYPE__EPOCH_REQ,
        [SL_REPL_MSG_EPOCH_RESP] = SLUICE__V1__REPL_MESSAGE__TYPE__EPOCH_RESP,
    };
    SL_ASSERT((size_t)in->type < sizeof(types) / sizeof(types[0]));
    w->msg.type = types[in->type];
    w->msg.from = in->from;
    w->msg.to = in->to;
    w->msg.leader_epoch = in->leader_epoch;
    w->msg.err = (Sluice__V1__ErrorCode)in->err;
    w->msg.req_id = in->req_id;
    w->msg.offset = in->offset;
    w->msg.epoch = in->epoch;
    w->msg.end_offset = in->end_offset;
    w->msg.hw = in->hw;
    w->msg.log_start = in->log_start;
    for (uint32_t i = 0; i < in->n_batches; i++) {
        const struct sl_repl_batch *b = &in->batches[i];
        sluice__v1__repl_batch__init(&w->batch[i]);
        w->batch[i].base_offset = b->base_offset;
        w->batch[i].count = b->count;
        w->batch[i].epoch = b->epoch;
        w->batch[i].data.data = (uint8_t *)b->data;
        w->batch[i].data.len = b->len;
        w->ptr[i] = &w->batch[i];
    }
    w->msg.n_batches = in->n_batches;
    w->msg.batches = in->n_batches > 0 ? w->ptr : NULL;
}
