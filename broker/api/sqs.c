/* sqs.c - the Amazon SQS API (see sqs.h): dispatch, answers and errors in
 * both protocols, and queue administration. Messages: sqs_messages.c;
 * decoding: sqs_json.c, sqs_query.c.
 *
 * Mapping onto the engine (docs/ARCHITECTURE.md, "HTTP front-end"):
 *  - queue Q = stream Q (SQS_SHARDS_STANDARD shards; a FIFO queue Q.fifo has
 *    one shard and its group is `ordered`: FIFO per MessageGroupId, which is
 *    the record key) + the queue group SQS_GROUP ("sqs") on it;
 *  - QueueUrl = http://<Host header>/000000000000/Q; the queue of a request
 *    is QueueUrl's last path element, or the path it was POSTed to (Query);
 *  - queue attributes = stream properties "sqs.<Name>" (durable in
 *    stream.meta); a stream is an SQS queue iff it has sqs.CreatedTimestamp;
 *    MessageRetentionPeriod also sets the stream's retention (hours,
 *    rounded up); VisibilityTimeout and ReceiveMessageWaitTimeSeconds are
 *    applied per receive, so changing them needs no engine change;
 *  - RedrivePolicy {deadLetterTargetArn, maxReceiveCount} = the group's
 *    dead_letter_stream (the target queue's stream, which must be a queue)
 *    and max_deliveries. The engine fixes these when the group is created:
 *    SetQueueAttributes changes them by re-creating the group (from the
 *    log's end), which we allow only while the queue holds no message.
 *  - Dead letters go back with `sluice queue redrive Q --group sqs` (the CLI), which
 *    moves them to their source streams; StartMessageMoveTask is not served.
 *
 * Threading: the main loop. Ownership: a struct sqs_call per request (see
 * sqs_call.h), freed when answered.
 */
#include "broker/api/sqs.h"

#include "broker/api/access.h"
#include "broker/api/sqs_call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/engine/streams.h"
#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQS_SHARDS_STANDARD             2u
#define SQS_SHARDS_FIFO                 1u
#define SQS_LIST_MAX                    1000u  /* ListQueues answers at most this many (SQS) */
#define SQS_MESSAGE_RETENTION_DEFAULT_S 345600 /* 4 days (SQS) */
#define SQS_SECONDS_PER_HOUR            3600
#define SQS_REDRIVE_MAX_RECEIVES        1000 /* SQS: maxReceiveCount 1..1000 */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    size_t base = n > 5 && strcmp(name + n - 5, ".fifo") == 0 ? n - 5 : n;
    return n >= 1 && n <= SL_SQS_QUEUE_NAME_MAX && base >= 1 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == base;
}

static bool ends_fifo(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".fifo") == 0;
}

static json_t *queue_url(const struct sqs_call *c, const char *name)
{
    char url[SQS_HOST_MAX + SL_STREAM_NAME_MAX + 32];
    snprintf(url, sizeof(url), "http://%s/%s/%s", c->host, SQS_ACCOUNT, name);
    return json_string(url);
}

static bool is_queue(const struct sl_stream *st)
{
    return st != NULL && sqs_prop(st, "CreatedTimestamp") != NULL;
}

/* What each action needs on its queue's stream when auth is on (enum
 * sl_acl_op; docs/SECURITY-sigv4.md). ListQueues (0): any authenticated
 * principal, listing only the queues it has a right on. */
static const uint32_t acl_of[SL_SQS_OP_COUNT_] = {
    [SL_SQS_CREATE_QUEUE] = SL_ACL_ADMIN,
    [SL_SQS_GET_QUEUE_URL] = SL_ACL_ANY,
    [SL_SQS_LIST_QUEUES] = 0,
    [SL_SQS_DELETE_QUEUE] = SL_ACL_ADMIN,
    [SL_SQS_GET_QUEUE_ATTRIBUTES] = SL_ACL_ANY,
    [SL_SQS_SET_QUEUE_ATTRIBUTES] = SL_ACL_ADMIN,
    [SL_SQS_SEND_MESSAGE] = SL_ACL_PRODUCE,
    [SL_SQS_SEND_MESSAGE_BATCH] = SL_ACL_PRODUCE,
    [SL_SQS_RECEIVE_MESSAGE] = SL_ACL_QUEUE,
    [SL_SQS_DELETE_MESSAGE] = SL_ACL_QUEUE,
    [SL_SQS_DELETE_MESSAGE_BATCH] = SL_ACL_QUEUE,
    [SL_SQS_CHANGE_VISIBILITY] = SL_ACL_QUEUE,
    [SL_SQS_CHANGE_VISIBILITY_BATCH] = SL_ACL_QUEUE,
    [SL_SQS_PURGE_QUEUE] = SL_ACL_ADMIN,
};

