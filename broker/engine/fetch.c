/* fetch.c - shard reads with long-poll (see fetch.h).
 *
 * A fetch at the tail parks on its shard (a per-stream list per shard,
 * allocated at the first park); the shard's listener re-issues every parked
 * fetch of the shard, in order. Per shard, the owner's messages are in
 * order, so "read at the tail -> park" is never overtaken by the "new
 * records" notification that follows it.
 */
#include "broker/engine/fetch.h"

#include "broker/engine/catalog.h"
#include "broker/engine/coord.h"
#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_MIN_BUF (64u << 10)
#define FETCH_DEFAULT_BYTES (1u << 20)

struct fetch_op;

struct sl_fetch_state {
    uint32_t shard_count;
    struct fetch_op *waiters[]; /* per shard: parked fetches */
};

struct fetch_op {
    struct sl_wshard_read wr;
    struct sl_engine *e;
    struct sl_bshard *shard;
    sl_fetch_cb cb;
    void *ctx;
    uint64_t deadline_ms; /* 0: no waiting */
    uint64_t start_ns;
    uint32_t max_bytes;
    uint32_t buf_bytes; /* counted in e->fetch_bytes */
    uint8_t *buf;
    struct fetch_op *prev; /* in its shard's waiters while parked */
    struct fetch_op *next;
    struct fetch_op *all_prev; /* in e->fetch_parked while parked: the tick walks */
    struct fetch_op *all_next; /* the parked fetches, not every stream's shards */
    bool parked;
    bool traced;
    uint64_t trace[SL_FTRACE_N]; /* when traced (sl_fetch_req.trace_ns) */
};

int sl_fetch_stream_grow(struct sl_stream *st, uint32_t count)
{
    struct sl_fetch_state *fs = st->fetch;
    if (fs == NULL || fs->shard_count >= count) {
        return SL_OK;
    }
    /* (parked ops link to each other and find their head by shard id) */
    fs = realloc(fs, sizeof(*fs) + count * sizeof(fs->waiters[0]));
    if (fs == NULL) {
        return SL_ENOMEM;
    }
    memset(&fs->waiters[fs->shard_count], 0, (count - fs->shard_count) * sizeof(fs->waiters[0]));
    fs->shard_count = count;
    st->fetch = fs;
    return SL_OK;
}

static struct fetch_op **waiters_of(struct sl_bshard *b)
{
    struct sl_fetch_state *fs = b->stream->fetch;
    SL_ASSERT(fs != NULL && b->id < fs->shard_count);
    return &fs->waiters[b->id];
}

static void unpark(struct fetch_op *op)
{
    if (!op->parked) {
        return;
    }
    if (op->prev != NULL) {
        op->prev->next = op->next;
    } else {
        *waiters_of(op->shard) = op->next;
    }
    if (op->next != NULL) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
    if (op->all_prev != NULL) {
        op->all_prev->all_next = op->all_next;
    } else {
        op->e->fetch_parked = op->all_next;
    }
    if (op->all_next != NULL) {
        op->all_next->all_prev = op->all_prev;
    }
    op->all_prev = op->all_next = NULL;
    op->parked = false;
}

/* Where reads of b end (#14): a replicated shard's high watermark, else the log's tail. */
static uint64_t read_end(const struct sl_engine *e, const struct sl_bshard *b)
{
    uint64_t end = UINT64_MAX;
    if (b->repl != NULL && sl_engine_read_end(e, b, &end) != SL_OK) {
        end = 0;
    }
    return end;
}

/* Readers see [first, tail): a replicated shard's tail is its high watermark. */
static uint64_t tail_of(const struct sl_engine *e, const struct sl_bshard *b,
                        const struct sl_shard_stats *ss)
{
    uint64_t end = read_end(e, b);
    return end < ss->visible_seq ? end : ss->visible_seq;
}

/* Cuts a read of a replicated shard before the first batch that ends past its high
 * watermark (the batches are whole and verified). */
static void cut_at_read_end(struct fetch_op *op)
{
    struct sl_shard_read *rd = &op->wr.rd;
    if (op->shard->repl == NULL || rd->len == 0) {
        return;
    }
    uint64_t end = read_end(op->e, op->shard);
    uint32_t off = 0, n = 0;
    while (off < rd->len) {
        struct sl_batch_header h;
        if (sl_batch_peek(op->buf + off, rd->len - off, &h) != SL_OK) {
            break;
        }
        if (h.base_seq + h.record_count > end) {
            rd->next_seq = h.base_seq; /* (a later read starts at this batch) */
            break;
        }
        off += h.length;
        n++;
        rd->next_seq = h.base_seq + h.record_count;
    }
    if (off < rd->len) {
        rd->len = off;
        rd->batch_count = n;
    }
}

