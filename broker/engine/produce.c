/* produce.c - appends from any front-end (see produce.h).
 *
 * The main loop checks the batch's header and the fields that bound its
 * records; the body checksum is verified once, by the shard as it copies the
 * batch on the owner's thread, so the main loop does not hash every byte a
 * second time. Every decision taken here from unverified bytes without an
 * append behind it (a duplicate answered, records dropped) verifies first.
 */
#include "broker/engine/produce.h"
#include "broker/engine/produce_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/dedup.h"
#include "broker/engine/engine.h"
#include "broker/engine/reshard.h"
#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct produce_op;

/* Per stream: each shard's FIFO of produces waiting for staging space and, on a replicated
 * shard, the FIFO of those its replica accepted, answered in order as its ACKs cover them. */
struct sl_produce_state {
    uint32_t shard_count;
    struct {
        struct produce_op *head;
        struct produce_op *tail;
        struct produce_op *rhead;
        struct produce_op *rtail;
    } fifo[];
};

/* A produce in flight; while the shard's staging buffers are full it waits
 * in the shard's FIFO, so per-shard order is kept. */
struct produce_op {
    struct sl_engine *e;
    struct sl_bshard *shard;
    const uint8_t *batch; /* borrowed from the caller until the callback */
    size_t len;
    sl_produce_cb cb;
    void *ctx;
    uint64_t producer_id;
    uint64_t producer_seq;
    enum sl_ack ack;
    uint64_t start_ns;
    uint8_t *rebuilt; /* the batch without duplicate de-dup ids, or NULL */
    size_t rebuilt_len;
    uint64_t *dedup_hashes; /* ids remembered for this batch: forgotten if it fails */
    uint32_t n_dedup;
    uint32_t *dropped; /* indexes of records dropped as duplicates (sorted) */
    uint32_t n_dropped;
    struct produce_op *next; /* in the shard's wait FIFO */
    /* A replicated shard's append (#14): accepted by the replica (its sequences given, its
     * epoch to stamp), then written by the log and acknowledged by the replica's ACK, in
     * either order; answered when both happened, in the order accepted. */
    bool repl_accepted, repl_written, repl_acked;
    int repl_err;       /* the ACK's (or the write's) error */
    uint32_t repl_epoch;
    uint64_t repl_end;  /* the end sequence the ACK covers */
    uint64_t repl_base; /* from the write */
    uint32_t repl_count;
    struct produce_op *rnext; /* in the shard's ack FIFO */
    bool traced;
    uint64_t trace[SL_PTRACE_N]; /* when traced (sl_produce_req.trace_ns) */
};

/* The answer to an append a closed shard did not store: its children. */
static void closed_result(const struct sl_bshard *b, struct sl_produce_result *r, char *why,
                          size_t why_len)
{
    const struct sl_lineage_shard *ls = &b->stream->lineage.shard[b->id];
    SL_ASSERT(ls->closed && ls->child[0] != SL_LINEAGE_NONE);
    r->err = SL_ESHARD_CLOSED;
    r->shard = b->id;
    r->children[0] = ls->child[0];
    r->n_children = ls->child[1] != SL_LINEAGE_NONE ? 2 : 1;
    r->children[1] = r->n_children == 2 ? ls->child[1] : 0;
    char kids[48];
    if (r->n_children == 2) {
        snprintf(kids, sizeof(kids), "split into %u and %u", r->children[0], r->children[1]);
    } else {
        snprintf(kids, sizeof(kids), "merged into %u", r->children[0]);
    }
    snprintf(why, why_len,
             "shard %u of %s is closed (%s): describe the stream and send each record to the "
             "open shard of its key's hash",
             b->id, b->stream->name, kids);
    r->why = why;
}

/* Finished ops kept for reuse (main loop only, like every produce): an append
 * costs no malloc. Bounded; what is kept is reachable until exit. */
#define PRODUCE_OPS_CACHED 1024u
static struct produce_op *op_cache;
static uint32_t op_cache_n;

static struct produce_op *op_alloc(void)
{
    struct produce_op *op = op_cache;
    if (op != NULL) {
        op_cache = op->next;
        op_cache_n--;
        return op;
    }
    return malloc(sizeof(*op));
}

static void op_release(struct produce_op *op)
{
    if (op_cache_n >= PRODUCE_OPS_CACHED) {
        free(op);
        return;
    }
    op->next = op_cache;
    op_cache = op;
    op_cache_n++;
}

