/* payload.c - the bodies a push target POSTs, in the shapes of AWS Lambda's
 * event sources (payload.h); the partial batch response is read back in
 * payload_response.c.
 *
 * What must hold:
 *  - Every body is valid JSON (RFC 8259) that jansson and a JavaScript
 *    JSON.parse read back. Strings reach jansson only after sl_utf8_valid
 *    (RFC 3629, as strict as jansson's own check), so the *_nocheck
 *    constructors never let invalid UTF-8 through and json_dumps fails only
 *    for memory. Bytes that are not UTF-8 go as base64 text with a marker
 *    saying so; nothing is dropped or replaced silently except attributes
 *    whose names are not UTF-8 or hold a NUL (a JSON object key must be
 *    text, and jansson refuses "\u0000" in one).
 *  - Ids are the same bytes wherever a handler sees or answers them:
 *    sl_push_record_id renders the id put in the body and the one an
 *    itemIdentifier is compared with. The SQS-style id is broker/msgid.h's,
 *    so a push and ReceiveMessage name a message alike; Kinesis answers
 *    with the decimal sequence number, as the Kinesis API does.
 *  - Times come from the record's append time (timestamp_ms), the broker's
 *    clock: SentTimestamp and ApproximateFirstReceiveTimestamp (the broker
 *    keeps no first-receive time), approximateArrivalTimestamp, SNS
 *    Timestamp, EventBridge time. SQS ReceiveMessage answers the same
 *    SentTimestamp; the producer's clock (produced_ms) is only in the SLUICE
 *    format, which has both.
 *  - Out of memory anywhere releases everything and answers SL_ENOMEM: each
 *    builder returns NULL, and set() turns a NULL value into ok = false.
 *
 * Mapping choices a handler may notice:
 *  - SQS and SNS message attributes come from the record's attributes. A
 *    record sent through the SQS API carries message attribute N as record
 *    attribute "sqs:N" = data type NUL value (sqs_messages.c); it shows as N
 *    with that data type here, so a message sent with SendMessage reaches an
 *    SQS handler as ReceiveMessage would show it. Other attributes are
 *    String, or Binary (base64) when the value is not UTF-8. Names starting
 *    "sluice." are the broker's and stay out; the first of repeated names
 *    wins, as in filters.
 *  - A body that is not UTF-8 goes base64 with the message attribute
 *    sluice.body_encoding = base64 (SQS, SNS); md5OfBody is the MD5 of the
 *    body as sent, which is what a handler can check.
 *  - Kinesis data is always base64 (as Kinesis sends it). A key that is not
 *    UTF-8 is base64 in partitionKey and SQS MessageGroupId; no key is ""
 *    in partitionKey (Kinesis always has one) and no MessageGroupId.
 *  - EventBridge: a value that is a JSON object with string "detail-type"
 *    and "source" is an event already and goes byte for byte. Otherwise the
 *    envelope is rendered by jansson and the value spliced in as "detail"
 *    verbatim when it is JSON (jansson would rewrite numbers: 0.1 as
 *    0.10000000000000001), so the detail is the producer's text. A value
 *    nested deeper than EB_DETAIL_DEPTH_MAX goes as {"data": base64}: the
 *    event, one level deeper, must still parse. "time" has no fraction, as
 *    in EventBridge's events.
 *  - approximateArrivalTimestamp is seconds with 3 decimals, printed with
 *    KIN_TIME_DIGITS significant digits: exact for every time until year
 *    33658, where jansson's default 17 prints 1545084650.9869999.
 *  - jansson's integers are signed 64-bit: a u64 above INT64_MAX (a
 *    producer's timestamp may be anything) is clamped to INT64_MAX in the
 *    SLUICE format. JavaScript reads integers exactly only up to 2^53.
 *
 * Threading: pure functions; any thread. Memory: one jansson tree per body,
 * released before returning.
 */
