/* producer.c - sluice_producer: asynchronous, batching, idempotent producing.
 *
 * Path of a record: sluice_produce (any thread) picks the shard (XXH3-64 of the key, or
 * round-robin for an empty key) and appends it to that shard's open batch (an
 * sl_batch_builder over a buffer of batch_bytes). A batch is sealed when full, when it is
 * linger_ms old, or on flush; the flusher thread then finishes it (compression, checksums,
 * producer_id + producer_seq) exactly once and sends Produce asynchronously.
 *
 * Ordering and de-duplication: each shard has up to max_inflight_batches batches in
 * flight, sent in the order they were sealed. A batch that fails transiently (SL_EAGAIN,
 * SL_ECLOSED, a timeout) goes back into its shard's queue in that order and is resent
 * byte-for-byte with the same producer_seq (once every batch sent before it has its
 * answer), so the broker recognises a retry of a stored batch ("duplicate"). The broker
 * keeps the order (Produce.in_order): it refuses (SL_EAGAIN) a batch that does not follow
 * this producer's last one stored or in flight, so the batches behind a failure fail too
 * and are resent after it, in order. A shard's batches in flight all go out on one
 * connection (sl_client_call_async_on): a broker restarted past this producer's memory
 * could not tell a batch sent on a new connection from the first of the producer.
 *
 * Producer ids: each shard's batches carry the shard's current producer id and a
 * sequence counted from 1, both stamped when a batch is taken off the queue to be sent
 * (so sequences follow the queue's order). When a batch fails for good (reported to the
 * application), the shard takes a new random id and counts from 1 again: the broker would
 * otherwise wait for the given-up sequence forever. Batches already stamped under the old
 * id (in flight behind it) come back refused and are stamped again under the new one
 * (sl_batch_restamp_producer) when resent. ACK_NONE batches carry no id (no retries).
 *
 * Resharding (#16) - routing by the open shards' ranges, re-partitioning a closed
 * shard's batches - is in producer_reshard.c.
 *
 * Cluster mode (#14): each batch goes to its shard's leader (sl_client_call_async_shard).
 * A refusal because the leader moved (NOT_LEADER, FENCED), or a broken connection in a
 * cluster, is a transient failure like the others: the batch goes back into its queue with
 * its producer id and sequence, the flusher learns the leaders again (route_stale) before
 * it sends anything, and the resend is de-duplicated by the broker if it was stored.
 *
 * Memory: `buffered` counts the bytes of records produced but not yet reported (bounded by
 * buffer_bytes); produce blocks or returns SL_EAGAIN above it.
 *
 * Threads: `mu` guards the shard queues and counters. The flusher thread is the only user
 * of the zstd context and scratch. Delivery callbacks run on the client's I/O thread
 * (acknowledgements), on the flusher thread (ACK_NONE, send failures) and never under `mu`.
 */
#include "client/producer_int.h"
#include "client/route.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/compress.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void deadline_ts(uint64_t wait_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(wait_ms / 1000);
    ts->tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* A random non-zero producer id (0 means "no de-duplication"). */
static uint64_t random_producer_id(void)
{
    uint64_t id = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&id, sizeof(id), 1, f) != 1) {
            id = 0;
        }
        fclose(f);
    }
    if (id == 0) {
        id = sl_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ sl_clock_wall_ms();
    }
    return id != 0 ? id : 1;
}

void sl_producer_batch_free(struct pbatch *b)
{
    if (b != NULL) {
        free(b->buf);
        free(b->dels);
        free(b);
    }
}

static struct pbatch *batch_new(struct sluice_producer *p, uint32_t shard, size_t cap)
{
    struct pbatch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->buf = malloc(cap);
    b->dels_cap = 64;
    b->dels = malloc(b->dels_cap * sizeof(*b->dels));
    if (b->buf == NULL || b->dels == NULL) {
        sl_producer_batch_free(b);
        return NULL;
    }
    b->p = p;
    b->shard = shard;
    b->opened_ms = sl_clock_mono_ms();
    sl_batch_builder_init(&b->b, b->buf, cap);
    return b;
}

