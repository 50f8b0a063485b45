/* test_payload.c - unit tests for broker/push/payload*.c: the bodies a push
 * target POSTs and the partial batch response read back.
 *
 * Covers: every format rendered for one batch of three records (a JSON
 * value without key or attributes; a value and a key that are not UTF-8; a
 * UTF-8 key and a value with quotes, backslashes, control characters and
 * non-ASCII text, with attributes: plain, repeated, values and names not
 * UTF-8, a name holding a NUL, sluice.*, and sqs:N as the SQS API stores
 * them), each body parsed back by jansson
 * with every documented field checked: ids against sl_msgid_format (and the
 * msgid's layout itself), base64 decoded back to the bytes, ARNs with the
 * default and a given region and account, ApproximateReceiveCount =
 * delivery_count, SentTimestamp = the append time in ms, times in ISO 8601
 * and seconds, md5OfBody of the body as sent; EventBridge pass-through (byte
 * for byte) against the envelope (detail spliced verbatim, {"data": base64}
 * for non-JSON and too deep values, a scalar detail); the errors; and the
 * partial batch response under Lambda's rules: empty, non-JSON, other
 * shapes, empty and null lists (success), known ids with duplicates, an
 * unknown id, a prefix, an id with a NUL, null/empty/non-string/missing
 * identifiers (the whole batch), Kinesis seqs shared by two shards, and a
 * body read only up to its length.
 */
#include "broker/msgid.h"
#include "broker/push/payload.h"

#include "common/base64.h"
#include "common/checksum.h"
#include "common/error.h"
#include "storage/batch.h"

#include "tests/unit/test.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#define N_RECS 3u

static const char V0[] = "{\"order\": 42, \"price\": 0.1}";
static const uint8_t V1[] = {0xff, 0x00, 0xc3, 0x28, 'a'};
static const uint8_t K1[] = {0xfe, 0xff};
static const char V2[] = "say \"hi\"\n\\ caf\xc3\xa9 \xe2\x9c\x93 \x01\x1f end";
static const char K2[] = "user-\xc3\xa9";
static const uint8_t BLOB[] = {0x00, 0x01, 0xfe};
static const char SQS_SIZE[] = "Number\0"
                               "42";
static const char SQS_BLOB[] = "Binary\0\x00\x01\xfe";
static const char BAD_VALUE[] = "\xc0\xaf";

static const struct sl_attr ATTRS2[] = {
    {.key = "color", .key_len = 5, .value = "blue", .value_len = 4},
    {.key = "sluice.subject", .key_len = 14, .value = "Hi there", .value_len = 8},
    {.key = "sluice.not_before", .key_len = 17, .value = "123", .value_len = 3},
    {.key = "sqs:size", .key_len = 8, .value = SQS_SIZE, .value_len = sizeof(SQS_SIZE) - 1},
    {.key = "sqs:blob", .key_len = 8, .value = SQS_BLOB, .value_len = sizeof(SQS_BLOB) - 1},
    {.key = "bin", .key_len = 3, .value = BAD_VALUE, .value_len = 2},
    {.key = "color", .key_len = 5, .value = "red", .value_len = 3},
    {.key = "\xff", .key_len = 1, .value = "x", .value_len = 1},
    {.key = "a\0b", .key_len = 3, .value = "x", .value_len = 1},
};

static const struct sl_push_source SRC = {.stream = "orders", .group = "workers"};

static struct sl_push_record recs[N_RECS];

static void fixture(void)
{
    recs[0] = (struct sl_push_record){.shard = 0,
                                      .seq = 7,
                                      .timestamp_ms = 1700000000123u,
                                      .produced_ms = 1700000000100u,
                                      .delivery_count = 1,
                                      .receipt = "r-0",
                                      .value = (const uint8_t *)V0,
                                      .value_len = sizeof(V0) - 1};
    recs[1] = (struct sl_push_record){.shard = 1,
                                      .seq = (UINT64_C(1) << 40) + 5,
                                      .timestamp_ms = 1700000001001u,
                                      .produced_ms = 1700000000999u,
                                      .delivery_count = 3,
                                      .receipt = "r-1",
                                      .key = K1,
                                      .key_len = sizeof(K1),
                                      .value = V1,
                                      .value_len = sizeof(V1)};
    recs[2] = (struct sl_push_record){.shard = 3,
                                      .seq = 0,
                                      .timestamp_ms = 1700000002000u,
                                      .produced_ms = 5,
                                      .delivery_count = 2,
                                      .receipt = "r-2",
                                      .key = (const uint8_t *)K2,
                                      .key_len = sizeof(K2) - 1,
                                      .value = (const uint8_t *)V2,
                                      .value_len = sizeof(V2) - 1,
                                      .attrs = ATTRS2,
                                      .attr_count = sizeof(ATTRS2) / sizeof(ATTRS2[0])};
}

/* ---- helpers: each prints what differs ------------------------------------------ */

static bool bytes_is(const json_t *j, const void *p, size_t n)
{
    if (!json_is_string(j) || json_string_length(j) != n || memcmp(json_string_value(j), p, n)) {
        fprintf(stderr, "  got %s, want %zu bytes \"%.*s\"\n",
                json_is_string(j) ? json_string_value(j) : "(not a string)", n, (int)n,
                (const char *)p);
        return false;
    }
    return true;
}