static void finish(struct produce_op *op, int err, uint64_t base, uint32_t count,
                   bool duplicate)
{
    struct sl_bshard *b = op->shard;
    char why[320] = "";
    if (err != SL_OK) { /* nothing stored: a resend must not find its ids seen */
        for (uint32_t i = 0; i < op->n_dedup; i++) {
            sl_msgdedup_forget(b->stream->msgdedup, op->dedup_hashes[i]);
        }
    }
    if (err == SL_ECONFLICT) {
        /* the owner's order gate (sl_wshard_append): retriable, in order */
        err = SL_EAGAIN;
        snprintf(why, sizeof(why),
                 "append to %s/%u refused: an earlier batch of this producer failed there; "
                 "resend from it, in order", b->stream->name, b->id);
    } else if (err == SL_ELIMIT) {
        /* A shard's append is SL_ELIMIT only out of descriptors (reopening a
         * parked shard, creating a segment at a roll): say so, and the fix. */
        char nofile[160];
        sl_nofile_why(nofile, sizeof(nofile));
        snprintf(why, sizeof(why), "append to %s/%u failed: %s", b->stream->name, b->id, nofile);
    } else if (err != SL_OK) {
        snprintf(why, sizeof(why), "append to %s/%u failed: %s", b->stream->name, b->id,
                 sl_strerror(err));
    }
    struct sl_produce_result r = {.err = err, .why = why, .shard = b->id, .base_seq = base,
                                  .count = count, .duplicate = duplicate,
                                  .dropped = op->dropped, .n_dropped = op->n_dropped,
                                  .trace_ns = op->traced ? op->trace : NULL};
    if (err == SL_ESHARD_CLOSED) {
        closed_result(b, &r, why, sizeof(why));
    }
    if (err == SL_OK && !duplicate) {
        b->io.records_in += count;
        b->io.bytes_in += op->rebuilt != NULL ? op->rebuilt_len : op->len;
    }
    sl_op_stats_record(&op->e->stats.op[SL_OP_PRODUCE], err, sl_clock_mono_ns() - op->start_ns);
    b->stream->inflight--;
    op->cb(op->ctx, &r);
    free(op->rebuilt);
    free(op->dedup_hashes);
    free(op->dropped);
    op_release(op);
}

/* Refused before any work: counted, no latency. */
static void fail(struct sl_engine *e, sl_produce_cb cb, void *ctx, uint32_t shard, int err,
                 const char *why)
{
    e->stats.op[SL_OP_PRODUCE].results[err]++;
    struct sl_produce_result r = {.err = err, .why = why, .shard = shard};
    cb(ctx, &r);
}

static void repl_drain(struct sl_bshard *b);

static void on_appended(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct produce_op *op = ctx;
    struct sl_bshard *b = op->shard;
    SL_ASSERT(b->appends > 0);
    if (op->traced) {
        struct sl_shard_io_times io;
        sl_wshard_append_io(&b->ws, &io);
        op->trace[SL_PTRACE_WRITE_SUBMIT] = io.write_submit_ns;
        op->trace[SL_PTRACE_WRITE_DONE] = io.write_done_ns;
        op->trace[SL_PTRACE_SYNC_DONE] = op->ack == SL_ACK_DURABLE ? io.sync_done_ns : 0;
        op->trace[SL_PTRACE_ACKED] = sl_clock_mono_ns();
    }
    if (op->repl_accepted) {
        /* answered once acknowledged too (repl_drain); the replica hears of the write
         * (sl_repl_disk_done), which may acknowledge this very op */
        SL_ASSERT(!op->repl_written);
        op->repl_written = true;
        op->repl_base = base_seq;
        op->repl_count = count;
        if (err != SL_OK && !op->repl_acked) {
            op->repl_acked = true;
            op->repl_err = err;
        }
        op->e->repl->written(op->e->repl->ctx, b, err);
        repl_drain(b);
        return;
    }
    b->appends--;
    sl_dedup_end(&b->dedup, op->producer_id, op->producer_seq, err, base_seq, count);
    finish(op, err, base_seq, count, false);
    if (b->closing && b->appends == 0) {
        sl_reshard_drained(b->stream);
    }
}

static int stream_state(struct sl_stream *st);

/* A retry of a batch this broker stored, on a replicated shard (#14), is a duplicate only
 * from the leader and once its copy is committed (below the HW): a follower's copy, or a
 * rejoining broker's from before its restart, may yet be cut back to the leader's log, and
 * a leader's above its HW is not yet durable on the ISR. Answering "duplicate" there
 * acknowledged batches that were then truncated (cluster_faults' rolling restart: a broker
 * restarted with a batch it had written as leader and not committed answered a retry with
 * its old position, then cut it back). SL_OK, SL_ENOT_LEADER, or SL_EAGAIN (retry). */
