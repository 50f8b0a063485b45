/* sqs_json.c - the SQS JSON protocol's request decoding (see sqs_req.h):
 * body -> jansson document -> struct sl_sqs_req. The Query protocol ends
 * here too (sqs_query.c builds the same document from the form).
 *
 * Input is untrusted: every field's type is checked, counts are bounded by
 * the SQS limits (SL_SQS_*), base64 is decoded into an arena sized from the
 * body (decoded bytes never exceed the encoded ones), nothing is asserted.
 * Threading: none. Ownership: the request owns the document and the arena.
 */
#include "broker/api/sqs_req.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[SL_SQS_OP_COUNT_] = {
    [SL_SQS_UNKNOWN] = "",
    [SL_SQS_CREATE_QUEUE] = "CreateQueue",
    [SL_SQS_GET_QUEUE_URL] = "GetQueueUrl",
    [SL_SQS_LIST_QUEUES] = "ListQueues",
    [SL_SQS_DELETE_QUEUE] = "DeleteQueue",
    [SL_SQS_GET_QUEUE_ATTRIBUTES] = "GetQueueAttributes",
    [SL_SQS_SET_QUEUE_ATTRIBUTES] = "SetQueueAttributes",
    [SL_SQS_SEND_MESSAGE] = "SendMessage",
    [SL_SQS_SEND_MESSAGE_BATCH] = "SendMessageBatch",
    [SL_SQS_RECEIVE_MESSAGE] = "ReceiveMessage",
    [SL_SQS_DELETE_MESSAGE] = "DeleteMessage",
    [SL_SQS_DELETE_MESSAGE_BATCH] = "DeleteMessageBatch",
    [SL_SQS_CHANGE_VISIBILITY] = "ChangeMessageVisibility",
    [SL_SQS_CHANGE_VISIBILITY_BATCH] = "ChangeMessageVisibilityBatch",
    [SL_SQS_PURGE_QUEUE] = "PurgeQueue",
};

enum sl_sqs_op sl_sqs_op_parse(const char *name, size_t len)
{
    for (uint32_t i = 1; i < SL_SQS_OP_COUNT_; i++) {
        if (strlen(op_names[i]) == len && memcmp(op_names[i], name, len) == 0) {
            return (enum sl_sqs_op)i;
        }
    }
    return SL_SQS_UNKNOWN;
}

/* SQS operations this broker does not serve: UnsupportedOperation (an
 * unknown name is InvalidAction). */
static const char *const unserved[] = {
    "AddPermission",        "RemovePermission",      "TagQueue",
    "UntagQueue",           "ListQueueTags",         "ListDeadLetterSourceQueues",
    "StartMessageMoveTask", "CancelMessageMoveTask", "ListMessageMoveTasks",
};

bool sl_sqs_op_unserved(const char *name)
{
    for (uint32_t i = 0; i < sizeof(unserved) / sizeof(unserved[0]); i++) {
        if (strcmp(unserved[i], name) == 0) {
            return true;
        }
    }
    return false;
}

const char *sl_sqs_op_name(enum sl_sqs_op op)
{
    SL_ASSERT(op < SL_SQS_OP_COUNT_);
    return op_names[op];
}

__attribute__((format(printf, 3, 4))) static int fault(struct sl_sqs_fault *f,
                                                       enum sl_sqs_error code, const char *fmt, ...)
{
    f->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof(f->why), fmt, ap);
    va_end(ap);
    return SL_EPROTO;
}

void sl_sqs_req_free(struct sl_sqs_req *r)
{
    if (r == NULL) {
        return;
    }
    json_decref(r->doc);
    free(r->arena);
    free(r);
}

/* ---- field access ------------------------------------------------------ */

/* A string member, NULL when absent; a present non-string is a fault. */
static int get_str(const json_t *o, const char *key, const char **out, struct sl_sqs_fault *f)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return SL_OK;
    }
    if (!json_is_string(v)) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER, "%s must be a string", key);
    }
    *out = json_string_value(v);
    return SL_OK;
}

/* An integer member (a JSON number, or a decimal string from the Query
 * protocol), -1 when absent; negative or non-numeric is a fault. */