/* With auth on: whether the principal may do `ops` on queue `name`; if
 * not, answers AccessDenied and returns false. */
static bool allowed(struct sqs_call *c, uint32_t ops, const char *name)
{
    char why[SL_SQS_WHY_MAX];
    if (sl_access_allowed(c->call, ops, name, why, sizeof(why))) {
        return true;
    }
    sqs_fail(c, SL_SQS_E_ACCESS_DENIED, "%s", why);
    return false;
}

/* Settable attributes: integers in [min, max], or (max < 0) free text
 * checked elsewhere (booleans, policies). */
static const struct {
    const char *name;
    int64_t dflt;
    int64_t min;
    int64_t max;
} attr_defs[] = {
    {"DelaySeconds", 0, 0, 900},
    {"MaximumMessageSize", SL_SQS_MESSAGE_BYTES_MAX, 1024, SL_SQS_MESSAGE_BYTES_MAX},
    {"MessageRetentionPeriod", SQS_MESSAGE_RETENTION_DEFAULT_S, 60, 1209600},
    {"ReceiveMessageWaitTimeSeconds", 0, 0, 20},
    {"VisibilityTimeout", 30, 0, 43200},
    {"KmsDataKeyReusePeriodSeconds", 300, 60, 86400},
    {"RedrivePolicy", 0, 0, -1},
    {"FifoQueue", 0, 0, -1},
    {"ContentBasedDeduplication", 0, 0, -1},
    {"Policy", 0, 0, -1},
    {"KmsMasterKeyId", 0, 0, -1},
    {"SqsManagedSseEnabled", 0, 0, -1},
    {"DeduplicationScope", 0, 0, -1},
    {"FifoThroughputLimit", 0, 0, -1},
    {"RedriveAllowPolicy", 0, 0, -1},
};
#define ATTR_DEFS (sizeof(attr_defs) / sizeof(attr_defs[0]))

