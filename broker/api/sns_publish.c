/* sns_publish.c - Publish and PublishBatch: each message is one record on
 * the topic's stream, appended durably before the answer; the topic's
 * subscriptions (queue groups with push targets) deliver it from there.
 *
 * A message as a record (the SQS API's layout, so the push payloads and
 * the filters read both alike):
 *   value                  = Message (MessageStructure=json: its "default"
 *                            entry; per-protocol entries are not applied)
 *   attribute sluice.subject = Subject (the Notification's Subject)
 *   attribute sqs:N        = message attribute N: data type, NUL, value
 *                            (Binary: the decoded bytes); a FilterPolicy on
 *                            N reads it (broker/engine/filter_match.c)
 * MessageId = the record's SQS-style id (broker/msgid.h): the one the
 * Notification JSON and the x-amz-sns-message-id header carry.
 *
 * Memory: one batch buffer and one scratch buffer per request, sized from
 * the request (at most 10 messages of 256 KiB); nothing per record.
 * Threading: the main loop; the produce callback may run before it returns.
 */
#include "broker/api/sns_call.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/produce.h"
#include "broker/msgid.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/batch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_MESSAGE_BYTES_MAX (256u << 10) /* message + attributes (SNS) */
#define SNS_SUBJECT_MAX       100u         /* SNS */
#define SNS_SUBJECT_ATTR      "sluice.subject"
#define SNS_ENTRY_ID_MAX      80u

struct publish_op {
    struct sns_call *c;
    uint8_t *batch; /* owned */
    char *scratch;  /* owned: attribute keys and values, decoded messages */
    uint32_t n_rec;
    uint32_t entry_of[SL_SNS_BATCH_MAX];
    const char *value[SL_SNS_BATCH_MAX]; /* the record's value (Message or its default) */
    size_t value_len[SL_SNS_BATCH_MAX];
    enum sl_sns_error failed[SL_SNS_BATCH_MAX];
    char failed_why[SL_SNS_BATCH_MAX][SL_SNS_WHY_MAX];
};

static void op_free(struct publish_op *op)
{
    free(op->batch);
    free(op->scratch);
    free(op);
}

static bool type_ok(const char *t, const char *base)
{
    size_t n = strlen(base);
    return strncmp(t, base, n) == 0 && (t[n] == '\0' || t[n] == '.');
}

/* Checks the message attributes; their stored bytes added to *bytes. */
static enum sl_sns_error check_attrs(const struct sl_sns_entry *e, size_t *bytes, char *why,
                                     size_t n)
{
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        const struct sl_sns_mattr *a = &e->attrs[i];
        const char *v = a->string_value != NULL ? a->string_value : a->binary_b64;
        bool bin = a->type != NULL && type_ok(a->type, "Binary");
        bool text = a->type != NULL && (type_ok(a->type, "String") || type_ok(a->type, "Number"));
        size_t nl = strlen(a->name);
        if (nl == 0 || nl > SL_RECORD_ATTR_KEY_MAX - 4 || a->type == NULL || (!bin && !text)) {
            snprintf(why, n,
                     "The message attribute '%.64s' has an invalid name or data type: names "
                     "are 1-%u bytes, types String, String.Array, Number or Binary",
                     a->name, SL_RECORD_ATTR_KEY_MAX - 4);
            return SL_SNS_E_INVALID_PARAMETER_VALUE;
        }
        if (v == NULL || v[0] == '\0' || (bin && a->binary_b64 == NULL) ||
            (!bin && a->string_value == NULL)) {
            snprintf(why, n,
                     "The message attribute '%.64s' must contain non-empty message attribute "
                     "value for message attribute type '%.32s'.",
                     a->name, a->type);
            return SL_SNS_E_INVALID_PARAMETER_VALUE;
        }
        size_t vl = strlen(v);
        if (bin && (vl % 4 != 0 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                             "0123456789+/=") != vl)) {
            snprintf(why, n, "The message attribute '%.64s': BinaryValue is not base64", a->name);
            return SL_SNS_E_INVALID_PARAMETER_VALUE;
        }
        if (strlen(a->type) + 1 + vl > SL_RECORD_ATTR_VALUE_MAX) {
            snprintf(why, n, "The message attribute '%.64s': type + value at most %u bytes here",
                     a->name, SL_RECORD_ATTR_VALUE_MAX - 1);
            return SL_SNS_E_INVALID_PARAMETER_VALUE;
        }
        *bytes += nl + vl + strlen(a->type);
    }
    return SL_SNS_OK;
}

