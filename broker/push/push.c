/* push.c - push targets on the main loop (see push.h).
 *
 * Ownership: a target's runtime state (struct push_rt) lives until it is
 * removed AND nothing of it is out (batches, receives, settle callbacks);
 * batches point at it and at its settings, which never change in place (a
 * replaced target is a new rt). A batch belongs to the loop while it fills
 * and settles, to the HTTP thread between submit and done. Its records are copied at receive time into
 * blocks of its own (one allocation per receive, never per record).
 *
 * Memory: every batch holds at most SL_PUSH_BATCH_BYTES_MAX bytes of
 * records, and all batches together at most SL_PUSH_MEMORY_MAX: a target
 * does not receive while that is used up. Records past a batch's byte budget
 * are released at once (visible again, no delivery counted against them but
 * the lease's).
 */
#include "broker/push/push.h"

#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/push/forward.h"
#include "broker/push/http.h"
#include "broker/push/payload.h"
#include "broker/push/transform.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SL_PUSH_BATCH_BYTES_MAX (6u << 20)  /* a batch's records (Lambda's 6 MB payload) */
#define SL_PUSH_MEMORY_MAX      (256u << 20) /* all batches' records together */
#define RECEIVE_WAIT_MS         10000u       /* a receive's long-poll when no batch fills */
#define LEASE_MARGIN_MS         10000u       /* lease beyond window + timeout */
#define ERROR_PAUSE_MS          2000u        /* after a failed receive (no group, ...) */
#define NOTIFY_RETRY_MS         2000u        /* a one-off POST's next try: 2 s, then 4 s */

struct push_block {
    struct push_block *next;
    uint8_t data[];
};

struct push_rt;

struct push_batch {
    struct sl_push_call call; /* first: the HTTP thread's handle on the batch */
    struct push_rt *rt;
    struct sl_push_source src; /* strings borrowed from rt->t */
    uint32_t n, cap;
    struct sl_push_record *recs;
    const char **receipts;
    bool *failed; /* set by finish() on the HTTP thread */
    uint32_t nfailed;
    bool all_failed;
    uint64_t forward_start_ns;
    struct push_block *blocks;
    size_t bytes;
    uint32_t max_deliveries_seen;
};

struct push_rt {
    struct sl_push_target t;
    struct sl_push *p;
    const char *forward_to; /* in t.url: a forward target's stream (forward.h); NULL: HTTP */
    struct sl_push_transform *tf; /* t.transform compiled (owned; NULL: none); immutable */
    uint32_t forward_rr;    /* the shard for the next batch's unkeyed records */
    bool removed;
    uint32_t receiving; /* receives out: one while a batch fills, else up to concurrency */
    uint32_t batches;  /* leased: filling or posting */
    uint32_t settling; /* settle calls out (their callbacks name this target) */
    struct push_batch *filling;
    uint64_t window_end_ms;
    uint64_t paused_until_ms;
    uint32_t failures;
    uint64_t delivered, released, batches_ok, batches_failed, last_latency_us;
    long last_status;
    char last_error[256];
};

struct sl_push {
    struct sl_engine *e;
    struct sl_ring *ring;
    char data_dir[4096];
    struct push_rt **rts; /* live and removed-but-draining */
    uint32_t n, cap;
    struct sl_push_http *http;
    int wake_fd;
    struct sl_io_op wake_op;
    uint64_t wake_val;
    bool wake_armed;
    bool stopping;
    size_t bytes;      /* records held by every batch */
    uint32_t receiving; /* receives out, all targets */
    uint32_t settling;  /* settle calls out, all targets */
    uint32_t forwarding; /* forwards out (their batches are the loop's) */
    struct sl_push_call *forwarded; /* forwards answered, to settle from collect() */
    uint64_t rng;
    struct push_notify *notify_wait; /* one-off POSTs waiting for their next attempt */
    uint32_t notifies;               /* one-off POSTs held (waiting or out) */
};

/* A one-off POST (sl_push_notify): no records, no lease; retried a few
 * times from the tick, then dropped with a log line. */
struct push_notify {
    struct sl_push_call call; /* first: the HTTP thread's handle */
    char *url;                /* owned */
    uint32_t attempts;
    uint64_t due_ms;
    struct push_notify *next; /* notify_wait */
};
static char notify_tag; /* call.ctx of a notify: tells it apart from batches in collect() */

static void pump(struct push_rt *rt);
static void collect(struct sl_push *p);

/* ---- helpers ---- */


static uint64_t rnd(struct sl_push *p)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return p->rng;
}