static int repl_duplicate(struct sl_engine *e, struct sl_bshard *b, uint64_t base,
                          uint32_t count)
{
    if (e->repl == NULL || !b->stream->cluster) {
        return SL_OK; /* (a single broker's, or a local stream's: its one copy) */
    }
    if (b->repl == NULL) {
        return SL_ENOT_LEADER; /* (not attached yet: as try_append) */
    }
    uint64_t end = 0;
    int rc = e->repl->readable(e->repl->ctx, b, &end);
    if (rc != SL_OK) {
        return rc;
    }
    return base + count <= end ? SL_OK : SL_EAGAIN;
}

/* A replicated shard's append is first accepted by its replica, which gives its sequences
 * and the epoch to stamp; from then on it must reach the log (a staging wait retries the
 * same stamps) and is answered in order by the ACKs. */
static int repl_accept(struct produce_op *op, const uint8_t *data, size_t len)
{
    struct sl_bshard *b = op->shard;
    struct sl_batch_header h;
    int rc = sl_batch_peek(data, len, &h); /* (checked at submit) */
    char why[200];
    if (rc == SL_OK) {
        rc = stream_state(b->stream);
    }
    if (rc == SL_OK) {
        rc = op->e->repl->append(op->e->repl->ctx, b, h.record_count, &op->repl_epoch,
                                 &op->repl_end, why, sizeof(why));
    }
    if (rc != SL_OK) {
        sl_dedup_end(&b->dedup, op->producer_id, op->producer_seq, rc, 0, 0);
        finish(op, rc, 0, 0, false);
        /* answered: anything but SL_EAGAIN, which would mean "wait in the FIFO" */
        return rc == SL_EAGAIN ? SL_ECLOSED : rc;
    }
    op->repl_accepted = true;
    op->repl_written = op->repl_acked = false;
    op->repl_err = SL_OK;
    op->rnext = NULL;
    struct sl_produce_state *ps = b->stream->produce;
    if (ps->fifo[b->id].rtail != NULL) {
        ps->fifo[b->id].rtail->rnext = op;
    } else {
        ps->fifo[b->id].rhead = op;
    }
    ps->fifo[b->id].rtail = op;
    return SL_OK;
}

/* Tries the append; SL_EAGAIN means "wait in the FIFO". */
static int try_append(struct produce_op *op)
{
    const uint8_t *data = op->rebuilt != NULL ? op->rebuilt : op->batch;
    size_t len = op->rebuilt != NULL ? op->rebuilt_len : op->len;
    unsigned flags = op->ack == SL_ACK_DURABLE ? SL_APPEND_DURABLE : 0;
    SL_ASSERT(!op->shard->closing);
    if (op->shard->stream->cluster && op->shard->repl == NULL) {
        /* A cluster stream's shard is written only through its replica: one not attached
         * yet (the broker is (re)joining, or was started without --cluster) must not take
         * an append that no follower would copy. Local streams are written as ever. */
        sl_dedup_end(&op->shard->dedup, op->producer_id, op->producer_seq, SL_ENOT_LEADER, 0,
                     0);
        finish(op, SL_ENOT_LEADER, 0, 0, false);
        return SL_ECLOSED; /* (answered: anything but SL_EAGAIN) */
    }
    if (op->shard->repl != NULL && !op->repl_accepted) {
        int rc = repl_accept(op, data, len);
        if (rc != SL_OK) {
            return rc; /* (answered) */
        }
    }
    if (op->repl_accepted) {
        flags = SL_APPEND_DURABLE | SL_WSHARD_REPLICA;
    }
    op->shard->appends++; /* (before: the callback may run inside the call) */
    if (op->traced) {
        op->trace[SL_PTRACE_APPEND] = sl_clock_mono_ns();
    }
    int rc = sl_wshard_append_opt(&op->shard->ws, data, len, flags, op->repl_epoch, on_appended,
                                  op);
    if (rc != SL_OK) {
        op->shard->appends--;
    }
    if (rc != SL_OK && rc != SL_EAGAIN && op->repl_accepted) {
        op->shard->appends++; /* (on_appended takes it back) */
        on_appended(op, rc, 0, 0);
    } else if (rc != SL_OK && rc != SL_EAGAIN) {
        sl_dedup_end(&op->shard->dedup, op->producer_id, op->producer_seq, rc, 0, 0);
        finish(op, rc, 0, 0, false);
    }
    return rc;
}