static int attr_def(const char *name)
{
    for (uint32_t i = 0; i < ATTR_DEFS; i++) {
        if (strcmp(attr_defs[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* The attribute's value now (stored or default), into buf. */
static const char *attr_now(const struct sl_stream *st, const char *name, char *buf, size_t n)
{
    const char *v = st != NULL ? sqs_prop(st, name) : NULL;
    int d = attr_def(name);
    if (v != NULL) {
        return v;
    }
    if (d >= 0 && attr_defs[d].max >= 0) {
        snprintf(buf, n, "%" PRId64, attr_defs[d].dflt);
        return buf;
    }
    return strcmp(name, "FifoQueue") == 0 || strcmp(name, "ContentBasedDeduplication") == 0
               ? "false"
               : NULL;
}

/* RedrivePolicy's JSON: the dead-letter queue's name and maxReceiveCount. */
static enum sl_sqs_error parse_redrive(const char *v, char *dlq, size_t dlq_len, uint32_t *max,
                                       char *why, size_t why_len)
{
    json_error_t je;
    json_t *j = json_loads(v, 0, &je);
    json_t *arn = json_object_get(j, "deadLetterTargetArn");
    json_t *mrc = json_object_get(j, "maxReceiveCount");
    int64_t n = json_is_integer(mrc)  ? json_integer_value(mrc)
                : json_is_string(mrc) ? strtoll(json_string_value(mrc), NULL, 10)
                                      : -1;
    const char *a = json_string_value(arn);
    const char *colon = a != NULL ? strrchr(a, ':') : NULL;
    enum sl_sqs_error rc = SL_SQS_OK;
    if (colon == NULL || n < 1 || n > SQS_REDRIVE_MAX_RECEIVES || !name_ok(colon + 1)) {
        snprintf(why, why_len,
                 "Value %.128s for parameter RedrivePolicy is invalid. Reason: Redrive policy "
                 "needs deadLetterTargetArn (an SQS queue ARN) and maxReceiveCount (1-1000).",
                 v);
        rc = SL_SQS_E_INVALID_PARAMETER;
    } else {
        snprintf(dlq, dlq_len, "%s", colon + 1);
        *max = (uint32_t)n;
    }
    json_decref(j);
    return rc;
}

/* Checks one attribute for CreateQueue / SetQueueAttributes. */
static enum sl_sqs_error check_attr(struct sqs_call *c, const struct sl_sqs_kv *kv, bool fifo,
                                    char *why, size_t why_len)
{
    int d = attr_def(kv->name);
    if (d < 0) {
        snprintf(why, why_len, "Unknown Attribute %.64s.", kv->name);
        return SL_SQS_E_INVALID_ATTRIBUTE_NAME;
    }
    if (attr_defs[d].max >= 0) {
        char *end = NULL;
        long long v = strtoll(kv->value, &end, 10);
        if (kv->value[0] == '\0' || *end != '\0' || v < attr_defs[d].min || v > attr_defs[d].max) {
            snprintf(why, why_len, "Invalid value for the parameter %s.", kv->name);
            return SL_SQS_E_INVALID_PARAMETER;
        }
        return SL_SQS_OK;
    }
    bool boolean =
        strcmp(kv->name, "FifoQueue") == 0 || strcmp(kv->name, "ContentBasedDeduplication") == 0;
    if (boolean && strcmp(kv->value, "true") != 0 && strcmp(kv->value, "false") != 0) {
        snprintf(why, why_len, "Invalid value for the parameter %s.", kv->name);
        return SL_SQS_E_INVALID_PARAMETER;
    }
    if (strcmp(kv->name, "ContentBasedDeduplication") == 0 && !fifo &&
        strcmp(kv->value, "true") == 0) {
        snprintf(why, why_len, "ContentBasedDeduplication is only for FIFO queues.");
        return SL_SQS_E_INVALID_PARAMETER;
    }
    if (strcmp(kv->name, "RedrivePolicy") == 0 && kv->value[0] != '\0') {
        char dlq[SL_SQS_QUEUE_NAME_MAX + 1];
        uint32_t max = 0;
        enum sl_sqs_error rc = parse_redrive(kv->value, dlq, sizeof(dlq), &max, why, why_len);
        /* dead letters are written to the target: the principal must be able to */
        if (rc == SL_SQS_OK && !sl_access_allowed(c->call, SL_ACL_PRODUCE, dlq, why, why_len)) {
            return SL_SQS_E_ACCESS_DENIED;
        }
        if (rc == SL_SQS_OK && !is_queue(sl_catalog_find(c->e->catalog, dlq))) {
            snprintf(why, why_len,
                     "Value %.128s for parameter RedrivePolicy is invalid. Reason: Dead-letter "
                     "target does not exist.",
                     kv->value);
            rc = SL_SQS_E_INVALID_PARAMETER;
        }
        return rc;
    }
    return strlen(kv->value) < SL_STREAM_PROP_VALUE_MAX ? SL_SQS_OK : SL_SQS_E_INVALID_PARAMETER;
}

static enum sl_sqs_error check_attrs(struct sqs_call *c, bool fifo, char *why, size_t why_len)
{
    for (uint32_t i = 0; i < c->req->n_attrs; i++) {
        enum sl_sqs_error rc = check_attr(c, &c->req->attrs[i], fifo, why, why_len);
        if (rc != SL_SQS_OK) {
            return rc;
        }
    }
    return SL_SQS_OK;
}

/* Stores the request's attributes (and `extra`) as properties; applies
 * MessageRetentionPeriod to the stream. Errors: the catalog's. */
static int store_attrs(struct sqs_call *c, struct sl_stream *st, const struct sl_sqs_kv *extra,
                       uint32_t n_extra, char *why, size_t why_len)
{
    char keys[SL_SQS_QUEUE_ATTRS_MAX + 2][SL_STREAM_PROP_KEY_MAX];
    const char *kp[SL_SQS_QUEUE_ATTRS_MAX + 2], *vp[SL_SQS_QUEUE_ATTRS_MAX + 2];
    uint32_t n = 0;
    SL_ASSERT(n_extra <= 2);
    for (uint32_t i = 0; i < c->req->n_attrs + n_extra; i++) {
        const struct sl_sqs_kv *kv =
            i < c->req->n_attrs ? &c->req->attrs[i] : &extra[i - c->req->n_attrs];
        snprintf(keys[n], sizeof(keys[n]), SQS_PROP_PREFIX "%s", kv->name);
        kp[n] = keys[n];
        vp[n] = kv->value;
        n++;
    }
    int rc = sl_catalog_set_props(c->e->catalog, st, kp, vp, n, why, why_len);
    int64_t retention_s = sqs_attr_int(st, "MessageRetentionPeriod", -1);
    if (rc == SL_OK && retention_s > 0) {
        uint32_t hours =
            (uint32_t)((retention_s + SQS_SECONDS_PER_HOUR - 1) / SQS_SECONDS_PER_HOUR);
        rc = sl_catalog_set_retention(c->e->catalog, st, hours, why, why_len);
    }
    return rc;
}

/* The queue group's configuration from the queue's attributes. */
static void group_config(const struct sl_stream *st, struct sl_qgroup_config *g, char *dlq,
                         size_t dlq_len)
{
    memset(g, 0, sizeof(*g));
    g->visibility_timeout_ms = (uint32_t)sqs_attr_int(st, "VisibilityTimeout", 30) * 1000u;
    g->ordered = sqs_is_fifo(st);
    g->start.kind = SL_POS_TRIM_HORIZON;
    const char *redrive = sqs_prop(st, "RedrivePolicy");
    char why[SL_SQS_WHY_MAX];
    uint32_t max = 0;
    dlq[0] = '\0';
    if (redrive != NULL && redrive[0] != '\0' &&
        parse_redrive(redrive, dlq, dlq_len, &max, why, sizeof(why)) == SL_SQS_OK) {
        g->max_deliveries = max;
        g->dead_letter_stream = dlq;
    }
}

static void on_group_created(void *ctx, int err, const char *why)
{
    struct sqs_call *c = ctx;
    if (err != SL_OK) {
        char w2[SL_SQS_WHY_MAX];
        sl_streams_delete(c->e, c->queue, w2, sizeof(w2)); /* no half-made queue */
        sqs_fail_engine(c, err == SL_ENOTFOUND ? SL_EIO : err, why);
        return;
    }
    sqs_reply(c, json_pack("{s:o}", "QueueUrl", queue_url(c, c->queue)));
}

/* CreateQueue on an existing queue: idempotent when every attribute given
 * has the value the queue has. */
static void create_existing(struct sqs_call *c, struct sl_stream *st)
{
    for (uint32_t i = 0; is_queue(st) && i < c->req->n_attrs; i++) {
        char buf[32];
        const char *now = attr_now(st, c->req->attrs[i].name, buf, sizeof(buf));
        if (now == NULL || strcmp(now, c->req->attrs[i].value) != 0) {
            sqs_fail(c, SL_SQS_E_QUEUE_EXISTS,
                     "A queue already exists with the same name and a different value for "
                     "attribute %.64s",
                     c->req->attrs[i].name);
            return;
        }
    }
    if (!is_queue(st)) {
        sqs_fail(c, SL_SQS_E_QUEUE_EXISTS, "A stream named %s exists and is not an SQS queue",
                 c->queue);
        return;
    }
    sqs_reply(c, json_pack("{s:o}", "QueueUrl", queue_url(c, c->queue)));
}

static void create_queue(struct sqs_call *c)
{
    const struct sl_sqs_req *r = c->req;
    if (r->queue_name == NULL) {
        sqs_fail(c, SL_SQS_E_MISSING_PARAMETER,
                 "The request must contain the parameter QueueName.");
        return;
    }
    bool fifo = false;
    for (uint32_t i = 0; i < r->n_attrs; i++) {
        fifo = fifo || (strcmp(r->attrs[i].name, "FifoQueue") == 0 &&
                        strcmp(r->attrs[i].value, "true") == 0);
    }
    if (!name_ok(r->queue_name) || ends_fifo(r->queue_name) != fifo) {
        sqs_fail(c, SL_SQS_E_INVALID_PARAMETER,
                 "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in "
                 "length; a FIFO queue (FifoQueue=true) is named *.fifo, and only it.");
        return;
    }
    if (!allowed(c, SL_ACL_ADMIN, r->queue_name)) {
        return;
    }
    snprintf(c->queue, sizeof(c->queue), "%s", r->queue_name);
    char why[SL_SQS_WHY_MAX + 64];
    enum sl_sqs_error ae = check_attrs(c, fifo, why, sizeof(why));
    if (ae != SL_SQS_OK) {
        sqs_fail(c, ae, "%s", why);
        return;
    }
    struct sl_stream *st = sl_catalog_find(c->e->catalog, c->queue);
    if (st != NULL) {
        create_existing(c, st);
        return;
    }
    struct sl_stream_spec spec = {.name = c->queue,
                                  .shard_count = fifo ? SQS_SHARDS_FIFO : SQS_SHARDS_STANDARD};
    int rc = sl_streams_create(c->e, &spec, &st, why, sizeof(why));
    char created[24];
    snprintf(created, sizeof(created), "%" PRIu64, sl_clock_wall_ms() / 1000u);
    struct sl_sqs_kv extra[2] = {{"CreatedTimestamp", created}, {"LastModifiedTimestamp", created}};
    if (rc == SL_OK && (rc = store_attrs(c, st, extra, 2, why, sizeof(why))) != SL_OK) {
        char w2[SL_SQS_WHY_MAX];
        sl_streams_delete(c->e, c->queue, w2, sizeof(w2));
    }
    if (rc != SL_OK) {
        sqs_fail_engine(c, rc == SL_ENOTFOUND ? SL_EIO : rc, why);
        return;
    }
    struct sl_qgroup_config g;
    char dlq[SL_SQS_QUEUE_NAME_MAX + 1];
    group_config(st, &g, dlq, sizeof(dlq));
    sl_queue_create_group(c->e, c->queue, SQS_GROUP, &g, on_group_created, c);
}

static void list_queues(struct sqs_call *c)
{
    json_t *urls = json_array();
    const char *prefix = c->req->prefix != NULL ? c->req->prefix : "";
    c->call->acl_checked = true; /* any principal may list: only what it has a right on */
    for (struct sl_stream *st = sl_catalog_first(c->e->catalog);
         st != NULL && json_array_size(urls) < SQS_LIST_MAX; st = st->next) {
        if (is_queue(st) && strncmp(st->name, prefix, strlen(prefix)) == 0 &&
            sl_access_visible(c->call, st->name)) {
            json_array_append_new(urls, queue_url(c, st->name));
        }
    }
    if (json_array_size(urls) == 0) {
        json_decref(urls);
        sqs_reply(c, json_object());
        return;
    }
    sqs_reply(c, json_pack("{s:o}", "QueueUrls", urls));
}

/* ---- queue attributes ----------------------------------------------------------- */

static const char *const computed_attrs[] = {"ApproximateNumberOfMessages",
                                             "ApproximateNumberOfMessagesNotVisible",
                                             "ApproximateNumberOfMessagesDelayed",
                                             "QueueArn",
                                             "CreatedTimestamp",
                                             "LastModifiedTimestamp"};
#define COMPUTED_ATTRS (sizeof(computed_attrs) / sizeof(computed_attrs[0]))

static bool attr_known(const char *name)
{
    for (uint32_t i = 0; i < COMPUTED_ATTRS; i++) {
        if (strcmp(computed_attrs[i], name) == 0) {
            return true;
        }
    }
    return attr_def(name) >= 0;
}

static void put_computed(struct sqs_call *c, struct sl_stream *st, json_t *out, const char *name)
{
    char buf[SQS_HOST_MAX];
    struct sl_qgroup_stats qs;
    char why[SL_SQS_WHY_MAX];
    if (strcmp(name, "QueueArn") == 0) {
        snprintf(buf, sizeof(buf), "arn:aws:sqs:%s:%s:%s", SQS_REGION, SQS_ACCOUNT, st->name);
    } else if (strncmp(name, "ApproximateNumberOfMessages", 27) == 0) {
        if (sl_queue_stats(c->e, st->name, SQS_GROUP, &qs, why, sizeof(why)) != SL_OK) {
            memset(&qs, 0, sizeof(qs));
        }
        uint64_t v = strcmp(name, "ApproximateNumberOfMessages") == 0             ? qs.visible
                     : strcmp(name, "ApproximateNumberOfMessagesNotVisible") == 0 ? qs.inflight
                                                                                  : qs.delayed;
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
    } else {
        const char *v = sqs_prop(st, name);
        snprintf(buf, sizeof(buf), "%s", v != NULL ? v : "0");
    }
    json_object_set_new(out, name, json_string(buf));
}

static void put_attr(struct sqs_call *c, struct sl_stream *st, json_t *out, const char *name)
{
    char buf[32];
    const char *v = attr_now(st, name, buf, sizeof(buf));
    if (attr_def(name) < 0) {
        put_computed(c, st, out, name);
    } else if (v != NULL && (strcmp(name, "FifoQueue") != 0 || sqs_is_fifo(st)) &&
               (strcmp(name, "ContentBasedDeduplication") != 0 || sqs_is_fifo(st))) {
        json_object_set_new(out, name, json_string(v));
    }
}

static void get_queue_attributes(struct sqs_call *c, struct sl_stream *st)
{
    json_t *out = json_object();
    bool all = false;
    for (uint32_t i = 0; i < c->req->n_names; i++) {
        const char *n = c->req->names[i];
        all = all || strcmp(n, "All") == 0;
        if (strcmp(n, "All") != 0 && !attr_known(n)) {
            json_decref(out);
            sqs_fail(c, SL_SQS_E_INVALID_ATTRIBUTE_NAME, "Unknown Attribute %.64s.", n);
            return;
        }
    }
    for (uint32_t i = 0; i < COMPUTED_ATTRS + ATTR_DEFS; i++) {
        const char *n = i < COMPUTED_ATTRS ? computed_attrs[i] : attr_defs[i - COMPUTED_ATTRS].name;
        bool asked = all;
        for (uint32_t k = 0; !asked && k < c->req->n_names; k++) {
            asked = strcmp(c->req->names[k], n) == 0;
        }
        if (asked) {
            put_attr(c, st, out, n);
        }
    }
    if (json_object_size(out) == 0) {
        json_decref(out);
        sqs_reply(c, json_object());
        return;
    }
    sqs_reply(c, json_pack("{s:o}", "Attributes", out));
}

static void on_group_recreated(void *ctx, int err, const char *why)
{
    struct sqs_call *c = ctx;
    if (err != SL_OK) {
        sqs_fail_engine(c, err == SL_ENOTFOUND ? SL_EIO : err, why);
        return;
    }
    sqs_reply(c, json_object());
}

static void on_group_deleted(void *ctx, int err, const char *why)
{
    struct sqs_call *c = ctx;
    struct sl_stream *st = sl_catalog_find(c->e->catalog, c->queue);
    if (err != SL_OK || st == NULL) {
        sqs_fail_engine(c, st == NULL ? SL_ENOTFOUND : err, why);
        return;
    }
    struct sl_qgroup_config g;
    char dlq[SL_SQS_QUEUE_NAME_MAX + 1];
    group_config(st, &g, dlq, sizeof(dlq));
    g.start.kind = SL_POS_LATEST; /* the queue was empty: nothing behind the end */
    sl_queue_create_group(c->e, c->queue, SQS_GROUP, &g, on_group_recreated, c);
}

/* RedrivePolicy changes re-create the group, only while the queue is empty
 * (the engine fixes a group's dead-letter settings at creation). */
static void set_queue_attributes(struct sqs_call *c, struct sl_stream *st)
{
    char why[SL_SQS_WHY_MAX + 64];
    enum sl_sqs_error ae = check_attrs(c, sqs_is_fifo(st), why, sizeof(why));
    bool regroup = false;
    for (uint32_t i = 0; ae == SL_SQS_OK && i < c->req->n_attrs; i++) {
        const struct sl_sqs_kv *kv = &c->req->attrs[i];
        const char *now = sqs_prop(st, kv->name);
        if (strcmp(kv->name, "FifoQueue") == 0 &&
            strcmp(kv->value, sqs_is_fifo(st) ? "true" : "false") != 0) {
            snprintf(why, sizeof(why), "FifoQueue cannot be changed after creation.");
            ae = SL_SQS_E_INVALID_ATTRIBUTE_NAME;
        }
        regroup = regroup || (strcmp(kv->name, "RedrivePolicy") == 0 &&
                              strcmp(now != NULL ? now : "", kv->value) != 0);
    }
    struct sl_qgroup_stats qs;
    char w2[SL_SQS_WHY_MAX];
    if (ae == SL_SQS_OK && regroup &&
        (sl_queue_stats(c->e, st->name, SQS_GROUP, &qs, w2, sizeof(w2)) != SL_OK ||
         qs.visible + qs.inflight + qs.delayed > 0)) {
        snprintf(why, sizeof(why),
                 "RedrivePolicy can change only while the queue is empty (this broker fixes a "
                 "queue group's dead-letter settings when it creates it); purge it first.");
        ae = SL_SQS_E_INVALID_PARAMETER;
    }
    if (ae != SL_SQS_OK) {
        sqs_fail(c, ae, "%s", why);
        return;
    }
    char modified[24];
    snprintf(modified, sizeof(modified), "%" PRIu64, sl_clock_wall_ms() / 1000u);
    struct sl_sqs_kv extra = {"LastModifiedTimestamp", modified};
    int rc = store_attrs(c, st, &extra, 1, why, sizeof(why));
    if (rc != SL_OK) {
        sqs_fail_engine(c, rc == SL_ENOTFOUND ? SL_EIO : rc, why);
        return;
    }
    if (!regroup) {
        sqs_reply(c, json_object());
        return;
    }
    sl_queue_delete_group(c->e, c->queue, SQS_GROUP, on_group_deleted, c);
}

static void on_purged(void *ctx, int err, const char *why)
{
    struct sqs_call *c = ctx;
    if (err != SL_OK) {
        sqs_fail_engine(c, err, why);
        return;
    }
    sqs_reply(c, json_object());
}

static void delete_queue(struct sqs_call *c)
{
    char why[SL_SQS_WHY_MAX];
    int rc = sl_streams_delete(c->e, c->queue, why, sizeof(why));
    if (rc != SL_OK) {
        sqs_fail_engine(c, rc, why);
        return;
    }
    sqs_reply(c, json_object());
}

/* ---- dispatch ------------------------------------------------------------------- */

/* The queue the request is for: QueueUrl's last path element, else the
 * path the request was POSTed to. NULL when answered (missing, unknown). */
static struct sl_stream *resolve_queue(struct sqs_call *c)
{
    const char *url = c->req->queue_url;
    const char *name = c->path_queue;
    if (url != NULL) {
        const char *slash = strrchr(url, '/');
        name = slash != NULL ? slash + 1 : url;
    }
    if (name[0] == '\0') {
        sqs_fail(c, SL_SQS_E_MISSING_PARAMETER, "The request must contain the parameter QueueUrl.");
        return NULL;
    }
    if (name_ok(name) && !allowed(c, acl_of[c->req->op], name)) { /* before the lookup */
        return NULL;
    }
    struct sl_stream *st = name_ok(name) ? sl_catalog_find(c->e->catalog, name) : NULL;
    if (!is_queue(st)) {
        sqs_fail(c, SL_SQS_E_NO_QUEUE, "The specified queue does not exist.");
        return NULL;
    }
    snprintf(c->queue, sizeof(c->queue), "%s", name);
    return st;
}

static void dispatch(struct sqs_call *c)
{
    enum sl_sqs_op op = c->req->op;
    if (op == SL_SQS_CREATE_QUEUE) {
        create_queue(c);
        return;
    }
    if (op == SL_SQS_LIST_QUEUES) {
        list_queues(c);
        return;
    }
    if (op == SL_SQS_GET_QUEUE_URL) {
        const char *n = c->req->queue_name;
        if (n != NULL && name_ok(n) && !allowed(c, SL_ACL_ANY, n)) {
            return;
        }
        if (n == NULL || !name_ok(n) || !is_queue(sl_catalog_find(c->e->catalog, n))) {
            sqs_fail(c, SL_SQS_E_NO_QUEUE, "The specified queue does not exist.");
            return;
        }
        sqs_reply(c, json_pack("{s:o}", "QueueUrl", queue_url(c, n)));
        return;
    }
    struct sl_stream *st = resolve_queue(c);
    if (st == NULL) {
        return;
    }
    switch (op) {
    case SL_SQS_DELETE_QUEUE:
        delete_queue(c);
        break;
    case SL_SQS_GET_QUEUE_ATTRIBUTES:
        get_queue_attributes(c, st);
        break;
    case SL_SQS_SET_QUEUE_ATTRIBUTES:
        set_queue_attributes(c, st);
        break;
    case SL_SQS_PURGE_QUEUE:
        sl_queue_purge(c->e, c->queue, SQS_GROUP, on_purged, c);
        break;
    case SL_SQS_SEND_MESSAGE:
    case SL_SQS_SEND_MESSAGE_BATCH:
        sqs_send(c, st);
        break;
    case SL_SQS_RECEIVE_MESSAGE:
        sqs_receive(c, st);
        break;
    case SL_SQS_DELETE_MESSAGE:
    case SL_SQS_DELETE_MESSAGE_BATCH:
        sqs_delete(c, st);
        break;
    default:
        sqs_change_visibility(c, st);
        break;
    }
}

/* What is needed from the HTTP request, copied (it is borrowed). */
static void copy_request(struct sqs_call *c, const struct sl_http_request *req)
{
    static uint64_t counter;
    uint64_t h = sl_checksum64(&counter, sizeof(counter)) ^ sl_clock_mono_ns();
    counter++;
    snprintf(c->request_id, sizeof(c->request_id), "%08x-%04x-4%03x-8%03x-%012" PRIx64,
             (unsigned)(h >> 32), (unsigned)(h >> 16) & 0xffff, (unsigned)h & 0xfff,
             (unsigned)(counter & 0xfff), counter);
    const char *host = sl_api_header(req, "host");
    if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof(c->host) ||
        strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") !=
            strlen(host)) {
        host = "localhost";
    }
    snprintf(c->host, sizeof(c->host), "%s", host);
    size_t plen = strcspn(req->path, "?");
    const char *last = req->path;
    for (size_t i = 0; i < plen; i++) {
        last = req->path[i] == '/' ? req->path + i + 1 : last;
    }
    size_t n = (size_t)(req->path + plen - last);
    if (n <= SL_SQS_QUEUE_NAME_MAX) {
        memcpy(c->path_queue, last, n);
        c->path_queue[n] = '\0';
    }
}

/* SigV4 (auth on): answers the SQS error and returns false when refused. */
static bool authenticate(struct sqs_call *c)
{
    static const enum sl_sqs_error errs[] = {
        [SL_SIGV4_MISSING] = SL_SQS_E_MISSING_AUTH,
        [SL_SIGV4_INCOMPLETE] = SL_SQS_E_INCOMPLETE_SIGNATURE,
        [SL_SIGV4_UNKNOWN_KEY] = SL_SQS_E_INVALID_CLIENT_TOKEN,
        [SL_SIGV4_MISMATCH] = SL_SQS_E_SIGNATURE_MISMATCH,
        [SL_SIGV4_EXPIRED] = SL_SQS_E_SIGNATURE_MISMATCH,
        [SL_SIGV4_REPLAY] = SL_SQS_E_SIGNATURE_MISMATCH,
        [SL_SIGV4_INTERNAL] = SL_SQS_E_INTERNAL,
    };
    char why[SL_SIGV4_WHY_MAX];
    enum sl_sigv4_status st = sl_access_authenticate(c->call, "sqs", why, sizeof(why));
    if (st == SL_SIGV4_OK) {
        return true;
    }
    SL_ASSERT((size_t)st < sizeof(errs) / sizeof(errs[0]));
    sqs_fail(c, errs[st], "%s", why);
    return false;
}

void sl_sqs_handle(struct sl_api_call *call, const char *op)
{
    struct sqs_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        static const char msg[] = "out of memory";
        sl_api_reply(call, 503, "text/plain", msg, sizeof(msg) - 1);
        return;
    }
    const struct sl_http_request *req = call->req;
    SL_ASSERT(req != NULL); /* handlers are called on the request's arrival */
    c->call = call;
    c->e = call->api->engine;
    c->query = op == NULL;
    copy_request(c, req);
    if (!authenticate(c)) { /* before the body is decoded */
        return;
    }
    struct sl_sqs_fault f = {0};
    int rc = c->query ? sl_sqs_decode_query(req->body, req->body_len, &c->req, &f)
                      : sl_sqs_decode_json(op, req->body, req->body_len, &c->req, &f);
    if (rc == SL_ENOMEM) {
        sqs_answer(c, 503, NULL); /* out of memory */
        return;
    }
    if (rc != SL_OK) {
        sqs_fail(c, f.code, "%s", f.why);
        return;
    }
    SL_ASSERT(c->req->op > SL_SQS_UNKNOWN && c->req->op < SL_SQS_OP_COUNT_);
    call->action = sl_sqs_op_name(c->req->op);
    call->acl_ops = acl_of[c->req->op];
    dispatch(c);
}
