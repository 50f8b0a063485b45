/* queue.c - queue groups and topic subscriptions: create/delete/list groups, receive,
 * ack, nack, extend visibility, stats, purge (docs/PROTOCOL.md, proto/sluice.proto).
 *
 * Each call builds one Request (ack, nack and extend: one per RECEIPTS_PER_REQUEST
 * receipts), waits for its Response through sl_client_call and copies the answer into plain
 * C structs the caller owns. A receive's messages are copied into ONE allocation
 * ([messages][attributes][bytes]), so sluice_messages_free is one free() and a receive costs
 * one malloc whatever the count. Thread-safe: any number of threads may call these on one
 * client (sl_client_call is).
 */
#include "client/conn.h"

#include "common/assert.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Receipts per Ack/Nack/ExtendVisibility request. A receipt is a few dozen bytes, so 1000
 * keep a request far below the smallest frame limit while amortising the round trip. */
#define RECEIPTS_PER_REQUEST 1000u

_Static_assert(alignof(struct sluice_attr) <= alignof(struct sluice_message),
               "attributes are laid out right after the message array");

static int check_names(const char *stream, const char *group)
{
    if (stream == NULL || stream[0] == '\0' || group == NULL || group[0] == '\0') {
        sl_client_set_error("stream and group names must not be empty");
        return SL_EINVAL;
    }
    return SL_OK;
}

/* A queue group's calls go to its home: on a cluster stream the leader of the group's shard
 * (sl_client_call_group finds it again after a failover), else the broker the client talks
 * to. A receive or settle retried there after a lost answer is at-least-once: leases the
 * lost answer held expire and are delivered again. */
static int group_call(sluice_client *c, const char *stream, const char *group, sl_request *req,
                      uint32_t extra_timeout_ms, Sluice__V1__Response__BodyCase want,
                      int empty_ok, sl_response **out)
{
    int rc = sl_client_call_group(c, stream, group, req, extra_timeout_ms, out);
    return sl_client_want_body(rc, out, want, empty_ok);
}

/* Runs a request whose response body is empty (CreateGroup, DeleteGroup, Purge). */
static int queue_call_empty(sluice_client *c, const char *stream, const char *group,
                            sl_request *req, Sluice__V1__Response__BodyCase want)
{
    sl_response *resp = NULL;
    int rc = group_call(c, stream, group, req, 0, want, 1, &resp);
    sl_response_free(resp);
    return rc;
}

int sluice_queue_group_create(sluice_client *c, const char *stream, const char *group,
                              const struct sluice_queue_group_opts *o)
{
    int rc = check_names(stream, group);
    if (rc != SL_OK) {
        return rc;
    }
    static const struct sluice_queue_group_opts defaults;
    o = o != NULL ? o : &defaults;
    Sluice__V1__Position start = SLUICE__V1__POSITION__INIT;
    start.kind = (Sluice__V1__PositionKind)o->start.kind;
    start.seq = o->start.seq;
    start.time_ms = o->start.time_ms;
    Sluice__V1__QueueGroupConfig cfg = SLUICE__V1__QUEUE_GROUP_CONFIG__INIT;
    cfg.visibility_timeout_ms = o->visibility_timeout_ms;
    cfg.max_deliveries = o->max_deliveries;
    cfg.dead_letter_stream = (char *)(o->dead_letter_stream != NULL ? o->dead_letter_stream : "");
    cfg.ordered = o->ordered != 0;
    cfg.filter = (char *)(o->filter != NULL ? o->filter : "");
    cfg.filter_scope = o->filter_body ? SLUICE__V1__FILTER_SCOPE__FILTER_SCOPE_BODY
                                      : SLUICE__V1__FILTER_SCOPE__FILTER_SCOPE_ATTRIBUTES;
    cfg.start = &start;
    cfg.max_inflight = o->max_inflight;
    Sluice__V1__CreateGroup body = SLUICE__V1__CREATE_GROUP__INIT;
    body.stream = (char *)stream;
    body.group = (char *)group;
    body.config = &cfg;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_CREATE_GROUP;
    req.create_group = &body;
    return queue_call_empty(c, stream, group, &req, SLUICE__V1__RESPONSE__BODY_CREATE_GROUP);
}