static bool str_is(const json_t *j, const char *want)
{
    return bytes_is(j, want, strlen(want));
}

static bool b64_is(const json_t *j, const void *p, size_t n)
{
    size_t len = 0, sl = json_string_length(j);
    uint8_t *out = malloc(sl / 4 * 3 + 3);
    bool ok = out != NULL && json_is_string(j) &&
              sl_b64_decode(json_string_value(j), sl, out, &len) == SL_OK && len == n &&
              memcmp(out, p, n) == 0;
    free(out);
    if (!ok) {
        fprintf(stderr, "  base64 %.80s does not decode to the %zu bytes wanted\n",
                json_is_string(j) ? json_string_value(j) : "(not a string)", n);
    }
    return ok;
}

static bool int_is(const json_t *j, long long want)
{
    if (!json_is_integer(j) || json_integer_value(j) != want) {
        fprintf(stderr, "  got %lld, want %lld\n", json_is_integer(j) ? json_integer_value(j) : -1,
                want);
        return false;
    }
    return true;
}

static const char *msgid(const struct sl_push_record *r, char out[SL_MSGID_LEN + 1])
{
    sl_msgid_format(SRC.stream, r->shard, r->seq, out);
    return out;
}

static const json_t *get(const json_t *o, const char *k)
{
    return json_object_get(o, k);
}

static const json_t *rec_at(const json_t *root, const char *list, size_t i)
{
    return json_array_get(get(root, list), i);
}

/* Record 2's message attributes, in SQS's or SNS's names: no sluice.*, the sqs:N ones
 * under N with their data type, one color (the first), the values that are not UTF-8
 * as Binary; names not UTF-8 or with a NUL left out. */
static bool mattrs_ok(const json_t *ma, const char *type, const char *str, const char *bin)
{
    static const struct {
        const char *name, *type, *value;
        size_t len; /* > 0: the value is base64 of len bytes */
    } want[] = {{"color", "String", "blue", 0},
                {"size", "Number", "42", 0},
                {"blob", "Binary", (const char *)BLOB, sizeof(BLOB)},
                {"bin", "Binary", BAD_VALUE, 2}};
    bool ok = json_object_size(ma) == sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; ok && i < sizeof(want) / sizeof(want[0]); i++) {
        const json_t *a = get(ma, want[i].name);
        ok = str_is(get(a, type), want[i].type) &&
             (want[i].len > 0 ? b64_is(get(a, bin), want[i].value, want[i].len)
                              : str_is(get(a, str), want[i].value));
    }
    return ok;
}

/* Renders recs[0..n) and parses the body back; *text keeps the body (freed by the caller). */
static json_t *render(enum sl_push_format f, const struct sl_push_source *src,
                      const struct sl_push_record *r, uint32_t n, char **text)
{
    size_t len = 0;
    *text = NULL;
    int rc = sl_push_payload_render(f, src, r, n, text, &len);
    if (rc != SL_OK) {
        fprintf(stderr, "  render: %s\n", sl_errname(rc));
        return NULL;
    }
    if ((*text)[len] != '\0' || strlen(*text) != len) {
        fprintf(stderr, "  render: length %zu is not the text's\n", len);
        return NULL;
    }
    json_error_t err;
    size_t flags = JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL * (f == SL_PUSH_FORMAT_EVENTBRIDGE);
    json_t *j = json_loadb(*text, len, flags, &err);
    if (j == NULL) {
        fprintf(stderr, "  not JSON (%s): %s\n", err.text, *text);
    }
    return j;
}

