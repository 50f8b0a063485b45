/* push_table.c - the push targets table (see push.h, push_int.h): loading
 * and saving the targets file, adding, replacing and removing targets, their
 * status, and the module's lifetime (open, tick, stop, close). Delivery is
 * push.c's.
 *
 * Threading: the main loop.
 */
#include "broker/push/push_int.h"

#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/push/forward.h"
#include "broker/push/transform.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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
    sl_url_redact(t->url, rt->shown_url, sizeof(rt->shown_url));
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

int push_save(struct sl_push *p, const struct sl_push_target *extra, const struct push_rt *skip,
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
    p->wake_op.cb = push_on_wake;
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
    push_collect(p);
    push_notify_due(p, sl_clock_mono_ms());
    /* Downwards: reap moves the last target into the slot it frees. */
    for (uint32_t i = p->n; i-- > 0;) {
        if (p->rts[i]->removed) {
            push_reap(p, p->rts[i]); /* once its settles are in */
        } else {
            push_pump(p->rts[i]);
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
        push_collect(p); /* every call is on the done list now: ECLOSED or answered */
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
        push_batch_drop(b);
    }
    push_notify_due(p, UINT64_MAX); /* stopping: the waiting ones are dropped */
    for (uint32_t i = 0; i < p->n; i++) {
        struct push_rt *rt = p->rts[i];
        if (rt->filling != NULL) { /* leased, never sent: the leases run out */
            push_batch_drop(rt->filling);
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
    struct push_rt *old = push_find(p, t->stream, t->group);
    if (old == NULL && live_count(p) >= SL_PUSH_TARGETS_MAX) {
        snprintf(why, why_len, "%u push targets already: remove one first", SL_PUSH_TARGETS_MAX);
        return SL_ELIMIT;
    }
    rc = push_save(p, t, old, why, why_len);
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
        push_retire(old); /* its batches still settle; then it goes */
    }
    sl_info("push", "target %s/%s -> %s (%s, batch %u, window %u ms, concurrency %u)", t->stream,
            t->group, rt->shown_url, sl_push_format_name((enum sl_push_format)t->format), t->batch_size,
            t->batch_window_ms, t->concurrency);
    push_pump(rt);
    return SL_OK;
}

int sl_push_remove(struct sl_push *p, const char *stream, const char *group, char *why,
                   size_t why_len)
{
    struct push_rt *rt = push_find(p, stream, group);
    if (rt == NULL) {
        snprintf(why, why_len, "no push target on %s/%s", stream, group);
        return SL_ENOTFOUND;
    }
    int rc = push_save(p, NULL, rt, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    sl_info("push", "target %s/%s -> %s removed", stream, group, rt->shown_url);
    push_retire(rt);
    return SL_OK;
}

static void status_of(const struct push_rt *rt, uint64_t now, struct sl_push_status *s)
{
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
            status_of(rt, now, &out[n]);
        }
        n++;
    }
    return n;
}

bool sl_push_get(const struct sl_push *p, const char *stream, const char *group,
                 struct sl_push_status *out)
{
    const struct push_rt *rt = p != NULL ? push_find(p, stream, group) : NULL;
    if (rt != NULL) {
        status_of(rt, sl_clock_mono_ms(), out);
    }
    return rt != NULL;
}