int sluice_queue_group_delete(sluice_client *c, const char *stream, const char *group)
{
    int rc = check_names(stream, group);
    if (rc != SL_OK) {
        return rc;
    }
    Sluice__V1__DeleteGroup body = SLUICE__V1__DELETE_GROUP__INIT;
    body.stream = (char *)stream;
    body.group = (char *)group;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_DELETE_GROUP;
    req.delete_group = &body;
    return queue_call_empty(c, stream, group, &req, SLUICE__V1__RESPONSE__BODY_DELETE_GROUP);
}

int sluice_queue_purge(sluice_client *c, const char *stream, const char *group)
{
    int rc = check_names(stream, group);
    if (rc != SL_OK) {
        return rc;
    }
    Sluice__V1__Purge body = SLUICE__V1__PURGE__INIT;
    body.stream = (char *)stream;
    body.group = (char *)group;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_PURGE;
    req.purge = &body;
    return queue_call_empty(c, stream, group, &req, SLUICE__V1__RESPONSE__BODY_PURGE);
}

int sluice_queue_groups_list(sluice_client *c, const char *stream, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (stream == NULL || stream[0] == '\0') {
        sl_client_set_error("stream name must not be empty");
        return SL_EINVAL;
    }
    Sluice__V1__ListQueueGroups body = SLUICE__V1__LIST_QUEUE_GROUPS__INIT;
    body.stream = (char *)stream;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_LIST_QUEUE_GROUPS;
    req.list_queue_groups = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_LIST_QUEUE_GROUPS, 0, &resp);
    if (rc == SL_OK) {
        rc = sl_client_names_dup(resp->list_queue_groups->groups,
                                 resp->list_queue_groups->n_groups, out, count);
    }
    sl_response_free(resp);
    return rc;
}

void sluice_queue_stats_fini(struct sluice_queue_stats *s)
{
    if (s != NULL) {
        free(s->dead_letter_stream);
        free(s->filter);
        memset(s, 0, sizeof(*s));
    }
}