static void md5_hex(const void *p, size_t n, char hex[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    EVP_Digest(p, n, d, &dn, EVP_md5(), NULL);
    for (unsigned i = 0; i < dn; i++) {
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    }
}

/* ---- ids and names ------------------------------------------------------------- */

TEST(msgid_layout)
{
    char id[SL_MSGID_LEN + 1], want[SL_MSGID_LEN + 1];
    sl_msgid_format("orders", 0x51234u, UINT64_C(0x123456789abcdef0), id);
    snprintf(want, sizeof(want), "%08x-1234-0001-0234-56789abcdef0", sl_checksum32("orders", 6));
    CHECK(strcmp(id, want) == 0);
    char k[SL_PUSH_ID_MAX];
    sl_push_record_id(SL_PUSH_FORMAT_KINESIS, "orders", &(struct sl_push_record){.seq = 99}, k);
    CHECK(strcmp(k, "99") == 0);
    sl_push_record_id(SL_PUSH_FORMAT_SNS, "orders",
                      &(struct sl_push_record){.shard = 0x51234u, .seq = 0x123456789abcdef0}, k);
    CHECK(strcmp(k, want) == 0);
}

TEST(format_names)
{
    static const char *const names[] = {"sluice", "sqs", "kinesis", "sns", "eventbridge",
                                        "sns-http"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SL_PUSH_FORMAT_COUNT, "every format");
    for (unsigned i = 0; i < SL_PUSH_FORMAT_COUNT; i++) {
        enum sl_push_format f;
        CHECK(strcmp(sl_push_format_name((enum sl_push_format)i), names[i]) == 0);
        CHECK(sl_push_format_parse(names[i], &f) && f == (enum sl_push_format)i);
    }
    enum sl_push_format f;
    CHECK(sl_push_format_name((enum sl_push_format)SL_PUSH_FORMAT_COUNT) == NULL);
    CHECK(!sl_push_format_parse("SQS", &f) && !sl_push_format_parse("", &f));
}

/* ---- render ---------------------------------------------------------------------- */

TEST(sluice_format)
{
    fixture();
    char *text, id[SL_MSGID_LEN + 1];
    json_t *j = render(SL_PUSH_FORMAT_SLUICE, &SRC, recs, N_RECS, &text);
    CHECK(j != NULL);
    CHECK(str_is(get(j, "stream"), "orders") && str_is(get(j, "group"), "workers"));
    CHECK_EQ(json_array_size(get(j, "records")), N_RECS);
    for (uint32_t i = 0; i < N_RECS; i++) {
        const json_t *r = rec_at(j, "records", i);
        CHECK(str_is(get(r, "id"), msgid(&recs[i], id)));
        CHECK(int_is(get(r, "shard"), recs[i].shard) &&
              int_is(get(r, "seq"), (long long)recs[i].seq));
        CHECK(int_is(get(r, "time_ms"), (long long)recs[i].timestamp_ms));
        CHECK(int_is(get(r, "produced_ms"), (long long)recs[i].produced_ms));
        CHECK(int_is(get(r, "delivery_count"), recs[i].delivery_count));
    }
    const json_t *r0 = rec_at(j, "records", 0), *r1 = rec_at(j, "records", 1),
                 *r2 = rec_at(j, "records", 2);
    CHECK(json_is_null(get(r0, "key")) && get(r0, "key_encoding") == NULL);
    CHECK(bytes_is(get(r0, "value"), V0, sizeof(V0) - 1));
    CHECK(str_is(get(r0, "value_encoding"), "utf8"));
    CHECK(json_object_size(get(r0, "attributes")) == 0 && get(r0, "attributes_base64") == NULL);
    CHECK(b64_is(get(r1, "key"), K1, sizeof(K1)) && str_is(get(r1, "key_encoding"), "base64"));
    CHECK(b64_is(get(r1, "value"), V1, sizeof(V1)));
    CHECK(str_is(get(r1, "value_encoding"), "base64"));
    CHECK(str_is(get(r2, "key"), K2) && str_is(get(r2, "key_encoding"), "utf8"));
    CHECK(bytes_is(get(r2, "value"), V2, sizeof(V2) - 1));
    /* every attribute whose name is text, the first of a repeated one, sluice.* included */
    const json_t *a = get(r2, "attributes"), *a64 = get(r2, "attributes_base64");
    CHECK_EQ(json_object_size(a), 4);
    CHECK(str_is(get(a, "color"), "blue") && str_is(get(a, "sluice.subject"), "Hi there"));
    CHECK(str_is(get(a, "sluice.not_before"), "123"));
    CHECK(bytes_is(get(a, "sqs:size"), SQS_SIZE, sizeof(SQS_SIZE) - 1));
    CHECK_EQ(json_object_size(a64), 2); /* the values that are not UTF-8 */
    CHECK(b64_is(get(a64, "sqs:blob"), SQS_BLOB, sizeof(SQS_BLOB) - 1));
    CHECK(b64_is(get(a64, "bin"), BAD_VALUE, 2));
    /* escaping: no raw control byte in the text; non-ASCII UTF-8 passed through as it is */
    for (const char *p = text; *p != '\0'; p++) {
        CHECK((unsigned char)*p >= 0x20);
    }
    CHECK(strstr(text, "say \\\"hi\\\"\\n\\\\ caf\xc3\xa9 \xe2\x9c\x93 \\u00") != NULL);
    json_decref(j);
    free(text);
}

TEST(sqs_format)
{
    fixture();
    char *text, id[SL_MSGID_LEN + 1], md5[33];
    json_t *j = render(SL_PUSH_FORMAT_SQS, &SRC, recs, N_RECS, &text);
    CHECK(j != NULL);
    CHECK_EQ(json_object_size(j), 1);
    CHECK_EQ(json_array_size(get(j, "Records")), N_RECS);
    static const char *const counts[] = {"1", "3", "2"};
    static const char *const sent[] = {"1700000000123", "1700000001001", "1700000002000"};
    for (uint32_t i = 0; i < N_RECS; i++) {
        const json_t *r = rec_at(j, "Records", i), *at = get(r, "attributes");
        CHECK(str_is(get(r, "messageId"), msgid(&recs[i], id)));
        CHECK(str_is(get(r, "receiptHandle"), recs[i].receipt));
        CHECK(str_is(get(at, "ApproximateReceiveCount"), counts[i]));
        CHECK(str_is(get(at, "SentTimestamp"), sent[i]));
        CHECK(str_is(get(at, "ApproximateFirstReceiveTimestamp"), sent[i]));
        md5_hex(json_string_value(get(r, "body")), json_string_length(get(r, "body")), md5);
        CHECK(str_is(get(r, "md5OfBody"), md5));
        CHECK(str_is(get(r, "eventSource"), "aws:sqs"));
        CHECK(str_is(get(r, "eventSourceARN"), "arn:aws:sqs:sluice:000000000000:orders"));
        CHECK(str_is(get(r, "awsRegion"), "sluice"));
    }
    const json_t *r0 = rec_at(j, "Records", 0), *r1 = rec_at(j, "Records", 1),
                 *r2 = rec_at(j, "Records", 2);
    CHECK(bytes_is(get(r0, "body"), V0, sizeof(V0) - 1));
    CHECK(str_is(get(r0, "md5OfBody"), "ffe5aa071983b262562d9bdd8e5110ea")); /* md5sum(1) */
    CHECK(get(get(r0, "attributes"), "MessageGroupId") == NULL);
    CHECK(json_object_size(get(r0, "messageAttributes")) == 0);
    CHECK(b64_is(get(r1, "body"), V1, sizeof(V1)));
    CHECK(b64_is(get(get(r1, "attributes"), "MessageGroupId"), K1, sizeof(K1)));
    const json_t *enc = get(get(r1, "messageAttributes"), "sluice.body_encoding");
    CHECK(str_is(get(enc, "stringValue"), "base64") && str_is(get(enc, "dataType"), "String"));
    CHECK(bytes_is(get(r2, "body"), V2, sizeof(V2) - 1));
    CHECK(str_is(get(get(r2, "attributes"), "MessageGroupId"), K2));
    const json_t *ma = get(r2, "messageAttributes");
    CHECK(mattrs_ok(ma, "dataType", "stringValue", "binaryValue"));
    json_decref(j);
    free(text);
}

TEST(kinesis_format)
{
    fixture();
    char *text, sq[32];
    json_t *j = render(SL_PUSH_FORMAT_KINESIS, &SRC, recs, N_RECS, &text);
    CHECK(j != NULL);
    CHECK_EQ(json_array_size(get(j, "Records")), N_RECS);
    static const char *const event_ids[] = {
        "shardId-000000000000:7", "shardId-000000000001:1099511627781", "shardId-000000000003:0"};
    for (uint32_t i = 0; i < N_RECS; i++) {
        const json_t *r = rec_at(j, "Records", i), *k = get(r, "kinesis");
        snprintf(sq, sizeof(sq), "%" PRIu64, recs[i].seq);
        CHECK(str_is(get(k, "kinesisSchemaVersion"), "1.0"));
        CHECK(str_is(get(k, "sequenceNumber"), sq));
        CHECK(b64_is(get(k, "data"), recs[i].value, recs[i].value_len));
        double want = (double)recs[i].timestamp_ms / 1000.0;
        double got = json_real_value(get(k, "approximateArrivalTimestamp"));
        CHECK(json_is_real(get(k, "approximateArrivalTimestamp")));
        CHECK(got > want - 1e-4 && got < want + 1e-4);
        CHECK(str_is(get(r, "eventSource"), "aws:kinesis"));
        CHECK(str_is(get(r, "eventVersion"), "1.0"));
        CHECK(str_is(get(r, "eventID"), event_ids[i]));
        CHECK(str_is(get(r, "eventName"), "aws:kinesis:record"));
        CHECK(str_is(get(r, "invokeIdentityArn"), "arn:aws:iam::000000000000:role/sluice-push"));
        CHECK(str_is(get(r, "awsRegion"), "sluice"));
        CHECK(
            str_is(get(r, "eventSourceARN"), "arn:aws:kinesis:sluice:000000000000:stream/orders"));
    }
    CHECK(str_is(get(get(rec_at(j, "Records", 0), "kinesis"), "partitionKey"), ""));
    CHECK(b64_is(get(get(rec_at(j, "Records", 1), "kinesis"), "partitionKey"), K1, sizeof(K1)));
    CHECK(str_is(get(get(rec_at(j, "Records", 2), "kinesis"), "partitionKey"), K2));
    /* seconds with exactly the milliseconds, not 1700000000.1229999 */
    CHECK(strstr(text, "\"approximateArrivalTimestamp\":1700000000.123}") != NULL);
    CHECK(strstr(text, "\"approximateArrivalTimestamp\":1700000001.001}") != NULL);
    json_decref(j);
    free(text);
}

TEST(sns_format)
{
    fixture();
    char *text, id[SL_MSGID_LEN + 1];
    json_t *j = render(SL_PUSH_FORMAT_SNS, &SRC, recs, N_RECS, &text);
    CHECK(j != NULL);
    CHECK_EQ(json_array_size(get(j, "Records")), N_RECS);
    static const char *const times[] = {"2023-11-14T22:13:20.123Z", "2023-11-14T22:13:21.001Z",
                                        "2023-11-14T22:13:22.000Z"};
    for (uint32_t i = 0; i < N_RECS; i++) {
        const json_t *r = rec_at(j, "Records", i), *s = get(r, "Sns");
        CHECK(str_is(get(r, "EventSource"), "aws:sns") && str_is(get(r, "EventVersion"), "1.0"));
        CHECK(str_is(get(r, "EventSubscriptionArn"),
                     "arn:aws:sns:sluice:000000000000:orders:workers"));
        CHECK(str_is(get(s, "Type"), "Notification"));
        CHECK(str_is(get(s, "MessageId"), msgid(&recs[i], id)));
        CHECK(str_is(get(s, "TopicArn"), "arn:aws:sns:sluice:000000000000:orders"));
        CHECK(str_is(get(s, "Timestamp"), times[i]));
        CHECK(str_is(get(s, "SignatureVersion"), "1") && str_is(get(s, "Signature"), ""));
        CHECK(str_is(get(s, "SigningCertUrl"), "") && str_is(get(s, "UnsubscribeUrl"), ""));
    }
    const json_t *s0 = get(rec_at(j, "Records", 0), "Sns"),
                 *s1 = get(rec_at(j, "Records", 1), "Sns"),
                 *s2 = get(rec_at(j, "Records", 2), "Sns");
    CHECK(json_is_null(get(s0, "Subject")) && bytes_is(get(s0, "Message"), V0, sizeof(V0) - 1));
    CHECK(json_object_size(get(s0, "MessageAttributes")) == 0);
    CHECK(json_is_null(get(s1, "Subject")) && b64_is(get(s1, "Message"), V1, sizeof(V1)));
    const json_t *enc = get(get(s1, "MessageAttributes"), "sluice.body_encoding");
    CHECK(str_is(get(enc, "Type"), "String") && str_is(get(enc, "Value"), "base64"));
    CHECK(str_is(get(s2, "Subject"), "Hi there") &&
          bytes_is(get(s2, "Message"), V2, sizeof(V2) - 1));
    CHECK(mattrs_ok(get(s2, "MessageAttributes"), "Type", "Value", "Value"));
    json_decref(j);
    free(text);
}

/* The message alone (forward targets, sns-http): the Sns object's fields,
 * with the URLs spelled as SNS delivers to SQS and HTTP. */
TEST(sns_message_delivered)
{
    fixture();
    char id[SL_MSGID_LEN + 1];
    enum sl_push_format formats[] = {SL_PUSH_FORMAT_SNS, SL_PUSH_FORMAT_SNS_HTTP};
    for (int k = 0; k < 2; k++) {
        char *out = NULL;
        size_t len = 0;
        int rc = k == 0 ? sl_push_payload_message(formats[k], &SRC, &recs[2], &out, &len)
                        : sl_push_payload_render(formats[k], &SRC, &recs[2], 1, &out, &len);
        CHECK_EQ(rc, SL_OK);
        CHECK(out != NULL && strlen(out) == len);
        json_t *s = json_loads(out, 0, NULL);
        CHECK(s != NULL);
        CHECK(str_is(get(s, "Type"), "Notification"));
        CHECK(str_is(get(s, "MessageId"), msgid(&recs[2], id)));
        CHECK(str_is(get(s, "TopicArn"), "arn:aws:sns:sluice:000000000000:orders"));
        CHECK(str_is(get(s, "Subject"), "Hi there"));
        CHECK(bytes_is(get(s, "Message"), V2, sizeof(V2) - 1));
        CHECK(str_is(get(s, "SigningCertURL"), "") && str_is(get(s, "UnsubscribeURL"), ""));
        CHECK(get(s, "SigningCertUrl") == NULL && get(s, "EventSource") == NULL);
        CHECK(mattrs_ok(get(s, "MessageAttributes"), "Type", "Value", "Value"));
        json_decref(s);
        free(out);
    }
    char *out = NULL;
    size_t len = 0;
    CHECK_EQ(sl_push_payload_message(SL_PUSH_FORMAT_SQS, &SRC, &recs[0], &out, &len), SL_EINVAL);
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_SNS_HTTP, &SRC, recs, 2, &out, &len),
             SL_EINVAL);
    CHECK(out == NULL);
    /* an EventBridge message is the POST body of that format */
    char *body = NULL;
    size_t blen = 0;
    CHECK_EQ(sl_push_payload_message(SL_PUSH_FORMAT_EVENTBRIDGE, &SRC, &recs[0], &out, &len),
             SL_OK);
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_EVENTBRIDGE, &SRC, &recs[0], 1, &body, &blen),
             SL_OK);
    CHECK(len == blen && memcmp(out, body, len) == 0);
    free(out);
    free(body);
}

