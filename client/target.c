/* target.c - push targets: set, remove, list (sluice.h; docs/PROTOCOL.md). */
#include "client/conn.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const format_names[] = {"sluice", "sqs", "kinesis", "sns", "eventbridge",
                                             "sns-http"};
#define FORMATS (sizeof(format_names) / sizeof(format_names[0]))

static int format_parse(const char *name, Sluice__V1__PushFormat *out)
{
    for (size_t i = 0; i < FORMATS; i++) {
        if (strcmp(name != NULL ? name : "sluice", format_names[i]) == 0) {
            *out = (Sluice__V1__PushFormat)i;
            return SL_OK;
        }
    }
    sl_client_set_error("unknown push format '%s' (sluice, sqs, kinesis, sns, eventbridge, sns-http)",
                        name);
    return SL_EINVAL;
}

int sluice_target_set(sluice_client *c, const struct sluice_target *t)
{
    if (t == NULL || t->stream == NULL || t->group == NULL || t->url == NULL) {
        sl_client_set_error("a target needs a stream, a group and a url");
        return SL_EINVAL;
    }
    Sluice__V1__PushTarget m = SLUICE__V1__PUSH_TARGET__INIT;
    int rc = format_parse(t->format, &m.format);
    if (rc != SL_OK) {
        return rc;
    }
    m.stream = (char *)t->stream;
    m.group = (char *)t->group;
    m.url = (char *)t->url;
    m.batch_size = t->batch_size;
    m.batch_window_ms = t->batch_window_ms;
    m.concurrency = t->concurrency;
    m.timeout_ms = t->timeout_ms;
    m.retry_base_ms = t->retry_base_ms;
    m.retry_max_ms = t->retry_max_ms;
    m.insecure = t->insecure != 0;
    Sluice__V1__SetTarget body = SLUICE__V1__SET_TARGET__INIT;
    body.target = &m;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_SET_TARGET;
    req.set_target = &body;
    sl_response *resp = NULL;
    rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_SET_TARGET, 1, &resp);
    sl_response_free(resp);
    return rc;
}

int sluice_target_remove(sluice_client *c, const char *stream, const char *group)
{
    Sluice__V1__RemoveTarget body = SLUICE__V1__REMOVE_TARGET__INIT;
    body.stream = (char *)(stream != NULL ? stream : "");
    body.group = (char *)(group != NULL ? group : "");
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_REMOVE_TARGET;
    req.remove_target = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_REMOVE_TARGET, 1, &resp);
    sl_response_free(resp);
    return rc;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

/* Copies one status; false when out of memory (what was copied is freed by the caller). */
static bool status_copy(const Sluice__V1__TargetStatus *m, struct sluice_target_status *s)
{
    const Sluice__V1__PushTarget *t = m->target;
    static const Sluice__V1__PushTarget none = SLUICE__V1__PUSH_TARGET__INIT;
    t = t != NULL ? t : &none;
    s->target.stream = dup_or_empty(t->stream);
    s->target.group = dup_or_empty(t->group);
    s->target.url = dup_or_empty(t->url);
    s->target.format = (size_t)t->format < FORMATS ? format_names[t->format] : "unknown";
    s->target.batch_size = t->batch_size;
    s->target.batch_window_ms = t->batch_window_ms;
    s->target.concurrency = t->concurrency;
    s->target.timeout_ms = t->timeout_ms;
    s->target.retry_base_ms = t->retry_base_ms;
    s->target.retry_max_ms = t->retry_max_ms;
    s->target.insecure = t->insecure;
    s->inflight = m->inflight;
    s->delivered = m->delivered;
    s->released = m->released;
    s->batches_ok = m->batches_ok;
    s->batches_failed = m->batches_failed;
    s->failures = m->failures;
    s->paused_ms = m->paused_ms;
    s->last_status = m->last_status;
    s->last_error = dup_or_empty(m->last_error);
    s->last_latency_us = m->last_latency_us;
    return s->target.stream != NULL && s->target.group != NULL && s->target.url != NULL &&
           s->last_error != NULL;
}

int sluice_target_list(sluice_client *c, const char *stream, struct sluice_target_status **out,
                       size_t *count)
{
    *out = NULL;
    *count = 0;
    if (stream == NULL || stream[0] == '\0') {
        sl_client_set_error("stream name must not be empty");
        return SL_EINVAL;
    }
    Sluice__V1__ListTargets body = SLUICE__V1__LIST_TARGETS__INIT;
    body.stream = (char *)stream;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_LIST_TARGETS;
    req.list_targets = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_LIST_TARGETS, 1, &resp);
    if (rc != SL_OK) {
        return rc;
    }
    size_t n = resp->body_case == SLUICE__V1__RESPONSE__BODY_LIST_TARGETS
                   ? resp->list_targets->n_targets
                   : 0;
    struct sluice_target_status *s = n > 0 ? calloc(n, sizeof(*s)) : NULL;
    if (n > 0 && s == NULL) {
        sl_response_free(resp);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!status_copy(resp->list_targets->targets[i], &s[i])) {
            sluice_target_list_free(s, i + 1);
            sl_response_free(resp);
            sl_client_set_error("out of memory");
            return SL_ENOMEM;
        }
    }
    sl_response_free(resp);
    *out = s;
    *count = n;
    return SL_OK;
}

void sluice_target_list_free(struct sluice_target_status *s, size_t count)
{
    for (size_t i = 0; s != NULL && i < count; i++) {
        free((char *)s[i].target.stream);
        free((char *)s[i].target.group);
        free((char *)s[i].target.url);
        free((char *)s[i].last_error);
    }
    free(s);
}