static int get_int(const json_t *o, const char *key, int64_t *out, struct sl_sqs_fault *f)
{
    json_t *v = json_object_get(o, key);
    *out = -1;
    if (v == NULL || json_is_null(v)) {
        return SL_OK;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return SL_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        long long n = strtoll(s, &end, 10);
        if (s[0] >= '0' && s[0] <= '9' && *end == '\0' && n >= 0 && strlen(s) < 12) {
            *out = n;
            return SL_OK;
        }
    }
    return fault(f, SL_SQS_E_INVALID_PARAMETER, "%s must be a non-negative integer", key);
}

/* A list of strings into names[], at most SL_SQS_NAMES_MAX. */
static int get_names(const json_t *o, const char *key, const char **names, uint32_t *n,
                     struct sl_sqs_fault *f)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) {
        return SL_OK;
    }
    if (!json_is_array(v)) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER, "%s must be a list of strings", key);
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            return fault(f, SL_SQS_E_INVALID_PARAMETER, "%s must be a list of strings", key);
        }
        if (*n >= SL_SQS_NAMES_MAX) {
            return fault(f, SL_SQS_E_INVALID_PARAMETER, "%s: more than %u names", key,
                         SL_SQS_NAMES_MAX);
        }
        names[(*n)++] = json_string_value(e);
    }
    return SL_OK;
}

/* ---- base64 (message attributes' BinaryValue) ------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes `s` into the arena. Errors: SL_EPROTO (not base64), SL_ENOMEM. */
static int b64_decode(struct sl_sqs_req *r, const char *s, const uint8_t **out, size_t *out_len)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '=') {
        len--;
    }
    size_t need = len / 4 * 3 + 3;
    if (r->arena_cap - r->arena_len < need) {
        return SL_ENOMEM; /* cannot happen: the arena holds the whole body */
    }
    uint8_t *dst = r->arena + r->arena_len;
    size_t n = 0;
    uint32_t acc = 0, bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            return SL_EPROTO;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6) {
        return SL_EPROTO; /* one character left over */
    }
    *out = dst;
    *out_len = n;
    r->arena_len += n;
    return SL_OK;
}

/* ---- message parts ------------------------------------------------------ */

static int get_mattr(struct sl_sqs_req *r, const char *name, const json_t *v,
                     struct sl_sqs_mattr *a, struct sl_sqs_fault *f)
{
    a->name = name;
    if (!json_is_object(v)) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER, "message attribute %.64s must be an object",
                     name);
    }
    const char *bin = NULL;
    if (get_str(v, "DataType", &a->type, f) != SL_OK ||
        get_str(v, "StringValue", &a->string_value, f) != SL_OK ||
        get_str(v, "BinaryValue", &bin, f) != SL_OK) {
        return SL_EPROTO;
    }
    if (a->type == NULL) {
        return fault(f, SL_SQS_E_MISSING_PARAMETER,
                     "The message attribute '%.64s' must contain non-empty message attribute "
                     "type.",
                     name);
    }
    if ((a->string_value == NULL) == (bin == NULL)) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER,
                     "The message attribute '%.64s' must contain exactly one of StringValue "
                     "and BinaryValue.",
                     name);
    }
    if (bin != NULL) {
        int rc = b64_decode(r, bin, &a->binary, &a->binary_len);
        if (rc != SL_OK) {
            return rc == SL_ENOMEM ? rc
                                   : fault(f, SL_SQS_E_INVALID_PARAMETER,
                                           "BinaryValue of %.64s is not base64", name);
        }
    }
    return SL_OK;
}

static int get_mattrs(struct sl_sqs_req *r, const json_t *o, struct sl_sqs_entry *e,
                      struct sl_sqs_fault *f)
{
    json_t *m = json_object_get(o, "MessageAttributes");
    if (m == NULL || json_is_null(m)) {
        return SL_OK;
    }
    if (!json_is_object(m)) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER, "MessageAttributes must be a map");
    }
    if (json_object_size(m) > SL_SQS_MSG_ATTRS_MAX) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER,
                     "Number of message attributes [%zu] exceeds the allowed maximum [%u].",
                     json_object_size(m), SL_SQS_MSG_ATTRS_MAX);
    }
    const char *name;
    json_t *v;
    json_object_foreach(m, name, v)
    {
        int rc = get_mattr(r, name, v, &e->attrs[e->n_attrs], f);
        if (rc != SL_OK) {
            return rc;
        }
        e->n_attrs++;
    }
    return SL_OK;
}