/* Checks one message and finds its value. */
static enum sl_sns_error check_entry(struct publish_op *op, uint32_t k, char *why, size_t n)
{
    const struct sl_sns_entry *e = &op->c->req->entries[k];
    if (e->message == NULL) {
        snprintf(why, n, "Invalid parameter: Message is required (the message to publish)");
        return SL_SNS_E_INVALID_PARAMETER;
    }
    if (e->message[0] == '\0') {
        snprintf(why, n, "Invalid parameter: Empty message");
        return SL_SNS_E_INVALID_PARAMETER;
    }
    if (e->subject != NULL && (e->subject[0] == '\0' || strlen(e->subject) > SNS_SUBJECT_MAX ||
                               strpbrk(e->subject, "\r\n") != NULL)) {
        snprintf(why, n, "Invalid parameter: Subject: 1-%u characters, no line breaks",
                 SNS_SUBJECT_MAX);
        return SL_SNS_E_INVALID_PARAMETER;
    }
    op->value[k] = e->message;
    op->value_len[k] = strlen(e->message);
    if (e->structure != NULL && strcmp(e->structure, "json") == 0) {
        /* the default text is found again in build(), which owns the scratch */
        json_t *j = json_loads(e->message, 0, NULL);
        bool ok = json_is_string(json_object_get(j, "default"));
        json_decref(j);
        if (!ok) {
            snprintf(why, n,
                     "Invalid parameter: Message Structure - No default entry in JSON message "
                     "body (MessageStructure=json needs {\"default\": \"text\", ...})");
            return SL_SNS_E_INVALID_PARAMETER;
        }
    } else if (e->structure != NULL) {
        snprintf(why, n, "Invalid parameter: MessageStructure: only json");
        return SL_SNS_E_INVALID_PARAMETER;
    }
    size_t bytes = op->value_len[k];
    enum sl_sns_error rc = check_attrs(e, &bytes, why, n);
    if (rc == SL_SNS_OK && bytes > SNS_MESSAGE_BYTES_MAX) {
        snprintf(why, n,
                 "Invalid parameter: Message too long (message and attributes at most %u "
                 "bytes)",
                 SNS_MESSAGE_BYTES_MAX);
        return SL_SNS_E_INVALID_PARAMETER;
    }
    return rc;
}

/* Appends one record's attributes; values written at *sp. */
static uint32_t record_attrs(const struct sl_sns_entry *e, struct sl_attr *out, char **sp)
{
    uint32_t na = 0;
    if (e->subject != NULL) {
        out[na++] = (struct sl_attr){SNS_SUBJECT_ATTR, sizeof(SNS_SUBJECT_ATTR) - 1, e->subject,
                                     (uint32_t)strlen(e->subject)};
    }
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        const struct sl_sns_mattr *a = &e->attrs[i];
        char *key = *sp;
        *sp += sprintf(key, SL_SQS_ATTR_PREFIX "%s", a->name) + 1;
        char *val = *sp;
        size_t tl = strlen(a->type) + 1, vl;
        memcpy(val, a->type, tl);
        if (a->binary_b64 != NULL) {
            if (sl_b64_decode(a->binary_b64, strlen(a->binary_b64), (uint8_t *)val + tl, &vl) !=
                SL_OK) {
                vl = 0; /* checked before: cannot happen */
            }
        } else {
            vl = strlen(a->string_value);
            memcpy(val + tl, a->string_value, vl);
        }
        *sp += tl + vl;
        out[na++] = (struct sl_attr){key, (uint32_t)strlen(key), val, (uint32_t)(tl + vl)};
    }
    return na;
}