/* base x 2^(k-1), capped, then "equal jitter": half fixed, half random. */
static uint32_t backoff_ms(struct sl_push *p, const struct sl_push_target *t, uint32_t k)
{
    uint64_t ms = t->retry_base_ms;
    for (uint32_t i = 1; i < k && ms < t->retry_max_ms; i++) {
        ms *= 2;
    }
    ms = ms < t->retry_max_ms ? ms : t->retry_max_ms;
    return (uint32_t)(ms / 2 + rnd(p) % (ms / 2 + 1));
}

static struct push_rt *find(const struct sl_push *p, const char *stream, const char *group)
{
    for (uint32_t i = 0; i < p->n; i++) {
        struct push_rt *rt = p->rts[i];
        if (!rt->removed && strcmp(rt->t.stream, stream) == 0 &&
            strcmp(rt->t.group, group) == 0) {
            return rt;
        }
    }
    return NULL;
}

/* Frees a removed target once nothing of it is out. */
static void reap(struct sl_push *p, struct push_rt *rt)
{
    if (!rt->removed || rt->batches > 0 || rt->receiving > 0 || rt->settling > 0) {
        return;
    }
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->rts[i] == rt) {
            p->rts[i] = p->rts[--p->n];
            sl_push_transform_free(rt->tf);
            free(rt);
            return;
        }
    }
    SL_ASSERT(!"a target not in the table");
}

/* ---- batches ---- */

/* Frees a batch's memory only; batch_free also lets its target go on. */
static void batch_drop(struct push_batch *b)
{
    struct sl_push *p = b->rt->p;
    SL_ASSERT(p->bytes >= b->bytes);
    p->bytes -= b->bytes;
    while (b->blocks != NULL) {
        struct push_block *next = b->blocks->next;
        free(b->blocks);
        b->blocks = next;
    }
    free(b->call.body);
    free(b->call.headers);
    free(b->call.answer);
    free(b->recs);
    free(b->receipts);
    free(b->failed);
    struct push_rt *rt = b->rt;
    SL_ASSERT(rt->batches > 0);
    rt->batches--;
    free(b);
}

static void batch_free(struct push_batch *b)
{
    struct push_rt *rt = b->rt;
    struct sl_push *p = rt->p;
    batch_drop(b);
    if (rt->removed) {
        reap(p, rt);
    } else {
        pump(rt);
    }
}

static struct push_batch *batch_new(struct push_rt *rt)
{
    struct push_batch *b = calloc(1, sizeof(*b));
    uint32_t cap = rt->t.batch_size;
    if (b != NULL) {
        b->recs = calloc(cap, sizeof(*b->recs));
        b->receipts = calloc(cap, sizeof(*b->receipts));
        b->failed = calloc(cap, sizeof(*b->failed));
    }
    if (b == NULL || b->recs == NULL || b->receipts == NULL || b->failed == NULL) {
        if (b != NULL) {
            free(b->recs);
            free(b->receipts);
            free(b->failed);
        }
        free(b);
        return NULL;
    }
    b->rt = rt;
    b->cap = cap;
    /* ARNs and awsRegion as the SQS and SNS APIs answer them (their QueueArn,
     * TopicArn), so a handler can compare what it is given with what it made. */
    b->src = (struct sl_push_source){.stream = rt->t.stream, .group = rt->t.group,
                                     .region = SL_PUSH_REGION, .account = SL_PUSH_ACCOUNT,
                                     .replay = rt->t.replay_name[0] != '\0' ? rt->t.replay_name
                                                                            : NULL};
    rt->batches++;
    return b;
}

static size_t record_bytes(const struct sl_qrecord *q)
{
    size_t n = q->key_len + q->value_len + strlen(q->receipt) + 1 +
               q->attr_count * sizeof(struct sl_attr);
    for (uint32_t i = 0; i < q->attr_count; i++) {
        n += q->attrs[i].key_len + q->attrs[i].value_len;
    }
    return n;
}

static uint8_t *put(uint8_t *dst, const void *src, size_t n)
{
    if (n > 0) {
        memcpy(dst, src, n);
    }
    return dst + n;
}