#include "broker/push/payload.h"

#include "broker/msgid.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/isotime.h"
#include "common/utf8.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_REGION      "sluice"
#define DEFAULT_ACCOUNT     "000000000000"
#define RESERVED_PREFIX     "sluice."
#define SUBJECT_ATTR        "sluice.subject"
#define BODY_ENCODING_ATTR  "sluice.body_encoding"
#define EB_DETAIL_TYPE      "Sluice Record"
#define EB_DETAIL_DEPTH_MAX 1000u /* jansson refuses past 2048 levels */
/* Any JSON text is a detail; integers as reals only so that jansson accepts
 * those past 64 bits (the text is spliced in, never re-rendered). */
#define EB_JSON_FLAGS   (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL)
#define KIN_TIME_DIGITS 15
#define MD5_HEX_LEN     32u
#define U64_TEXT_MAX    21u /* 20 digits + NUL */

_Static_assert(SL_PUSH_ID_MAX == SL_MSGID_LEN + 1 && SL_PUSH_ID_MAX > 20,
               "an id is a msgid or a u64's 20 digits, and a NUL");

static const char *const format_names[SL_PUSH_FORMAT_COUNT] = {
    "sluice", "sqs", "kinesis", "sns", "eventbridge", "sns-http"};

const char *sl_push_format_name(enum sl_push_format f)
{
    return (unsigned)f < SL_PUSH_FORMAT_COUNT ? format_names[f] : NULL;
}

bool sl_push_format_parse(const char *name, enum sl_push_format *out)
{
    for (unsigned i = 0; i < SL_PUSH_FORMAT_COUNT; i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *out = (enum sl_push_format)i;
            return true;
        }
    }
    return false;
}

void sl_push_record_id(enum sl_push_format f, const char *stream, const struct sl_push_record *r,
                       char out[SL_PUSH_ID_MAX])
{
    if (f == SL_PUSH_FORMAT_KINESIS) {
        snprintf(out, SL_PUSH_ID_MAX, "%" PRIu64, r->seq);
    } else {
        sl_msgid_format(stream, r->shard, r->seq, out);
    }
}

/* ---- JSON values ---------------------------------------------------------- */

/* o[key] = v (taken). A NULL v or o (out of memory) or a failed set clears *ok. */
static void set(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (json_object_set_new_nocheck(o, key, v) != 0) {
        *ok = false;
    }
}

static void setn(json_t *o, const void *key, size_t len, json_t *v, bool *ok)
{
    if (json_object_setn_new_nocheck(o, key, len, v) != 0) {
        *ok = false;
    }
}

