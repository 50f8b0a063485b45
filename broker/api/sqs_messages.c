/* sqs_messages.c - SQS messages on a queue group (see sqs.c for the queue
 * mapping): SendMessage(Batch), ReceiveMessage, DeleteMessage(Batch),
 * ChangeMessageVisibility(Batch).
 *
 * A message is one record: body = value; MessageGroupId = key (FIFO; the
 * shard is picked by the key's XXH3 hash, common/partition.h); message
 * attribute N = record attribute "sqs:N" whose value is the data type, a
 * NUL byte, then the value's bytes; DelaySeconds = sluice.not_before (Unix
 * ms); FIFO de-dup id (MessageDeduplicationId, or the body's SHA-256 with
 * ContentBasedDeduplication) = sluice.dedup_id (the engine drops a repeat
 * within dedup_window_ms: the send is answered OK, nothing is stored).
 *
 * MessageId = a UUID-shaped rendering of (XXH3 of the queue name, shard,
 * sequence; broker/msgid.h, shared with the push payloads): stable across
 * receives and restarts. A duplicate send answers an id derived from the
 * de-dup id instead (the first copy's id is not kept).
 *
 * ReceiptHandle = base64url("<queue>\n<engine receipt>") "." 16 hex digits
 * of XXH3(key | text | key) with a random per-process key: a forged or
 * altered handle, or one of another queue, is ReceiptHandleIsInvalid. After
 * a restart every handle is refused that way (the engine's leases are gone
 * too). A well-formed handle whose lease ended (the engine says ENOTFOUND)
 * is "stale": DeleteMessage answers success without deleting, as SQS does
 * for an old handle of a message received again; ChangeMessageVisibility
 * answers MessageNotInflight.
 *
 * Memory: per request, one batch buffer (send) or one scratch buffer
 * (receive), sized from the request; nothing per record.
 * Threading: the main loop; engine callbacks may run before the call returns.
 */
#include "broker/api/sqs_call.h"

#include "broker/engine/catalog.h"
#include "broker/engine/dedup.h"
#include "broker/engine/produce.h"
#include "broker/engine/queue.h"
#include "broker/msgid.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SQS_DELAY_MAX_S      900
#define SQS_VISIBILITY_MAX_S 43200
#define SQS_WAIT_MAX_S       20
#define SQS_RECEIVE_MAX      10
#define SQS_MAC_KEY_BYTES    32u
#define SQS_RECORD_OVERHEAD  64u /* varints and timestamp of one record, generous */
#define SQS_ATTR_NAME_MAX    (SL_RECORD_ATTR_KEY_MAX - sizeof(SQS_ATTR_PREFIX) + 1)
#define NOT_BEFORE_ATTR      "sluice.not_before"

/* ---- ids and receipt handles ------------------------------------------------------ */

static const uint8_t *mac_key(void)
{
    static uint8_t key[SQS_MAC_KEY_BYTES];
    static bool ready;
    if (!ready) {
        ssize_t n = getrandom(key, sizeof(key), 0);
        if (n != (ssize_t)sizeof(key)) { /* no entropy source: still unguessable per run */
            uint64_t t = sl_clock_mono_ns() ^ sl_clock_wall_ms();
            for (uint32_t i = 0; i < sizeof(key); i++) {
                key[i] ^= (uint8_t)(t >> (i % 8 * 8)) ^ (uint8_t)i;
            }
        }
        ready = true;
    }
    return key;
}