/* Copies records [0, take) of a receive into the batch (one block). */
static int batch_add(struct push_batch *b, const struct sl_qrecord *q, uint32_t take,
                     size_t bytes)
{
    SL_ASSERT(b->n + take <= b->cap);
    struct push_block *blk = malloc(sizeof(*blk) + bytes + _Alignof(struct sl_attr));
    if (blk == NULL) {
        return SL_ENOMEM;
    }
    blk->next = b->blocks;
    b->blocks = blk;
    uint8_t *w = blk->data;
    for (uint32_t i = 0; i < take; i++) {
        struct sl_push_record *r = &b->recs[b->n + i];
        /* attrs first in each record's run keeps them aligned (sizes are multiples) */
        struct sl_attr *attrs = (struct sl_attr *)w;
        w += q[i].attr_count * sizeof(struct sl_attr);
        for (uint32_t a = 0; a < q[i].attr_count; a++) {
            attrs[a] = q[i].attrs[a];
        }
        *r = (struct sl_push_record){.shard = q[i].shard, .seq = q[i].seq,
                                     .timestamp_ms = q[i].timestamp_ms,
                                     .produced_ms = q[i].produced_ms,
                                     .delivery_count = q[i].delivery_count,
                                     .attrs = attrs, .attr_count = q[i].attr_count,
                                     .key_len = q[i].key_len, .value_len = q[i].value_len};
        r->key = w;
        w = put(w, q[i].key, q[i].key_len);
        r->value = w;
        w = put(w, q[i].value, q[i].value_len);
        for (uint32_t a = 0; a < q[i].attr_count; a++) {
            attrs[a].key = (const char *)w;
            w = put(w, q[i].attrs[a].key, q[i].attrs[a].key_len);
            attrs[a].value = (const char *)w;
            w = put(w, q[i].attrs[a].value, q[i].attrs[a].value_len);
        }
        size_t rl = strlen(q[i].receipt) + 1;
        r->receipt = (const char *)w;
        b->receipts[b->n + i] = r->receipt;
        w = put(w, q[i].receipt, rl);
        /* the next record's attrs must be aligned */
        size_t mis = (uintptr_t)w % _Alignof(struct sl_attr);
        w += mis != 0 ? _Alignof(struct sl_attr) - mis : 0;
        if (q[i].delivery_count > b->max_deliveries_seen) {
            b->max_deliveries_seen = q[i].delivery_count;
        }
    }
    b->n += take;
    return SL_OK;
}

/* ---- the HTTP thread's side of a batch ---- */

static int on_prepare(struct sl_push_call *c)
{
    struct push_batch *b = (struct push_batch *)c;
    enum sl_push_format f = (enum sl_push_format)b->rt->t.format;
    int rc = sl_push_payload_render(f, &b->src, b->recs, b->n, &c->body, &c->body_len);
    if (rc == SL_OK && b->rt->tf != NULL) { /* eventbridge: one event per call */
        SL_ASSERT(b->n == 1);
        char *out = NULL;
        size_t out_len = 0;
        rc = sl_push_transform_apply(b->rt->tf, c->body, c->body_len, b->recs[0].timestamp_ms,
                                     &out, &out_len);
        free(c->body);
        c->body = out;
        c->body_len = out_len;
    }
    return rc == SL_OK ? sl_push_payload_headers(f, &b->src, &b->recs[0], &c->headers) : rc;
}

static void on_finish(struct sl_push_call *c)
{
    struct push_batch *b = (struct push_batch *)c;
    if (c->failed != SL_OK || c->status < 200 || c->status > 299) {
        b->all_failed = true;
        return;
    }
    if (sl_push_response_failures((enum sl_push_format)b->rt->t.format, &b->src, b->recs, b->n,
                                  c->answer != NULL ? c->answer : "", c->answer_len, b->failed,
                                  &b->nfailed) != SL_OK) {
        b->all_failed = true;
    }
}

/* ---- settling ----
 *
 * The engine reads the receipts during sl_queue_settle (queue.h), so a batch
 * is freed as soon as its settles are issued; the target counts the settles
 * still out (their callbacks name it) and is reaped only once they are in.
 * A callback may run before sl_queue_settle returns, so it only counts: it
 * never frees the target under a caller that still holds it. */

static void on_settled(void *ctx, int err, const char *why, const int *results, uint32_t n)
{
    (void)results;
    (void)n;
    struct push_rt *rt = ctx;
    if (err != SL_OK) {
        sl_warn("push", "%s/%s: settling a batch failed (%s): its records will be delivered "
                "again after their lease",
                rt->t.stream, rt->t.group, why != NULL ? why : sl_strerror(err));
    }
    SL_ASSERT(rt->settling > 0 && rt->p->settling > 0);
    rt->settling--;
    rt->p->settling--;
}

static void settle(struct push_rt *rt, enum sl_settle_kind kind, const char *const *receipts,
                   uint32_t n, uint32_t ms)
{
    if (n == 0) {
        return;
    }
    rt->settling++;
    rt->p->settling++;
    struct sl_settle_req req = {.stream = rt->t.stream, .group = rt->t.group, .kind = kind,
                                .receipts = receipts, .n = n, .ms = ms};
    sl_queue_settle(rt->p->e, &req, on_settled, rt);
}

