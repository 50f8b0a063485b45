/* handler.c - native-protocol request handlers.
 *
 * Each handler answers its request exactly once (or, for a Produce with
 * ACK_NONE, not at all) and calls sl_conn_request_done exactly once. Async
 * handlers (produce, fetch, checkpoint commit) keep a small op that holds the
 * connection and the stream (inflight) until the storage callback runs.
 *
 * Produce: stream and shard looked up; the batch validated (checksums,
 * limits) and, record by record, checked to belong to the shard (the key's
 * XXH3 hash in the shard's range; an empty key may go anywhere); duplicates
 * of a producer's last batch are answered from the de-dup table without
 * being written. When the shard's staging buffers are full, the append waits
 * in the shard's FIFO (order kept) and is retried when the shard makes
 * progress.
 *
 * Fetch: the position becomes a storage read; an empty read with
 * max_wait_ms parks the fetch on the shard until an append makes records
 * visible (the shard listener) or the wait expires (the tick). No polling.
 */
#include "broker/catalog.h"
#include "broker/workers.h"
#include "broker/queue.h"
#include "broker/server.h"
#include "common/clock.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/log.h"
#include "common/checksum.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BROKER_VERSION "0.1.0"
#define FETCH_MIN_BUF (64u << 10)
#define FETCH_DEFAULT_BYTES (1u << 20)
#define FETCH_FRAME_SLACK 1024u /* response fields around the batches */

/* ---- helpers -------------------------------------------------------- */


static void done_error(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_conn_respond_error(c, id, code, msg);
    sl_conn_request_done(c);
}

static struct sl_bshard *find_shard(struct sl_server *srv, const char *stream, uint32_t shard,
                                    char *why, size_t why_len, int *err)
{
    struct sl_stream *st = sl_catalog_find(srv->catalog, stream != NULL ? stream : "");
    if (st == NULL) {
        snprintf(why, why_len, "stream %s not found", stream != NULL ? stream : "");
        *err = SL_ENOTFOUND;
        return NULL;
    }
    if (shard >= st->shard_count) {
        snprintf(why, why_len, "stream %s has %u shards; shard %u does not exist", st->name,
                 st->shard_count, shard);
        *err = SL_ENOTFOUND;
        return NULL;
    }
    return &st->shards[shard];
}

/* Fills `si` (caller-owned arrays in `shards`/`ptrs`) for a stream. */
/* Why a shard is not OK, for DescribeStream: one buffer per shard index,
 * enough because a response is packed before the loop handles anything
 * else (one thread). */
static char status_msgs[SL_STREAM_SHARDS_MAX][96];

static void stream_info(const struct sl_stream *st, Sluice__V1__StreamInfo *si,
                        Sluice__V1__ShardInfo *shards, Sluice__V1__ShardInfo **ptrs)
{
    sluice__v1__stream_info__init(si);
    si->name = (char *)st->name;
    si->shard_count = st->shard_count;
    si->retention_hours = st->retention_hours;
    si->retention_bytes = st->retention_bytes;
    si->compression = (char *)st->compression;
    si->created_ms = st->created_ms;
    if (shards == NULL) {
        return;
    }
    for (uint32_t i = 0; i < st->shard_count; i++) {
        const struct sl_bshard *b = &st->shards[i];
        struct sl_shard_stats ss;
        sl_bshard_stats(b, &ss);
        sluice__v1__shard_info__init(&shards[i]);
        shards[i].shard = i;
        shards[i].hash_start = b->hash_start;
        shards[i].hash_end = b->hash_end;
        shards[i].first_seq = ss.first_seq;
        shards[i].next_seq = ss.visible_seq;
        shards[i].bytes = ss.bytes;
        shards[i].segments = ss.segments;
        shards[i].status = (Sluice__V1__ErrorCode)ss.state;
        status_msgs[i][0] = '\0';
        if (ss.state == SL_EFATAL && ss.fatal_what != NULL) {
            snprintf(status_msgs[i], sizeof(status_msgs[i]), "%s failed: %s", ss.fatal_what,
                     strerror(ss.fatal_errno));
        } else if (ss.state == SL_ENOSPC) {
            snprintf(status_msgs[i], sizeof(status_msgs[i]), "disk full at the last write");
        }
        shards[i].status_message = status_msgs[i];
        ptrs[i] = &shards[i];
    }
    si->n_shards = st->shard_count;
    si->shards = ptrs;
}

/* ---- admin ---------------------------------------------------------- */