/* o, or NULL (o released) when something failed while it was built. */
static json_t *done(json_t *o, bool ok)
{
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Bytes known to be UTF-8 (p may be NULL when n is 0). */
static json_t *text(const void *p, size_t n)
{
    return json_stringn_nocheck(n > 0 ? p : "", n);
}

static json_t *b64(const void *p, size_t n)
{
    char *s = sl_b64_dup(p, n);
    json_t *j = s != NULL ? json_stringn_nocheck(s, sl_b64_len(n)) : NULL;
    free(s);
    return j;
}

/* The bytes as text when they are UTF-8, else as base64 (*is_b64 says which). */
static json_t *text_or_b64(const void *p, size_t n, bool *is_b64)
{
    *is_b64 = !sl_utf8_valid(p, n);
    return *is_b64 ? b64(p, n) : text(p, n);
}

static json_t *u64_int(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *u64_text(uint64_t v)
{
    char s[U64_TEXT_MAX];
    snprintf(s, sizeof(s), "%" PRIu64, v);
    return json_string_nocheck(s);
}

static json_t *iso_time(uint64_t ms, bool with_ms)
{
    char s[SL_ISOTIME_FORMAT_MAX];
    sl_time_format_iso8601(ms, with_ms, s);
    return json_string_nocheck(s);
}

/* An attribute name a JSON object key can hold for every reader: UTF-8
 * without NUL (jansson and C readers cannot hold a NUL in a key). */
static bool name_ok(const char *s, size_t n)
{
    return sl_utf8_valid(s, n) && (n == 0 || memchr(s, '\0', n) == NULL);
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(s, prefix, pl) == 0;
}

/* ---- message attributes (SQS, SNS) ---------------------------------------- */

struct mattr {
    const char *name;
    size_t name_len;
    const char *type; /* "String", "Number", "Binary", "String.x", ... */
    size_t type_len;
    const char *data;
    size_t data_len;
    bool binary; /* data goes base64 */
};

/* How record attribute a shows to an SQS or SNS handler; false: not at all. */
static bool message_attr(const struct sl_attr *a, struct mattr *m)
{
    const size_t pl = sizeof(SL_SQS_ATTR_PREFIX) - 1;
    const char *nul = a->value_len > 0 ? memchr(a->value, '\0', a->value_len) : NULL;
    *m = (struct mattr){.name = a->key,
                        .name_len = a->key_len,
                        .type = "String",
                        .type_len = 6,
                        .data = a->value,
                        .data_len = a->value_len};
    if (nul != NULL && nul > a->value && a->key_len > pl &&
        has_prefix(a->key, a->key_len, SL_SQS_ATTR_PREFIX)) {
        m->name += pl;
        m->name_len -= pl;
        m->type = a->value;
        m->type_len = (size_t)(nul - a->value);
        m->data = nul + 1;
        m->data_len = a->value_len - m->type_len - 1;
    }
    if (!name_ok(m->name, m->name_len) || has_prefix(m->name, m->name_len, RESERVED_PREFIX) ||
        !sl_utf8_valid(m->type, m->type_len)) {
        return false;
    }
    m->binary = has_prefix(m->type, m->type_len, "Binary") || !sl_utf8_valid(m->data, m->data_len);
    if (m->binary && !has_prefix(m->type, m->type_len, "Binary")) {
        m->type = "Binary";
        m->type_len = 6;
    }
    return true;
}

/* SQS: {name: {"stringValue"|"binaryValue", "dataType"}}; SNS: {name: {"Type", "Value"}}. */
static json_t *message_attrs(const struct sl_push_record *r, bool sns, bool body_b64)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    for (uint32_t i = 0; ok && i < r->attr_count; i++) {
        struct mattr m;
        if (!message_attr(&r->attrs[i], &m) || json_object_getn(o, m.name, m.name_len) != NULL) {
            continue;
        }
        json_t *v = json_object(),
               *data = m.binary ? b64(m.data, m.data_len) : text(m.data, m.data_len);
        if (sns) {
            set(v, "Type", text(m.type, m.type_len), &ok);
            set(v, "Value", data, &ok);
        } else {
            set(v, m.binary ? "binaryValue" : "stringValue", data, &ok);
            set(v, "dataType", text(m.type, m.type_len), &ok);
        }
        setn(o, m.name, m.name_len, v, &ok);
    }
    if (body_b64) {
        json_t *v = json_object();
        set(v, sns ? "Type" : "dataType", json_string_nocheck("String"), &ok);
        set(v, sns ? "Value" : "stringValue", json_string_nocheck("base64"), &ok);
        set(o, BODY_ENCODING_ATTR, v, &ok);
    }
    return done(o, ok);
}

/* ---- one record per format ----------------------------------------------- */

struct ctx {
    enum sl_push_format f;
    const struct sl_push_source *src;
    const char *region, *account;
    json_t *arn;     /* the stream's ARN in the format's service (one reference, shared) */
    json_t *sub_arn; /* SNS subscription; KINESIS invokeIdentityArn */
};

static json_t *sluice_record(const struct ctx *c, const struct sl_push_record *r)
{
    char id[SL_PUSH_ID_MAX];
    sl_push_record_id(c->f, c->src->stream, r, id);
    json_t *o = json_object(), *attrs = json_object(), *attrs64 = json_object();
    bool ok = o != NULL, kb = false, vb = false;
    set(o, "id", json_string_nocheck(id), &ok);
    set(o, "shard", json_integer(r->shard), &ok);
    set(o, "seq", u64_int(r->seq), &ok);
    set(o, "time_ms", u64_int(r->timestamp_ms), &ok);
    set(o, "produced_ms", u64_int(r->produced_ms), &ok);
    set(o, "delivery_count", json_integer(r->delivery_count), &ok);
    set(o, "key", r->key_len > 0 ? text_or_b64(r->key, r->key_len, &kb) : json_null(), &ok);
    if (r->key_len > 0) {
        set(o, "key_encoding", json_string_nocheck(kb ? "base64" : "utf8"), &ok);
    }
    set(o, "value", text_or_b64(r->value, r->value_len, &vb), &ok);
    set(o, "value_encoding", json_string_nocheck(vb ? "base64" : "utf8"), &ok);
    for (uint32_t i = 0; ok && i < r->attr_count; i++) {
        const struct sl_attr *a = &r->attrs[i];
        if (!name_ok(a->key, a->key_len) || json_object_getn(attrs, a->key, a->key_len) ||
            json_object_getn(attrs64, a->key, a->key_len)) {
            continue;
        }
        bool ab;
        json_t *v = text_or_b64(a->value, a->value_len, &ab);
        setn(ab ? attrs64 : attrs, a->key, a->key_len, v, &ok);
    }
    set(o, "attributes", attrs, &ok);
    if (json_object_size(attrs64) > 0) {
        set(o, "attributes_base64", json_incref(attrs64), &ok);
    }
    json_decref(attrs64);
    return done(o, ok);
}

static void md5_hex(const char *s, size_t n, char hex[MD5_HEX_LEN + 1])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    int rc = EVP_Digest(s, n, d, &dn, EVP_md5(), NULL);
    SL_ASSERT(rc == 1 && dn * 2 == MD5_HEX_LEN); /* MD5 of memory does not fail */
    for (unsigned i = 0; i < dn; i++) {
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    }
}