/* Acks what the target took, releases the rest with a backoff. */
static void settle_batch(struct push_batch *b)
{
    struct push_rt *rt = b->rt;
    uint32_t delay =
        backoff_ms(rt->p, &rt->t, b->max_deliveries_seen > 0 ? b->max_deliveries_seen : 1);
    /* receipts: the acked ones first, the released ones after (read from recs) */
    uint32_t ok = 0, bad = b->n;
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->all_failed || b->failed[i]) {
            b->receipts[--bad] = b->recs[i].receipt;
        } else {
            b->receipts[ok++] = b->recs[i].receipt;
        }
    }
    SL_ASSERT(ok == bad);
    settle(rt, SL_SETTLE_ACK, b->receipts, ok, 0);
    settle(rt, SL_SETTLE_NACK, b->receipts + ok, b->n - ok, delay);
    rt->delivered += ok;
    rt->released += b->n - ok;
    batch_free(b);
}

static void answered(struct sl_push *p, struct push_batch *b)
{
    struct push_rt *rt = b->rt;
    rt->last_status = b->call.status;
    rt->last_latency_us = b->call.latency_us;
    if (b->call.failed == SL_ECLOSED) {
        batch_free(b); /* stopping: the leases run out and the records come back */
        return;
    }
    if (b->all_failed) {
        rt->batches_failed++;
        rt->failures++;
        uint32_t backoff = backoff_ms(p, &rt->t, rt->failures);
        rt->paused_until_ms = sl_clock_mono_ms() + backoff;
        if (b->call.error[0] != '\0') {
            snprintf(rt->last_error, sizeof(rt->last_error), "%s", b->call.error);
        } else if (b->call.status < 200 || b->call.status > 299) {
            snprintf(rt->last_error, sizeof(rt->last_error), "HTTP %ld from %.200s",
                     b->call.status, rt->t.url);
        } else {
            snprintf(rt->last_error, sizeof(rt->last_error),
                     "the answer's batchItemFailures named a record not in the batch");
        }
        if (rt->failures == 1 || rt->failures % 100 == 0) {
            sl_warn("push", "%s/%s -> %s: %s (%u failed batch%s in a row; paused %u ms)",
                    rt->t.stream, rt->t.group, rt->t.url, rt->last_error, rt->failures,
                    rt->failures == 1 ? "" : "es", backoff);
        }
    } else {
        rt->batches_ok++;
        if (rt->failures > 0) {
            sl_info("push", "%s/%s -> %s: delivering again after %u failed batches",
                    rt->t.stream, rt->t.group, rt->t.url, rt->failures);
        }
        rt->failures = 0;
        rt->paused_until_ms = 0;
    }
    settle_batch(b);
}

/* ---- one-off POSTs ---- */

static void notify_free(struct sl_push *p, struct push_notify *n)
{
    SL_ASSERT(p->notifies > 0);
    p->notifies--;
    free(n->call.body);
    free(n->call.headers);
    free(n->call.answer);
    free(n->url);
    free(n);
}

static void notify_answered(struct sl_push *p, struct push_notify *n)
{
    bool ok = n->call.failed == SL_OK && n->call.status >= 200 && n->call.status < 300;
    n->attempts++;
    if (ok || p->stopping || n->attempts >= SL_PUSH_NOTIFY_ATTEMPTS) {
        if (!ok) {
            sl_warn("push", "notification to %s dropped after %u attempts: %s (status %ld)",
                    n->url, n->attempts, n->call.error[0] != '\0' ? n->call.error : "no 2xx",
                    n->call.status);
        }
        notify_free(p, n);
        return;
    }
    free(n->call.answer);
    n->call.answer = NULL;
    n->due_ms = sl_clock_mono_ms() + NOTIFY_RETRY_MS * n->attempts;
    n->next = p->notify_wait;
    p->notify_wait = n;
}