/* Moves the shard's open batch to its send queue (under mu). */
void sl_producer_seal_locked(struct sluice_producer *p, struct pshard *s)
{
    struct pbatch *b = s->open;
    if (b == NULL) {
        return;
    }
    s->open = NULL;
    if (p->opts.on_trace != NULL) {
        b->sealed_ns = sl_clock_mono_ns();
    }
    b->order = s->next_order++;
    b->next = NULL;
    if (s->tail != NULL) {
        s->tail->next = b;
    } else {
        s->head = b;
    }
    s->tail = b;
    pthread_cond_signal(&p->wake_cv);
}

/* Reports `err` (or the assigned sequences) for every record of `b`, then releases its
 * accounting and frees it. Called without mu. */
/* `dropped` (sorted, may be NULL): indexes of records the broker did not
 * store (de-dup ids seen before): reported OK with SLUICE_SEQ_UNKNOWN; the
 * stored ones got consecutive sequences from `base`. */
static void batch_complete_dropped(struct sluice_producer *p, struct pbatch *b, int err,
                                   uint64_t base, const uint32_t *dropped, size_t n_dropped)
{
    uint32_t n = b->b.count;
    uint64_t stored = 0;
    size_t d = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool was_dropped = d < n_dropped && dropped[d] == i;
        d += was_dropped ? 1 : 0;
        uint64_t seq = err != SL_OK || base == SLUICE_SEQ_UNKNOWN || was_dropped
                           ? SLUICE_SEQ_UNKNOWN
                           : base + stored;
        stored += was_dropped ? 0 : 1;
        if (b->dels[i].cb != NULL) {
            b->dels[i].cb(b->dels[i].ctx, err, b->shard, seq);
        }
    }
    pthread_mutex_lock(&p->mu);
    struct pshard *s = p->shards[b->shard];
    if (p->opts.ack != SLUICE_ACK_NONE) {
        SL_ASSERT(s->inflight > 0);
        s->inflight--;
        if (err != SL_OK && b->producer_id != 0 && b->producer_id == s->producer_id) {
            /* given up: the broker would wait for this sequence; go on afresh */
            s->producer_id = random_producer_id();
            s->next_producer_seq = 1;
        }
    }
    SL_ASSERT(p->buffered >= b->acct_bytes && p->outstanding >= n);
    p->buffered -= b->acct_bytes;
    p->outstanding -= n;
    if (err == SL_OK) {
        p->stats.records_sent += n;
        p->stats.batches_sent++;
    } else {
        p->stats.records_failed += n;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_cond_signal(&p->wake_cv);
    pthread_mutex_unlock(&p->mu);
    sl_producer_batch_free(b);
}

static void batch_complete(struct sluice_producer *p, struct pbatch *b, int err, uint64_t base)
{
    batch_complete_dropped(p, b, err, base, NULL, 0);
}

/* Puts a batch that was in flight back into its shard's queue, in the queue's order (a later
 * batch of the shard may have failed and come back first). Under mu. */
void sl_producer_requeue_locked(struct sluice_producer *p, struct pbatch *b)
{
    struct pshard *s = p->shards[b->shard];
    struct pbatch **pp = &s->head;
    while (*pp != NULL && (*pp)->order < b->order) {
        pp = &(*pp)->next;
    }
    b->next = *pp;
    *pp = b;
    if (b->next == NULL) {
        s->tail = b;
    }
    SL_ASSERT(s->inflight > 0);
    s->inflight--;
    pthread_cond_signal(&p->wake_cv);
}

/* A send that failed with `err`: back to the head of its shard's queue after a backoff when
 * transient and retries remain; otherwise reported. Called without mu. */