/* Answers the replicated appends at the head of b's ack FIFO that are both written and
 * acknowledged, in order (a later one never overtakes). */
static void repl_drain(struct sl_bshard *b)
{
    struct sl_produce_state *ps = b->stream->produce;
    SL_ASSERT(ps != NULL && b->id < ps->shard_count);
    struct produce_op *op;
    while ((op = ps->fifo[b->id].rhead) != NULL && op->repl_written && op->repl_acked) {
        ps->fifo[b->id].rhead = op->rnext;
        if (op->rnext == NULL) {
            ps->fifo[b->id].rtail = NULL;
        }
        SL_ASSERT(b->appends > 0);
        b->appends--;
        int err = op->repl_err;
        sl_dedup_end(&b->dedup, op->producer_id, op->producer_seq, err, op->repl_base,
                     op->repl_count);
        finish(op, err, err == SL_OK ? op->repl_base : 0, err == SL_OK ? op->repl_count : 0,
                false);
        if (b->closing && b->appends == 0) {
            sl_reshard_drained(b->stream);
        }
    }
}

void sl_produce_repl_ack(struct sl_bshard *b, uint64_t end, int err)
{
    struct sl_produce_state *ps = b->stream->produce;
    if (ps == NULL || b->id >= ps->shard_count) {
        return; /* nothing accepted here yet */
    }
    for (struct produce_op *op = ps->fifo[b->id].rhead; op != NULL && op->repl_end <= end;
         op = op->rnext) {
        if (!op->repl_acked) {
            op->repl_acked = true;
            op->repl_err = err;
        }
    }
    repl_drain(b);
}

void sl_produce_shard_progress(struct sl_bshard *b)
{
    struct sl_produce_state *ps = b->stream->produce;
    if (ps == NULL) {
        return;
    }
    SL_ASSERT(b->id < ps->shard_count);
    while (ps->fifo[b->id].head != NULL && !b->closing) {
        struct produce_op *op = ps->fifo[b->id].head;
        if (try_append(op) == SL_EAGAIN) {
            return;
        }
        ps->fifo[b->id].head = op->next;
        if (ps->fifo[b->id].head == NULL) {
            ps->fifo[b->id].tail = NULL;
        }
    }
}

static void result_ignored(void *ctx, const struct sl_produce_result *r)
{
    (void)ctx;
    (void)r;
}

/* A held ACK_NONE append its shard's close refuses: its records go to the open shards
 * (produce_reroute.c), which answer its caller; the op is then finished unanswered. Its
 * de-dup ids are forgotten first, else the children would drop its records as repeats. */
static void reroute_held(struct produce_op *op)
{
    for (uint32_t i = 0; i < op->n_dedup; i++) {
        sl_msgdedup_forget(op->shard->stream->msgdedup, op->dedup_hashes[i]);
    }
    op->n_dedup = 0;
    struct sl_produce_req req = {.stream = op->shard->stream->name, .shard = op->shard->id,
                                 .batch = op->rebuilt != NULL ? op->rebuilt : op->batch,
                                 .len = op->rebuilt != NULL ? op->rebuilt_len : op->len,
                                 .ack = SL_ACK_NONE};
    struct sl_batch_header h;
    if (sl_batch_peek(req.batch, req.len, &h) == SL_OK) { /* (checked when it came) */
        sl_produce_reroute(op->e, op->shard, &req, &h, op->cb, op->ctx);
        op->cb = result_ignored;
    }
}

void sl_produce_refuse_closed(struct sl_bshard *b)
{
    struct sl_produce_state *ps = b->stream->produce;
    SL_ASSERT(!b->closing && b->stream->lineage.shard[b->id].closed);
    while (ps != NULL && b->id < ps->shard_count && ps->fifo[b->id].head != NULL) {
        struct produce_op *op = ps->fifo[b->id].head;
        ps->fifo[b->id].head = op->next;
        if (ps->fifo[b->id].head == NULL) {
            ps->fifo[b->id].tail = NULL;
        }
        sl_dedup_end(&b->dedup, op->producer_id, op->producer_seq, SL_ESHARD_CLOSED, 0, 0);
        if (op->ack == SL_ACK_NONE) {
            reroute_held(op);
        }
        finish(op, SL_ESHARD_CLOSED, 0, 0, false);
    }
}