static json_t *sqs_record(const struct ctx *c, const struct sl_push_record *r)
{
    char id[SL_PUSH_ID_MAX], md5[MD5_HEX_LEN + 1] = "";
    sl_push_record_id(c->f, c->src->stream, r, id);
    bool ok = true, bb = false, kb;
    json_t *body = text_or_b64(r->value, r->value_len, &bb);
    if (body != NULL) {
        md5_hex(json_string_value(body), json_string_length(body), md5);
    }
    json_t *attrs = json_object();
    set(attrs, "ApproximateReceiveCount", u64_text(r->delivery_count), &ok);
    set(attrs, "SentTimestamp", u64_text(r->timestamp_ms), &ok);
    set(attrs, "ApproximateFirstReceiveTimestamp", u64_text(r->timestamp_ms), &ok);
    if (r->key_len > 0) {
        set(attrs, "MessageGroupId", text_or_b64(r->key, r->key_len, &kb), &ok);
    }
    json_t *o = json_object();
    set(o, "messageId", json_string_nocheck(id), &ok);
    set(o, "receiptHandle", json_string_nocheck(r->receipt), &ok);
    set(o, "body", body, &ok);
    set(o, "attributes", attrs, &ok);
    set(o, "messageAttributes", message_attrs(r, false, bb), &ok);
    set(o, "md5OfBody", json_string_nocheck(md5), &ok);
    set(o, "eventSource", json_string_nocheck("aws:sqs"), &ok);
    set(o, "eventSourceARN", json_incref(c->arn), &ok);
    set(o, "awsRegion", json_string_nocheck(c->region), &ok);
    return done(o, ok);
}