TEST(sns_http_headers)
{
    fixture();
    char *h = NULL, id[SL_MSGID_LEN + 1], want[512];
    CHECK_EQ(sl_push_payload_headers(SL_PUSH_FORMAT_SNS, &SRC, &recs[0], &h), SL_OK);
    CHECK(h == NULL);
    CHECK_EQ(sl_push_payload_headers(SL_PUSH_FORMAT_SNS_HTTP, &SRC, &recs[1], &h), SL_OK);
    snprintf(want, sizeof(want),
             "Content-Type: text/plain; charset=UTF-8\n"
             "x-amz-sns-message-type: Notification\n"
             "x-amz-sns-message-id: %s\n"
             "x-amz-sns-topic-arn: arn:aws:sns:sluice:000000000000:orders\n"
             "x-amz-sns-subscription-arn: arn:aws:sns:sluice:000000000000:orders:workers\n",
             msgid(&recs[1], id));
    CHECK(h != NULL && strcmp(h, want) == 0);
    free(h);
    const struct sl_push_source split = {.stream = "a\r\nX-Evil: 1", .group = "g"};
    CHECK_EQ(sl_push_payload_headers(SL_PUSH_FORMAT_SNS_HTTP, &split, &recs[1], &h), SL_EINVAL);
}

TEST(region_and_account)
{
    fixture();
    const struct sl_push_source src = {
        .stream = "orders", .group = "g", .region = "eu-west-1", .account = "123456789012"};
    char *text;
    json_t *j = render(SL_PUSH_FORMAT_SQS, &src, recs, 1, &text);
    CHECK(j != NULL);
    const json_t *r = rec_at(j, "Records", 0);
    CHECK(str_is(get(r, "eventSourceARN"), "arn:aws:sqs:eu-west-1:123456789012:orders"));
    CHECK(str_is(get(r, "awsRegion"), "eu-west-1"));
    json_decref(j);
    free(text);
    j = render(SL_PUSH_FORMAT_EVENTBRIDGE, &src, recs, 1, &text);
    CHECK(j != NULL);
    CHECK(str_is(get(j, "account"), "123456789012") && str_is(get(j, "region"), "eu-west-1"));
    json_decref(j);
    free(text);
}