int sl_produce_stream_grow(struct sl_stream *st, uint32_t count)
{
    struct sl_produce_state *ps = st->produce;
    if (ps == NULL || ps->shard_count >= count) {
        return SL_OK;
    }
    /* (the ops point at shards, never into fifo[]: moving it is fine) */
    ps = realloc(ps, sizeof(*ps) + count * sizeof(ps->fifo[0]));
    if (ps == NULL) {
        return SL_ENOMEM;
    }
    memset(&ps->fifo[ps->shard_count], 0, (count - ps->shard_count) * sizeof(ps->fifo[0]));
    ps->shard_count = count;
    st->produce = ps;
    return SL_OK;
}

void sl_produce_stream_free(struct sl_stream *st)
{
    struct sl_produce_state *ps = st->produce;
    if (ps == NULL) {
        return;
    }
    /* A waiter holds the stream, so only a shutdown past its timeout finds
     * one here: its connection is gone and its memory goes with the process. */
    free(ps);
    st->produce = NULL;
}

/* Checks that every keyed record of the batch hashes into the shard. */
static int check_routing(struct sl_engine *e, struct sl_bshard *b, const uint8_t *batch,
                         const struct sl_batch_header *h, char *why, size_t why_len)
{
    if (b->stream->shard_count == 1) {
        return SL_OK;
    }
    int rc = sl_engine_scratch_reserve(e, h->codec, h->records_len);
    if (rc != SL_OK) {
        snprintf(why, why_len, "batch decompresses to %u bytes (limit %u)", h->records_len,
                 4 * e->cfg.batch_bytes_max);
        return rc;
    }
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, batch, h, e->zctx, e->scratch, e->scratch_cap);
    struct sl_record_view rv;
    while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
        if (rv.key_len == 0) {
            continue;
        }
        uint64_t hash = sl_partition_hash(rv.key, rv.key_len);
        if (hash < b->hash_start || hash > b->hash_end) {
            snprintf(why, why_len,
                     "record %" PRIu64 " of the batch has a key that belongs to shard %u, "
                     "not %u",
                     rv.seq - h->base_seq, sl_catalog_route(b->stream, hash),
                     b->id);
            return SL_EINVAL;
        }
    }
    if (rc == SL_ENOTFOUND) {
        return SL_OK;
    }
    snprintf(why, why_len, "batch records are malformed: %s", sl_strerror(rc));
    return rc;
}

/* The value of a record's de-dup id attribute, or NULL. */
static const char *dedup_id_of(const struct sl_record_view *rv, uint32_t *len)
{
    uint32_t pos = 0;
    struct sl_attr a;
    while (sl_record_attr_next(rv, &pos, &a)) {
        if (a.key_len == sizeof(SL_MSGDEDUP_ATTR) - 1 &&
            memcmp(a.key, SL_MSGDEDUP_ATTR, a.key_len) == 0) {
            *len = a.value_len;
            return a.value;
        }
    }
    return NULL;
}

/* Message de-dup (sluice.dedup_id): records whose id was stored on the
 * stream within the window are dropped from the batch (rebuilt without
 * them; the common case, no ids or no repeats, costs one pass over the
 * records). Returns SL_OK, with op->rebuilt set when records were dropped
 * and *all_dup when nothing is left to store. */