static int stats_copy(const Sluice__V1__GroupStatsResponse *r, struct sluice_queue_stats *out)
{
    out->visible = r->visible;
    out->inflight = r->inflight;
    out->delayed = r->delayed;
    out->dead_lettered = r->dead_lettered;
    out->filtered_out = r->filtered_out;
    out->oldest_age_ms = r->oldest_age_ms;
    const Sluice__V1__QueueGroupConfig *cfg = r->config;
    const char *dlq = cfg != NULL && cfg->dead_letter_stream != NULL ? cfg->dead_letter_stream : "";
    const char *filter = cfg != NULL && cfg->filter != NULL ? cfg->filter : "";
    out->dead_letter_stream = strdup(dlq);
    out->filter = strdup(filter);
    out->filter_body = cfg != NULL && cfg->filter_scope == SLUICE__V1__FILTER_SCOPE__FILTER_SCOPE_BODY;
    if (out->dead_letter_stream == NULL || out->filter == NULL) {
        sluice_queue_stats_fini(out);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    if (cfg != NULL) {
        out->visibility_timeout_ms = cfg->visibility_timeout_ms;
        out->max_deliveries = cfg->max_deliveries;
        out->ordered = cfg->ordered ? 1 : 0;
        out->max_inflight = cfg->max_inflight;
        if (cfg->start != NULL) {
            out->start.kind = (enum sluice_position_kind)cfg->start->kind;
            out->start.seq = cfg->start->seq;
            out->start.time_ms = cfg->start->time_ms;
        }
    }
    return SL_OK;
}

int sluice_queue_stats(sluice_client *c, const char *stream, const char *group,
                       struct sluice_queue_stats *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_names(stream, group);
    if (rc != SL_OK) {
        return rc;
    }
    Sluice__V1__GroupStats body = SLUICE__V1__GROUP_STATS__INIT;
    body.stream = (char *)stream;
    body.group = (char *)group;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_GROUP_STATS;
    req.group_stats = &body;
    sl_response *resp = NULL;
    rc = group_call(c, stream, group, &req, 0, SLUICE__V1__RESPONSE__BODY_GROUP_STATS, 0, &resp);
    if (rc == SL_OK) {
        rc = stats_copy(resp->group_stats, out);
    }
    sl_response_free(resp);
    return rc;
}

/* ---- receive ---- */

void sluice_messages_free(struct sluice_message *msgs, size_t count)
{
    (void)count; /* one allocation holds them all */
    free(msgs);
}

/* Bytes of the variable part of one record (each string or byte run + its NUL), or
 * SIZE_MAX when a length does not fit the public struct's uint32_t fields. */
static size_t record_bytes(const Sluice__V1__ReceivedRecord *r)
{
    if (r->key.len > UINT32_MAX || r->value.len > UINT32_MAX || r->n_attributes > UINT32_MAX) {
        return SIZE_MAX;
    }
    size_t n = strlen(r->receipt != NULL ? r->receipt : "") + 1 + r->key.len + 1 + r->value.len + 1;
    for (size_t i = 0; i < r->n_attributes; i++) {
        const Sluice__V1__Attribute *a = r->attributes[i];
        size_t kl = strlen(a->key != NULL ? a->key : "");
        size_t vl = strlen(a->value != NULL ? a->value : "");
        if (kl > UINT32_MAX || vl > UINT32_MAX) {
            return SIZE_MAX;
        }
        n += kl + 1 + vl + 1;
    }
    return n;
}

/* Copies `len` bytes and a NUL to *cursor; returns where they went and advances *cursor. */
static char *put_bytes(char **cursor, const void *src, size_t len)
{
    char *dst = *cursor;
    if (len > 0) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
    *cursor = dst + len + 1;
    return dst;
}

static void record_copy(const Sluice__V1__ReceivedRecord *r, struct sluice_message *m,
                        struct sluice_attr *attrs, char **cursor)
{
    const char *receipt = r->receipt != NULL ? r->receipt : "";
    m->receipt = put_bytes(cursor, receipt, strlen(receipt));
    m->shard = r->shard;
    m->seq = r->seq;
    m->timestamp_ms = r->timestamp_ms;
    m->produced_ms = r->produced_ms;
    m->key = (uint8_t *)put_bytes(cursor, r->key.data, r->key.len);
    m->key_len = (uint32_t)r->key.len;
    m->value = (uint8_t *)put_bytes(cursor, r->value.data, r->value.len);
    m->value_len = (uint32_t)r->value.len;
    m->attrs = r->n_attributes > 0 ? attrs : NULL;
    m->attr_count = (uint32_t)r->n_attributes;
    m->delivery_count = r->delivery_count;
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key != NULL ? r->attributes[i]->key : "";
        const char *v = r->attributes[i]->value != NULL ? r->attributes[i]->value : "";
        size_t kl = strlen(k), vl = strlen(v);
        attrs[i].key = put_bytes(cursor, k, kl);
        attrs[i].key_len = (uint32_t)kl;
        attrs[i].value = put_bytes(cursor, v, vl);
        attrs[i].value_len = (uint32_t)vl;
    }
}

/* Copies the response's records into one owned block (see the file comment). */
static int messages_copy(const Sluice__V1__ReceiveResponse *r, struct sluice_message **out)
{
    size_t n = r->n_records, attrs_total = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t b = record_bytes(r->records[i]);
        if (b == SIZE_MAX) {
            sl_client_set_error("received record %zu exceeds the client's size limits", i);
            return SL_EPROTO;
        }
        bytes += b;
        attrs_total += r->records[i]->n_attributes;
    }
    size_t head = n * sizeof(struct sluice_message) + attrs_total * sizeof(struct sluice_attr);
    struct sluice_message *msgs = malloc(head + bytes);
    if (msgs == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    struct sluice_attr *attrs = (struct sluice_attr *)(void *)(msgs + n);
    char *cursor = (char *)msgs + head;
    for (size_t i = 0; i < n; i++) {
        record_copy(r->records[i], &msgs[i], attrs, &cursor);
        attrs += r->records[i]->n_attributes;
    }
    SL_ASSERT(cursor == (char *)msgs + head + bytes);
    *out = msgs;
    return SL_OK;
}