static uint64_t mac(const char *text, size_t n)
{
    struct sl_checksum_state s;
    sl_checksum_init(&s);
    sl_checksum_update(&s, mac_key(), SQS_MAC_KEY_BYTES);
    sl_checksum_update(&s, text, n);
    sl_checksum_update(&s, mac_key(), SQS_MAC_KEY_BYTES);
    return sl_checksum_final(&s);
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void receipt_encode(const char *queue, const char *receipt, char *out, size_t cap)
{
    char text[SL_SQS_QUEUE_NAME_MAX + 128];
    int n = snprintf(text, sizeof(text), "%s\n%s", queue, receipt);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(text));
    size_t o = 0;
    uint32_t acc = 0, bits = 0;
    for (int i = 0; i < n; i++) {
        acc = (acc << 8) | (uint8_t)text[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0) {
        out[o++] = b64url[(acc << (6 - bits)) & 63];
    }
    SL_ASSERT(o + 18 < cap);
    snprintf(out + o, cap - o, ".%016" PRIx64, mac(text, (size_t)n));
}

/* The engine receipt inside `handle` (untrusted), into `receipt`; false
 * when the handle is malformed, altered, or of another queue. */
static bool receipt_decode(const char *handle, const char *queue, char *receipt, size_t cap)
{
    const char *dot = handle != NULL ? strchr(handle, '.') : NULL;
    if (dot == NULL || strlen(dot + 1) != 16 || (size_t)(dot - handle) > SQS_RECEIPT_MAX) {
        return false;
    }
    char text[SQS_RECEIPT_MAX];
    size_t n = 0;
    uint32_t acc = 0, bits = 0;
    for (const char *p = handle; p < dot; p++) {
        const char *k = memchr(b64url, *p, 64);
        if (k == NULL || *p == '\0') {
            return false;
        }
        acc = (acc << 6) | (uint32_t)(k - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            text[n++] = (char)(acc >> bits);
        }
    }
    char *end = NULL;
    uint64_t want = strtoull(dot + 1, &end, 16);
    if (*end != '\0' || want != mac(text, n)) {
        return false;
    }
    text[n] = '\0';
    char *nl = memchr(text, '\n', n);
    if (nl == NULL || (size_t)(nl - text) != strlen(queue) || memcmp(text, queue, strlen(queue)) ||
        strlen(nl + 1) >= cap) {
        return false;
    }
    snprintf(receipt, cap, "%s", nl + 1);
    return true;
}

/* ---- send ---------------------------------------------------------------------------- */

struct send_op {
    struct sqs_call *c;
    uint8_t *batch; /* owned: the batch being produced */
    char *scratch;  /* owned: attribute values (type NUL value) and de-dup ids */
    json_t *failed; /* owned: Failed entries */
    bool fifo;
    uint32_t n_rec;
    uint32_t entry_of[SL_SQS_BATCH_MAX]; /* record -> entry */
    char dedup[SL_SQS_BATCH_MAX][129];   /* FIFO: the de-dup id (<= 128; SHA-256: 64 hex) */
};

static size_t entry_bytes(const struct sl_sqs_entry *e)
{
    size_t n = e->body_len;
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        const struct sl_sqs_mattr *a = &e->attrs[i];
        n += strlen(a->name) + strlen(a->type) +
             (a->string_value != NULL ? strlen(a->string_value) : a->binary_len);
    }
    return n;
}

static bool type_ok(const struct sl_sqs_mattr *a)
{
    bool bin = strncmp(a->type, "Binary", 6) == 0;
    bool str = strncmp(a->type, "String", 6) == 0 || strncmp(a->type, "Number", 6) == 0;
    size_t base = 6;
    return (bin || str) && (a->type[base] == '\0' || a->type[base] == '.') &&
           bin == (a->binary != NULL) && strlen(a->type) < 256;
}

/* Checks one message; the error's message goes to `why`. */
static enum sl_sqs_error check_message(const struct send_op *op, const struct sl_stream *st,
                                       const struct sl_sqs_entry *e, char *why, size_t n)
{
    if (e->body == NULL) {
        snprintf(why, n, "The request must contain the parameter MessageBody.");
        return SL_SQS_E_MISSING_PARAMETER;
    }
    int64_t max = sqs_attr_int(st, "MaximumMessageSize", SL_SQS_MESSAGE_BYTES_MAX);
    if (e->body_len == 0 || (int64_t)entry_bytes(e) > max) {
        snprintf(why, n,
                 "One or more parameters are invalid. Reason: Message must be shorter "
                 "than %" PRId64 " bytes and not empty.",
                 max);
        return SL_SQS_E_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        const struct sl_sqs_mattr *a = &e->attrs[i];
        size_t vlen = a->string_value != NULL ? strlen(a->string_value) : a->binary_len;
        size_t nl = strlen(a->name);
        if (nl == 0 || nl > SQS_ATTR_NAME_MAX || !type_ok(a) ||
            strlen(a->type) + 1 + vlen > SL_RECORD_ATTR_VALUE_MAX) {
            snprintf(why, n,
                     "Message attribute %.64s is invalid: names are 1-%zu bytes, types "
                     "String, Number or Binary (and .custom), type + value at most %u bytes here.",
                     a->name, (size_t)SQS_ATTR_NAME_MAX, SL_RECORD_ATTR_VALUE_MAX - 1);
            return SL_SQS_E_INVALID_PARAMETER;
        }
    }
    if (e->delay_s > SQS_DELAY_MAX_S || (op->fifo && e->delay_s > 0)) {
        snprintf(why, n, "Value %" PRId64 " for parameter DelaySeconds is invalid.%s", e->delay_s,
                 op->fifo ? " FIFO queues take no per-message delay." : "");
        return SL_SQS_E_INVALID_PARAMETER;
    }
    if (op->fifo && (e->group_id == NULL || e->group_id[0] == '\0' || strlen(e->group_id) > 128)) {
        snprintf(why, n, "The request must contain the parameter MessageGroupId.");
        return SL_SQS_E_MISSING_PARAMETER;
    }
    const char *cbd_v = sl_catalog_prop(st, SQS_PROP_PREFIX "ContentBasedDeduplication");
    bool cbd = cbd_v != NULL && strcmp(cbd_v, "true") == 0;
    if (op->fifo && !cbd && (e->dedup_id == NULL || strlen(e->dedup_id) > 128)) {
        snprintf(why, n,
                 "The queue should either have ContentBasedDeduplication enabled or "
                 "MessageDeduplicationId provided explicitly");
        return SL_SQS_E_INVALID_PARAMETER;
    }
    return SL_SQS_OK;
}