/* The fields of one message, entry or receipt (single operations: the
 * top-level document; batches: each entry). */
static int get_entry(struct sl_sqs_req *r, const json_t *o, struct sl_sqs_entry *e,
                     struct sl_sqs_fault *f)
{
    const char *body = NULL;
    if (get_str(o, "Id", &e->id, f) != SL_OK || get_str(o, "MessageBody", &body, f) != SL_OK ||
        get_int(o, "DelaySeconds", &e->delay_s, f) != SL_OK ||
        get_str(o, "MessageGroupId", &e->group_id, f) != SL_OK ||
        get_str(o, "MessageDeduplicationId", &e->dedup_id, f) != SL_OK ||
        get_str(o, "ReceiptHandle", &e->receipt, f) != SL_OK ||
        get_int(o, "VisibilityTimeout", &e->visibility_s, f) != SL_OK) {
        return SL_EPROTO;
    }
    if (body != NULL) {
        json_t *bv = json_object_get(o, "MessageBody");
        e->body = body;
        e->body_len = json_string_length(bv);
    }
    return get_mattrs(r, o, e, f);
}

static bool entry_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SL_SQS_QUEUE_NAME_MAX) {
        return false;
    }
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int get_entries(struct sl_sqs_req *r, const json_t *doc, struct sl_sqs_fault *f)
{
    json_t *v = json_object_get(doc, "Entries");
    if (v == NULL || json_is_null(v)) {
        return fault(f, SL_SQS_E_MISSING_PARAMETER,
                     "The request must contain the parameter Entries.");
    }
    if (!json_is_array(v)) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER, "Entries must be a list");
    }
    if (json_array_size(v) == 0) {
        return fault(f, SL_SQS_E_EMPTY_BATCH, "There should be at least one entry in the request.");
    }
    if (json_array_size(v) > SL_SQS_BATCH_MAX) {
        return fault(f, SL_SQS_E_TOO_MANY_ENTRIES,
                     "Maximum number of entries per request are %u. You have sent %zu.",
                     SL_SQS_BATCH_MAX, json_array_size(v));
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *o = json_array_get(v, i);
        struct sl_sqs_entry *e = &r->entries[r->n_entries];
        if (!json_is_object(o)) {
            return fault(f, SL_SQS_E_INVALID_PARAMETER, "Entries[%zu] must be an object", i);
        }
        int rc = get_entry(r, o, e, f);
        if (rc != SL_OK) {
            return rc;
        }
        if (e->id == NULL || !entry_id_ok(e->id)) {
            return fault(f, SL_SQS_E_INVALID_ENTRY_ID,
                         "A batch entry id can only contain alphanumeric characters, hyphens "
                         "and underscores. It can be at most 80 letters long.");
        }
        for (uint32_t j = 0; j < r->n_entries; j++) {
            if (strcmp(r->entries[j].id, e->id) == 0) {
                return fault(f, SL_SQS_E_IDS_NOT_DISTINCT, "Id %s repeated.", e->id);
            }
        }
        r->n_entries++;
    }
    return SL_OK;
}

static int get_queue_attrs(struct sl_sqs_req *r, const json_t *doc, struct sl_sqs_fault *f)
{
    json_t *m = json_object_get(doc, "Attributes");
    if (m == NULL || json_is_null(m)) {
        return SL_OK;
    }
    if (!json_is_object(m) || json_object_size(m) > SL_SQS_QUEUE_ATTRS_MAX) {
        return fault(f, SL_SQS_E_INVALID_PARAMETER, "Attributes must be a map of at most %u",
                     SL_SQS_QUEUE_ATTRS_MAX);
    }
    const char *name;
    json_t *v;
    json_object_foreach(m, name, v)
    {
        if (!json_is_string(v)) {
            return fault(f, SL_SQS_E_INVALID_PARAMETER, "Attribute %.64s must be a string", name);
        }
        r->attrs[r->n_attrs++] = (struct sl_sqs_kv){name, json_string_value(v)};
    }
    return SL_OK;
}