static int apply_msgdedup(struct sl_engine *e, struct produce_op *op, const uint8_t *batch,
                          const struct sl_batch_header *h, bool *all_dup)
{
    *all_dup = false;
    struct sl_stream *st = op->shard->stream;
    uint64_t now = sl_clock_wall_ms();
    int rc = sl_engine_scratch_reserve(e, h->codec, h->records_len);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, batch, h, e->zctx, e->scratch, e->scratch_cap);
    uint8_t *dup = NULL; /* per record, allocated at the first duplicate */
    uint32_t dups = 0, i = 0;
    struct sl_record_view rv;
    while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
        uint32_t idlen = 0;
        const char *id = dedup_id_of(&rv, &idlen);
        if (id != NULL) {
            uint64_t hash = sl_checksum64(id, idlen);
            if (sl_msgdedup_seen(&st->msgdedup, hash, now, e->cfg.dedup_window_ms)) {
                if (dup == NULL && (dup = calloc(h->record_count, 1)) == NULL) {
                    return SL_ENOMEM;
                }
                dup[i] = 1;
                dups++;
            } else {
                uint64_t *nh = realloc(op->dedup_hashes, (op->n_dedup + 1) * sizeof(*nh));
                if (nh == NULL) {
                    sl_msgdedup_forget(st->msgdedup, hash);
                    free(dup);
                    return SL_ENOMEM;
                }
                op->dedup_hashes = nh;
                op->dedup_hashes[op->n_dedup++] = hash;
            }
        }
        i++;
    }
    if (rc != SL_ENOTFOUND) {
        free(dup);
        return rc;
    }
    if (dups == 0) {
        return SL_OK;
    }
    if (sl_batch_verify(batch, h) != SL_OK) {
        free(dup); /* dropping records on the word of unverified ids: no */
        return SL_ECORRUPT;
    }
    op->dropped = malloc(dups * sizeof(*op->dropped));
    if (op->dropped == NULL) {
        free(dup);
        return SL_ENOMEM;
    }
    for (uint32_t k = 0; k < h->record_count; k++) {
        if (dup[k]) {
            op->dropped[op->n_dropped++] = k;
        }
    }
    if (dups == h->record_count) {
        free(dup);
        *all_dup = true;
        return SL_OK;
    }
    /* Rebuild without the duplicates (uncompressed: a rare path), copying
     * the kept records byte for byte (timestamps and all). */
    size_t cap = SL_BATCH_HEADER_BYTES + h->records_len;
    uint8_t *nb = malloc(cap);
    if (nb == NULL) {
        free(dup);
        return SL_ENOMEM;
    }
    const uint8_t *records = h->codec == SL_BATCH_CODEC_ZSTD ? e->scratch
                                                             : batch + SL_BATCH_HEADER_BYTES;
    size_t len = 0;
    rc = sl_batch_rebuild_without(h, records, dup, nb, cap, &len);
    free(dup);
    if (rc != SL_OK) {
        free(nb);
        return rc;
    }
    op->rebuilt = nb;
    op->rebuilt_len = len;
    return SL_OK;
}

/* A produce waiting for its stream to be created (auto_create_streams): the
 * request is kept (the batch stays the caller's, borrowed until cb) and
 * submitted again once the creator thread made the stream. */
struct create_wait {
    struct sl_engine *e;
    struct sl_produce_req req;
    char stream[SL_STREAM_NAME_MAX + 1];
    sl_produce_cb cb;
    void *ctx;
};

static void on_created(void *ctx, int err, const char *why)
{
    struct create_wait *w = ctx;
    if (err == SL_OK || err == SL_EEXIST) {
        sl_produce_submit(w->e, &w->req, w->cb, w->ctx);
    } else {
        fail(w->e, w->cb, w->ctx, w->req.shard, err, why);
    }
    free(w);
}