/* The record attributes of entry `e`: values written into *sp. */
static uint32_t record_attrs(struct send_op *op, const struct sl_stream *st,
                             const struct sl_sqs_entry *e, uint32_t k, struct sl_attr *out,
                             char **sp)
{
    uint32_t na = 0;
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        const struct sl_sqs_mattr *a = &e->attrs[i];
        char *key = *sp;
        *sp += sprintf(key, SQS_ATTR_PREFIX "%s", a->name) + 1;
        char *val = *sp;
        size_t tl = strlen(a->type) + 1;
        size_t vl = a->string_value != NULL ? strlen(a->string_value) : a->binary_len;
        memcpy(val, a->type, tl);
        memcpy(val + tl, a->string_value != NULL ? (const void *)a->string_value : a->binary, vl);
        *sp += tl + vl;
        out[na++] = (struct sl_attr){key, (uint32_t)strlen(key), val, (uint32_t)(tl + vl)};
    }
    int64_t delay = e->delay_s >= 0 ? e->delay_s : sqs_attr_int(st, "DelaySeconds", 0);
    if (delay > 0 && !op->fifo) {
        char *v = *sp;
        int n = sprintf(v, "%" PRIu64, sl_clock_wall_ms() + (uint64_t)delay * 1000u);
        *sp += n + 1;
        out[na++] = (struct sl_attr){NOT_BEFORE_ATTR, sizeof(NOT_BEFORE_ATTR) - 1, v, (uint32_t)n};
    }
    if (op->fifo) {
        if (e->dedup_id != NULL) {
            snprintf(op->dedup[k], sizeof(op->dedup[k]), "%s", e->dedup_id);
        } else {
            sqs_sha256_hex(e->body, e->body_len, op->dedup[k]);
        }
        out[na++] = (struct sl_attr){SL_MSGDEDUP_ATTR, sizeof(SL_MSGDEDUP_ATTR) - 1, op->dedup[k],
                                     (uint32_t)strlen(op->dedup[k])};
    }
    return na;
}

static void send_op_free(struct send_op *op)
{
    free(op->batch);
    free(op->scratch);
    json_decref(op->failed);
    free(op);
}