static int build(struct publish_op *op, size_t *len)
{
    const struct sl_sns_req *req = op->c->req;
    size_t cap = SL_BATCH_HEADER_BYTES, scap = 1;
    for (uint32_t k = 0; k < op->n_rec; k++) {
        const struct sl_sns_entry *e = &req->entries[op->entry_of[k]];
        size_t b = op->value_len[op->entry_of[k]] + 64;
        for (uint32_t i = 0; i < e->n_attrs; i++) {
            const struct sl_sns_mattr *a = &e->attrs[i];
            b += strlen(a->name) + strlen(a->type) + 16 +
                 strlen(a->string_value != NULL ? a->string_value : a->binary_b64);
        }
        cap += b + 256 + (e->n_attrs + 2u) * 16u;
        scap += b + op->value_len[op->entry_of[k]] + 1;
    }
    op->batch = malloc(cap);
    op->scratch = malloc(scap);
    if (op->batch == NULL || op->scratch == NULL) {
        return SL_ENOMEM;
    }
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, op->batch, cap);
    char *sp = op->scratch;
    uint64_t now = sl_clock_wall_ms();
    for (uint32_t k = 0; k < op->n_rec; k++) {
        uint32_t i = op->entry_of[k];
        const struct sl_sns_entry *e = &req->entries[i];
        if (e->structure != NULL) { /* json: the default text (checked in check_entry) */
            json_t *j = json_loads(e->message, 0, NULL);
            const char *d = json_string_value(json_object_get(j, "default"));
            size_t dl = d != NULL ? strlen(d) : 0;
            SL_ASSERT(dl <= op->value_len[i]); /* JSON-escaped text is never shorter */
            memcpy(sp, d != NULL ? d : "", dl + 1);
            op->value[i] = sp;
            op->value_len[i] = dl;
            sp += dl + 1;
            json_decref(j);
        }
        struct sl_attr attrs[SL_SNS_MSG_ATTRS_MAX + 1];
        uint32_t na = record_attrs(e, attrs, &sp);
        SL_ASSERT((size_t)(sp - op->scratch) <= scap);
        struct sl_record rec = {.value = op->value[i],
                                .value_len = (uint32_t)op->value_len[i],
                                .attrs = attrs,
                                .attr_count = na,
                                .timestamp_ms = now};
        int rc = sl_batch_builder_add(&b, &rec);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
}

static void reply_batch(struct publish_op *op, const char ids[][SL_MSGID_LEN + 1])
{
    struct sns_call *c = op->c;
    const struct sl_sns_req *req = c->req;
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, req->op, true);
    sl_query_xml_open(&x, "Successful");
    for (uint32_t k = 0; ids != NULL && k < op->n_rec; k++) {
        sl_query_xml_open(&x, "member");
        sl_query_xml_leaf(&x, "Id", req->entries[op->entry_of[k]].id);
        sl_query_xml_leaf(&x, "MessageId", ids[k]);
        sl_query_xml_close(&x, "member");
    }
    sl_query_xml_close(&x, "Successful");
    sl_query_xml_open(&x, "Failed");
    for (uint32_t i = 0; i < req->n_entries; i++) {
        if (op->failed[i] == SL_SNS_OK) {
            continue;
        }
        sl_query_xml_open(&x, "member");
        sl_query_xml_leaf(&x, "Id", req->entries[i].id);
        sl_query_xml_leaf(&x, "Code", sns_error_code(op->failed[i]));
        sl_query_xml_leaf(&x, "Message", op->failed_why[i]);
        sl_query_xml_leaf(&x, "SenderFault", sns_error_sender(op->failed[i]) ? "true" : "false");
        sl_query_xml_close(&x, "member");
    }
    sl_query_xml_close(&x, "Failed");
    op_free(op);
    sns_reply(c, &x, true);
}

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct publish_op *op = ctx;
    struct sns_call *c = op->c;
    if (r->err != SL_OK) {
        op_free(op);
        sns_fail_engine(c, r->err, r->why);
        return;
    }
    SL_ASSERT(r->count == op->n_rec); /* no de-dup ids: nothing is dropped */
    char ids[SL_SNS_BATCH_MAX][SL_MSGID_LEN + 1];
    for (uint32_t k = 0; k < op->n_rec; k++) {
        sl_msgid_format(c->topic, r->shard, r->base_seq + k, ids[k]);
    }
    if (c->req->op == SL_SNS_PUBLISH) {
        op_free(op);
        struct sl_query_xml x = {0};
        sl_sns_xml_begin(&x, c->req->op, true);
        sl_query_xml_leaf(&x, "MessageId", ids[0]);
        sns_reply(c, &x, true);
        return;
    }
    reply_batch(op, ids);
}