static void batch_failed(struct sluice_producer *p, struct pbatch *b, int err)
{
    /* A leader that moved (NOT_LEADER, FENCED) or, in a cluster, a connection to it that
     * broke or a request that timed out (a leader paused or cut off is replaced while its
     * clients wait), or a stream it does not know yet (just created: the other brokers
     * make it in their catalogs as they see it in ZooKeeper; Kafka's producer retries
     * UNKNOWN_TOPIC_OR_PARTITION alike): learn the leaders again before the resend, which
     * keeps its producer id and sequence, so a batch the old leader did store is answered
     * "duplicate" (#14). */
    int moved = err == SL_ENOT_LEADER || err == SL_EFENCED ||
                ((err == SL_ECLOSED || err == SL_EAGAIN || err == SL_ENOTFOUND) &&
                 sl_client_route_cluster(p->c));
    int transient = err == SL_EAGAIN || err == SL_ECLOSED || moved;
    uint64_t now = sl_clock_mono_ms();
    pthread_mutex_lock(&p->mu);
    if (transient && b->attempts < p->opts.retries) {
        if (moved) { /* (resent early once the leaders are learned anew: moved_check_locked) */
            struct pshard *s = p->shards[b->shard];
            s->moved = 1;
            s->moved_leader = b->sent_leader;
            s->moved_epoch = b->sent_epoch;
        }
        uint64_t backoff = (uint64_t)p->opts.retry_backoff_ms
                           << (b->attempts < 16 ? b->attempts : 16);
        b->attempts++;
        b->retry_at_ms = now + (backoff > PRODUCER_BACKOFF_MAX_MS ? PRODUCER_BACKOFF_MAX_MS
                                                                   : backoff);
        sl_producer_requeue_locked(p, b);
        p->stats.retries++;
        p->route_stale = p->route_stale || moved;
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pthread_mutex_unlock(&p->mu);
    batch_complete(p, b, err, SLUICE_SEQ_UNKNOWN);
}

/* Produce response (client I/O thread, or a sender's thread on a broken write). */
static void on_produce_done(void *ctx, int err, const char *msg, sl_response *resp)
{
    (void)msg;
    struct pbatch *b = ctx;
    struct sluice_producer *p = b->p;
    /* A duplicate of an older batch may carry no sequence (count 0);
     * otherwise stored + dropped records must account for the batch. */
    if (err == SL_OK &&
        (resp == NULL || resp->body_case != SLUICE__V1__RESPONSE__BODY_PRODUCE ||
         (resp->produce->count + resp->produce->n_dropped != b->b.count &&
          !(resp->produce->duplicate && resp->produce->count == 0)))) {
        err = SL_EPROTO;
    }
    uint64_t base = err == SL_OK && resp->produce->count > 0 ? resp->produce->base_seq
                                                             : SLUICE_SEQ_UNKNOWN;
    if (err == SL_OK && resp->produce->duplicate) {
        pthread_mutex_lock(&p->mu);
        p->stats.duplicates++;
        pthread_mutex_unlock(&p->mu);
    }
    if (err == SL_ESHARD_CLOSED && p->opts.ack != SLUICE_ACK_NONE) {
        sl_response_free(resp);
        sl_producer_refused_closed(p, b);
    } else if (err != SL_OK) {
        sl_response_free(resp);
        batch_failed(p, b, err);
    } else {
        if (p->opts.on_trace != NULL) {
            uint64_t ns[SLUICE_PT_N] = {[SLUICE_PT_SEALED] = b->sealed_ns,
                                        [SLUICE_PT_SENT] = b->sent_ns,
                                        [SLUICE_PT_ACK_RECEIVED] = sl_clock_mono_ns()};
            /* the broker's stages, RECEIVED .. ANSWERED, as many as it sent */
            size_t n = resp->produce->n_trace_ns;
            n = n < SLUICE_PT_ANSWERED - SLUICE_PT_RECEIVED + 1
                    ? n : SLUICE_PT_ANSWERED - SLUICE_PT_RECEIVED + 1;
            for (size_t i = 0; i < n; i++) {
                ns[SLUICE_PT_RECEIVED + i] = resp->produce->trace_ns[i];
            }
            p->opts.on_trace(p->opts.on_trace_arg, b->shard, base, resp->produce->count, ns);
        }
        batch_complete_dropped(p, b, SL_OK, base, resp->produce->dropped,
                               resp->produce->n_dropped);
        sl_response_free(resp);
    }
}

/* Finishes (once) and sends one batch. Flusher thread, without mu. */
static void batch_send(struct sluice_producer *p, struct pbatch *b)
{
    if (!b->finished) {
        size_t records = b->b.len - SL_BATCH_HEADER_BYTES;
        size_t need = p->codec == SL_BATCH_CODEC_ZSTD ? sl_compress_bound(records) : 0;
        if (need > p->scratch_cap) {
            uint8_t *ns = realloc(p->scratch, need);
            if (ns == NULL) {
                p->shards[b->shard]->conn_gen = PSHARD_NO_CONN; /* (its followers wait) */
                batch_complete(p, b, SL_ENOMEM, SLUICE_SEQ_UNKNOWN);
                return;
            }
            p->scratch = ns;
            p->scratch_cap = need;
        }
        int rc =
            sl_batch_builder_finish(&b->b, p->codec, p->opts.compression_level, p->z, p->scratch,
                                    p->scratch_cap, b->producer_id, b->producer_seq, &b->len);
        if (rc != SL_OK) {
            p->shards[b->shard]->conn_gen = PSHARD_NO_CONN;
            batch_complete(p, b, rc, SLUICE_SEQ_UNKNOWN);
            return;
        }
        b->finished = 1;
    } else if (b->restamp) {
        sl_batch_restamp_producer(b->buf, b->len, b->producer_id, b->producer_seq);
    }
    b->restamp = 0;
    Sluice__V1__Produce body = SLUICE__V1__PRODUCE__INIT;
    body.stream = p->stream;
    body.shard = b->shard;
    body.ack = (Sluice__V1__AckMode)p->opts.ack;
    body.batch.data = b->buf;
    body.batch.len = b->len;
    body.in_order = p->opts.ack != SLUICE_ACK_NONE;
    body.trace = p->opts.on_trace != NULL;
    if (body.trace) {
        b->sent_ns = sl_clock_mono_ns();
    }
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req.produce = &body;
    if (p->opts.ack == SLUICE_ACK_NONE) {
        int rc = sl_client_send_noreply_shard(p->c, p->stream, b->shard, &req);
        if (rc != SL_OK) {
            batch_failed(p, b, rc);
        } else {
            batch_complete(p, b, SL_OK, SLUICE_SEQ_UNKNOWN);
        }
        return;
    }
    /* Behind unanswered batches, only on their connection: the broker stores one
     * connection's batches in order, but this one sent on a new connection could reach a
     * broker that restarted past this producer's memory before the earlier ones come back
     * failed and are resent - then stored first, they would be answered "duplicate" and
     * lost (the parked crash loop found it). It fails with SL_ECLOSED and is resent after
     * them. */
    struct pshard *s = p->shards[b->shard];
    uint64_t gen = b->pin ? s->conn_gen : 0;
    int sent_before = b->maybe_stored;
    b->maybe_stored = 1; /* before the call: its answer may come before it returns */
    sl_client_route_leader(p->c, p->stream, b->shard, &b->sent_leader, &b->sent_epoch);
    int rc = sl_client_call_async_shard(p->c, p->stream, b->shard, &req, 0, on_produce_done, b,
                                        &gen);
    s->conn_gen = rc == SL_OK ? gen : PSHARD_NO_CONN;
    if (rc != SL_OK) {
        b->maybe_stored = sent_before; /* nothing went out this time */
        batch_failed(p, b, rc);
    }
}

/* Bytes a record takes in a batch at most: its bytes plus every varint at 5 bytes. */
size_t sl_producer_record_need(const struct sl_record *rec)
{
    size_t n = (size_t)rec->key_len + rec->value_len + 5u * 5u + 10u;
    for (uint32_t i = 0; i < rec->attr_count; i++) {
        n += (size_t)rec->attrs[i].key_len + rec->attrs[i].value_len + 10u;
    }
    return n;
}

/* Waits for buffer space (or fails), under mu. */
static int reserve_locked(struct sluice_producer *p, size_t need)
{
    while (!p->closing && p->buffered > 0 && p->buffered + need > p->opts.buffer_bytes) {
        if (!p->opts.block_when_full) {
            sl_client_set_error("producer buffer full (%zu bytes)", p->opts.buffer_bytes);
            return SL_EAGAIN;
        }
        pthread_cond_wait(&p->cv, &p->mu);
    }
    if (p->closing) {
        sl_client_set_error("producer is closing");
        return SL_ECLOSED;
    }
    p->buffered += need;
    return SL_OK;
}

/* Appends the record to the shard's open batch, opening (or sealing and reopening) one as
 * needed. Under mu. */
int sl_producer_append_locked(struct sluice_producer *p, uint32_t shard,
                              const struct sl_record *rec, size_t need, sluice_delivery_cb cb,
                              void *ctx)
{
    struct pshard *s = p->shards[shard];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->open == NULL) {
            size_t cap = SL_BATCH_HEADER_BYTES + need;
            cap = cap > p->opts.batch_bytes ? cap : p->opts.batch_bytes;
            s->open = batch_new(p, shard, cap);
            if (s->open == NULL) {
                sl_client_set_error("out of memory");
                return SL_ENOMEM;
            }
            /* The flusher may be asleep until its idle wake-up: it must
             * learn this batch's linger deadline now. */
            pthread_cond_signal(&p->wake_cv);
        }
        struct pbatch *b = s->open;
        if (b->b.count == b->dels_cap) {
            struct pdelivery *nd = realloc(b->dels, 2u * b->dels_cap * sizeof(*nd));
            if (nd == NULL) {
                sl_client_set_error("out of memory");
                return SL_ENOMEM;
            }
            b->dels = nd;
            b->dels_cap *= 2;
        }
        int rc = sl_batch_builder_add(&b->b, rec);
        if (rc == SL_OK) {
            b->dels[b->b.count - 1] = (struct pdelivery){cb, ctx};
            b->acct_bytes += need;
            if (b->b.cap - b->b.len < PRODUCER_SEAL_SLACK) {
                sl_producer_seal_locked(p, s);
            }
            return SL_OK;
        }
        if ((rc != SL_ETOOBIG && rc != SL_ELIMIT) || b->b.count == 0) {
            sl_client_set_error("record rejected by the batch codec: %s", sl_strerror(rc));
            return rc;
        }
        sl_producer_seal_locked(p, s); /* full: send it and retry in a fresh batch */
    }
    sl_client_set_error("record does not fit in a batch");
    return SL_ETOOBIG;
}