static json_t *sent_entry(struct send_op *op, uint32_t rec, const char *msg_id, uint64_t seq)
{
    const struct sl_sqs_entry *e = &op->c->req->entries[op->entry_of[rec]];
    char md5[SQS_MD5_HEX], seq_s[24];
    sqs_md5_hex(e->body, e->body_len, md5);
    json_t *j = json_pack("{s:s,s:s}", "MessageId", msg_id, "MD5OfMessageBody", md5);
    if (e->n_attrs > 0 && sqs_md5_attrs(e->attrs, e->n_attrs, md5)) {
        json_object_set_new(j, "MD5OfMessageAttributes", json_string(md5));
    }
    if (op->fifo) {
        snprintf(seq_s, sizeof(seq_s), "%020" PRIu64, seq);
        json_object_set_new(j, "SequenceNumber", json_string(seq_s));
    }
    if (e->id != NULL && op->c->req->op == SL_SQS_SEND_MESSAGE_BATCH) {
        json_object_set_new(j, "Id", json_string(e->id));
    }
    return j;
}

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct send_op *op = ctx;
    struct sqs_call *c = op->c;
    c->op = NULL;
    if (r->err != SL_OK) {
        send_op_free(op);
        sqs_fail_engine(c, r->err, r->why);
        return;
    }
    json_t *ok = json_array();
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < op->n_rec; i++) {
        bool dup = r->duplicate && r->n_dropped == 0;
        for (uint32_t k = 0; !dup && k < r->n_dropped; k++) {
            dup = r->dropped[k] == i;
        }
        uint64_t seq = r->base_seq + i - dropped;
        char id[SL_MSGID_LEN + 1];
        if (dup) { /* a repeat of a stored de-dup id: its id comes from the de-dup id */
            dropped++;
            uint64_t h = sl_checksum64(op->dedup[i], strlen(op->dedup[i]));
            sl_msgid_format(c->queue, UINT32_MAX, h, id);
        } else {
            sl_msgid_format(c->queue, r->shard, seq, id);
        }
        json_array_append_new(ok, sent_entry(op, i, id, seq));
    }
    if (c->req->op == SL_SQS_SEND_MESSAGE) {
        json_t *one = json_incref(json_array_get(ok, 0));
        json_decref(ok);
        send_op_free(op);
        sqs_reply(c, one);
        return;
    }
    json_t *res = json_pack("{s:o,s:O}", "Successful", ok, "Failed", op->failed);
    send_op_free(op);
    sqs_reply(c, res);
}

/* Builds the batch of the valid entries into op->batch; *len its bytes. */
static int build_batch(struct send_op *op, struct sl_stream *st, uint32_t *shard, size_t *len)
{
    const struct sl_sqs_req *req = op->c->req;
    size_t cap = SL_BATCH_HEADER_BYTES, scap = 1;
    for (uint32_t i = 0; i < req->n_entries; i++) {
        const struct sl_sqs_entry *e = &req->entries[i];
        cap += entry_bytes(e) + 256 + (e->n_attrs + 3u) * (SL_RECORD_ATTR_KEY_MAX + 64u);
        scap += entry_bytes(e) + (e->n_attrs + 1u) * (sizeof(SQS_ATTR_PREFIX) + 32u);
    }
    op->batch = malloc(cap);
    op->scratch = malloc(scap);
    if (op->batch == NULL || op->scratch == NULL) {
        return SL_ENOMEM;
    }
    static uint32_t next_shard; /* standard queues: round robin over the shards */
    *shard = sl_catalog_open_shard(st, next_shard++ % st->lineage.open);
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, op->batch, cap);
    char *sp = op->scratch;
    uint64_t now = sl_clock_wall_ms();
    for (uint32_t k = 0; k < op->n_rec; k++) {
        const struct sl_sqs_entry *e = &req->entries[op->entry_of[k]];
        struct sl_attr attrs[SL_SQS_MSG_ATTRS_MAX + 2];
        uint32_t na = record_attrs(op, st, e, k, attrs, &sp);
        SL_ASSERT((size_t)(sp - op->scratch) <= scap);
        struct sl_record rec = {.value = e->body,
                                .value_len = (uint32_t)e->body_len,
                                .attrs = attrs,
                                .attr_count = na,
                                .timestamp_ms = now};
        if (op->fifo) {
            rec.key = e->group_id;
            rec.key_len = (uint32_t)strlen(e->group_id);
            *shard = sl_catalog_route(st, sl_partition_hash(rec.key, rec.key_len));
        }
        int rc = sl_batch_builder_add(&b, &rec);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
}