int sluice_queue_receive(sluice_client *c, const char *stream, const char *group, uint32_t max,
                         uint32_t wait_ms, uint32_t visibility_timeout_ms,
                         struct sluice_message **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    int rc = check_names(stream, group);
    if (rc != SL_OK) {
        return rc;
    }
    if (max == 0 || max > SLUICE_QUEUE_RECEIVE_MAX) {
        sl_client_set_error("receive max %u out of range 1..%u", max, SLUICE_QUEUE_RECEIVE_MAX);
        return SL_EINVAL;
    }
    Sluice__V1__Receive body = SLUICE__V1__RECEIVE__INIT;
    body.stream = (char *)stream;
    body.group = (char *)group;
    body.max_records = max;
    body.wait_ms = wait_ms;
    body.visibility_timeout_ms = visibility_timeout_ms;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_RECEIVE;
    req.receive = &body;
    sl_response *resp = NULL;
    rc = group_call(c, stream, group, &req, wait_ms, SLUICE__V1__RESPONSE__BODY_RECEIVE, 1, &resp);
    size_t n = rc == SL_OK && resp->receive != NULL ? resp->receive->n_records : 0;
    if (n > max) {
        sl_client_set_error("broker returned %zu records for a receive of at most %u", n, max);
        rc = SL_EPROTO;
    }
    if (rc == SL_OK && n > 0) {
        rc = messages_copy(resp->receive, out);
    }
    sl_response_free(resp);
    if (rc == SL_OK) {
        *count = n;
    }
    return rc;
}

/* ---- ack, nack, extend ---- */

enum receipts_op { OP_ACK, OP_NACK, OP_EXTEND };

/* One request for up to RECEIPTS_PER_REQUEST receipts; fills results[0..count). Returns the
 * request's error (then every result is it) or SL_OK (results hold the per-receipt codes). */
static int receipts_request(sluice_client *c, enum receipts_op op, const char *stream,
                            const char *group, char **receipts, size_t count, uint32_t arg_ms,
                            int *results)
{
    Sluice__V1__Ack ack = SLUICE__V1__ACK__INIT;
    Sluice__V1__Nack nack = SLUICE__V1__NACK__INIT;
    Sluice__V1__ExtendVisibility ext = SLUICE__V1__EXTEND_VISIBILITY__INIT;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    Sluice__V1__Response__BodyCase want;
    if (op == OP_ACK) {
        ack.stream = (char *)stream;
        ack.group = (char *)group;
        ack.n_receipts = count;
        ack.receipts = receipts;
        req.body_case = SLUICE__V1__REQUEST__BODY_ACK;
        req.ack = &ack;
        want = SLUICE__V1__RESPONSE__BODY_ACK;
    } else if (op == OP_NACK) {
        nack.stream = (char *)stream;
        nack.group = (char *)group;
        nack.n_receipts = count;
        nack.receipts = receipts;
        nack.delay_ms = arg_ms;
        req.body_case = SLUICE__V1__REQUEST__BODY_NACK;
        req.nack = &nack;
        want = SLUICE__V1__RESPONSE__BODY_NACK;
    } else {
        ext.stream = (char *)stream;
        ext.group = (char *)group;
        ext.n_receipts = count;
        ext.receipts = receipts;
        ext.visibility_timeout_ms = arg_ms;
        req.body_case = SLUICE__V1__REQUEST__BODY_EXTEND_VISIBILITY;
        req.extend_visibility = &ext;
        want = SLUICE__V1__RESPONSE__BODY_EXTEND_VISIBILITY;
    }
    sl_response *resp = NULL;
    int rc = group_call(c, stream, group, &req, 0, want, 0, &resp);
    /* The three response bodies have the same shape: repeated ErrorCode results = 1. */
    size_t n_results = 0;
    const Sluice__V1__ErrorCode *codes = NULL;
    if (rc == SL_OK) {
        n_results = op == OP_ACK    ? resp->ack->n_results
                    : op == OP_NACK ? resp->nack->n_results
                                    : resp->extend_visibility->n_results;
        codes = op == OP_ACK    ? resp->ack->results
                : op == OP_NACK ? resp->nack->results
                                : resp->extend_visibility->results;
        if (n_results != count) {
            sl_client_set_error("broker returned %zu results for %zu receipts", n_results, count);
            rc = SL_EPROTO;
        }
    }
    for (size_t i = 0; i < count; i++) {
        results[i] = rc == SL_OK ? (int)codes[i] : rc;
    }
    sl_response_free(resp);
    return rc;
}