/* ---- the flusher's pass: what to send, what to re-partition, what to report ---- */

static void work_init(struct pwork *w)
{
    w->send = NULL;
    w->send_tail = &w->send;
    w->fail = NULL;
    w->fail_tail = &w->fail;
}

/* Takes the head of `s`'s queue to be sent: stamped with the shard's producer id and next
 * sequence unless it already carries the current id (a resend). Under mu. */
void sl_producer_take_head_locked(struct sluice_producer *p, struct pshard *s, struct pwork *w)
{
    struct pbatch *h = s->head;
    SL_ASSERT(h != NULL);
    s->head = h->next;
    if (s->head == NULL) {
        s->tail = NULL;
    }
    if (p->opts.ack != SLUICE_ACK_NONE) {
        h->pin = s->inflight > 0;
        s->inflight++;
        if (h->producer_id != s->producer_id) { /* first send, or a new id since */
            h->restamp = h->finished;
            h->producer_id = s->producer_id;
            h->producer_seq = s->next_producer_seq++;
        }
    }
    h->next = NULL;
    *w->send_tail = h;
    w->send_tail = &h->next;
}

/* Puts `b` (off every queue) on the report list with `err`. Under mu. */
void sl_producer_fail_locked(struct sluice_producer *p, struct pbatch *b, int err, struct pwork *w)
{
    if (p->opts.ack != SLUICE_ACK_NONE) {
        p->shards[b->shard]->inflight++; /* batch_complete takes it off */
    }
    b->fail_err = err;
    b->next = NULL;
    *w->fail_tail = b;
    w->fail_tail = &b->next;
}