static void finish(struct fetch_op *op, int err)
{
    struct sl_bshard *b = op->shard;
    struct sl_shard_stats ss;
    sl_wshard_stats(&b->ws, &ss);
    char why[160] = "";
    if (err == SL_ETRIMMED) {
        snprintf(why, sizeof(why), "position is below the oldest retained record (%" PRIu64 ")",
                 ss.first_seq);
    } else if (err != SL_OK) {
        snprintf(why, sizeof(why), "fetch from %s/%u failed: %s", b->stream->name, b->id,
                 sl_strerror(err));
    }
    struct sl_fetch_result r = {.err = err, .why = why, .read = true, .shard = b->id,
                                .first_seq = ss.first_seq, .tail_seq = tail_of(op->e, b, &ss),
                                .tail_time_ms = ss.visible_time_ms,
                                .next_seq = err == SL_OK ? op->wr.rd.next_seq : ss.first_seq,
                                .batches = op->buf, .len = err == SL_OK ? op->wr.rd.len : 0,
                                .trace_ns = op->traced ? op->trace : NULL};
    const struct sl_lineage_shard *ls = &b->stream->lineage.shard[b->id];
    if (ls->closed) {
        r.closed = true;
        for (int k = 0; k < 2 && ls->child[k] != SL_LINEAGE_NONE; k++) {
            r.children[r.n_children++] = ls->child[k];
        }
    }
    if (err == SL_OK) {
        b->io.bytes_out += r.len;
        for (uint32_t off = 0; off < r.len;) { /* whole verified batches */
            struct sl_batch_header h;
            if (sl_batch_peek(op->buf + off, r.len - off, &h) != SL_OK) {
                break;
            }
            b->io.records_out += h.record_count;
            off += h.length;
        }
    }
    sl_op_stats_record(&op->e->stats.op[SL_OP_FETCH], err, sl_clock_mono_ns() - op->start_ns);
    b->stream->inflight--;
    op->e->fetch_bytes -= op->buf_bytes;
    op->cb(op->ctx, &r);
    free(op->buf);
    free(op);
}

static void issue(struct fetch_op *op);

/* At the tail: park until records arrive or the wait expires. */
static bool park(struct fetch_op *op, uint64_t next_seq)
{
    struct sl_stream *st = op->shard->stream;
    if (st->fetch == NULL) {
        st->fetch = calloc(1, sizeof(*st->fetch) + st->shard_count * sizeof(st->fetch->waiters[0]));
        if (st->fetch == NULL) {
            return false;
        }
        st->fetch->shard_count = st->shard_count;
    }
    op->wr.rd.from = SL_READ_SEQ;
    op->wr.rd.seq = next_seq;
    op->parked = true;
    if (op->traced) {
        op->trace[SL_FTRACE_PARKED] = sl_clock_mono_ns();
    }
    struct fetch_op **head = waiters_of(op->shard);
    op->next = *head;
    op->prev = NULL;
    if (op->next != NULL) {
        op->next->prev = op;
    }
    *head = op;
    op->all_prev = NULL;
    op->all_next = op->e->fetch_parked;
    if (op->all_next != NULL) {
        op->all_next->all_prev = op;
    }
    op->e->fetch_parked = op;
    /* another worker's shard: it reads ahead for us when records come (no read round trip) */
    sl_wshard_watch(&op->shard->ws, next_seq);
    return true;
}

static void on_read(struct sl_shard_read *rd, int err)
{
    struct fetch_op *op = sl_container_of(rd, struct fetch_op, wr.rd);
    struct sl_engine *e = op->e;
    if (op->traced) {
        op->trace[SL_FTRACE_READ_DONE] = sl_clock_mono_ns();
    }
    if (err == SL_ETOOBIG && rd->need_bytes <= e->cfg.fetch_bytes_max) {
        uint8_t *n = realloc(op->buf, rd->need_bytes);
        if (n != NULL) {
            e->fetch_bytes += rd->need_bytes - op->buf_bytes;
            op->buf_bytes = rd->need_bytes;
            op->buf = n;
            op->wr.rd.buf_cap = rd->need_bytes;
            issue(op);
            return;
        }
        err = SL_ENOMEM;
    }
    if (err == SL_OK) {
        cut_at_read_end(op);
    }
    /* (a closed shard never grows: a fetch at its end answers at once) */
    if (err == SL_OK && rd->len == 0 && op->deadline_ms > 0 && !e->stopping &&
        !op->shard->stream->deleted &&
        !op->shard->stream->lineage.shard[op->shard->id].closed && park(op, rd->next_seq)) {
        return;
    }
    finish(op, err);
}