/* From the tick: the waiting notifications whose time has come go out again. */
static void notify_due(struct sl_push *p, uint64_t now)
{
    for (struct push_notify **pp = &p->notify_wait; *pp != NULL;) {
        struct push_notify *n = *pp;
        if (n->due_ms > now && !p->stopping) {
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        if (p->stopping) {
            notify_free(p, n);
        } else {
            n->call.status = 0;
            n->call.failed = SL_OK;
            n->call.error[0] = '\0';
            sl_push_http_submit(p->http, &n->call);
        }
    }
}

int sl_push_notify(struct sl_push *p, const char *url, const char *body, const char *headers,
                   bool insecure, uint32_t timeout_ms)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        return SL_EINVAL;
    }
    if (p->notifies >= SL_PUSH_NOTIFY_MAX || p->stopping) {
        return SL_ELIMIT;
    }
    struct push_notify *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    n->url = strdup(url);
    n->call.body = strdup(body);
    n->call.headers = headers != NULL ? strdup(headers) : NULL;
    if (n->url == NULL || n->call.body == NULL || (headers != NULL && n->call.headers == NULL)) {
        free(n->url);
        free(n->call.body);
        free(n->call.headers);
        free(n);
        return SL_ENOMEM;
    }
    p->notifies++;
    n->call.body_len = strlen(body);
    n->call.url = n->url;
    n->call.insecure = insecure;
    n->call.timeout_ms = timeout_ms;
    n->call.ctx = &notify_tag;
    sl_push_http_submit(p->http, &n->call);
    return SL_OK;
}

static void collect(struct sl_push *p)
{
    struct sl_push_call *c = p->forwarded;
    p->forwarded = NULL;
    while (c != NULL) {
        struct sl_push_call *next = c->next;
        answered(p, (struct push_batch *)c);
        c = next;
    }
    c = sl_push_http_done(p->http);
    while (c != NULL) {
        struct sl_push_call *next = c->next;
        if (c->ctx == &notify_tag) {
            notify_answered(p, (struct push_notify *)c);
        } else {
            answered(p, (struct push_batch *)c);
        }
        c = next;
    }
}

static void on_wake(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_push *p = sl_container_of(op, struct sl_push, wake_op);
    p->wake_armed = false;
    if (p->http == NULL) {
        return; /* closing: not armed again */
    }
    collect(p);
    p->wake_armed = true;
    sl_ring_read(p->ring, &p->wake_op, p->wake_fd, &p->wake_val, sizeof(p->wake_val), 0);
}

/* A removed target's filling batch: its records visible again at once. */
static void drop_filling(struct push_rt *rt)
{
    struct push_batch *b = rt->filling;
    if (b == NULL) {
        return;
    }
    rt->filling = NULL;
    settle(rt, SL_SETTLE_NACK, b->receipts, b->n, 0);
    batch_free(b);
}

/* The target leaves the table: what it holds is settled, then it goes. */
static void retire(struct push_rt *rt)
{
    rt->removed = true;
    if (rt->filling != NULL && !rt->receiving) {
        drop_filling(rt); /* reaps rt when its last batch goes */
    } else {
        reap(rt->p, rt);
    }
}

/* ---- receiving ---- */

/* A forward's answer, like an HTTP one: settled from collect(), never
 * here - this may run inside sl_produce_submit, under dispatch() and pump(). */
static void on_forwarded(void *ctx, int err, const char *why, uint32_t nfailed)
{
    struct push_batch *b = ctx;
    struct sl_push *p = b->rt->p;
    SL_ASSERT(p->forwarding > 0 && nfailed <= b->n);
    p->forwarding--;
    b->call.latency_us = (sl_clock_mono_ns() - b->forward_start_ns) / 1000u;
    b->nfailed = nfailed;
    b->all_failed = nfailed == b->n;
    if (err != SL_OK) {
        snprintf(b->call.error, sizeof(b->call.error), "%s", why);
    }
    b->call.next = p->forwarded;
    p->forwarded = &b->call;
    uint64_t one = 1;
    ssize_t w = write(p->wake_fd, &one, sizeof(one)); /* collect() on the next turn */
    (void)w;
}

static void dispatch(struct push_rt *rt)
{
    struct push_batch *b = rt->filling;
    SL_ASSERT(b != NULL && b->n > 0);
    rt->filling = NULL;
    if (rt->forward_to != NULL) {
        rt->p->forwarding++;
        b->forward_start_ns = sl_clock_mono_ns();
        sl_push_forward(rt->p->e, (enum sl_push_format)rt->t.format, rt->tf, &b->src,
                        rt->forward_to,
                        b->recs, b->n, b->failed, &rt->forward_rr, on_forwarded, b);
        return;
    }
    b->call.url = rt->t.url;
    b->call.insecure = rt->t.insecure;
    b->call.timeout_ms = rt->t.timeout_ms;
    b->call.prepare = on_prepare;
    b->call.finish = on_finish;
    sl_push_http_submit(rt->p->http, &b->call);
}

/* Leased records that will not be sent (no room, no memory, target gone):
 * visible again at once. */
static void release_now(struct push_rt *rt, const struct sl_qrecord *q, uint32_t n)
{
    const char *receipts[64];
    for (uint32_t i = 0; i < n;) {
        uint32_t k = 0;
        while (k < 64 && i < n) {
            receipts[k++] = q[i++].receipt;
        }
        settle(rt, SL_SETTLE_NACK, receipts, k, 0);
    }
}

