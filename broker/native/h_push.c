/* h_push.c - push targets over the native protocol: SetTarget, RemoveTarget,
 * ListTargets (broker/push/push.h). The target file is written before the
 * answer (a short synchronous write: rare admin requests). */
#include "broker/native/handlers.h"

#include "broker/push/push.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void target_from(const Sluice__V1__PushTarget *m, struct sl_push_target *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->stream, sizeof(t->stream), "%s", m->stream != NULL ? m->stream : "");
    snprintf(t->group, sizeof(t->group), "%s", m->group != NULL ? m->group : "");
    snprintf(t->url, sizeof(t->url), "%s", m->url != NULL ? m->url : "");
    t->format = (uint8_t)(m->format < 256 ? m->format : 255);
    t->batch_size = m->batch_size;
    t->batch_window_ms = m->batch_window_ms;
    t->concurrency = m->concurrency;
    t->timeout_ms = m->timeout_ms;
    t->retry_base_ms = m->retry_base_ms;
    t->retry_max_ms = m->retry_max_ms;
    t->insecure = m->insecure;
}

static void target_to(const struct sl_push_target *t, Sluice__V1__PushTarget *m)
{
    sluice__v1__push_target__init(m);
    m->stream = (char *)t->stream;
    m->group = (char *)t->group;
    m->url = (char *)t->url;
    m->format = (Sluice__V1__PushFormat)t->format;
    m->batch_size = t->batch_size;
    m->batch_window_ms = t->batch_window_ms;
    m->concurrency = t->concurrency;
    m->timeout_ms = t->timeout_ms;
    m->retry_base_ms = t->retry_base_ms;
    m->retry_max_ms = t->retry_max_ms;
    m->insecure = t->insecure;
}

/* Names that do not fit are refused, not cut: a cut name is another group. */
static bool fits(const Sluice__V1__PushTarget *m, char *why, size_t cap)
{
    if ((m->stream != NULL && strlen(m->stream) > SL_PUSH_NAME_MAX) ||
        (m->group != NULL && strlen(m->group) > SL_PUSH_NAME_MAX)) {
        snprintf(why, cap, "stream and group names are at most %u bytes", SL_PUSH_NAME_MAX);
        return false;
    }
    if (m->url != NULL && strlen(m->url) > SL_PUSH_URL_MAX) {
        snprintf(why, cap, "url: longer than %u bytes", SL_PUSH_URL_MAX);
        return false;
    }
    return true;
}

static void set_target(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__PushTarget *m = req->set_target->target;
    char why[512] = "";
    if (m == NULL) {
        sl_native_fail(c, req->id, SL_EINVAL, "SetTarget needs a target");
        return;
    }
    if (!fits(m, why, sizeof(why))) {
        sl_native_fail(c, req->id, SL_EINVAL, why);
        return;
    }
    struct sl_push_target t;
    target_from(m, &t);
    int rc = sl_push_set(srv->push, &t, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__PushTarget out;
    target_to(&t, &out);
    Sluice__V1__SetTargetResponse sr = SLUICE__V1__SET_TARGET_RESPONSE__INIT;
    sr.target = &out;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_SET_TARGET;
    resp.set_target = &sr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

static void remove_target(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__RemoveTarget *m = req->remove_target;
    char why[512] = "";
    int rc = sl_push_remove(srv->push, m->stream, m->group, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__RemoveTargetResponse rr = SLUICE__V1__REMOVE_TARGET_RESPONSE__INIT;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_REMOVE_TARGET;
    resp.remove_target = &rr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

static void list_targets(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const char *stream = req->list_targets->stream;
    uint32_t n = sl_push_list(srv->push, stream, NULL, 0);
    struct sl_push_status *st = calloc(n + 1, sizeof(*st));
    Sluice__V1__TargetStatus *ts = calloc(n + 1, sizeof(*ts));
    Sluice__V1__TargetStatus **tp = calloc(n + 1, sizeof(*tp));
    Sluice__V1__PushTarget *pt = calloc(n + 1, sizeof(*pt));
    if (st == NULL || ts == NULL || tp == NULL || pt == NULL) {
        free(st);
        free(ts);
        free(tp);
        free(pt);
        sl_native_fail(c, req->id, SL_ENOMEM, "out of memory listing push targets");
        return;
    }
    n = sl_push_list(srv->push, stream, st, n);
    for (uint32_t i = 0; i < n; i++) {
        sluice__v1__target_status__init(&ts[i]);
        target_to(&st[i].target, &pt[i]);
        ts[i].target = &pt[i];
        ts[i].inflight = st[i].inflight;
        ts[i].delivered = st[i].delivered;
        ts[i].released = st[i].released;
        ts[i].batches_ok = st[i].batches_ok;
        ts[i].batches_failed = st[i].batches_failed;
        ts[i].failures = st[i].failures;
        ts[i].paused_ms = st[i].paused_ms;
        ts[i].last_status = (int32_t)st[i].last_status;
        ts[i].last_error = st[i].last_error;
        ts[i].last_latency_us = st[i].last_latency_us;
        tp[i] = &ts[i];
    }
    Sluice__V1__ListTargetsResponse lr = SLUICE__V1__LIST_TARGETS_RESPONSE__INIT;
    lr.n_targets = n;
    lr.targets = tp;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LIST_TARGETS;
    resp.list_targets = &lr;
    sl_native_respond(c, &resp);
    free(st);
    free(ts);
    free(tp);
    free(pt);
    sl_conn_request_done(c);
}

void sl_native_push(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    if (srv->push == NULL) {
        sl_native_fail(c, req->id, SL_EUNSUPPORTED,
                       "push targets are off on this broker (push = false in its config)");
        return;
    }
    switch (req->body_case) {
    case SLUICE__V1__REQUEST__BODY_SET_TARGET:
        set_target(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_REMOVE_TARGET:
        remove_target(srv, c, req);
        break;
    default:
        list_targets(srv, c, req);
        break;
    }
}