/* Splits the receipts into requests; see sluice_queue_ack for the contract. */
static int receipts_call(sluice_client *c, enum receipts_op op, const char *stream,
                         const char *group, const char *const *receipts, size_t count,
                         uint32_t arg_ms, int *results)
{
    static const char *const op_names[] = {"ack", "nack", "extend"};
    int rc = check_names(stream, group);
    if (rc == SL_OK && (count == 0 || receipts == NULL)) {
        sl_client_set_error("%s: no receipts", op_names[op]);
        rc = SL_EINVAL;
    }
    if (rc != SL_OK) {
        for (size_t i = 0; results != NULL && i < count; i++) {
            results[i] = rc;
        }
        return rc;
    }
    int local[RECEIPTS_PER_REQUEST];
    int first_err = SL_OK;
    size_t first_i = 0;
    for (size_t at = 0; at < count; at += RECEIPTS_PER_REQUEST) {
        size_t k = count - at < RECEIPTS_PER_REQUEST ? count - at : RECEIPTS_PER_REQUEST;
        int *res = results != NULL ? results + at : local;
        rc = receipts_request(c, op, stream, group, (char **)(receipts + at), k, arg_ms, res);
        for (size_t i = 0; i < k && first_err == SL_OK; i++) {
            if (res[i] != SL_OK) {
                first_err = res[i];
                first_i = at + i;
            }
        }
        if (rc != SL_OK) {
            /* A request-level failure (connection, timeout): report it for the rest too. */
            for (size_t i = at + k; results != NULL && i < count; i++) {
                results[i] = rc;
            }
            return rc;
        }
    }
    if (first_err != SL_OK) {
        sl_client_set_error("%s: receipt %zu (%s): %s", op_names[op], first_i, receipts[first_i],
                            first_err == SL_ENOTFOUND ? "lease ended or unknown receipt"
                                                      : sl_strerror(first_err));
    }
    return first_err;
}

int sluice_queue_ack(sluice_client *c, const char *stream, const char *group,
                     const char *const *receipts, size_t count, int *results)
{
    return receipts_call(c, OP_ACK, stream, group, receipts, count, 0, results);
}

int sluice_queue_nack(sluice_client *c, const char *stream, const char *group,
                      const char *const *receipts, size_t count, uint32_t delay_ms, int *results)
{
    return receipts_call(c, OP_NACK, stream, group, receipts, count, delay_ms, results);
}

int sluice_queue_extend(sluice_client *c, const char *stream, const char *group,
                        const char *const *receipts, size_t count, uint32_t visibility_timeout_ms,
                        int *results)
{
    return receipts_call(c, OP_EXTEND, stream, group, receipts, count, visibility_timeout_ms,
                         results);
}

/* ---- redrive (client side: receive from the DLQ, produce back, ack) ---- */

#define REDRIVE_GROUP "sluice.redrive"
#define REDRIVE_NAME_MAX 128u /* stream names */
#define REDRIVE_BATCH 100u

struct redrive_ctx {
    pthread_mutex_t mu;
    int err;
};

static void on_redrive_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    struct redrive_ctx *r = ctx;
    if (err != SL_OK) {
        pthread_mutex_lock(&r->mu);
        r->err = r->err != SL_OK ? r->err : err;
        pthread_mutex_unlock(&r->mu);
    }
}

static bool attr_is(const struct sluice_attr *a, const char *name)
{
    size_t n = strlen(name);
    return a->key_len == n && memcmp(a->key, name, n) == 0;
}