/* The EventBridge body of one record whose value is `value`. */
static json_t *eb(const char *value, size_t len, char **text)
{
    fixture();
    struct sl_push_record r = recs[0];
    r.value = (const uint8_t *)value;
    r.value_len = (uint32_t)len;
    return render(SL_PUSH_FORMAT_EVENTBRIDGE, &SRC, &r, 1, text);
}

TEST(eventbridge_wrap)
{
    char *text, id[SL_MSGID_LEN + 1];
    json_t *j = eb(V0, sizeof(V0) - 1, &text);
    CHECK(j != NULL);
    CHECK(str_is(get(j, "version"), "0") && str_is(get(j, "id"), msgid(&recs[0], id)));
    CHECK(str_is(get(j, "detail-type"), "Sluice Record"));
    CHECK(str_is(get(j, "source"), "sluice.orders"));
    CHECK(str_is(get(j, "account"), "000000000000") && str_is(get(j, "region"), "sluice"));
    CHECK(str_is(get(j, "time"), "2023-11-14T22:13:20Z"));
    CHECK(json_is_array(get(j, "resources")) && json_array_size(get(j, "resources")) == 0);
    CHECK(json_real_value(get(get(j, "detail"), "order")) == 42.0);
    CHECK(json_real_value(get(get(j, "detail"), "price")) == 0.1);
    /* the producer's text, spliced verbatim */
    CHECK(strstr(text, ",\"detail\":{\"order\": 42, \"price\": 0.1}}") != NULL);
    json_decref(j);
    free(text);
    /* not JSON: {"data": base64} */
    j = eb((const char *)V1, sizeof(V1), &text);
    CHECK(j != NULL && b64_is(get(get(j, "detail"), "data"), V1, sizeof(V1)));
    json_decref(j);
    free(text);
    j = eb("not json", 8, &text);
    CHECK(j != NULL && b64_is(get(get(j, "detail"), "data"), "not json", 8));
    json_decref(j);
    free(text);
    /* jansson reads "4\0, ..." as a number ending at the NUL: not JSON here */
    static const char nul[] = "{\"order\": 4\0, \"price\": 0.1}";
    j = eb(nul, sizeof(nul) - 1, &text);
    CHECK(j != NULL && b64_is(get(get(j, "detail"), "data"), nul, sizeof(nul) - 1));
    json_decref(j);
    free(text);
    static const char nul_event[] = "{\"detail-type\":\"a\",\"source\":\"b\",\"n\":4\0}";
    j = eb(nul_event, sizeof(nul_event) - 1, &text);
    CHECK(j != NULL && str_is(get(j, "detail-type"), "Sluice Record"));
    json_decref(j);
    free(text);
    /* any JSON text is a detail, integers past 64 bits included */
    j = eb(" 42 ", 4, &text);
    CHECK(j != NULL && json_real_value(get(j, "detail")) == 42.0);
    json_decref(j);
    free(text);
    static const char big[] = "{\"n\":123456789012345678901234567890}";
    j = eb(big, sizeof(big) - 1, &text);
    CHECK(j != NULL && strstr(text, big) != NULL);
    json_decref(j);
    free(text);
    /* "detail-type" that is not a string: not an event, wrapped */
    static const char odd[] = "{\"detail-type\":1,\"source\":\"shop\"}";
    j = eb(odd, sizeof(odd) - 1, &text);
    CHECK(j != NULL && str_is(get(j, "detail-type"), "Sluice Record"));
    CHECK(json_real_value(get(get(j, "detail"), "detail-type")) == 1.0);
    json_decref(j);
    free(text);
    /* nested too deep for one more level: base64 */
    static char deep[2 * 1500 + 1];
    memset(deep, '[', 1500);
    memset(deep + 1500, ']', 1500);
    j = eb(deep, 3000, &text);
    CHECK(j != NULL && b64_is(get(get(j, "detail"), "data"), deep, 3000));
    json_decref(j);
    free(text);
}