static void handle_hello(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    if (req->hello->version != SL_PROTOCOL_VERSION) {
        char msg[96];
        snprintf(msg, sizeof(msg), "protocol version %u not supported (this broker speaks %u)",
                 req->hello->version, SL_PROTOCOL_VERSION);
        done_error(c, req->id, SL_EUNSUPPORTED, msg);
        return;
    }
    c->hello_done = true;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    Sluice__V1__HelloResponse hr = SLUICE__V1__HELLO_RESPONSE__INIT;
    hr.version = SL_PROTOCOL_VERSION;
    hr.broker_version = (char *)BROKER_VERSION;
    hr.max_frame_bytes = srv->cfg.max_frame_bytes;
    hr.max_inflight = srv->cfg.max_inflight;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_HELLO;
    resp.hello = &hr;
    sl_conn_respond(c, &resp);
    sl_conn_request_done(c);
}

static void respond_stream(struct sl_conn *c, uint64_t id, const struct sl_stream *st,
                           bool create)
{
    Sluice__V1__ShardInfo *shards = calloc(st->shard_count, sizeof(*shards));
    Sluice__V1__ShardInfo **ptrs = calloc(st->shard_count, sizeof(*ptrs));
    if (shards == NULL || ptrs == NULL) {
        free(shards);
        free(ptrs);
        sl_conn_respond_error(c, id, SL_ENOMEM, NULL);
        return;
    }
    Sluice__V1__StreamInfo si;
    stream_info(st, &si, shards, ptrs);
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
    sl_conn_respond(c, &resp);
    free(shards);
    free(ptrs);
}

static void handle_create(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__CreateStream *m = req->create_stream;
    char why[256] = "";
    struct sl_stream *st = NULL;
    int rc = sl_catalog_create(srv->catalog, m->name, m->shard_count, m->retention_hours,
                               m->retention_bytes, m->compression, &st, why, sizeof(why));
    if (rc != SL_OK) {
        done_error(c, req->id, rc, why);
        return;
    }
    respond_stream(c, req->id, st, true);
    sl_conn_request_done(c);
}

static void handle_describe(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    struct sl_stream *st = sl_catalog_find(srv->catalog, req->describe_stream->name);
    if (st == NULL) {
        char why[200];
        snprintf(why, sizeof(why), "stream %s not found", req->describe_stream->name);
        done_error(c, req->id, SL_ENOTFOUND, why);
        return;
    }
    respond_stream(c, req->id, st, false);
    sl_conn_request_done(c);
}

