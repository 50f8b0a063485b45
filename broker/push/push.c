/* push.c - push targets' delivery on the main loop (see push.h): batches
 * filled from the group's receives, POSTed by the HTTP thread or forwarded,
 * settled from the answers; one-off POSTs (sl_push_notify). Ownership and
 * memory bounds: push_int.h. The table and the API's lifetime calls:
 * push_table.c.
 */
#include "broker/push/push_int.h"

#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/push/forward.h"
#include "broker/push/payload.h"
#include "broker/push/transform.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/url.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char notify_tag; /* call.ctx of a notify: tells it apart from batches in push_collect() */

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

struct push_rt *push_find(const struct sl_push *p, const char *stream, const char *group)
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
void push_reap(struct sl_push *p, struct push_rt *rt)
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
void push_batch_drop(struct push_batch *b)
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
    push_batch_drop(b);
    if (rt->removed) {
        push_reap(p, rt);
    } else {
        push_pump(rt);
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
                     b->call.status, rt->shown_url);
        } else {
            snprintf(rt->last_error, sizeof(rt->last_error),
                     "the answer's batchItemFailures named a record not in the batch");
        }
        if (rt->failures == 1 || rt->failures % 100 == 0) {
            sl_warn("push", "%s/%s -> %s: %s (%u failed batch%s in a row; paused %u ms)",
                    rt->t.stream, rt->t.group, rt->shown_url, rt->last_error, rt->failures,
                    rt->failures == 1 ? "" : "es", backoff);
        }
    } else {
        rt->batches_ok++;
        if (rt->failures > 0) {
            sl_info("push", "%s/%s -> %s: delivering again after %u failed batches",
                    rt->t.stream, rt->t.group, rt->shown_url, rt->failures);
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
            char shown[SL_PUSH_URL_MAX + 8];
            sl_url_redact(n->url, shown, sizeof(shown));
            sl_warn("push", "notification to %s dropped after %u attempts: %s (status %ld)",
                    shown, n->attempts, n->call.error[0] != '\0' ? n->call.error : "no 2xx",
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
void push_notify_due(struct sl_push *p, uint64_t now)
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

void push_collect(struct sl_push *p)
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

void push_on_wake(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_push *p = sl_container_of(op, struct sl_push, wake_op);
    p->wake_armed = false;
    if (p->http == NULL) {
        return; /* closing: not armed again */
    }
    push_collect(p);
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
void push_retire(struct push_rt *rt)
{
    rt->removed = true;
    if (rt->filling != NULL && !rt->receiving) {
        drop_filling(rt); /* reaps rt when its last batch goes */
    } else {
        push_reap(rt->p, rt);
    }
}

/* ---- receiving ---- */

/* A forward's answer, like an HTTP one: settled from push_collect(), never
 * here - this may run inside sl_produce_submit, under dispatch() and push_pump(). */
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
    ssize_t w = write(p->wake_fd, &one, sizeof(one)); /* push_collect() on the next turn */
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

/* The group (or its stream) was deleted, by whatever front-end: its target
 * goes too, durably, rather than failing every receive until removed by
 * hand. If the file cannot be written the target stays, paused, and this is
 * tried again on its next receive. */
static void forget_orphan(struct push_rt *rt, const char *cause)
{
    char why[256];
    if (push_save(rt->p, NULL, rt, why, sizeof(why)) != SL_OK) {
        sl_warn("push", "target %s/%s: %s, but it cannot be removed: %s", rt->t.stream,
                rt->t.group, cause, why);
        return;
    }
    sl_info("push", "target %s/%s -> %s removed: %s", rt->t.stream, rt->t.group, rt->shown_url,
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
            push_reap(p, rt);
        }
        return;
    }
    push_pump(rt);
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
void push_pump(struct push_rt *rt)
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