TEST(eventbridge_pass_through)
{
    static const char ev[] = "{ \"detail-type\": \"OrderPlaced\", \"source\": \"shop\", "
                             "\"detail\": {\"price\": 0.1}, \"id\": \"x\" }";
    char *text;
    json_t *j = eb(ev, sizeof(ev) - 1, &text);
    CHECK(j != NULL);
    CHECK(strcmp(text, ev) == 0);
    CHECK(str_is(get(j, "detail-type"), "OrderPlaced") && str_is(get(j, "id"), "x"));
    json_decref(j);
    free(text);
}

TEST(render_errors)
{
    fixture();
    char *out = NULL;
    size_t len = 0;
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_SQS, &SRC, recs, 0, &out, &len), SL_EINVAL);
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_EVENTBRIDGE, &SRC, recs, 2, &out, &len),
             SL_EINVAL);
    CHECK_EQ(sl_push_payload_render((enum sl_push_format)9, &SRC, recs, 1, &out, &len), SL_EINVAL);
    struct sl_push_record r = recs[0];
    r.receipt = NULL;
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_SQS, &SRC, &r, 1, &out, &len), SL_EINVAL);
    r.receipt = "\xff";
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_SQS, &SRC, &r, 1, &out, &len), SL_EINVAL);
    const struct sl_push_source bad = {.stream = "s\xff", .group = "g"};
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_SLUICE, &bad, recs, 1, &out, &len), SL_EINVAL);
    CHECK(out == NULL);
    /* KINESIS does not need a receipt */
    CHECK_EQ(sl_push_payload_render(SL_PUSH_FORMAT_KINESIS, &SRC, &r, 1, &out, &len), SL_OK);
    free(out);
}