static void handle_list(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    uint32_t n = 0;
    for (struct sl_stream *st = sl_catalog_first(srv->catalog); st != NULL; st = st->next) {
        n++;
    }
    Sluice__V1__StreamInfo *infos = calloc(n + 1, sizeof(*infos));
    Sluice__V1__StreamInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
    if (infos == NULL || ptrs == NULL) {
        free(infos);
        free(ptrs);
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    uint32_t i = 0;
    for (struct sl_stream *st = sl_catalog_first(srv->catalog); st != NULL; st = st->next) {
        stream_info(st, &infos[i], NULL, NULL);
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
    sl_conn_respond(c, &resp);
    free(infos);
    free(ptrs);
    sl_conn_request_done(c);
}

static void fetch_wake_all(struct sl_bshard *b, int err);

static void handle_delete(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    struct sl_stream *st = sl_catalog_find(srv->catalog, req->delete_stream->name);
    if (st != NULL) {
        for (uint32_t i = 0; i < st->shard_count; i++) {
            fetch_wake_all(&st->shards[i], SL_ENOTFOUND);
        }
    }
    int rc = sl_catalog_delete(srv->catalog, req->delete_stream->name);
    if (rc != SL_OK) {
        char why[200];
        snprintf(why, sizeof(why), "cannot delete stream %s: %s", req->delete_stream->name,
                 sl_strerror(rc));
        done_error(c, req->id, rc, why);
        return;
    }
    Sluice__V1__DeleteStreamResponse dr = SLUICE__V1__DELETE_STREAM_RESPONSE__INIT;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_DELETE_STREAM;
    resp.delete_stream = &dr;
    sl_conn_respond(c, &resp);
    sl_conn_request_done(c);
}

/* ---- produce -------------------------------------------------------- */

/* A produce in flight; while the shard's staging buffers are full it waits
 * in the shard's FIFO (b->produce_head/tail), so per-shard order is kept. */
struct sl_produce_op {
    struct sl_server *srv;
    struct sl_conn *conn;
    struct sl_bshard *shard;
    sl_request *req; /* owns the batch bytes until appended */
    uint64_t producer_id;
    uint64_t producer_seq;
    Sluice__V1__AckMode ack;
    uint8_t *rebuilt; /* the batch without duplicate de-dup ids, or NULL */
    size_t rebuilt_len;
    uint64_t *dedup_hashes; /* ids remembered for this batch: forgotten if it fails */
    uint32_t n_dedup;
    uint32_t *dropped; /* indexes of records dropped as duplicates (sorted) */
    uint32_t n_dropped;
    struct sl_produce_op *next; /* in the shard's wait FIFO */
};

static void produce_finish(struct sl_produce_op *op, int err, uint64_t base, uint32_t count,
                           bool duplicate)
{
    struct sl_conn *c = op->conn;
    if (op->ack != SLUICE__V1__ACK_MODE__ACK_NONE) {
        if (err != SL_OK) {
            char msg[160];
            snprintf(msg, sizeof(msg), "append to %s/%u failed: %s", op->shard->stream->name,
                     op->shard->id, sl_strerror(err));
            sl_conn_respond_error(c, op->req->id, err, msg);
        } else {
            Sluice__V1__ProduceResponse pr = SLUICE__V1__PRODUCE_RESPONSE__INIT;
            pr.shard = op->shard->id;
            pr.base_seq = base;
            pr.count = count;
            pr.duplicate = duplicate;
            pr.n_dropped = op->n_dropped;
            pr.dropped = op->dropped;
            sl_response resp = SLUICE__V1__RESPONSE__INIT;
            resp.id = op->req->id;
            resp.body_case = SLUICE__V1__RESPONSE__BODY_PRODUCE;
            resp.produce = &pr;
            sl_conn_respond(c, &resp);
        }
    }
    if (err != SL_OK) {
        for (uint32_t i = 0; i < op->n_dedup; i++) {
            sl_msgdedup_forget(op->shard->stream, op->dedup_hashes[i]);
        }
    }
    sl_conn_request_done(c);
    sl_conn_release(c);
    op->shard->stream->inflight--;
    sl_request_free(op->req);
    free(op->rebuilt);
    free(op->dedup_hashes);
    free(op->dropped);
    free(op);
}

static void on_appended(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct sl_produce_op *op = ctx;
    sl_dedup_end(op->shard, op->producer_id, op->producer_seq, err, base_seq, count);
    produce_finish(op, err, base_seq, count, false);
}

/* Tries the append; SL_EAGAIN means "wait in the FIFO". */
static int produce_try(struct sl_produce_op *op)
{
    const ProtobufCBinaryData *bd = &op->req->produce->batch;
    const uint8_t *data = op->rebuilt != NULL ? op->rebuilt : bd->data;
    size_t len = op->rebuilt != NULL ? op->rebuilt_len : bd->len;
    unsigned flags = op->ack == SLUICE__V1__ACK_MODE__ACK_DURABLE ? SL_APPEND_DURABLE : 0;
    int rc = sl_bshard_append(op->shard, data, len, flags, on_appended, op);
    if (rc != SL_OK && rc != SL_EAGAIN) {
        sl_dedup_end(op->shard, op->producer_id, op->producer_seq, rc, 0, 0);
        produce_finish(op, rc, 0, 0, false);
    }
    return rc;
}

/* Drains the shard's produce FIFO while the shard takes appends. */
static void produce_drain(struct sl_bshard *b)
{
    while (b->produce_head != NULL) {
        struct sl_produce_op *op = b->produce_head;
        if (produce_try(op) == SL_EAGAIN) {
            return;
        }
        b->produce_head = op->next;
        if (b->produce_head == NULL) {
            b->produce_tail = NULL;
        }
    }
}

/* Checks that every keyed record of the batch hashes into the shard. */
static int check_routing(struct sl_server *srv, struct sl_bshard *b, const uint8_t *batch,
                         const struct sl_batch_header *h, char *why, size_t why_len)
{
    if (b->stream->shard_count == 1) {
        return SL_OK;
    }
    int rc = sl_server_scratch_reserve(srv, h->codec, h->records_len);
    if (rc != SL_OK) {
        snprintf(why, why_len, "batch decompresses to %u bytes (limit %u)", h->records_len,
                 4 * srv->cfg.batch_bytes_max);
        return rc;
    }
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, batch, h, srv->zctx, srv->scratch, srv->scratch_cap);
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
                     rv.seq - h->base_seq, sl_partition_shard(hash, b->stream->shard_count),
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
static int apply_msgdedup(struct sl_server *srv, struct sl_produce_op *op, const uint8_t *batch,
                          const struct sl_batch_header *h, bool *all_dup)
{
    *all_dup = false;
    struct sl_stream *st = op->shard->stream;
    uint64_t now = sl_clock_wall_ms();
    int rc = sl_server_scratch_reserve(srv, h->codec, h->records_len);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, batch, h, srv->zctx, srv->scratch, srv->scratch_cap);
    uint8_t *dup = NULL; /* per record, allocated at the first duplicate */
    uint32_t dups = 0, i = 0;
    struct sl_record_view rv;
    while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
        uint32_t idlen = 0;
        const char *id = dedup_id_of(&rv, &idlen);
        if (id != NULL) {
            uint64_t hash = sl_checksum64(id, idlen);
            if (sl_msgdedup_seen(st, hash, now, srv->cfg.dedup_window_ms)) {
                if (dup == NULL && (dup = calloc(h->record_count, 1)) == NULL) {
                    return SL_ENOMEM;
                }
                dup[i] = 1;
                dups++;
            } else {
                uint64_t *nh = realloc(op->dedup_hashes, (op->n_dedup + 1) * sizeof(*nh));
                if (nh == NULL) {
                    sl_msgdedup_forget(st, hash);
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
    const uint8_t *records = h->codec == SL_BATCH_CODEC_ZSTD ? srv->scratch
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

static void handle_produce(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__Produce *m = req->produce;
    char why[256];
    int rc;
    if (srv->cfg.auto_create_streams && sl_catalog_find(srv->catalog, m->stream) == NULL) {
        struct sl_stream *created = NULL;
        rc = sl_catalog_create(srv->catalog, m->stream, srv->cfg.default_shards, 0, 0, NULL,
                               &created, why, sizeof(why));
        if (rc != SL_OK) {
            done_error(c, req->id, rc, why);
            sl_request_free(req);
            return;
        }
    }
    struct sl_bshard *b = find_shard(srv, m->stream, m->shard, why, sizeof(why), &rc);
    if (b == NULL) {
        done_error(c, req->id, rc, why);
        sl_request_free(req);
        return;
    }
    /* The header and the fields that bound the records now; the body
     * checksum is verified by the shard as it copies the batch (on the
     * owner's thread), so the main loop does not hash every byte a second
     * time. Every decision taken here from unverified bytes without an
     * append behind it (a duplicate answered, records dropped) verifies
     * first. */
    struct sl_batch_header h;
    rc = sl_batch_peek(m->batch.data, m->batch.len, &h);
    if (rc == SL_OK && h.length > srv->cfg.batch_bytes_max) {
        rc = SL_ETOOBIG;
    } else if (rc == SL_OK && h.length != m->batch.len) {
        rc = h.length > m->batch.len ? SL_EAGAIN : SL_EPROTO;
    }
    if (rc == SL_OK) {
        rc = sl_batch_check_fields(m->batch.data, &h);
    }
    if (rc != SL_OK) {
        snprintf(why, sizeof(why), "invalid batch: %s",
                 rc == SL_ETOOBIG  ? "larger than batch_bytes_max"
                 : rc == SL_EAGAIN ? "truncated"
                 : rc == SL_EPROTO ? "length field disagrees with the bytes sent"
                                   : "checksum or header mismatch");
        done_error(c, req->id, rc == SL_EAGAIN ? SL_EPROTO : rc, why);
        sl_request_free(req);
        return;
    }
    rc = check_routing(srv, b, m->batch.data, &h, why, sizeof(why));
    if (rc != SL_OK) {
        done_error(c, req->id, rc, why);
        sl_request_free(req);
        return;
    }
    struct sl_dedup_entry *e = NULL;
    rc = sl_dedup_begin(b, h.producer_id, h.producer_seq, &e);
    if (rc == SL_EAGAIN) {
        done_error(c, req->id, SL_EAGAIN, "the same batch is still being appended; retry");
        sl_request_free(req);
        return;
    }
    struct sl_produce_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        if (rc == SL_OK) {
            sl_dedup_end(b, h.producer_id, h.producer_seq, SL_ENOMEM, 0, 0);
        }
        done_error(c, req->id, SL_ENOMEM, NULL);
        sl_request_free(req);
        return;
    }
    *op = (struct sl_produce_op){.srv = srv, .conn = c, .shard = b, .req = req,
                              .producer_id = h.producer_id, .producer_seq = h.producer_seq,
                              .ack = m->ack};
    sl_conn_hold(c);
    b->stream->inflight++;
    if (rc == SL_EEXIST && sl_batch_verify(m->batch.data, &h) != SL_OK) {
        produce_finish(op, SL_ECORRUPT, 0, 0, false);
        return;
    }
    if (rc == SL_EEXIST) {
        bool same = e->has_last && e->producer_seq == h.producer_seq;
        produce_finish(op, SL_OK, same ? e->base_seq : 0, same ? e->count : 0, true);
        return;
    }
    if (srv->cfg.dedup_window_ms > 0) {
        bool all_dup = false;
        rc = apply_msgdedup(srv, op, m->batch.data, &h, &all_dup);
        if (rc != SL_OK || all_dup) {
            sl_dedup_end(b, h.producer_id, h.producer_seq, rc == SL_OK ? SL_EEXIST : rc, 0, 0);
            produce_finish(op, rc, 0, 0, all_dup);
            return;
        }
    }
    if (b->produce_head == NULL && produce_try(op) != SL_EAGAIN) {
        return;
    }
    if (b->produce_tail != NULL) {
        b->produce_tail->next = op;
    } else {
        b->produce_head = op;
    }
    b->produce_tail = op;
}

/* ---- fetch ---------------------------------------------------------- */

struct sl_fetch_wait {
    struct sl_shard_read rd;
    struct sl_server *srv;
    struct sl_conn *conn;
    struct sl_bshard *shard;
    uint64_t req_id;
    uint64_t deadline_ms; /* 0: no waiting */
    uint32_t max_bytes;
    uint32_t buf_bytes; /* counted in srv->fetch_bytes */
    uint8_t *buf;
    struct sl_fetch_wait *prev;
    struct sl_fetch_wait *next;
    bool parked;
};

static void fetch_unpark(struct sl_fetch_wait *fw)
{
    struct sl_bshard *b = fw->shard;
    if (!fw->parked) {
        return;
    }
    if (fw->prev != NULL) {
        fw->prev->next = fw->next;
    } else {
        b->waiters = fw->next;
    }
    if (fw->next != NULL) {
        fw->next->prev = fw->prev;
    }
    fw->prev = fw->next = NULL;
    fw->parked = false;
}

static void fetch_finish(struct sl_fetch_wait *fw, int err)
{
    struct sl_conn *c = fw->conn;
    struct sl_bshard *b = fw->shard;
    struct sl_shard_stats ss;
    sl_bshard_stats(b, &ss);
    Sluice__V1__FetchResponse fr = SLUICE__V1__FETCH_RESPONSE__INIT;
    fr.shard = b->id;
    fr.first_seq = ss.first_seq;
    fr.tail_seq = ss.visible_seq;
    fr.tail_time_ms = ss.visible_time_ms;
    fr.next_seq = err == SL_OK ? fw->rd.next_seq : ss.first_seq;
    if (err == SL_OK) {
        fr.batches.data = fw->buf;
        fr.batches.len = fw->rd.len;
    }
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = fw->req_id;
    resp.code = (Sluice__V1__ErrorCode)err;
    char msg[160] = "";
    if (err == SL_ETRIMMED) {
        snprintf(msg, sizeof(msg), "position is below the oldest retained record (%" PRIu64 ")",
                 ss.first_seq);
    } else if (err != SL_OK) {
        snprintf(msg, sizeof(msg), "fetch from %s/%u failed: %s", b->stream->name, b->id,
                 sl_strerror(err));
    }
    resp.message = msg;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_FETCH;
    resp.fetch = &fr;
    sl_conn_respond(c, &resp);
    sl_conn_request_done(c);
    sl_conn_release(c);
    b->stream->inflight--;
    fw->srv->fetch_bytes -= fw->buf_bytes;
    free(fw->buf);
    free(fw);
}

static void fetch_issue(struct sl_fetch_wait *fw);

static void on_fetch_read(struct sl_shard_read *rd, int err)
{
    struct sl_fetch_wait *fw = sl_container_of(rd, struct sl_fetch_wait, rd);
    if (err == SL_ETOOBIG && rd->need_bytes <= fw->srv->cfg.max_frame_bytes - FETCH_FRAME_SLACK) {
        uint8_t *n = realloc(fw->buf, rd->need_bytes);
        if (n != NULL) {
            fw->srv->fetch_bytes += rd->need_bytes - fw->buf_bytes;
            fw->buf_bytes = rd->need_bytes;
            fw->buf = n;
            fw->rd.buf_cap = rd->need_bytes;
            fetch_issue(fw);
            return;
        }
        err = SL_ENOMEM;
    }
    if (err == SL_OK && rd->len == 0 && fw->deadline_ms > 0 && !fw->srv->stopping &&
        !fw->shard->stream->deleted) {
        /* At the tail: park until records arrive or the wait expires. */
        fw->rd.from = SL_READ_SEQ;
        fw->rd.seq = rd->next_seq;
        fw->parked = true;
        fw->next = fw->shard->waiters;
        fw->prev = NULL;
        if (fw->next != NULL) {
            fw->next->prev = fw;
        }
        fw->shard->waiters = fw;
        return;
    }
    fetch_finish(fw, err);
}

static void fetch_issue(struct sl_fetch_wait *fw)
{
    fw->rd.buf = fw->buf;
    fw->rd.cb = on_fetch_read;
    sl_bshard_read(fw->shard, &fw->rd);
}

/* Called by the shard when new records became visible. */
void sl_handle_shard_listener(void *ctx, struct sl_shard *s)
{
    (void)s;
    struct sl_bshard *b = ctx;
    produce_drain(b);
    sl_queue_shard_progress(NULL, b);
    struct sl_fetch_wait *fw = b->waiters;
    b->waiters = NULL;
    while (fw != NULL) {
        struct sl_fetch_wait *next = fw->next;
        fw->parked = false;
        fw->prev = fw->next = NULL;
        fetch_issue(fw);
        fw = next;
    }
}

static void fetch_wake_all(struct sl_bshard *b, int err)
{
    while (b->waiters != NULL) {
        struct sl_fetch_wait *fw = b->waiters;
        fetch_unpark(fw);
        fw->rd.len = 0;
        fetch_finish(fw, err);
    }
}

static void handle_fetch(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__Fetch *m = req->fetch;
    char why[256];
    int rc;
    struct sl_bshard *b = find_shard(srv, m->stream, m->shard, why, sizeof(why), &rc);
    if (b == NULL) {
        done_error(c, req->id, rc, why);
        return;
    }
    uint32_t limit = srv->cfg.max_frame_bytes - FETCH_FRAME_SLACK;
    uint32_t max_bytes = m->max_bytes == 0 ? FETCH_DEFAULT_BYTES : m->max_bytes;
    max_bytes = max_bytes > limit ? limit : max_bytes;
    uint32_t cap = max_bytes < FETCH_MIN_BUF ? FETCH_MIN_BUF : max_bytes;
    cap = cap > limit ? limit : cap;
    uint64_t left = SL_FETCH_MEMORY_MAX - srv->fetch_bytes;
    if (left < FETCH_MIN_BUF) {
        done_error(c, req->id, SL_EAGAIN, "the broker's fetch memory is in use; retry");
        return;
    }
    if (cap > left) { /* smaller answers under memory pressure */
        cap = (uint32_t)left;
        max_bytes = max_bytes > cap ? cap : max_bytes;
    }
    struct sl_fetch_wait *fw = calloc(1, sizeof(*fw));
    uint8_t *buf = malloc(cap);
    if (fw == NULL || buf == NULL) {
        free(fw);
        free(buf);
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    struct sl_shard_stats ss;
    sl_bshard_stats(b, &ss);
    fw->srv = srv;
    fw->conn = c;
    fw->shard = b;
    fw->req_id = req->id;
    fw->buf = buf;
    fw->max_bytes = max_bytes;
    uint32_t wait = m->max_wait_ms < srv->cfg.fetch_wait_max_ms ? m->max_wait_ms
                                                                : srv->cfg.fetch_wait_max_ms;
    fw->deadline_ms = wait > 0 ? sl_clock_mono_ns() / 1000000u + wait : 0;
    fw->rd.buf_cap = cap;
    fw->rd.max_bytes = max_bytes;
    fw->rd.from = SL_READ_SEQ;
    const Sluice__V1__Position *p = m->position;
    Sluice__V1__PositionKind kind = p != NULL ? p->kind : SLUICE__V1__POSITION_KIND__TRIM_HORIZON;
    switch (kind) {
    case SLUICE__V1__POSITION_KIND__TRIM_HORIZON:
        fw->rd.seq = ss.first_seq;
        break;
    case SLUICE__V1__POSITION_KIND__LATEST:
        fw->rd.seq = ss.visible_seq;
        break;
    case SLUICE__V1__POSITION_KIND__AT_SEQUENCE:
        fw->rd.seq = p->seq;
        break;
    case SLUICE__V1__POSITION_KIND__AFTER_SEQUENCE:
        fw->rd.seq = p->seq == UINT64_MAX ? p->seq : p->seq + 1;
        break;
    case SLUICE__V1__POSITION_KIND__AT_TIMESTAMP:
        fw->rd.from = SL_READ_TIME;
        fw->rd.time_ms = p->time_ms;
        break;
    default:
        free(fw);
        free(buf);
        done_error(c, req->id, SL_EINVAL, "unknown position kind");
        return;
    }
    if (fw->rd.from == SL_READ_SEQ && fw->rd.seq > ss.visible_seq) {
        snprintf(why, sizeof(why), "sequence %" PRIu64 " is beyond the shard's tail (%" PRIu64 ")",
                 fw->rd.seq, ss.visible_seq);
        free(fw);
        free(buf);
        done_error(c, req->id, SL_EINVAL, why);
        return;
    }
    sl_conn_hold(c);
    b->stream->inflight++;
    fw->buf_bytes = cap;
    srv->fetch_bytes += cap;
    fetch_issue(fw);
}

/* ---- checkpoints ---------------------------------------------------- */

struct commit_op {
    struct sl_conn *conn;
    struct sl_stream *stream;
    uint64_t req_id;
};

static void on_committed(void *ctx, int err)
{
    struct commit_op *op = ctx;
    if (err == SL_OK) {
        Sluice__V1__CommitCheckpointResponse cr = SLUICE__V1__COMMIT_CHECKPOINT_RESPONSE__INIT;
        sl_response resp = SLUICE__V1__RESPONSE__INIT;
        resp.id = op->req_id;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_COMMIT_CHECKPOINT;
        resp.commit_checkpoint = &cr;
        sl_conn_respond(op->conn, &resp);
    } else {
        sl_conn_respond_error(op->conn, op->req_id, err, "checkpoint commit failed");
    }
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    op->stream->inflight--;
    free(op);
}

static void handle_commit(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__CommitCheckpoint *m = req->commit_checkpoint;
    char why[256];
    int rc;
    struct sl_bshard *b = find_shard(srv, m->stream, m->shard, why, sizeof(why), &rc);
    if (b == NULL) {
        done_error(c, req->id, rc, why);
        return;
    }
    struct sl_shard_stats ss;
    sl_bshard_stats(b, &ss);
    if (m->seq > ss.visible_seq) {
        snprintf(why, sizeof(why), "checkpoint %" PRIu64 " is beyond the shard's tail (%" PRIu64
                                   ")",
                 m->seq, ss.visible_seq);
        done_error(c, req->id, SL_EINVAL, why);
        return;
    }
    struct commit_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    *op = (struct commit_op){.conn = c, .stream = b->stream, .req_id = req->id};
    rc = sl_ckpt_commit(b->stream->ckpt, m->group, m->shard, m->seq, sl_clock_wall_ms(),
                        on_committed, op);
    if (rc != SL_OK) {
        free(op);
        snprintf(why, sizeof(why), "cannot commit checkpoint for group %s: %s", m->group,
                 sl_strerror(rc));
        done_error(c, req->id, rc, why);
        return;
    }
    sl_conn_hold(c);
    b->stream->inflight++;
}

struct ckpt_list {
    Sluice__V1__Checkpoint *items;
    Sluice__V1__Checkpoint **ptrs;
    char **groups;
    size_t n;
    size_t cap;
};

static void collect_ckpt(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                         uint64_t updated_ms)
{
    struct ckpt_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Sluice__V1__Checkpoint *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            return;
        }
        l->items = items;
        char **groups = realloc(l->groups, cap * sizeof(*groups));
        if (groups == NULL) {
            return;
        }
        l->groups = groups;
        l->cap = cap;
    }
    sluice__v1__checkpoint__init(&l->items[l->n]);
    l->items[l->n].shard = shard;
    l->items[l->n].seq = seq;
    l->items[l->n].updated_ms = updated_ms;
    l->groups[l->n] = (char *)group;
    l->n++;
}

static void handle_get_checkpoints(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__GetCheckpoints *m = req->get_checkpoints;
    struct sl_stream *st = sl_catalog_find(srv->catalog, m->stream);
    if (st == NULL) {
        done_error(c, req->id, SL_ENOTFOUND, "stream not found");
        return;
    }
    struct ckpt_list l = {0};
    sl_ckpt_foreach(st->ckpt, m->group, collect_ckpt, &l);
    l.ptrs = calloc(l.n + 1, sizeof(*l.ptrs));
    for (size_t i = 0; l.ptrs != NULL && i < l.n; i++) {
        l.ptrs[i] = &l.items[i];
    }
    Sluice__V1__GetCheckpointsResponse gr = SLUICE__V1__GET_CHECKPOINTS_RESPONSE__INIT;
    gr.n_checkpoints = l.ptrs != NULL ? l.n : 0;
    gr.checkpoints = l.ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_GET_CHECKPOINTS;
    resp.get_checkpoints = &gr;
    sl_conn_respond(c, &resp);
    free(l.items);
    free(l.ptrs);
    free(l.groups);
    sl_conn_request_done(c);
}

static void handle_list_groups(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    struct sl_stream *st = sl_catalog_find(srv->catalog, req->list_groups->stream);
    if (st == NULL) {
        done_error(c, req->id, SL_ENOTFOUND, "stream not found");
        return;
    }
    struct ckpt_list l = {0};
    sl_ckpt_foreach(st->ckpt, NULL, collect_ckpt, &l);
    /* foreach runs in group-name order: keep the first of each run */
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (n == 0 || strcmp(l.groups[n - 1], l.groups[i]) != 0) {
            l.groups[n++] = l.groups[i];
        }
    }
    Sluice__V1__ListGroupsResponse lr = SLUICE__V1__LIST_GROUPS_RESPONSE__INIT;
    lr.n_groups = n;
    lr.groups = l.groups;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LIST_GROUPS;
    resp.list_groups = &lr;
    sl_conn_respond(c, &resp);
    free(l.items);
    free(l.groups);
    sl_conn_request_done(c);
}

static void handle_group_lag(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    const Sluice__V1__GroupLag *m = req->group_lag;
    struct sl_stream *st = sl_catalog_find(srv->catalog, m->stream);
    if (st == NULL) {
        done_error(c, req->id, SL_ENOTFOUND, "stream not found");
        return;
    }
    Sluice__V1__ShardLag *items = calloc(st->shard_count, sizeof(*items));
    Sluice__V1__ShardLag **ptrs = calloc(st->shard_count, sizeof(*ptrs));
    if (items == NULL || ptrs == NULL) {
        free(items);
        free(ptrs);
        done_error(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    for (uint32_t i = 0; i < st->shard_count; i++) {
        struct sl_shard_stats ss;
        sl_bshard_stats(&st->shards[i], &ss);
        uint64_t seq = 0, updated = 0;
        if (sl_ckpt_get(st->ckpt, m->group, i, &seq, &updated) != SL_OK || seq < ss.first_seq) {
            seq = ss.first_seq;
        }
        sluice__v1__shard_lag__init(&items[i]);
        items[i].shard = i;
        items[i].checkpoint = seq;
        items[i].tail_seq = ss.visible_seq;
        items[i].records_behind = ss.visible_seq > seq ? ss.visible_seq - seq : 0;
        uint64_t t = 0;
        if (items[i].records_behind > 0 &&
            sl_bshard_time_near_seq(&st->shards[i], seq, &t) == SL_OK &&
            ss.visible_time_ms > t) {
            items[i].ms_behind = ss.visible_time_ms - t;
        }
        ptrs[i] = &items[i];
    }
    Sluice__V1__GroupLagResponse lr = SLUICE__V1__GROUP_LAG_RESPONSE__INIT;
    lr.n_shards = st->shard_count;
    lr.shards = ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_GROUP_LAG;
    resp.group_lag = &lr;
    sl_conn_respond(c, &resp);
    free(items);
    free(ptrs);
    sl_conn_request_done(c);
}

/* ---- dispatch ------------------------------------------------------- */

void sl_handle_request(struct sl_server *srv, struct sl_conn *c, sl_request *req)
{
    if (!c->hello_done && req->body_case != SLUICE__V1__REQUEST__BODY_HELLO) {
        done_error(c, req->id, SL_EPROTO, "the first request on a connection must be Hello");
        sl_request_free(req);
        return;
    }
    switch (req->body_case) {
    case SLUICE__V1__REQUEST__BODY_HELLO:
        handle_hello(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_CREATE_STREAM:
        handle_create(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DELETE_STREAM:
        handle_delete(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_LIST_STREAMS:
        handle_list(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DESCRIBE_STREAM:
        handle_describe(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_PRODUCE:
        handle_produce(srv, c, req); /* takes req */
        return;
    case SLUICE__V1__REQUEST__BODY_FETCH:
        handle_fetch(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_COMMIT_CHECKPOINT:
        handle_commit(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_GET_CHECKPOINTS:
        handle_get_checkpoints(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_LIST_GROUPS:
        handle_list_groups(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_GROUP_LAG:
        handle_group_lag(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_CREATE_GROUP:
        sl_queue_create_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DELETE_GROUP:
        sl_queue_delete_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_LIST_QUEUE_GROUPS:
        sl_queue_list_groups(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_RECEIVE:
        sl_queue_receive(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_ACK:
        sl_queue_ack(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_NACK:
        sl_queue_nack(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_EXTEND_VISIBILITY:
        sl_queue_extend(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_GROUP_STATS:
        sl_queue_stats(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_PURGE:
        sl_queue_purge(srv, c, req);
        break;
    default:
        done_error(c, req->id, SL_EUNSUPPORTED, "unknown request type");
        break;
    }
    sl_request_free(req);
}

void sl_handle_tick(struct sl_server *srv, uint64_t now_ms)
{
    sl_queue_tick(srv, now_ms);
    for (struct sl_stream *st = sl_catalog_first(srv->catalog); st != NULL; st = st->next) {
        for (uint32_t i = 0; i < st->shard_count; i++) {
            struct sl_fetch_wait *fw = st->shards[i].waiters;
            while (fw != NULL) {
                struct sl_fetch_wait *next = fw->next;
                if (now_ms >= fw->deadline_ms) {
                    fetch_unpark(fw);
                    fw->rd.len = 0;
                    fetch_finish(fw, SL_OK);
                }
                fw = next;
            }
        }
    }
}

void sl_handle_stop(struct sl_server *srv)
{
    sl_queue_stop(srv);
    for (struct sl_stream *st = sl_catalog_first(srv->catalog); st != NULL; st = st->next) {
        for (uint32_t i = 0; i < st->shard_count; i++) {
            struct sl_fetch_wait *fw = st->shards[i].waiters;
            while (fw != NULL) {
                struct sl_fetch_wait *next = fw->next;
                fetch_unpark(fw);
                fw->rd.len = 0;
                fetch_finish(fw, SL_OK);
                fw = next;
            }
        }
    }
}