static bool entry_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    return n >= 1 && n <= SNS_ENTRY_ID_MAX &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* PublishBatch's whole-request errors; false when answered. */
static bool batch_ok(struct sns_call *c)
{
    const struct sl_sns_req *r = c->req;
    if (r->n_entries == 0) {
        sns_fail(c, SL_SNS_E_EMPTY_BATCH,
                 "The batch request doesn't contain any entries "
                 "(PublishBatchRequestEntries.member.N)");
        return false;
    }
    for (uint32_t i = 0; i < r->n_entries; i++) {
        if (!entry_id_ok(r->entries[i].id)) {
            sns_fail(c, SL_SNS_E_INVALID_ENTRY_ID,
                     "The Id of a batch entry in a batch request doesn't abide by the "
                     "specification (1-%u of A-Z, a-z, 0-9, - and _)",
                     SNS_ENTRY_ID_MAX);
            return false;
        }
        for (uint32_t k = 0; k < i; k++) {
            if (strcmp(r->entries[i].id, r->entries[k].id) == 0) {
                sns_fail(c, SL_SNS_E_IDS_NOT_DISTINCT,
                         "Two or more batch entries in the request have the same Id (%.80s)",
                         r->entries[i].id);
                return false;
            }
        }
    }
    return true;
}

void sns_publish(struct sns_call *c, struct sl_stream *st)
{
    bool batch = c->req->op == SL_SNS_PUBLISH_BATCH;
    if (batch && !batch_ok(c)) {
        return;
    }
    if (!batch && c->req->n_entries == 0) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Message is required (the message to publish)");
        return;
    }
    struct publish_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sns_fail_engine(c, SL_ENOMEM, "");
        return;
    }
    op->c = c;
    uint32_t n = batch ? c->req->n_entries : 1;
    for (uint32_t i = 0; i < n; i++) {
        enum sl_sns_error e = check_entry(op, i, op->failed_why[i], sizeof(op->failed_why[i]));
        if (e != SL_SNS_OK && !batch) {
            char why[SL_SNS_WHY_MAX];
            snprintf(why, sizeof(why), "%s", op->failed_why[0]);
            op_free(op);
            sns_fail(c, e, "%s", why);
            return;
        }
        op->failed[i] = e;
        if (e == SL_SNS_OK) {
            op->entry_of[op->n_rec++] = i;
        }
    }
    if (op->n_rec == 0) {
        reply_batch(op, NULL);
        return;
    }
    size_t len = 0;
    int rc = build(op, &len);
    if (rc != SL_OK) {
        op_free(op);
        sns_fail_engine(c, rc, "the messages do not fit in a batch");
        return;
    }
    static uint32_t next_shard; /* unordered topics: round robin over the shards */
    struct sl_produce_req pr = {.stream = c->topic,
                                .shard = sl_catalog_open_shard(st, next_shard++ % st->lineage.open),
                                .batch = op->batch,
                                .len = len,
                                .ack = SL_ACK_DURABLE,
                                .forward = true};
    sl_produce_submit(c->e, &pr, on_produced, op);
}