static void issue(struct fetch_op *op)
{
    op->wr.rd.buf = op->buf;
    op->wr.rd.cb = on_read;
    /* fetch.h allows the callback before sl_fetch_start returns; a woken fetch's read
     * then answers inside the acknowledgement that woke it, before the producers' acks */
    op->wr.rd.inline_ok = true;
    sl_wshard_read(&op->shard->ws, &op->wr);
}

void sl_fetch_shard_progress(struct sl_bshard *b)
{
    if (b->stream->fetch == NULL) {
        return;
    }
    /* Detached from both lists before any is issued: a read may complete
     * inline and park again on this same shard. */
    struct fetch_op **head = waiters_of(b);
    struct fetch_op *woken = NULL;
    while (*head != NULL) {
        struct fetch_op *op = *head;
        unpark(op);
        op->next = woken;
        woken = op;
    }
    const struct sl_wshard_ahead *ah = sl_wshard_ahead(&b->ws);
    while (woken != NULL) {
        struct fetch_op *op = woken;
        woken = op->next;
        op->next = NULL;
        if (op->traced) {
            op->trace[SL_FTRACE_WOKEN] = sl_clock_mono_ns();
        }
        struct sl_shard_read *rd = &op->wr.rd;
        if (ah != NULL && rd->from == SL_READ_SEQ && rd->seq == ah->seq &&
            ah->len <= rd->buf_cap && (ah->len <= rd->max_bytes || ah->batch_count == 1)) {
            /* the owner read these batches for the fetches parked here: a read's result */
            memcpy(op->buf, ah->data, ah->len);
            rd->len = ah->len;
            rd->batch_count = ah->batch_count;
            rd->next_seq = ah->next_seq;
            on_read(rd, SL_OK);
            continue;
        }
        issue(op);
    }
}

void sl_fetch_stream_wake(struct sl_stream *st, int err)
{
    if (st->fetch == NULL) {
        return;
    }
    for (uint32_t i = 0; i < st->shard_count; i++) {
        while (st->fetch->waiters[i] != NULL) {
            struct fetch_op *op = st->fetch->waiters[i];
            unpark(op);
            op->wr.rd.len = 0;
            finish(op, err);
        }
    }
}

void sl_fetch_tick(struct sl_engine *e, uint64_t now_ms, bool all)
{
    /* Unparked first, answered after: an answer's callback may park or
     * cancel other fetches, never one of these. */
    struct fetch_op *due = NULL;
    for (struct fetch_op *op = e->fetch_parked, *next; op != NULL; op = next) {
        next = op->all_next;
        if (all || now_ms >= op->deadline_ms) {
            unpark(op);
            op->next = due;
            due = op;
        }
    }
    while (due != NULL) {
        struct fetch_op *op = due;
        due = op->next;
        op->next = NULL;
        op->wr.rd.len = 0;
        finish(op, SL_OK);
    }
}

void sl_fetch_stream_free(struct sl_stream *st)
{
    /* Parked fetches were answered at stop or delete (each holds the
     * stream, so a deleted stream is freed only without them). */
    free(st->fetch);
    st->fetch = NULL;
}

/* Where the read starts; false for an unknown position kind. */
static bool start_at(struct fetch_op *op, const struct sl_position *p,
                     const struct sl_shard_stats *ss)
{
    op->wr.rd.from = SL_READ_SEQ;
    switch (p->kind) {
    case SL_POS_TRIM_HORIZON:
        op->wr.rd.seq = ss->first_seq;
        return true;
    case SL_POS_LATEST:
        op->wr.rd.seq = ss->visible_seq;
        return true;
    case SL_POS_AT_SEQ:
        op->wr.rd.seq = p->seq;
        return true;
    case SL_POS_AFTER_SEQ:
        op->wr.rd.seq = p->seq == UINT64_MAX ? p->seq : p->seq + 1;
        return true;
    case SL_POS_AT_TIME:
        op->wr.rd.from = SL_READ_TIME;
        op->wr.rd.time_ms = p->time_ms;
        return true;
    default:
        return false;
    }
}