void sqs_send(struct sqs_call *c, struct sl_stream *st)
{
    struct send_op *op = calloc(1, sizeof(*op));
    json_t *failed = json_array();
    if (op == NULL || failed == NULL) {
        free(op);
        json_decref(failed);
        sqs_fail_engine(c, SL_ENOMEM, "");
        return;
    }
    op->c = c;
    op->failed = failed;
    op->fifo = sqs_is_fifo(st);
    for (uint32_t i = 0; i < c->req->n_entries; i++) {
        char why[SL_SQS_WHY_MAX];
        enum sl_sqs_error ec = check_message(op, st, &c->req->entries[i], why, sizeof(why));
        if (ec != SL_SQS_OK && c->req->op == SL_SQS_SEND_MESSAGE) {
            send_op_free(op);
            sqs_fail(c, ec, "%s", why);
            return;
        }
        if (ec != SL_SQS_OK) {
            json_array_append_new(failed, sqs_failed_entry(c, c->req->entries[i].id, ec, why));
        } else {
            op->entry_of[op->n_rec++] = i;
        }
    }
    if (op->n_rec == 0) {
        json_t *res = json_pack("{s:[],s:O}", "Successful", "Failed", failed);
        send_op_free(op);
        sqs_reply(c, res);
        return;
    }
    uint32_t shard = 0;
    size_t len = 0;
    int rc = build_batch(op, st, &shard, &len);
    if (rc != SL_OK) {
        send_op_free(op);
        sqs_fail_engine(c, rc, "the messages do not fit in a batch");
        return;
    }
    struct sl_produce_req pr = {
        .stream = c->queue, .shard = shard, .batch = op->batch, .len = len, .ack = SL_ACK_DURABLE,
        .forward = true};
    c->op = op;
    sl_produce_submit(c->e, &pr, on_produced, op);
}

/* ---- receive ------------------------------------------------------------------------- */

/* Whether name `n` is asked for by a list of names (All, .*, prefix.*). */
static bool wanted(const char *const *names, uint32_t count, const char *n, size_t len)
{
    for (uint32_t i = 0; i < count; i++) {
        size_t k = strlen(names[i]);
        if (strcmp(names[i], "All") == 0 || strcmp(names[i], ".*") == 0 ||
            (k == len && memcmp(names[i], n, len) == 0) ||
            (k >= 2 && strcmp(names[i] + k - 2, ".*") == 0 && len > k - 2 &&
             memcmp(names[i], n, k - 1) == 0)) {
            return true;
        }
    }
    return false;
}

static void put_system_attrs(struct sqs_call *c, const struct sl_qrecord *q, json_t *msg, bool fifo)
{
    const struct sl_sqs_req *r = c->req;
    json_t *a = json_object();
    char buf[32];
#define SYS(name, value)                                                                           \
    if (wanted(r->names, r->n_names, name, strlen(name))) {                                        \
        json_object_set_new(a, name, json_string(value));                                          \
    }
    SYS("SenderId", SQS_ACCOUNT);
    snprintf(buf, sizeof(buf), "%" PRIu64, q->timestamp_ms);
    SYS("SentTimestamp", buf);
    snprintf(buf, sizeof(buf), "%u", q->delivery_count);
    SYS("ApproximateReceiveCount", buf);
    if (fifo) {
        char key[SL_RECORD_KEY_MAX + 1];
        snprintf(key, sizeof(key), "%.*s", (int)q->key_len, (const char *)q->key);
        SYS("MessageGroupId", key);
        snprintf(buf, sizeof(buf), "%020" PRIu64, q->seq);
        SYS("SequenceNumber", buf);
        for (uint32_t i = 0; i < q->attr_count; i++) {
            const struct sl_attr *x = &q->attrs[i];
            if (x->key_len == sizeof(SL_MSGDEDUP_ATTR) - 1 &&
                memcmp(x->key, SL_MSGDEDUP_ATTR, x->key_len) == 0) {
                char id[SL_RECORD_ATTR_VALUE_MAX + 1];
                snprintf(id, sizeof(id), "%.*s", (int)x->value_len, x->value);
                SYS("MessageDeduplicationId", id);
            }
        }
    }
#undef SYS
    if (json_object_size(a) > 0) {
        json_object_set_new(msg, "Attributes", a);
    } else {
        json_decref(a);
    }
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
    char *s = sl_b64_dup(p, n);
    json_t *j = s != NULL ? json_stringn(s, sl_b64_len(n)) : NULL;
    free(s);
    return j;
}

/* The message attributes asked for, and their MD5. `buf` holds their
 * values NUL-terminated (SL_SQS_MSG_ATTRS_MAX x (SL_RECORD_ATTR_VALUE_MAX + 1)). */