static json_t *kinesis_record(const struct ctx *c, const struct sl_push_record *r)
{
    char id[SL_PUSH_ID_MAX];
    sl_push_record_id(c->f, c->src->stream, r, id);
    bool ok = true, kb;
    json_t *k = json_object();
    set(k, "kinesisSchemaVersion", json_string_nocheck("1.0"), &ok);
    set(k, "partitionKey", text_or_b64(r->key, r->key_len, &kb), &ok);
    set(k, "sequenceNumber", json_string_nocheck(id), &ok);
    set(k, "data", b64(r->value, r->value_len), &ok);
    double secs = (double)(r->timestamp_ms / 1000) + (double)(r->timestamp_ms % 1000) / 1000.0;
    set(k, "approximateArrivalTimestamp", json_real(secs), &ok);
    json_t *o = json_object();
    set(o, "kinesis", k, &ok);
    set(o, "eventSource", json_string_nocheck("aws:kinesis"), &ok);
    set(o, "eventVersion", json_string_nocheck("1.0"), &ok);
    set(o, "eventID", json_sprintf("shardId-%012" PRIu32 ":%s", r->shard, id), &ok);
    set(o, "eventName", json_string_nocheck("aws:kinesis:record"), &ok);
    set(o, "invokeIdentityArn", json_incref(c->sub_arn), &ok);
    set(o, "awsRegion", json_string_nocheck(c->region), &ok);
    set(o, "eventSourceARN", json_incref(c->arn), &ok);
    return done(o, ok);
}

/* The first sluice.subject that is text, or null. */
static json_t *sns_subject(const struct sl_push_record *r)
{
    for (uint32_t i = 0; i < r->attr_count; i++) {
        const struct sl_attr *a = &r->attrs[i];
        if (a->key_len == sizeof(SUBJECT_ATTR) - 1 &&
            memcmp(a->key, SUBJECT_ATTR, a->key_len) == 0) {
            return sl_utf8_valid(a->value, a->value_len) ? text(a->value, a->value_len)
                                                         : json_null();
        }
    }
    return json_null();
}

/* The SNS message itself. A Lambda SNSEvent spells the URLs SigningCertUrl
 * and UnsubscribeUrl; what SNS delivers to SQS and HTTP endpoints spells
 * them SigningCertURL and UnsubscribeURL (`delivered`), and handlers read
 * them by those names. */
static json_t *sns_message(const struct ctx *c, const struct sl_push_record *r, bool delivered)
{
    char id[SL_PUSH_ID_MAX];
    sl_push_record_id(c->f, c->src->stream, r, id);
    bool ok = true, bb = false;
    json_t *s = json_object();
    set(s, "Type", json_string_nocheck("Notification"), &ok);
    set(s, "MessageId", json_string_nocheck(id), &ok);
    set(s, "TopicArn", json_incref(c->arn), &ok);
    set(s, "Subject", sns_subject(r), &ok);
    set(s, "Message", text_or_b64(r->value, r->value_len, &bb), &ok);
    set(s, "Timestamp", iso_time(r->timestamp_ms, true), &ok);
    set(s, "SignatureVersion", json_string_nocheck("1"), &ok);
    set(s, "Signature", json_string_nocheck(""), &ok);
    set(s, delivered ? "SigningCertURL" : "SigningCertUrl", json_string_nocheck(""), &ok);
    set(s, delivered ? "UnsubscribeURL" : "UnsubscribeUrl", json_string_nocheck(""), &ok);
    set(s, "MessageAttributes", message_attrs(r, true, bb), &ok);
    return done(s, ok);
}

static json_t *sns_record(const struct ctx *c, const struct sl_push_record *r)
{
    bool ok = true;
    json_t *o = json_object();
    set(o, "EventSource", json_string_nocheck("aws:sns"), &ok);
    set(o, "EventVersion", json_string_nocheck("1.0"), &ok);
    set(o, "EventSubscriptionArn", json_incref(c->sub_arn), &ok);
    set(o, "Sns", sns_message(c, r, false), &ok);
    return done(o, ok);
}