void sl_fetch_start(struct sl_engine *e, const struct sl_fetch_req *req, sl_fetch_cb cb,
                    void *ctx)
{
    char why[256];
    int rc;
    struct sl_fetch_result r = {.why = why, .shard = req->shard};
    struct sl_bshard *b = sl_engine_shard(e, req->stream, req->shard, why, sizeof(why), &rc);
    if (b == NULL) {
        r.err = rc;
        cb(ctx, &r);
        return;
    }
    uint64_t end_unused = 0;
    if (b->stream->cluster && e->repl == NULL) {
        snprintf(why, sizeof(why),
                 "%s is a cluster stream and this broker was started without --cluster: "
                 "start it with the cluster's --cluster setting to serve it", b->stream->name);
        r.err = SL_ENOT_LEADER;
        cb(ctx, &r);
        return;
    }
    if (b->stream->cluster && sl_engine_read_end(e, b, &end_unused) != SL_OK) {
        snprintf(why, sizeof(why),
                 "this broker holds no live replica of shard %u of %s: ask another broker "
                 "(Metadata names the leader)", b->id, b->stream->name);
        r.err = SL_ENOT_LEADER;
        cb(ctx, &r);
        return;
    }
    /* A member reads only what it holds - checked where its group lives: on a cluster
     * stream that is the group's home (consumer.h), maybe not this shard's leader, so
     * there the check is its commit's (a fenced member's commit is refused at home). */
    if (req->member_id != NULL && req->member_id[0] != '\0' && !b->stream->cluster) {
        rc = sl_coord_owns(e, b->stream->name, req->group != NULL ? req->group : "",
                           req->member_id, req->shard, why, sizeof(why));
        if (rc != SL_OK) {
            r.err = rc;
            cb(ctx, &r);
            return;
        }
    }
    uint32_t limit = e->cfg.fetch_bytes_max;
    uint32_t max_bytes = req->max_bytes == 0 ? FETCH_DEFAULT_BYTES : req->max_bytes;
    max_bytes = max_bytes > limit ? limit : max_bytes;
    uint32_t cap = max_bytes < FETCH_MIN_BUF ? FETCH_MIN_BUF : max_bytes;
    cap = cap > limit ? limit : cap;
    uint64_t left = SL_FETCH_MEMORY_MAX - e->fetch_bytes;
    if (left < FETCH_MIN_BUF) {
        r.err = SL_EAGAIN;
        r.why = "the broker's fetch memory is in use; retry";
        cb(ctx, &r);
        return;
    }
    if (cap > left) { /* smaller answers under memory pressure */
        cap = (uint32_t)left;
        max_bytes = max_bytes > cap ? cap : max_bytes;
    }
    struct fetch_op *op = calloc(1, sizeof(*op));
    uint8_t *buf = malloc(cap);
    if (op == NULL || buf == NULL) {
        free(op);
        free(buf);
        r.err = SL_ENOMEM;
        r.why = sl_strerror(SL_ENOMEM);
        cb(ctx, &r);
        return;
    }
    struct sl_shard_stats ss;
    sl_wshard_stats(&b->ws, &ss);
    ss.visible_seq = tail_of(e, b, &ss);
    *op = (struct fetch_op){.e = e, .shard = b, .cb = cb, .ctx = ctx, .buf = buf,
                            .max_bytes = max_bytes, .start_ns = sl_clock_mono_ns(),
                            .traced = req->trace_ns != 0};
    op->trace[SL_FTRACE_RECEIVED] = req->trace_ns;
    uint32_t wait = req->max_wait_ms < e->cfg.fetch_wait_max_ms ? req->max_wait_ms
                                                                : e->cfg.fetch_wait_max_ms;
    op->deadline_ms = wait > 0 ? sl_clock_mono_ms() + wait : 0;
    op->wr.rd.buf_cap = cap;
    op->wr.rd.max_bytes = max_bytes;
    if (!start_at(op, &req->pos, &ss)) {
        r.err = SL_EINVAL;
        r.why = "unknown position kind";
    } else if (op->wr.rd.from == SL_READ_SEQ && op->wr.rd.seq > ss.visible_seq) {
        snprintf(why, sizeof(why), "sequence %" PRIu64 " is beyond the shard's tail (%" PRIu64 ")",
                 op->wr.rd.seq, ss.visible_seq);
        r.err = SL_EINVAL;
    }
    if (r.err != SL_OK) {
        free(op);
        free(buf);
        cb(ctx, &r);
        return;
    }
    b->stream->inflight++;
    op->buf_bytes = cap;
    e->fetch_bytes += cap;
    issue(op);
}