static int save(struct sl_push *p, const struct sl_push_target *extra, const struct push_rt *skip,
                char *why, size_t why_len);

/* The group (or its stream) was deleted, by whatever front-end: its target
 * goes too, durably, rather than failing every receive until removed by
 * hand. If the file cannot be written the target stays, paused, and this is
 * tried again on its next receive. */
static void forget_orphan(struct push_rt *rt, const char *cause)
{
    char why[256];
    if (save(rt->p, NULL, rt, why, sizeof(why)) != SL_OK) {
        sl_warn("push", "target %s/%s: %s, but it cannot be removed: %s", rt->t.stream,
                rt->t.group, cause, why);
        return;
    }
    sl_info("push", "target %s/%s -> %s removed: %s", rt->t.stream, rt->t.group, rt->t.url,
            cause);
    rt->removed = true; /* on_received lets it go */
}

static void on_received(void *ctx, const struct sl_receive_result *r)
{
    struct push_rt *rt = ctx;
    struct sl_push *p = rt->p;
    SL_ASSERT(rt->receiving > 0 && p->receiving > 0);
    rt->receiving--;
    p->receiving--;
    if (r->err != SL_OK) {
        snprintf(rt->last_error, sizeof(rt->last_error), "receive: %s",
                 r->why != NULL ? r->why : sl_strerror(r->err));
        rt->paused_until_ms = sl_clock_mono_ms() + ERROR_PAUSE_MS;
        if (r->err == SL_ENOTFOUND && !rt->removed && !p->stopping) {
            forget_orphan(rt, r->why);
        }
    }
    uint32_t n = r->err == SL_OK ? r->n : 0;
    if (n > 0 && (rt->removed || p->stopping)) {
        release_now(rt, r->records, n);
        n = 0;
    }
    if (n > 0 && rt->filling == NULL) {
        rt->filling = batch_new(rt);
        rt->window_end_ms = sl_clock_mono_ms() + rt->t.batch_window_ms;
        if (rt->filling == NULL) {
            release_now(rt, r->records, n);
            n = 0;
        }
    }
    if (n > 0) {
        struct push_batch *b = rt->filling;
        uint32_t take = 0;
        size_t bytes = 0;
        while (take < n && b->n + take < b->cap) {
            size_t rb = record_bytes(&r->records[take]) + _Alignof(struct sl_attr);
            if (b->bytes + bytes + rb > SL_PUSH_BATCH_BYTES_MAX && b->n + take > 0) {
                break;
            }
            bytes += rb;
            take++;
        }
        if (batch_add(b, r->records, take, bytes) != SL_OK) {
            take = 0;
            bytes = 0;
        }
        b->bytes += bytes;
        p->bytes += bytes;
        if (take < n) {
            release_now(rt, r->records + take, n - take);
        }
        if (b->n == 0) {
            rt->filling = NULL;
            batch_free(b);
            return;
        }
        if (b->n == b->cap || take < n || sl_clock_mono_ms() >= rt->window_end_ms) {
            dispatch(rt);
        }
    }
    if (rt->removed) {
        if (rt->filling != NULL) {
            drop_filling(rt); /* reaps rt when its last batch goes */
        } else {
            reap(p, rt);
        }
        return;
    }
    pump(rt);
}

static void start_receive(struct push_rt *rt, uint32_t max, uint32_t wait_ms)
{
    struct sl_push *p = rt->p;
    rt->receiving++;
    p->receiving++;
    struct sl_receive_req req = {
        .stream = rt->t.stream, .group = rt->t.group, .max_records = max, .wait_ms = wait_ms,
        .visibility_timeout_ms = rt->t.batch_window_ms + rt->t.timeout_ms + LEASE_MARGIN_MS};
    sl_queue_receive(p->e, &req, on_received, rt);
}

/* Starts what the target has room for. With a batching window one receive
 * at a time fills one batch; without, each of up to `concurrency` receives
 * makes a batch of its own (so a slow lease write does not hold back the
 * POST slots: receives are what bounds small batches). */
static void pump(struct push_rt *rt)
{
    struct sl_push *p = rt->p;
    if (rt->removed || p->stopping) {
        return;
    }
    uint64_t now = sl_clock_mono_ms();
    if (rt->filling != NULL) {
        if (rt->receiving > 0) {
            return;
        }
        if (now < rt->window_end_ms) {
            start_receive(rt, rt->filling->cap - rt->filling->n,
                          (uint32_t)(rt->window_end_ms - now));
            return;
        }
        dispatch(rt);
    }
    uint32_t most = rt->t.batch_window_ms > 0 ? 1 : rt->t.concurrency;
    while (now >= rt->paused_until_ms && p->bytes < SL_PUSH_MEMORY_MAX && rt->receiving < most &&
           rt->batches + rt->receiving < rt->t.concurrency) {
        start_receive(rt, rt->t.batch_size, RECEIVE_WAIT_MS);
    }
}