/* Seals lingering batches and takes the sendable ones off their queues; drains closed
 * shards (under mu). Fills `w` and sets *wake_ms to when something next becomes due. */
static void collect_locked(struct sluice_producer *p, uint64_t now, uint64_t *wake_ms,
                           struct pwork *w)
{
    work_init(w);
    *wake_ms = now + PRODUCER_IDLE_WAKE_MS;
    /* ascending ids: a closed shard drains into younger shards, which this pass then sees */
    for (uint32_t i = 0; i < p->shard_count; i++) {
        struct pshard *s = p->shards[i];
        if (s->closed) {
            if (sl_producer_shard_draining(s)) {
                sl_producer_drain_locked(p, s, now, wake_ms, w);
            }
            continue;
        }
        if (s->open != NULL) {
            /* SLUICE_LINGER_NONE: due now if the shard has nothing in flight or
             * queued, else when that completes (which wakes this thread): a
             * batch forms while one is in flight (sending a record alone
             * whenever the window has room measured worse: more, smaller
             * batches, each with its own write and fsync). Full batches
             * still go several at a time. */
            uint64_t due = p->opts.linger_ms != SLUICE_LINGER_NONE
                               ? s->open->opened_ms + p->opts.linger_ms
                           : s->inflight > 0 || s->head != NULL ? UINT64_MAX
                                                                : now;
            if (p->flush_now || p->closing || due <= now) {
                sl_producer_seal_locked(p, s);
            } else if (due < *wake_ms) {
                *wake_ms = due;
            }
        }
        /* the queue's head first, in order, while the shard has room in flight */
        struct pbatch *h;
        while ((h = s->head) != NULL && s->inflight < p->opts.max_inflight_batches) {
            if (h->retry_at_ms > now) {
                *wake_ms = h->retry_at_ms < *wake_ms ? h->retry_at_ms : *wake_ms;
                break;
            }
            if (h->attempts > 0 && s->inflight > 0) {
                /* A resend waits until every batch sent before it has its answer:
                 * the failures of a broken connection arrive one by one, and a
                 * later batch resent before an earlier one's failure is known
                 * could be stored first by a broker that no longer knows this
                 * producer (restarted past its memory). Failures are rare. */
                break;
            }
            sl_producer_take_head_locked(p, s, w);
        }
    }
    if (p->draining_len > 0) {
        sl_producer_draining_recount_locked(p); /* drained shards leave the list */
    }
    p->flush_now = 0;
}