/* ---- partial batch response ------------------------------------------------------- */

struct outcome {
    int rc;
    uint32_t nfailed;
    bool failed[N_RECS];
};

static struct outcome answer(enum sl_push_format f, const char *body, size_t len)
{
    fixture();
    struct outcome o = {0};
    memset(o.failed, 0x5a, sizeof(o.failed)); /* all must be written */
    o.rc = sl_push_response_failures(f, &SRC, recs, N_RECS, body, len, o.failed, &o.nfailed);
    return o;
}

static struct outcome answer_s(const char *body)
{
    return answer(SL_PUSH_FORMAT_SQS, body, strlen(body));
}

static bool none_failed(struct outcome o)
{
    return o.rc == SL_OK && o.nfailed == 0 && !o.failed[0] && !o.failed[1] && !o.failed[2];
}

static bool all_failed(struct outcome o)
{
    return o.rc == SL_EINVAL && o.nfailed == N_RECS && o.failed[0] && o.failed[1] && o.failed[2];
}

/* {"batchItemFailures":[{"itemIdentifier":"<a>"},...]} of the given ids (NULL ends). */
static const char *failures(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
    const char *ids[] = {a, b, c};
    size_t n = (size_t)snprintf(buf, cap, "{\"batchItemFailures\":[");
    for (int i = 0; i < 3 && ids[i] != NULL; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s{\"itemIdentifier\":\"%s\"}", i ? "," : "",
                              ids[i]);
    }
    snprintf(buf + n, cap - n, "]}");
    return buf;
}

TEST(response_success_shapes)
{
    CHECK(none_failed(answer(SL_PUSH_FORMAT_SQS, NULL, 0)));
    CHECK(none_failed(answer_s("")));
    CHECK(none_failed(answer_s("   ")));
    CHECK(none_failed(answer_s("OK")));
    CHECK(none_failed(answer_s("null")));
    CHECK(none_failed(answer_s("[]")));
    CHECK(none_failed(answer_s("[{\"itemIdentifier\":\"nope\"}]")));
    CHECK(none_failed(answer_s("{}")));
    CHECK(none_failed(answer_s("{\"statusCode\":200,\"body\":\"done\"}")));
    CHECK(none_failed(answer_s("{\"batchItemFailures\":null}")));
    CHECK(none_failed(answer_s("{\"batchItemFailures\":\"nope\"}")));
    CHECK(none_failed(answer_s("{\"batchItemFailures\":{\"itemIdentifier\":\"nope\"}}")));
    CHECK(none_failed(answer_s("{\"batchItemFailures\":[]}")));
    CHECK(none_failed(answer_s("{\"batchItemFailures\":[{\"itemIdentifier\":\"x\"}]} trailing")));
}