/* ---- the table ---- */

static int rt_add(struct sl_push *p, const struct sl_push_target *t, struct push_rt **out)
{
    if (p->n == p->cap) {
        uint32_t cap = p->cap == 0 ? 16 : p->cap * 2;
        struct push_rt **a = realloc(p->rts, cap * sizeof(*a));
        if (a == NULL) {
            return SL_ENOMEM;
        }
        p->rts = a;
        p->cap = cap;
    }
    struct push_rt *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return SL_ENOMEM;
    }
    rt->t = *t;
    rt->p = p;
    rt->forward_to = sl_push_forward_stream(rt->t.url);
    if (t->transform[0] != '\0') {
        char why[256];
        int rc = sl_push_transform_compile(t->transform, strlen(t->transform), &rt->tf, why,
                                           sizeof(why));
        if (rc != SL_OK) { /* checked by sl_push_target_check: only memory fails here */
            free(rt);
            return rc;
        }
    }
    p->rts[p->n++] = rt;
    if (out != NULL) {
        *out = rt;
    }
    return SL_OK;
}

static uint32_t live_count(const struct sl_push *p)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        n += !p->rts[i]->removed ? 1 : 0;
    }
    return n;
}

/* Writes the live targets (plus `extra`, minus `skip`) to the file. */
static int save(struct sl_push *p, const struct sl_push_target *extra, const struct push_rt *skip,
                char *why, size_t why_len)
{
    uint32_t n = 0;
    struct sl_push_target *all = calloc(p->n + 1, sizeof(*all));
    if (all == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < p->n; i++) {
        if (!p->rts[i]->removed && p->rts[i] != skip) {
            all[n++] = p->rts[i]->t;
        }
    }
    if (extra != NULL) {
        all[n++] = *extra;
    }
    int rc = sl_push_targets_save(p->data_dir, all, n, why, why_len);
    free(all);
    return rc;
}

/* ---- the API ---- */

int sl_push_open(struct sl_engine *e, struct sl_ring *ring, const char *data_dir,
                 struct sl_push **out, char *why, size_t why_len)
{
    *out = NULL;
    struct sl_push *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    p->e = e;
    p->ring = ring;
    p->rng = sl_clock_mono_ns() | 1u;
    snprintf(p->data_dir, sizeof(p->data_dir), "%s", data_dir);
    p->wake_fd = eventfd(0, EFD_CLOEXEC);
    struct sl_push_target *t = NULL;
    uint32_t n = 0;
    int rc = p->wake_fd < 0 ? SL_ESYS : sl_push_targets_load(data_dir, &t, &n, why, why_len);
    if (p->wake_fd < 0) {
        snprintf(why, why_len, "cannot make an eventfd for the push thread");
    }
    for (uint32_t i = 0; rc == SL_OK && i < n; i++) {
        rc = rt_add(p, &t[i], NULL);
    }
    free(t);
    if (rc == SL_OK) {
        rc = sl_push_http_start(p->wake_fd, &p->http, why, why_len);
    }
    if (rc != SL_OK) {
        sl_push_close(p);
        return rc;
    }
    p->wake_op.cb = on_wake;
    p->wake_armed = true;
    sl_ring_read(ring, &p->wake_op, p->wake_fd, &p->wake_val, sizeof(p->wake_val), 0);
    if (n > 0) {
        sl_info("push", "%u push target%s loaded", n, n == 1 ? "" : "s");
    }
    *out = p;
    return SL_OK;
}

void sl_push_tick(struct sl_push *p, uint64_t now)
{
    (void)now;
    if (p == NULL) {
        return;
    }
    collect(p);
    notify_due(p, sl_clock_mono_ms());
    /* Downwards: reap moves the last target into the slot it frees. */
    for (uint32_t i = p->n; i-- > 0;) {
        if (p->rts[i]->removed) {
            reap(p, p->rts[i]); /* once its settles are in */
        } else {
            pump(p->rts[i]);
        }
    }
}

void sl_push_stop(struct sl_push *p)
{
    if (p != NULL) {
        p->stopping = true;
    }
}