static void put_message_attrs(struct sqs_call *c, const struct sl_qrecord *q, json_t *msg,
                              char *buf)
{
    struct sl_sqs_mattr as[SL_SQS_MSG_ATTRS_MAX];
    char names[SL_SQS_MSG_ATTRS_MAX][SL_RECORD_ATTR_KEY_MAX + 1];
    uint32_t n = 0;
    const size_t pl = sizeof(SQS_ATTR_PREFIX) - 1;
    json_t *m = json_object();
    for (uint32_t i = 0; i < q->attr_count && n < SL_SQS_MSG_ATTRS_MAX; i++) {
        const struct sl_attr *x = &q->attrs[i];
        const char *nul = memchr(x->value, '\0', x->value_len);
        if (x->key_len <= pl || memcmp(x->key, SQS_ATTR_PREFIX, pl) != 0 || nul == NULL ||
            !wanted(c->req->mattr_names, c->req->n_mattr_names, x->key + pl, x->key_len - pl)) {
            continue;
        }
        char *v = buf + (size_t)n * (SL_RECORD_ATTR_VALUE_MAX + 1);
        memcpy(v, x->value, x->value_len);
        v[x->value_len] = '\0';
        snprintf(names[n], sizeof(names[n]), "%.*s", (int)(x->key_len - pl), x->key + pl);
        size_t tl = (size_t)(nul - x->value) + 1;
        struct sl_sqs_mattr *a = &as[n++];
        *a = (struct sl_sqs_mattr){.name = names[n - 1], .type = v};
        json_t *val = json_pack("{s:s}", "DataType", v);
        if (strncmp(v, "Binary", 6) == 0) {
            a->binary = (const uint8_t *)v + tl;
            a->binary_len = x->value_len - tl;
            json_object_set_new(val, "BinaryValue", b64_json(a->binary, a->binary_len));
        } else {
            a->string_value = v + tl;
            json_object_set_new(val, "StringValue", json_string(a->string_value));
        }
        json_object_set_new(m, names[n - 1], val);
    }
    char md5[SQS_MD5_HEX];
    if (n > 0 && sqs_md5_attrs(as, n, md5)) {
        json_object_set_new(msg, "MD5OfMessageAttributes", json_string(md5));
        json_object_set_new(msg, "MessageAttributes", m);
    } else {
        json_decref(m);
    }
}

static json_t *received(struct sqs_call *c, const struct sl_qrecord *q, bool fifo, char *buf)
{
    char id[SL_MSGID_LEN + 1], handle[SQS_RECEIPT_MAX], md5[SQS_MD5_HEX];
    sl_msgid_format(c->queue, q->shard, q->seq, id);
    receipt_encode(c->queue, q->receipt, handle, sizeof(handle));
    sqs_md5_hex(q->value, q->value_len, md5);
    json_t *body = json_stringn((const char *)q->value, q->value_len);
    json_t *msg =
        json_pack("{s:s,s:s,s:s,s:o}", "MessageId", id, "ReceiptHandle", handle, "MD5OfBody", md5,
                  "Body", body != NULL ? body : json_string("")); /* not UTF-8: not SQS's */
    put_system_attrs(c, q, msg, fifo);
    put_message_attrs(c, q, msg, buf);
    return msg;
}

static void on_received(void *ctx, const struct sl_receive_result *r)
{
    struct sqs_call *c = ctx;
    c->op = NULL;
    if (r->err != SL_OK) {
        sqs_fail_engine(c, r->err, r->why != NULL ? r->why : "");
        return;
    }
    struct sl_stream *st = sl_catalog_find(c->e->catalog, c->queue);
    bool fifo = st != NULL && sqs_is_fifo(st);
    char *buf = malloc(SL_SQS_MSG_ATTRS_MAX * (SL_RECORD_ATTR_VALUE_MAX + 1));
    json_t *msgs = json_array();
    for (uint32_t i = 0; buf != NULL && i < r->n; i++) {
        json_array_append_new(msgs, received(c, &r->records[i], fifo, buf));
    }
    free(buf);
    if (json_array_size(msgs) == 0) {
        json_decref(msgs);
        sqs_reply(c, json_object());
        return;
    }
    sqs_reply(c, json_pack("{s:o}", "Messages", msgs));
}