/* The target stream of a dead-lettered message (NUL-terminated copy). */
static void redrive_target(const struct sluice_message *m, const char *fallback, char *out,
                           size_t cap)
{
    snprintf(out, cap, "%s", fallback);
    for (uint32_t i = 0; i < m->attr_count; i++) {
        if (attr_is(&m->attrs[i], "sluice.source_stream") && m->attrs[i].value_len < cap) {
            memcpy(out, m->attrs[i].value, m->attrs[i].value_len);
            out[m->attrs[i].value_len] = '\0';
        }
    }
}

/* Produces one received batch back (one producer per target stream). */
static int redrive_batch(sluice_client *c, const char *stream, struct sluice_message *msgs,
                         size_t n)
{
    struct redrive_ctx r = {.err = SL_OK};
    pthread_mutex_init(&r.mu, NULL);
    int rc = SL_OK;
    for (size_t i = 0; i < n && rc == SL_OK; i++) {
        char target[REDRIVE_NAME_MAX + 1];
        redrive_target(&msgs[i], stream, target, sizeof(target));
        sluice_producer *p = NULL;
        struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
        rc = sluice_producer_new(c, target, &po, &p);
        if (rc != SL_OK) {
            break;
        }
        struct sluice_attr kept[64];
        uint32_t nk = 0;
        for (uint32_t a = 0; a < msgs[i].attr_count && nk < 64; a++) {
            const struct sluice_attr *at = &msgs[i].attrs[a];
            if (!(at->key_len >= 7 && memcmp(at->key, "sluice.", 7) == 0)) {
                kept[nk++] = *at;
            }
        }
        rc = sluice_produce(p, msgs[i].key, msgs[i].key_len, msgs[i].value, msgs[i].value_len,
                            kept, nk, on_redrive_delivery, &r);
        int frc = sluice_producer_flush(p, 30000);
        sluice_producer_free(p);
        rc = rc != SL_OK ? rc : frc;
    }
    pthread_mutex_lock(&r.mu);
    rc = rc != SL_OK ? rc : r.err;
    pthread_mutex_unlock(&r.mu);
    pthread_mutex_destroy(&r.mu);
    return rc;
}

int sluice_queue_redrive(sluice_client *c, const char *stream, const char *group, uint64_t max,
                         uint64_t *moved)
{
    *moved = 0;
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    int rc = sluice_queue_stats(c, stream, group, &st);
    if (rc != SL_OK) {
        return rc;
    }
    char dlq[REDRIVE_NAME_MAX + 1];
    snprintf(dlq, sizeof(dlq), "%s", st.dead_letter_stream != NULL ? st.dead_letter_stream : "");
    sluice_queue_stats_fini(&st);
    struct sluice_stream_info *info = NULL;
    if (sluice_stream_describe(c, dlq, &info) != SL_OK) {
        return SL_OK; /* nothing was ever dead-lettered */
    }
    sluice_stream_info_free(info);
    rc = sluice_queue_group_create(c, dlq, REDRIVE_GROUP, NULL);
    if (rc != SL_OK && rc != SL_EEXIST) {
        return rc;
    }
    while (max == 0 || *moved < max) {
        uint64_t left = max == 0 ? REDRIVE_BATCH : max - *moved;
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        rc = sluice_queue_receive(c, dlq, REDRIVE_GROUP,
                                  (uint32_t)(left < REDRIVE_BATCH ? left : REDRIVE_BATCH), 0, 0,
                                  &msgs, &n);
        if (rc != SL_OK || n == 0) {
            sluice_messages_free(msgs, n);
            return rc;
        }
        rc = redrive_batch(c, stream, msgs, n);
        const char *receipts[REDRIVE_BATCH];
        for (size_t i = 0; i < n; i++) {
            receipts[i] = msgs[i].receipt;
        }
        if (rc == SL_OK) {
            rc = sluice_queue_ack(c, dlq, REDRIVE_GROUP, receipts, n, NULL);
        } else {
            (void)sluice_queue_nack(c, dlq, REDRIVE_GROUP, receipts, n, 0, NULL);
        }
        sluice_messages_free(msgs, n);
        if (rc != SL_OK) {
            return rc;
        }
        *moved += n;
    }
    return SL_OK;
}