TEST(response_known_ids)
{
    char b[512], id0[SL_MSGID_LEN + 1], id1[SL_MSGID_LEN + 1], id2[SL_MSGID_LEN + 1];
    fixture();
    msgid(&recs[0], id0);
    msgid(&recs[1], id1);
    msgid(&recs[2], id2);
    struct outcome o = answer_s(failures(b, sizeof(b), id1, NULL, NULL));
    CHECK(o.rc == SL_OK && o.nfailed == 1 && !o.failed[0] && o.failed[1] && !o.failed[2]);
    o = answer_s(failures(b, sizeof(b), id2, id0, id2)); /* a duplicate counts once */
    CHECK(o.rc == SL_OK && o.nfailed == 2 && o.failed[0] && !o.failed[1] && o.failed[2]);
    /* the same ids for SNS, SLUICE and EVENTBRIDGE */
    for (enum sl_push_format f = SL_PUSH_FORMAT_SLUICE; f < SL_PUSH_FORMAT_COUNT; f++) {
        if (f != SL_PUSH_FORMAT_KINESIS && f != SL_PUSH_FORMAT_SNS_HTTP) {
            failures(b, sizeof(b), id0, NULL, NULL);
            o = answer(f, b, strlen(b));
            CHECK(o.rc == SL_OK && o.nfailed == 1 && o.failed[0] && !o.failed[1]);
        }
    }
    /* an SNS HTTP subscriber's answer body means nothing: SNS reads only the status */
    failures(b, sizeof(b), id0, NULL, NULL);
    CHECK(none_failed(answer(SL_PUSH_FORMAT_SNS_HTTP, b, strlen(b))));
    /* other keys next to the list and in the entries are ignored */
    snprintf(b, sizeof(b),
             "{\"x\":1,\"batchItemFailures\":[{\"why\":\"timeout\",\"itemIdentifier\":\"%s\"}]}",
             id2);
    o = answer_s(b);
    CHECK(o.rc == SL_OK && o.nfailed == 1 && o.failed[2]);
    /* only len bytes are read: a second document after them is not */
    snprintf(b, sizeof(b),
             "{\"batchItemFailures\":[]}{\"batchItemFailures\":[{\"itemIdentifier\":"
             "\"nope\"}]}");
    CHECK(none_failed(answer(SL_PUSH_FORMAT_SQS, b, 24)));
}

TEST(response_whole_batch)
{
    char b[512], id0[SL_MSGID_LEN + 1];
    fixture();
    msgid(&recs[0], id0);
    CHECK(all_failed(answer_s(failures(b, sizeof(b), id0, "no-such-id", NULL))));
    CHECK(all_failed(answer_s("{\"batchItemFailures\":[{\"itemIdentifier\":null}]}")));
    CHECK(all_failed(answer_s("{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}")));
    CHECK(all_failed(answer_s("{\"batchItemFailures\":[{\"itemIdentifier\":7}]}")));
    CHECK(all_failed(answer_s("{\"batchItemFailures\":[{\"itemIdentifier\":[\"x\"]}]}")));
    CHECK(all_failed(answer_s("{\"batchItemFailures\":[{\"ItemIdentifier\":\"x\"}]}")));
    CHECK(all_failed(answer_s("{\"batchItemFailures\":[{}]}")));
    snprintf(b, sizeof(b), "{\"batchItemFailures\":[\"%s\"]}", id0);
    CHECK(all_failed(answer_s(b)));
    /* a prefix of an id, an id with more after a NUL, another case */
    snprintf(b, sizeof(b), "{\"batchItemFailures\":[{\"itemIdentifier\":\"%.35s\"}]}", id0);
    CHECK(all_failed(answer_s(b)));
    snprintf(b, sizeof(b), "{\"batchItemFailures\":[{\"itemIdentifier\":\"%s\\u0000x\"}]}", id0);
    CHECK(all_failed(answer_s(b)));
    char up[SL_MSGID_LEN + 1];
    for (size_t i = 0; i <= SL_MSGID_LEN; i++) {
        up[i] = (char)toupper((unsigned char)id0[i]);
    }
    if (strcmp(up, id0) != 0) { /* the stream's hash may be all digits */
        CHECK(all_failed(answer_s(failures(b, sizeof(b), up, NULL, NULL))));
    }
    /* a Kinesis batch answers sequence numbers, not message ids */
    msgid(&recs[0], id0);
    failures(b, sizeof(b), id0, NULL, NULL);
    CHECK(all_failed(answer(SL_PUSH_FORMAT_KINESIS, b, strlen(b))));
}

TEST(response_kinesis)
{
    char b[512];
    failures(b, sizeof(b), "1099511627781", NULL, NULL);
    struct outcome o = answer(SL_PUSH_FORMAT_KINESIS, b, strlen(b));
    CHECK(o.rc == SL_OK && o.nfailed == 1 && o.failed[1] && !o.failed[0] && !o.failed[2]);
    failures(b, sizeof(b), "00", NULL, NULL); /* "0" is record 2's; "00" names none */
    CHECK(all_failed(answer(SL_PUSH_FORMAT_KINESIS, b, strlen(b))));
    /* one seq in two shards: the identifier names both */
    fixture();
    struct sl_push_record two[3] = {recs[0], recs[1], recs[2]};
    two[1].seq = 7;
    bool failed[3];
    uint32_t nf = 0;
    failures(b, sizeof(b), "7", NULL, NULL);
    CHECK_EQ(
        sl_push_response_failures(SL_PUSH_FORMAT_KINESIS, &SRC, two, 3, b, strlen(b), failed, &nf),
        SL_OK);
    CHECK(nf == 2 && failed[0] && failed[1] && !failed[2]);
}

int main(void)
{
    RUN(msgid_layout);
    RUN(format_names);
    RUN(sluice_format);
    RUN(sqs_format);
    RUN(kinesis_format);
    RUN(sns_format);
    RUN(sns_message_delivered);
    RUN(sns_http_headers);
    RUN(region_and_account);
    RUN(eventbridge_wrap);
    RUN(eventbridge_pass_through);
    RUN(render_errors);
    RUN(response_success_shapes);
    RUN(response_known_ids);
    RUN(response_whole_batch);
    RUN(response_kinesis);
    TEST_END();
}