void sqs_receive(struct sqs_call *c, struct sl_stream *st)
{
    const struct sl_sqs_req *r = c->req;
    int64_t max = r->max_messages >= 0 ? r->max_messages : 1;
    int64_t wait =
        r->wait_s >= 0 ? r->wait_s : sqs_attr_int(st, "ReceiveMessageWaitTimeSeconds", 0);
    int64_t vis = r->entries[0].visibility_s >= 0 ? r->entries[0].visibility_s
                                                  : sqs_attr_int(st, "VisibilityTimeout", 30);
    if (max < 1 || max > SQS_RECEIVE_MAX) {
        sqs_fail(c, SL_SQS_E_INVALID_PARAMETER,
                 "Value %" PRId64 " for parameter "
                 "MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
                 max);
        return;
    }
    if (wait > SQS_WAIT_MAX_S || vis > SQS_VISIBILITY_MAX_S) {
        sqs_fail(c, SL_SQS_E_INVALID_PARAMETER,
                 "WaitTimeSeconds must be 0-20 and "
                 "VisibilityTimeout 0-43200.");
        return;
    }
    struct sl_receive_req rr = {.stream = c->queue,
                                .group = SQS_GROUP,
                                .max_records = (uint32_t)max,
                                .wait_ms = (uint32_t)wait * 1000u,
                                /* 0 would mean the group's: 1 ms is "visible again now" */
                                .visibility_timeout_ms = vis > 0 ? (uint32_t)vis * 1000u : 1u};
    sl_queue_receive(c->e, &rr, on_received, c);
}

/* ---- delete and change visibility ----------------------------------------------------- */

struct settle_op {
    struct sqs_call *c;
    char receipts[SL_SQS_BATCH_MAX][SQS_RECEIPT_MAX];
    const char *ptrs[SL_SQS_BATCH_MAX];
    uint32_t entry_of[SL_SQS_BATCH_MAX]; /* valid receipt -> entry */
    uint32_t n;
    json_t *ok;     /* owned: Successful entries */
    json_t *failed; /* owned: Failed entries */
    uint32_t next;  /* change visibility: the entry being settled */
    bool looping;   /* visibility_next is on the stack (callbacks may run inside) */
    bool waiting;   /* a settle call's callback has not run yet */
};

static void settle_op_free(struct settle_op *op)
{
    json_decref(op->ok);
    json_decref(op->failed);
    free(op);
}

static bool batch_op(const struct sqs_call *c)
{
    return c->req->op == SL_SQS_DELETE_MESSAGE_BATCH ||
           c->req->op == SL_SQS_CHANGE_VISIBILITY_BATCH;
}

/* Answers a settle operation: the single form's error, or the batch's lists. */
static void settle_answer(struct settle_op *op)
{
    struct sqs_call *c = op->c;
    c->op = NULL;
    if (!batch_op(c) && json_array_size(op->failed) > 0) {
        json_t *f = json_array_get(op->failed, 0);
        const char *code = json_string_value(json_object_get(f, "Code"));
        enum sl_sqs_error ec =
            code != NULL && strstr(code, "MessageNotInflight") != NULL ? SL_SQS_E_NOT_INFLIGHT
            : code != NULL && strstr(code, "Receipt") != NULL          ? SL_SQS_E_RECEIPT_INVALID
                                                                       : SL_SQS_E_INVALID_PARAMETER;
        char msg[SL_SQS_WHY_MAX];
        snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(f, "Message")));
        settle_op_free(op);
        sqs_fail(c, ec, "%s", msg);
        return;
    }
    json_t *res = batch_op(c) ? json_pack("{s:O,s:O}", "Successful", op->ok, "Failed", op->failed)
                              : json_object();
    settle_op_free(op);
    sqs_reply(c, res);
}

static void ok_entry(struct settle_op *op, uint32_t entry)
{
    const char *id = op->c->req->entries[entry].id;
    json_array_append_new(op->ok, json_pack("{s:s}", "Id", id != NULL ? id : ""));
}

static void fail_entry(struct settle_op *op, uint32_t entry, enum sl_sqs_error ec, const char *msg)
{
    const char *id = op->c->req->entries[entry].id;
    json_array_append_new(op->failed, sqs_failed_entry(op->c, id != NULL ? id : "", ec, msg));
}

/* Decodes every entry's handle; bad ones become Failed entries. */
static struct settle_op *settle_prepare(struct sqs_call *c)
{
    struct settle_op *op = calloc(1, sizeof(*op));
    json_t *ok = json_array(), *failed = json_array();
    if (op == NULL || ok == NULL || failed == NULL) {
        free(op);
        json_decref(ok);
        json_decref(failed);
        sqs_fail_engine(c, SL_ENOMEM, "");
        return NULL;
    }
    *op = (struct settle_op){.c = c, .ok = ok, .failed = failed};
    for (uint32_t i = 0; i < c->req->n_entries; i++) {
        const char *h = c->req->entries[i].receipt;
        if (h == NULL) {
            fail_entry(op, i, SL_SQS_E_MISSING_PARAMETER,
                       "The request must contain the parameter ReceiptHandle.");
        } else if (!receipt_decode(h, c->queue, op->receipts[op->n], SQS_RECEIPT_MAX)) {
            fail_entry(op, i, SL_SQS_E_RECEIPT_INVALID, "The input receipt handle is invalid.");
        } else {
            op->ptrs[op->n] = op->receipts[op->n];
            op->entry_of[op->n++] = i;
        }
    }
    c->op = op;
    return op;
}