/* ---- EventBridge ------------------------------------------------------------ */

/* The deepest nesting of JSON text that jansson accepted (so brackets balance). */
static uint32_t json_depth(const char *p, size_t n)
{
    uint32_t d = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (in_str) {
            i += ch == '\\';
            in_str = ch != '"';
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '[' || ch == '{') {
            max = ++d > max ? d : max;
        } else if (ch == ']' || ch == '}') {
            d--;
        }
    }
    return max;
}

/* The parts one after the other, and a NUL, in a new *out. */
static int put_out(const char *const *parts, const size_t *lens, int count, char **out,
                   size_t *out_len)
{
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        total += lens[i];
    }
    char *p = malloc(total + 1);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    size_t at = 0;
    for (int i = 0; i < count; i++) {
        memcpy(p + at, parts[i], lens[i]);
        at += lens[i];
    }
    p[at] = '\0';
    *out = p;
    *out_len = at;
    return SL_OK;
}

static int render_eventbridge(const struct ctx *c, const struct sl_push_record *r, char **out,
                              size_t *out_len)
{
    const char *v = r->value_len > 0 ? (const char *)r->value : "";
    /* jansson takes some NUL bytes for the end of a number ("4\0, 5"): such
     * text is not JSON here, and spliced in it would cut the body short */
    bool nul = memchr(v, '\0', r->value_len) != NULL;
    json_error_t jerr;
    json_t *parsed = nul ? NULL : json_loadb(v, r->value_len, EB_JSON_FLAGS, &jerr);
    if (!nul && parsed == NULL && json_error_code(&jerr) == json_error_out_of_memory) {
        return SL_ENOMEM;
    }
    bool event = json_is_string(json_object_get(parsed, "detail-type")) &&
                 json_is_string(json_object_get(parsed, "source"));
    bool is_json = parsed != NULL && json_depth(v, r->value_len) < EB_DETAIL_DEPTH_MAX;
    if (event && c->src->replay != NULL) {
        /* a replayed event says so, as AWS marks it: "replay-name" */
        bool ok = true;
        set(parsed, "replay-name", json_string(c->src->replay), &ok);
        char *s = ok ? json_dumps(parsed, JSON_COMPACT) : NULL;
        json_decref(parsed);
        if (s == NULL) {
            return SL_ENOMEM;
        }
        *out = s;
        *out_len = strlen(s);
        return SL_OK;
    }
    json_decref(parsed);
    if (event) {
        return put_out(&v, (const size_t[]){r->value_len}, 1, out, out_len);
    }
    char id[SL_PUSH_ID_MAX];
    sl_push_record_id(c->f, c->src->stream, r, id);
    bool ok = true;
    json_t *o = json_object();
    set(o, "version", json_string_nocheck("0"), &ok);
    set(o, "id", json_string_nocheck(id), &ok);
    set(o, "detail-type", json_string_nocheck(EB_DETAIL_TYPE), &ok);
    set(o, "source", json_sprintf("sluice.%s", c->src->stream), &ok);
    set(o, "account", json_string_nocheck(c->account), &ok);
    set(o, "time", iso_time(r->timestamp_ms, false), &ok);
    set(o, "region", json_string_nocheck(c->region), &ok);
    set(o, "resources", json_array(), &ok);
    if (c->src->replay != NULL) {
        set(o, "replay-name", json_string(c->src->replay), &ok);
    }
    if (!is_json) {
        json_t *d = json_object();
        set(d, "data", b64(v, r->value_len), &ok);
        set(o, "detail", d, &ok);
    }
    char *head = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (head == NULL) {
        return SL_ENOMEM;
    }
    int rc;
    if (is_json) { /* head is "{...}": the detail goes before its closing brace */
        static const char key[] = ",\"detail\":";
        const char *parts[] = {head, key, v, "}"};
        size_t lens[] = {strlen(head) - 1, sizeof(key) - 1, r->value_len, 1};
        rc = put_out(parts, lens, 4, out, out_len);
    } else {
        rc = put_out((const char *const[]){head}, (const size_t[]){strlen(head)}, 1, out, out_len);
    }
    free(head);
    return rc;
}