static void auto_create(struct sl_engine *e, const struct sl_produce_req *req, sl_produce_cb cb,
                        void *ctx)
{
    char why[256];
    struct create_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fail(e, cb, ctx, req->shard, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    *w = (struct create_wait){.e = e, .req = *req, .cb = cb, .ctx = ctx};
    snprintf(w->stream, sizeof(w->stream), "%s", req->stream != NULL ? req->stream : "");
    w->req.stream = w->stream;
    int rc = sl_catalog_create_async(e->catalog, w->stream, e->cfg.default_shards, 0, 0, NULL,
                                     SL_CATALOG_CREATE_JOIN, 0, on_created, w, why, sizeof(why));
    if (rc != SL_OK) {
        free(w);
        fail(e, cb, ctx, req->shard, rc, why);
    }
}

/* The stream's produce state, made at its first need. Errors: SL_ENOMEM. */
static int stream_state(struct sl_stream *st)
{
    if (st->produce == NULL) {
        st->produce = calloc(1, sizeof(*st->produce) +
                                    st->shard_count * sizeof(st->produce->fifo[0]));
        if (st->produce == NULL) {
            return SL_ENOMEM;
        }
        st->produce->shard_count = st->shard_count;
    }
    return SL_OK;
}

/* Enqueues behind the shard's waiting produces, or appends now. */
static void start(struct produce_op *op)
{
    struct sl_bshard *b = op->shard;
    struct sl_stream *st = b->stream;
    if (!b->closing && (st->produce == NULL || st->produce->fifo[b->id].head == NULL) &&
        try_append(op) != SL_EAGAIN) {
        return;
    }
    if (stream_state(st) != SL_OK) {
        sl_dedup_end(&b->dedup, op->producer_id, op->producer_seq, SL_ENOMEM, 0, 0);
        finish(op, SL_ENOMEM, 0, 0, false);
        return;
    }
    struct sl_produce_state *ps = st->produce;
    if (ps->fifo[b->id].tail != NULL) {
        ps->fifo[b->id].tail->next = op;
    } else {
        ps->fifo[b->id].head = op;
    }
    ps->fifo[b->id].tail = op;
}

/* Checks the header and the fields that bound the records. */
static int check_batch(struct sl_engine *e, const struct sl_produce_req *req,
                       struct sl_batch_header *h, char *why, size_t why_len)
{
    int rc = sl_batch_peek(req->batch, req->len, h);
    if (rc == SL_OK && h->length > e->cfg.batch_bytes_max) {
        rc = SL_ETOOBIG;
    } else if (rc == SL_OK && h->length != req->len) {
        rc = h->length > req->len ? SL_EAGAIN : SL_EPROTO;
    }
    if (rc == SL_OK) {
        rc = sl_batch_check_fields(req->batch, h);
    }
    if (rc == SL_OK && h->control != req->control) {
        snprintf(why, why_len, "invalid batch: the control flag (0x%02x) is the broker's own: "
                 "a producer's batch must not set it", SL_BATCH_FLAG_CONTROL);
        return SL_EINVAL;
    }
    if (rc != SL_OK) {
        snprintf(why, why_len, "invalid batch: %s",
                 rc == SL_ETOOBIG  ? "larger than batch_bytes_max"
                 : rc == SL_EAGAIN ? "truncated"
                 : rc == SL_EPROTO ? "length field disagrees with the bytes sent"
                                   : "checksum or header mismatch");
        rc = rc == SL_EAGAIN ? SL_EPROTO : rc;
    }
    return rc;
}

/* A batch handed to its shard's leader (sl_produce_req.forward). */
struct forward_op {
    struct sl_engine *e;
    sl_produce_cb cb;
    void *ctx;
    uint32_t shard;
    uint32_t count;
};

static void on_forwarded(void *ctx, int err, const char *why, uint64_t base_seq)
{
    struct forward_op *op = ctx;
    op->e->stats.op[SL_OP_PRODUCE].results[err]++;
    struct sl_produce_result r = {.err = err,
                                  .why = why != NULL ? why : "",
                                  .shard = op->shard,
                                  .base_seq = err == SL_OK ? base_seq : 0,
                                  .count = err == SL_OK ? op->count : 0};
    op->cb(op->ctx, &r);
    free(op);
}

/* Whether b is replicated, led by another broker, and the request may go there. */
static bool forwards(const struct sl_engine *e, const struct sl_produce_req *req,
                     const struct sl_bshard *b)
{
    uint64_t end = 0;
    int32_t epoch = -1;
    return req->forward && b->stream->cluster && e->repl != NULL &&
           !(b->repl != NULL && e->repl->replica(e->repl->ctx, b, &end, &epoch) == SL_OK &&
             epoch >= 0);
}

static void forward(struct sl_engine *e, const struct sl_produce_req *req,
                    const struct sl_bshard *b, uint32_t count, sl_produce_cb cb, void *ctx)
{
    struct forward_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        fail(e, cb, ctx, b->id, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    *op = (struct forward_op){.e = e, .cb = cb, .ctx = ctx, .shard = b->id, .count = count};
    int rc = e->repl->forward(e->repl->ctx, b, req->batch, req->len, req->caller_routed,
                              on_forwarded, op);
    if (rc != SL_OK) {
        free(op);
        char why[256];
        if (rc == SL_ENOT_LEADER) {
            snprintf(why, sizeof(why),
                     "shard %u of %s has no leader right now (an election is under way): retry",
                     b->id, b->stream->name);
        } else {
            snprintf(why, sizeof(why),
                     "shard %u of %s: its leader cannot take the batch now (%s): retry", b->id,
                     b->stream->name, sl_strerror(rc));
        }
        fail(e, cb, ctx, b->id, rc == SL_ELIMIT ? SL_EAGAIN : rc, why);
    }
}

void sl_produce_submit(struct sl_engine *e, const struct sl_produce_req *req, sl_produce_cb cb,
                       void *ctx)
{
    char why[256];
    int rc;
    uint64_t start_ns = sl_clock_mono_ns();
    if (e->cfg.auto_create_streams) {
        struct sl_stream *found = NULL;
        if (sl_catalog_lookup(e->catalog, req->stream != NULL ? req->stream : "", &found, why,
                              sizeof(why)) == SL_ENOTFOUND) {
            auto_create(e, req, cb, ctx); /* the file work leaves the loop */
            return;
        }
    }
    struct sl_bshard *b = sl_engine_shard(e, req->stream, req->shard, why, sizeof(why), &rc);
    struct sl_batch_header h;
    if (b == NULL || (rc = check_batch(e, req, &h, why, sizeof(why))) != SL_OK ||
        (!req->caller_routed &&
         (rc = check_routing(e, b, req->batch, &h, why, sizeof(why))) != SL_OK)) {
        fail(e, cb, ctx, req->shard, rc, why);
        return;
    }
    if (forwards(e, req, b)) {
        forward(e, req, b, h.record_count, cb, ctx);
        return;
    }
    struct sl_dedup_entry *de = NULL;
    rc = sl_dedup_begin(&b->dedup, h.producer_id, h.producer_seq, req->in_order, &de);
    if (rc != SL_EEXIST && b->stream->lineage.shard[b->id].closed) {
        /* Not a retry of a batch it stored (answered duplicate below): refused, whatever
         * its order - nothing more is stored here, so "resend in order" would only send
         * the producer round again. */
        if (rc == SL_OK) {
            sl_dedup_end(&b->dedup, h.producer_id, h.producer_seq, SL_ESHARD_CLOSED, 0, 0);
        }
        if (req->ack == SL_ACK_NONE) { /* its producer would never hear of the refusal */
            e->stats.op[SL_OP_PRODUCE].results[SL_ESHARD_CLOSED]++;
            sl_produce_reroute(e, b, req, &h, cb, ctx);
            return;
        }
        struct sl_produce_result r = {0};
        closed_result(b, &r, why, sizeof(why));
        e->stats.op[SL_OP_PRODUCE].results[SL_ESHARD_CLOSED]++;
        cb(ctx, &r);
        return;
    }
    if (rc == SL_EAGAIN) {
        fail(e, cb, ctx, req->shard, SL_EAGAIN, "the same batch is still being appended; retry");
        return;
    }
    if (rc == SL_ECONFLICT) {
        if (de->pending > 0) {
            snprintf(why, sizeof(why),
                     "batch %" PRIu64 " of producer %016" PRIx64 " is out of order: batches up to %"
                     PRIu64 " are being appended; resend in order",
                     h.producer_seq, h.producer_id, de->pending_hi);
        } else {
            snprintf(why, sizeof(why),
                     "batch %" PRIu64 " of producer %016" PRIx64 " is out of order: the last one "
                     "stored is %" PRIu64 "; resend in order",
                     h.producer_seq, h.producer_id, de->producer_seq);
        }
        fail(e, cb, ctx, req->shard, SL_EAGAIN, why);
        return;
    }
    struct produce_op *op = op_alloc(); /* every field set below */
    if (op == NULL) {
        if (rc == SL_OK) {
            sl_dedup_end(&b->dedup, h.producer_id, h.producer_seq, SL_ENOMEM, 0, 0);
        }
        fail(e, cb, ctx, req->shard, SL_ENOMEM, sl_strerror(SL_ENOMEM));
        return;
    }
    *op = (struct produce_op){.e = e, .shard = b, .batch = req->batch, .len = req->len,
                              .repl_epoch = 0,
                              .cb = cb, .ctx = ctx, .producer_id = h.producer_id,
                              .producer_seq = h.producer_seq, .ack = req->ack,
                              .start_ns = start_ns, .traced = req->trace_ns != 0};
    op->trace[SL_PTRACE_RECEIVED] = req->trace_ns;
    b->stream->inflight++;
    if (rc == SL_EEXIST && sl_batch_verify(req->batch, &h) != SL_OK) {
        finish(op, SL_ECORRUPT, 0, 0, false);
        return;
    }
    if (rc == SL_EEXIST) {
        /* where it was stored, when it is recent enough to be remembered */
        uint64_t base = 0;
        uint32_t count = 0;
        (void)sl_dedup_stored(de, h.producer_seq, &base, &count);
        int dup = repl_duplicate(e, b, base, count);
        finish(op, dup, dup == SL_OK ? base : 0, dup == SL_OK ? count : 0, dup == SL_OK);
        return;
    }
    if (e->cfg.dedup_window_ms > 0) {
        bool all_dup = false;
        rc = apply_msgdedup(e, op, req->batch, &h, &all_dup);
        if (rc != SL_OK || all_dup) {
            /* every record a repeat: the batch is done, with nothing stored
             * (for the producer's order it counts as its last one) */
            sl_dedup_end(&b->dedup, h.producer_id, h.producer_seq, rc, 0, 0);
            finish(op, rc, 0, 0, all_dup);
            return;
        }
    }
    start(op);
}