/* Stale handles (the lease ended: ENOTFOUND) are deleted "successfully":
 * SQS answers an old handle of a message received again that way. */
static void on_deleted(void *ctx, int err, const char *why, const int *results, uint32_t n)
{
    struct settle_op *op = ctx;
    for (uint32_t i = 0; i < op->n; i++) {
        int rc = err != SL_OK ? err : i < n ? results[i] : SL_EIO;
        if (rc == SL_OK || rc == SL_ENOTFOUND) {
            ok_entry(op, op->entry_of[i]);
        } else {
            fail_entry(op, op->entry_of[i], SL_SQS_E_INTERNAL,
                       why != NULL && why[0] ? why : sl_strerror(rc));
        }
    }
    settle_answer(op);
}

void sqs_delete(struct sqs_call *c, struct sl_stream *st)
{
    (void)st;
    struct settle_op *op = settle_prepare(c);
    if (op == NULL) {
        return;
    }
    if (op->n == 0) {
        settle_answer(op);
        return;
    }
    struct sl_settle_req sr = {.stream = c->queue,
                               .group = SQS_GROUP,
                               .kind = SL_SETTLE_ACK,
                               .receipts = op->ptrs,
                               .n = op->n};
    sl_queue_settle(c->e, &sr, on_deleted, op);
}

static void visibility_next(struct settle_op *op);

static void on_visibility(void *ctx, int err, const char *why, const int *results, uint32_t n)
{
    struct settle_op *op = ctx;
    uint32_t entry = op->entry_of[op->next];
    int rc = err != SL_OK ? err : n > 0 ? results[0] : SL_EIO;
    if (rc == SL_OK) {
        ok_entry(op, entry);
    } else if (rc == SL_ENOTFOUND) {
        fail_entry(op, entry, SL_SQS_E_NOT_INFLIGHT,
                   "Value for parameter ReceiptHandle is invalid. Reason: Message does not "
                   "exist or is not available for visibility timeout change.");
    } else {
        fail_entry(op, entry, SL_SQS_E_INTERNAL, why != NULL && why[0] ? why : sl_strerror(rc));
    }
    op->next++;
    op->waiting = false;
    if (!op->looping) { /* asynchronous: resume the loop */
        visibility_next(op);
    }
}

/* One entry at a time: each has its own timeout (a settle request has one).
 * A callback that runs inside sl_queue_settle only advances op->next; the
 * loop here goes on (no recursion). */
static void visibility_next(struct settle_op *op)
{
    SL_ASSERT(!op->looping);
    op->looping = true;
    while (op->next < op->n) {
        const struct sl_sqs_entry *e = &op->c->req->entries[op->entry_of[op->next]];
        if (e->visibility_s < 0 || e->visibility_s > SQS_VISIBILITY_MAX_S) {
            fail_entry(op, op->entry_of[op->next],
                       e->visibility_s < 0 ? SL_SQS_E_MISSING_PARAMETER
                                           : SL_SQS_E_INVALID_PARAMETER,
                       "VisibilityTimeout is required, 0-43200 seconds.");
            op->next++;
            continue;
        }
        struct sl_settle_req sr = {.stream = op->c->queue,
                                   .group = SQS_GROUP,
                                   .kind = e->visibility_s == 0 ? SL_SETTLE_NACK : SL_SETTLE_EXTEND,
                                   .receipts = &op->ptrs[op->next],
                                   .n = 1,
                                   .ms = (uint32_t)e->visibility_s * 1000u};
        op->waiting = true;
        sl_queue_settle(op->c->e, &sr, on_visibility, op);
        if (op->waiting) {
            op->looping = false; /* on_visibility resumes */
            return;
        }
    }
    op->looping = false;
    settle_answer(op);
}

void sqs_change_visibility(struct sqs_call *c, struct sl_stream *st)
{
    (void)st;
    struct settle_op *op = settle_prepare(c);
    if (op != NULL) {
        visibility_next(op);
    }
}