/* ---- render --------------------------------------------------------------------- */

static bool inputs_ok(enum sl_push_format f, const struct ctx *c, const struct sl_push_record *recs,
                      uint32_t n)
{
    const struct sl_push_source *s = c->src;
    if (!sl_utf8_valid(s->stream, strlen(s->stream)) ||
        !sl_utf8_valid(s->group, strlen(s->group)) ||
        !sl_utf8_valid(c->region, strlen(c->region)) ||
        !sl_utf8_valid(c->account, strlen(c->account))) {
        return false;
    }
    for (uint32_t i = 0; f == SL_PUSH_FORMAT_SQS && i < n; i++) {
        if (recs[i].receipt == NULL || !sl_utf8_valid(recs[i].receipt, strlen(recs[i].receipt))) {
            return false;
        }
    }
    return true;
}

static void ctx_init(struct ctx *c, enum sl_push_format f, const struct sl_push_source *src)
{
    SL_ASSERT(src != NULL && src->stream != NULL && src->group != NULL);
    *c = (struct ctx){.f = f,
                      .src = src,
                      .region = src->region != NULL ? src->region : DEFAULT_REGION,
                      .account = src->account != NULL ? src->account : DEFAULT_ACCOUNT};
}

int sl_push_payload_render(enum sl_push_format f, const struct sl_push_source *src,
                           const struct sl_push_record *recs, uint32_t n, char **out,
                           size_t *out_len)
{
    SL_ASSERT(out != NULL && out_len != NULL && (recs != NULL || n == 0));
    struct ctx c;
    ctx_init(&c, f, src);
    if (n == 0 || (unsigned)f >= SL_PUSH_FORMAT_COUNT ||
        ((f == SL_PUSH_FORMAT_EVENTBRIDGE || f == SL_PUSH_FORMAT_SNS_HTTP) && n > 1) ||
        !inputs_ok(f, &c, recs, n)) {
        return SL_EINVAL;
    }
    if (f == SL_PUSH_FORMAT_SNS_HTTP) {
        return sl_push_payload_message(SL_PUSH_FORMAT_SNS, src, &recs[0], out, out_len);
    }
    if (f == SL_PUSH_FORMAT_EVENTBRIDGE) {
        return render_eventbridge(&c, &recs[0], out, out_len);
    }
    static const char *const service[SL_PUSH_FORMAT_COUNT] = {[SL_PUSH_FORMAT_SQS] = "sqs",
                                                              [SL_PUSH_FORMAT_KINESIS] = "kinesis",
                                                              [SL_PUSH_FORMAT_SNS] = "sns"};
    if (service[f] != NULL) {
        c.arn = json_sprintf("arn:aws:%s:%s:%s:%s%s", service[f], c.region, c.account,
                             f == SL_PUSH_FORMAT_KINESIS ? "stream/" : "", src->stream);
    }
    if (f == SL_PUSH_FORMAT_SNS && c.arn != NULL) {
        c.sub_arn = json_sprintf("%s:%s", json_string_value(c.arn), src->group);
    } else if (f == SL_PUSH_FORMAT_KINESIS) {
        c.sub_arn = json_sprintf("arn:aws:iam::%s:role/sluice-push", c.account);
    }
    static json_t *(*const record[SL_PUSH_FORMAT_COUNT])(const struct ctx *,
                                                         const struct sl_push_record *) = {
        [SL_PUSH_FORMAT_SLUICE] = sluice_record,
        [SL_PUSH_FORMAT_SQS] = sqs_record,
        [SL_PUSH_FORMAT_KINESIS] = kinesis_record,
        [SL_PUSH_FORMAT_SNS] = sns_record};
    bool ok = (service[f] == NULL || c.arn != NULL) &&
              (f == SL_PUSH_FORMAT_SQS || f == SL_PUSH_FORMAT_SLUICE || c.sub_arn != NULL);
    json_t *list = json_array(), *root = json_object();
    for (uint32_t i = 0; ok && i < n; i++) {
        ok = json_array_append_new(list, record[f](&c, &recs[i])) == 0;
    }
    if (f == SL_PUSH_FORMAT_SLUICE) {
        set(root, "stream", json_string_nocheck(src->stream), &ok);
        set(root, "group", json_string_nocheck(src->group), &ok);
        set(root, "records", list, &ok);
    } else {
        set(root, "Records", list, &ok);
    }
    json_decref(c.arn);
    json_decref(c.sub_arn);
    size_t flags =
        JSON_COMPACT | (f == SL_PUSH_FORMAT_KINESIS ? JSON_REAL_PRECISION(KIN_TIME_DIGITS) : 0);
    char *s = ok ? json_dumps(root, flags) : NULL;
    json_decref(root);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    *out = s;
    *out_len = strlen(s);
    return SL_OK;
}