/* Sends and reports what a pass collected. Called without mu. */
static void work_run(struct sluice_producer *p, struct pwork *w)
{
    while (w->send != NULL) {
        struct pbatch *n = w->send->next;
        batch_send(p, w->send);
        w->send = n;
    }
    while (w->fail != NULL) {
        struct pbatch *n = w->fail->next;
        batch_complete(p, w->fail, w->fail->fail_err, SLUICE_SEQ_UNKNOWN);
        w->fail = n;
    }
}

/* After the leaders were learned anew: a shard whose batches wait because its leader moved
 * has them resent at once when the table names another leader or epoch than the one they
 * went to (the controller elected one: no reason to sit out a backoff that doubled while it
 * did); when it names the same, the leaders are asked again in PRODUCER_MOVED_POLL_MS. A
 * shard with no resend waiting any more is done. Under mu (takes the client's lock inside:
 * the client never takes a producer's). */
static void moved_check_locked(struct sluice_producer *p)
{
    uint64_t now = sl_clock_mono_ms();
    bool again = false;
    for (uint32_t i = 0; i < p->shard_count; i++) {
        struct pshard *s = p->shards[i];
        if (s == NULL || !s->moved) {
            continue;
        }
        if (s->head == NULL || s->head->attempts == 0) {
            s->moved = 0; /* (resent, or failed for good) */
            continue;
        }
        int32_t node = SL_ROUTE_NONE, epoch = 0;
        sl_client_route_leader(p->c, p->stream, i, &node, &epoch);
        if (node == SL_ROUTE_NONE || (node == s->moved_leader && epoch == s->moved_epoch)) {
            again = true;
            continue;
        }
        for (struct pbatch *b = s->head; b != NULL; b = b->next) {
            b->retry_at_ms = b->retry_at_ms > now ? now : b->retry_at_ms;
        }
        s->moved = 0;
    }
    if (again) {
        p->route_stale = 1;
        p->route_retry_at_ms = now + PRODUCER_MOVED_POLL_MS;
    }
}