void sl_push_close(struct sl_push *p)
{
    if (p == NULL) {
        return;
    }
    p->stopping = true;
    if (p->http != NULL) {
        sl_push_http_stop(p->http);
        collect(p); /* every call is on the done list now: ECLOSED or answered */
        sl_push_http_free(p->http);
        p->http = NULL;
    }
    /* The wake-up read and our engine calls end on the ring before we go. */
    if (p->wake_armed) {
        uint64_t one = 1;
        ssize_t w = write(p->wake_fd, &one, sizeof(one));
        (void)w;
    }
    for (int spins = 0; spins < 1000 && (p->wake_armed || p->receiving > 0 || p->settling > 0 ||
                                         p->forwarding > 0);
         spins++) {
        sl_ring_run(p->ring, 1, 10 * 1000000ull);
    }
    while (p->forwarded != NULL) { /* appended, not acked: the leases run out (at least once) */
        struct push_batch *b = (struct push_batch *)p->forwarded;
        p->forwarded = b->call.next;
        batch_drop(b);
    }
    notify_due(p, UINT64_MAX); /* stopping: the waiting ones are dropped */
    for (uint32_t i = 0; i < p->n; i++) {
        struct push_rt *rt = p->rts[i];
        if (rt->filling != NULL) { /* leased, never sent: the leases run out */
            batch_drop(rt->filling);
            rt->filling = NULL;
        }
        sl_push_transform_free(rt->tf);
        free(rt);
    }
    free(p->rts);
    if (p->wake_fd >= 0) {
        close(p->wake_fd);
    }
    free(p);
}

int sl_push_set(struct sl_push *p, struct sl_push_target *t, char *why, size_t why_len)
{
    int rc = sl_push_target_check(t, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_qgroup_stats st;
    rc = sl_queue_stats(p->e, t->stream, t->group, &st, why, (uint32_t)why_len);
    if (rc != SL_OK) {
        return rc;
    }
    const char *dest = sl_push_forward_stream(t->url);
    if (dest != NULL && sl_engine_stream(p->e, dest, why, (uint32_t)why_len, &rc) == NULL) {
        return rc; /* a forward's destination must exist (it is never created) */
    }
    struct push_rt *old = find(p, t->stream, t->group);
    if (old == NULL && live_count(p) >= SL_PUSH_TARGETS_MAX) {
        snprintf(why, why_len, "%u push targets already: remove one first", SL_PUSH_TARGETS_MAX);
        return SL_ELIMIT;
    }
    rc = save(p, t, old, why, why_len);
    struct push_rt *rt = NULL;
    if (rc == SL_OK) {
        rc = rt_add(p, t, &rt);
        if (rc != SL_OK) {
            snprintf(why, why_len, "out of memory (the target is saved: restart to load it)");
        }
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (old != NULL) {
        retire(old); /* its batches still settle; then it goes */
    }
    sl_info("push", "target %s/%s -> %s (%s, batch %u, window %u ms, concurrency %u)", t->stream,
            t->group, t->url, sl_push_format_name((enum sl_push_format)t->format), t->batch_size,
            t->batch_window_ms, t->concurrency);
    pump(rt);
    return SL_OK;
}

int sl_push_remove(struct sl_push *p, const char *stream, const char *group, char *why,
                   size_t why_len)
{
    struct push_rt *rt = find(p, stream, group);
    if (rt == NULL) {
        snprintf(why, why_len, "no push target on %s/%s", stream, group);
        return SL_ENOTFOUND;
    }
    int rc = save(p, NULL, rt, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    sl_info("push", "target %s/%s -> %s removed", stream, group, rt->t.url);
    retire(rt);
    return SL_OK;
}

uint32_t sl_push_list(const struct sl_push *p, const char *stream, struct sl_push_status *out,
                      uint32_t cap)
{
    uint32_t n = 0;
    uint64_t now = sl_clock_mono_ms();
    for (uint32_t i = 0; p != NULL && i < p->n; i++) {
        const struct push_rt *rt = p->rts[i];
        if (rt->removed || (stream != NULL && strcmp(stream, rt->t.stream) != 0)) {
            continue;
        }
        if (n < cap) {
            struct sl_push_status *s = &out[n];
            memset(s, 0, sizeof(*s));
            s->target = rt->t;
            s->inflight = rt->batches;
            s->delivered = rt->delivered;
            s->released = rt->released;
            s->batches_ok = rt->batches_ok;
            s->batches_failed = rt->batches_failed;
            s->failures = rt->failures;
            s->paused_ms = rt->paused_until_ms > now ? rt->paused_until_ms - now : 0;
            s->last_status = rt->last_status;
            s->last_latency_us = rt->last_latency_us;
            snprintf(s->last_error, sizeof(s->last_error), "%s", rt->last_error);
        }
        n++;
    }
    return n;
}