int sl_push_payload_message(enum sl_push_format f, const struct sl_push_source *src,
                            const struct sl_push_record *r, char **out, size_t *out_len)
{
    SL_ASSERT(r != NULL && out != NULL && out_len != NULL);
    struct ctx c;
    ctx_init(&c, f, src);
    if ((f != SL_PUSH_FORMAT_SNS && f != SL_PUSH_FORMAT_EVENTBRIDGE) || !inputs_ok(f, &c, r, 1)) {
        return SL_EINVAL;
    }
    if (f == SL_PUSH_FORMAT_EVENTBRIDGE) {
        return render_eventbridge(&c, r, out, out_len);
    }
    c.arn = json_sprintf("arn:aws:sns:%s:%s:%s", c.region, c.account, src->stream);
    json_t *m = c.arn != NULL ? sns_message(&c, r, true) : NULL;
    json_decref(c.arn);
    char *s = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    *out = s;
    *out_len = strlen(s);
    return SL_OK;
}

int sl_push_payload_headers(enum sl_push_format f, const struct sl_push_source *src,
                            const struct sl_push_record *r, char **out)
{
    *out = NULL;
    if (f != SL_PUSH_FORMAT_SNS_HTTP) {
        return SL_OK;
    }
    struct ctx c;
    ctx_init(&c, SL_PUSH_FORMAT_SNS, src);
    char id[SL_PUSH_ID_MAX];
    sl_push_record_id(SL_PUSH_FORMAT_SNS, src->stream, r, id);
    /* names were checked by the render (UTF-8); a CR or LF would split a header */
    if (strpbrk(src->stream, "\r\n") != NULL || strpbrk(src->group, "\r\n") != NULL) {
        return SL_EINVAL;
    }
    static const char fmt[] = "Content-Type: text/plain; charset=UTF-8\n"
                              "x-amz-sns-message-type: Notification\n"
                              "x-amz-sns-message-id: %s\n"
                              "x-amz-sns-topic-arn: arn:aws:sns:%s:%s:%s\n"
                              "x-amz-sns-subscription-arn: arn:aws:sns:%s:%s:%s:%s\n";
    int n = snprintf(NULL, 0, fmt, id, c.region, c.account, src->stream, c.region, c.account,
                     src->stream, src->group);
    char *s = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (s == NULL) {
        return SL_ENOMEM;
    }
    snprintf(s, (size_t)n + 1, fmt, id, c.region, c.account, src->stream, c.region, c.account,
             src->stream, src->group);
    *out = s;
    return SL_OK;
}