static void *flusher_main(void *arg)
{
    struct sluice_producer *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct pwork w;
        work_init(&w);
        sl_producer_layout_check_locked(p, sl_clock_mono_ms());
        if (p->route_stale && sl_clock_mono_ms() >= p->route_retry_at_ms) {
            /* before any resend: it goes to the leader learned now (rate-limited by the
             * client; a refusal or a failure waits for the next try) */
            p->route_stale = 0;
            pthread_mutex_unlock(&p->mu);
            int rrc = sl_client_route_refresh(p->c, p->stream, false);
            pthread_mutex_lock(&p->mu);
            if (rrc != SL_OK) {
                p->route_stale = 1;
                p->route_retry_at_ms = sl_clock_mono_ms() + SL_CLIENT_REFRESH_MS;
            } else {
                moved_check_locked(p);
            }
            continue;
        }
        if (p->layout_stale && sl_clock_mono_ms() >= p->layout_retry_at_ms) {
            pthread_mutex_unlock(&p->mu);
            struct sluice_stream_info *info = NULL;
            int rc = sluice_stream_describe(p->c, p->stream, &info);
            pthread_mutex_lock(&p->mu);
            sl_producer_layout_refresh_done_locked(p, rc, info, &w);
            sluice_stream_info_free(info);
        } else {
            uint64_t wake_ms = 0;
            collect_locked(p, sl_clock_mono_ms(), &wake_ms, &w);
            if (w.send == NULL && w.fail == NULL) {
                if (p->closing && p->outstanding == 0) {
                    break;
                }
                if (p->layout_stale && p->layout_retry_at_ms < wake_ms) {
                    wake_ms = p->layout_retry_at_ms;
                }
                if (p->route_stale && p->route_retry_at_ms < wake_ms) {
                    wake_ms = p->route_retry_at_ms;
                }
                if (p->opts.ack == SLUICE_ACK_NONE && p->layout_check_ms < wake_ms) {
                    wake_ms = p->layout_check_ms;
                }
                uint64_t now = sl_clock_mono_ms();
                struct timespec ts;
                deadline_ts(wake_ms > now ? wake_ms - now : 0, &ts);
                pthread_cond_timedwait(&p->wake_cv, &p->mu, &ts);
                continue;
            }
        }
        pthread_mutex_unlock(&p->mu);
        work_run(p, &w);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int sluice_produce(sluice_producer *p, const void *key, size_t key_len, const void *value,
                   size_t value_len, const struct sluice_attr *attrs, uint32_t attr_count,
                   sluice_delivery_cb cb, void *ctx)
{
    if (key_len > SL_RECORD_KEY_MAX || attr_count > SL_RECORD_ATTRS_MAX || value_len > UINT32_MAX) {
        sl_client_set_error("key over %u bytes or over %u attributes", SL_RECORD_KEY_MAX,
                            SL_RECORD_ATTRS_MAX);
        return SL_ETOOBIG;
    }
    struct sl_attr a[SL_RECORD_ATTRS_MAX];
    for (uint32_t i = 0; i < attr_count; i++) {
        a[i] = (struct sl_attr){attrs[i].key, attrs[i].key_len, attrs[i].value, attrs[i].value_len};
    }
    struct sl_record rec = {
        .key = key,
        .key_len = (uint32_t)key_len,
        .value = value,
        .value_len = (uint32_t)value_len,
        .attrs = a,
        .attr_count = attr_count,
        .timestamp_ms = sl_clock_wall_ms(),
    };
    size_t need = sl_producer_record_need(&rec);
    if (need + SL_BATCH_HEADER_BYTES > p->record_max) {
        sl_client_set_error("record of %zu bytes exceeds the batch limit %zu", need, p->record_max);
        return SL_ETOOBIG;
    }
    uint64_t hash = key_len > 0 ? sl_partition_hash(key, key_len) : 0;
    pthread_mutex_lock(&p->mu);
    int rc = reserve_locked(p, need);
    if (rc != SL_OK) {
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    /* a key's hash picks its shard (behind a draining one); no key: the open ones in turn */
    uint32_t shard = key_len == 0 ? p->layout.open[p->rr++ % p->layout.open_len].shard
                                  : sl_producer_route_locked(p, hash, 0);
    rc = sl_producer_append_locked(p, shard, &rec, need, cb, ctx);
    if (rc == SL_OK) {
        p->outstanding++;
    } else {
        p->buffered -= need;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int sluice_producer_flush(sluice_producer *p, uint32_t timeout_ms)
{
    struct timespec ts;
    deadline_ts(timeout_ms, &ts);
    pthread_mutex_lock(&p->mu);
    p->flush_now = 1;
    pthread_cond_signal(&p->wake_cv);
    int rc = SL_OK;
    while (p->outstanding > 0 && rc == SL_OK) {
        if (timeout_ms == 0) {
            pthread_cond_wait(&p->cv, &p->mu);
        } else if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) != 0 && p->outstanding > 0) {
            sl_client_set_error("flush timed out with %llu records unacknowledged",
                                (unsigned long long)p->outstanding);
            rc = SL_EAGAIN;
        }
        /* Records produced during the flush may have been put in new open batches. */
        p->flush_now = 1;
        pthread_cond_signal(&p->wake_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void sluice_producer_stats(sluice_producer *p, struct sluice_producer_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

uint32_t sluice_producer_shard_count(const sluice_producer *p)
{
    return __atomic_load_n(&p->shard_count, __ATOMIC_RELAXED); /* grown under mu */
}

static void producer_opts_defaults(struct sluice_producer_opts *o)
{
    o->batch_bytes = o->batch_bytes ? o->batch_bytes : PRODUCER_BATCH_BYTES_DEFAULT;
    o->linger_ms = o->linger_ms ? o->linger_ms : PRODUCER_LINGER_MS_DEFAULT;
    o->buffer_bytes = o->buffer_bytes ? o->buffer_bytes : PRODUCER_BUFFER_BYTES_DEFAULT;
    o->compression_level =
        o->compression_level ? o->compression_level : PRODUCER_ZSTD_LEVEL_DEFAULT;
    o->retries = o->retries ? o->retries : PRODUCER_RETRIES_DEFAULT;
    o->retry_backoff_ms = o->retry_backoff_ms ? o->retry_backoff_ms : PRODUCER_BACKOFF_MS_DEFAULT;
    o->max_inflight_batches =
        o->max_inflight_batches == 0                            ? PRODUCER_INFLIGHT_DEFAULT
        : o->max_inflight_batches > SLUICE_INFLIGHT_BATCHES_MAX ? SLUICE_INFLIGHT_BATCHES_MAX
                                                                : o->max_inflight_batches;
}

int sluice_producer_new(sluice_client *c, const char *stream,
                        const struct sluice_producer_opts *opts, sluice_producer **out)
{
    *out = NULL;
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, stream, &info);
    if (rc != SL_OK) {
        return rc;
    }
    /* Who leads its shards: one Metadata at start (a single broker answers itself; a broker
     * older than Metadata is one broker: everything goes where the client is connected).
     * Not fatal: the shards go to the connected broker until a refresh succeeds. */
    int route_rc = sl_client_route_refresh(c, stream, true);
    sluice_producer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        sluice_stream_info_free(info);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    p->c = c;
    p->route_stale = route_rc != SL_OK;
    if (opts != NULL) {
        p->opts = *opts;
    }
    producer_opts_defaults(&p->opts);
    int zstd = p->opts.compression == SLUICE_COMPRESSION_ZSTD ||
               (p->opts.compression == SLUICE_COMPRESSION_DEFAULT &&
                strcmp(info->compression, "zstd") == 0);
    p->codec = zstd ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE;
    p->producer_id = random_producer_id();
    size_t frame_max = sl_client_max_payload(c);
    p->record_max = frame_max < SL_BATCH_BYTES_MAX ? frame_max : SL_BATCH_BYTES_MAX;
    if (p->opts.batch_bytes > p->record_max) {
        p->opts.batch_bytes = p->record_max;
    }
    p->stream = strdup(stream);
    p->z = zstd ? sl_zctx_new() : NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->wake_cv, NULL);
    if (p->stream == NULL || (zstd && p->z == NULL)) {
        sl_client_set_error("out of memory");
        rc = SL_ENOMEM;
    }
    if (rc == SL_OK) {
        pthread_mutex_lock(&p->mu); /* (no flusher yet: for the rule of shards_grow_locked) */
        rc = sl_producer_layout_apply_locked(p, info);
        pthread_mutex_unlock(&p->mu);
    }
    sluice_stream_info_free(info);
    if (rc != SL_OK) {
        /* (the reason is set) */
    } else if (pthread_create(&p->thread, NULL, flusher_main, p) != 0) {
        sl_client_set_error("pthread_create failed");
        rc = SL_ESYS;
    }
    p->thread_started = rc == SL_OK;
    if (rc != SL_OK) {
        sluice_producer_free(p);
        return rc;
    }
    *out = p;
    return SL_OK;
}

void sluice_producer_free(sluice_producer *p)
{
    if (p == NULL) {
        return;
    }
    if (p->thread_started) {
        (void)sluice_producer_flush(p, 0);
        pthread_mutex_lock(&p->mu);
        p->closing = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_cond_signal(&p->wake_cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    for (uint32_t i = 0; i < p->shard_count; i++) {
        SL_ASSERT(p->shards[i]->head == NULL && p->shards[i]->inflight == 0);
        sl_producer_batch_free(p->shards[i]->open);
        free(p->shards[i]);
    }
    sl_layout_fini(&p->layout);
    free(p->draining);
    pthread_cond_destroy(&p->wake_cv);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    sl_zctx_free(p->z);
    free(p->scratch);
    free(p->shards);
    free(p->stream);
    free(p);
}