/* The operation's fields; which are required is the handlers' business
 * (the queue may come from the URL path in the Query protocol). */
static int decode_fields(struct sl_sqs_req *r, const json_t *doc, struct sl_sqs_fault *f)
{
    if (get_str(doc, "QueueName", &r->queue_name, f) != SL_OK ||
        get_str(doc, "QueueUrl", &r->queue_url, f) != SL_OK ||
        get_str(doc, "QueueNamePrefix", &r->prefix, f) != SL_OK ||
        get_int(doc, "MaxNumberOfMessages", &r->max_messages, f) != SL_OK ||
        get_int(doc, "WaitTimeSeconds", &r->wait_s, f) != SL_OK ||
        get_names(doc, "AttributeNames", r->names, &r->n_names, f) != SL_OK ||
        get_names(doc, "MessageSystemAttributeNames", r->names, &r->n_names, f) != SL_OK ||
        get_names(doc, "MessageAttributeNames", r->mattr_names, &r->n_mattr_names, f) != SL_OK ||
        get_queue_attrs(r, doc, f) != SL_OK) {
        return SL_EPROTO;
    }
    switch (r->op) {
    case SL_SQS_SEND_MESSAGE_BATCH:
    case SL_SQS_DELETE_MESSAGE_BATCH:
    case SL_SQS_CHANGE_VISIBILITY_BATCH:
        return get_entries(r, doc, f);
    case SL_SQS_SEND_MESSAGE:
    case SL_SQS_DELETE_MESSAGE:
    case SL_SQS_CHANGE_VISIBILITY:
    case SL_SQS_RECEIVE_MESSAGE:
        r->n_entries = 1;
        return get_entry(r, doc, &r->entries[0], f);
    default:
        return SL_OK;
    }
}

int sl_sqs_decode_doc(enum sl_sqs_op op, json_t *doc, size_t body_len, struct sl_sqs_req **out,
                      struct sl_sqs_fault *f)
{
    *out = NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fault(f, SL_SQS_E_MALFORMED, "the request body must be a JSON object");
    }
    struct sl_sqs_req *r = calloc(1, sizeof(*r));
    uint8_t *arena = malloc(body_len + 4);
    if (r == NULL || arena == NULL) {
        free(r);
        free(arena);
        json_decref(doc);
        return SL_ENOMEM;
    }
    r->op = op;
    r->doc = doc;
    r->arena = arena;
    r->arena_cap = body_len + 4;
    r->max_messages = r->wait_s = -1;
    for (uint32_t i = 0; i < SL_SQS_BATCH_MAX; i++) {
        r->entries[i].delay_s = r->entries[i].visibility_s = -1;
    }
    int rc = decode_fields(r, doc, f);
    if (rc != SL_OK) {
        sl_sqs_req_free(r);
        return rc;
    }
    SL_ASSERT(r->arena_len <= r->arena_cap);
    *out = r;
    return SL_OK;
}

int sl_sqs_decode_json(const char *op_name, const uint8_t *body, size_t len,
                       struct sl_sqs_req **out, struct sl_sqs_fault *f)
{
    *out = NULL;
    enum sl_sqs_op op = sl_sqs_op_parse(op_name, strlen(op_name));
    if (op == SL_SQS_UNKNOWN && sl_sqs_op_unserved(op_name)) {
        return fault(f, SL_SQS_E_UNSUPPORTED,
                     "%.64s is not supported by this broker (dead letters: sluice queue redrive).",
                     op_name);
    }
    if (op == SL_SQS_UNKNOWN) {
        return fault(f, SL_SQS_E_INVALID_ACTION, "The action %.64s is not valid for this endpoint.",
                     op_name);
    }
    json_error_t je;
    json_t *doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        return fault(f, SL_SQS_E_MALFORMED, "malformed JSON body: %.128s (at byte %d)", je.text,
                     je.position);
    }
    return sl_sqs_decode_doc(op, doc, len, out, f);
}
