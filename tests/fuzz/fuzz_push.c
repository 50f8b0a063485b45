/* fuzz_push.c - the push payloads (broker/push/payload*.c): bodies rendered
 * from records built out of the input, and a handler's answer (untrusted:
 * a remote endpoint's body) read back against them.
 *
 * Input: byte 0 = format (% 5); byte 1 = flags: bit 0 the stream name comes
 * from the input (else "orders"), bit 1 the answer's bytes 0x01 k stand for
 * the id of record k % n (so that answers naming real records are easy to
 * reach), bits 2-3 = records - 1, bit 4 the records are replayed
 * (EventBridge events then carry "replay-name"). Then per record: shard u8, seq u64 LE,
 * append time u64 LE, producer time u64 LE, delivery count u8, key (u8
 * length + bytes), value (u16 LE length + bytes), attribute count (u8 % 6)
 * and per attribute name (u8 length % 32 + bytes) and value (u8 length +
 * bytes). The stream name, when taken from the input, comes first (u8
 * length % 16 + bytes, up to a NUL). What is left is the answer's body.
 * Fields past the end of the input are empty.
 *
 * Checks beyond ASan/UBSan/leaks: render answers SL_EINVAL exactly for an
 * EventBridge batch of more than one record or a stream name jansson does
 * not take as UTF-8, else SL_OK with a body jansson parses (NULs and big
 * integers allowed) and whose length is its strlen; the batch lists every
 * record with the id sl_push_record_id gives; a SLUICE value is text exactly
 * when jansson takes it as UTF-8 (sl_utf8_valid against jansson's check) and
 * decodes back to the record's bytes; an EventBridge event (jansson parses
 * it, no NUL byte in it) goes byte for byte, or, replayed, as the same
 * object with "replay-name". The answer: SL_OK with *nfailed = the records marked,
 * or SL_EINVAL with every record marked.
 */
#include "broker/push/payload.h"

#include "common/assert.h"
#include "common/base64.h"
#include "common/error.h"
#include "storage/batch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_RECS_MAX   4u
#define FZ_ATTRS_MAX  6u
#define FZ_ATTR_KEY   32u
#define FZ_STREAM_MAX 16u
#define FZ_BODY_MAX   16384u

struct rd {
    const uint8_t *p;
    size_t n;
};

static const uint8_t *take(struct rd *r, size_t want, size_t *got)
{
    *got = want < r->n ? want : r->n;
    const uint8_t *p = r->p;
    r->p += *got;
    r->n -= *got;
    return p;
}

static uint64_t num(struct rd *r, size_t bytes)
{
    size_t got;
    const uint8_t *p = take(r, bytes, &got);
    uint64_t v = 0;
    for (size_t i = 0; i < got; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static const uint8_t *field(struct rd *r, size_t len_bytes, size_t mod, uint32_t *len)
{
    size_t want = (size_t)num(r, len_bytes), got;
    if (mod > 0) {
        want %= mod;
    }
    const uint8_t *p = take(r, want, &got);
    *len = (uint32_t)got;
    return p;
}

static bool is_text(const void *p, size_t n)
{
    json_t *j = json_stringn(n > 0 ? p : "", n);
    json_decref(j);
    return j != NULL;
}

static void check_sluice_value(const json_t *rec, const struct sl_push_record *r)
{
    const json_t *v = json_object_get(rec, "value");
    const char *enc = json_string_value(json_object_get(rec, "value_encoding"));
    SL_ASSERT(json_is_string(v) && enc != NULL);
    size_t n = json_string_length(v);
    if (strcmp(enc, "utf8") == 0) {
        SL_ASSERT(is_text(r->value, r->value_len));
        SL_ASSERT(n == r->value_len && memcmp(json_string_value(v), r->value, n) == 0);
        return;
    }
    SL_ASSERT(strcmp(enc, "base64") == 0 && !is_text(r->value, r->value_len));
    uint8_t *d = malloc(n / 4 * 3 + 3);
    size_t dn = 0;
    SL_ASSERT(d != NULL && sl_b64_decode(json_string_value(v), n, d, &dn) == SL_OK);
    SL_ASSERT(dn == r->value_len && (dn == 0 || memcmp(d, r->value, dn) == 0));
    free(d);
}

static const char *record_id_of(enum sl_push_format f, const json_t *rec)
{
    switch (f) {
    case SL_PUSH_FORMAT_SLUICE:
        return json_string_value(json_object_get(rec, "id"));
    case SL_PUSH_FORMAT_SQS:
        return json_string_value(json_object_get(rec, "messageId"));
    case SL_PUSH_FORMAT_KINESIS:
        return json_string_value(
            json_object_get(json_object_get(rec, "kinesis"), "sequenceNumber"));
    case SL_PUSH_FORMAT_SNS:
        return json_string_value(json_object_get(json_object_get(rec, "Sns"), "MessageId"));
    default:
        return NULL;
    }
}

/* Formats that POST one record per request (batch size 1 is enforced). */
static bool one_per_post(enum sl_push_format f)
{
    return f == SL_PUSH_FORMAT_EVENTBRIDGE || f == SL_PUSH_FORMAT_SNS_HTTP;
}

static void check_render(enum sl_push_format f, const struct sl_push_source *src,
                         const struct sl_push_record *recs, uint32_t n)
{
    char *out = NULL;
    size_t len = 0;
    int rc = sl_push_payload_render(f, src, recs, n, &out, &len);
    bool invalid =
        (one_per_post(f) && n > 1) || !is_text(src->stream, strlen(src->stream));
    SL_ASSERT(rc == (invalid ? SL_EINVAL : SL_OK));
    if (rc != SL_OK) {
        return;
    }
    SL_ASSERT(out != NULL && strlen(out) == len);
    json_error_t err;
    json_t *j = json_loadb(out, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    SL_ASSERT(j != NULL && json_is_object(j));
    if (f == SL_PUSH_FORMAT_SNS_HTTP) { /* one SNS Notification, as delivered over HTTP */
        char id[SL_PUSH_ID_MAX];
        sl_push_record_id(f, src->stream, &recs[0], id);
        const char *got = json_string_value(json_object_get(j, "MessageId"));
        SL_ASSERT(got != NULL && strcmp(got, id) == 0);
        SL_ASSERT(json_is_string(json_object_get(j, "Type")));
    } else if (f == SL_PUSH_FORMAT_EVENTBRIDGE) {
        bool nul = memchr(recs[0].value, '\0', recs[0].value_len) != NULL;
        json_t *v = nul ? NULL
                        : json_loadb((const char *)recs[0].value, recs[0].value_len,
                                     JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
        bool event = json_is_string(json_object_get(v, "detail-type")) &&
                     json_is_string(json_object_get(v, "source"));
        if (src->replay != NULL) { /* an event replayed: the same object, marked */
            const char *rn = json_string_value(json_object_get(j, "replay-name"));
            SL_ASSERT(rn != NULL && strcmp(rn, src->replay) == 0);
            SL_ASSERT(event || json_object_get(j, "detail") != NULL);
        } else {
            SL_ASSERT(event ? len == recs[0].value_len && memcmp(out, recs[0].value, len) == 0
                            : json_object_get(j, "detail") != NULL);
        }
        json_decref(v);
    } else {
        const json_t *list = json_object_get(j, f == SL_PUSH_FORMAT_SLUICE ? "records" : "Records");
        SL_ASSERT(json_array_size(list) == n);
        for (uint32_t i = 0; i < n; i++) {
            const json_t *rec = json_array_get(list, i);
            char id[SL_PUSH_ID_MAX];
            sl_push_record_id(f, src->stream, &recs[i], id);
            const char *got = record_id_of(f, rec);
            SL_ASSERT(got != NULL && strcmp(got, id) == 0);
            if (f == SL_PUSH_FORMAT_SLUICE) {
                check_sluice_value(rec, &recs[i]);
            }
        }
    }
    json_decref(j);
    free(out);
}

/* The answer with each 0x01 k replaced by the id of record k % n. */
static char *substitute(const uint8_t *p, size_t len, const struct sl_push_source *src,
                        enum sl_push_format f, const struct sl_push_record *recs, uint32_t n,
                        size_t *out_len)
{
    char *out = malloc(len * SL_PUSH_ID_MAX + 1), id[SL_PUSH_ID_MAX];
    SL_ASSERT(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == 0x01 && i + 1 < len) {
            sl_push_record_id(f, src->stream, &recs[p[++i] % n], id);
            memcpy(out + o, id, strlen(id));
            o += strlen(id);
        } else {
            out[o++] = (char)p[i];
        }
    }
    *out_len = o;
    return out;
}

static void check_answer(enum sl_push_format f, const struct sl_push_source *src,
                         const struct sl_push_record *recs, uint32_t n, const char *body,
                         size_t len)
{
    bool failed[FZ_RECS_MAX];
    uint32_t nf = UINT32_MAX;
    int rc = sl_push_response_failures(f, src, recs, n, body, len, failed, &nf);
    uint32_t marked = 0;
    for (uint32_t i = 0; i < n; i++) {
        marked += failed[i];
    }
    SL_ASSERT(rc == SL_OK || rc == SL_EINVAL);
    SL_ASSERT(nf == marked && (rc == SL_OK || marked == n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd r = {data, size};
    enum sl_push_format f = (enum sl_push_format)(num(&r, 1) % SL_PUSH_FORMAT_COUNT);
    uint8_t flags = (uint8_t)num(&r, 1);
    uint32_t n = 1 + (flags >> 2 & 3u), len;
    char stream[FZ_STREAM_MAX + 1] = "orders";
    if (flags & 1) {
        const uint8_t *s = field(&r, 1, FZ_STREAM_MAX, &len);
        memcpy(stream, s, len);
        stream[len] = '\0';
    }
    const struct sl_push_source src = {.stream = stream, .group = "workers",
                                       .replay = (flags & 16) ? "fz-replay" : NULL};
    static const char *const receipts[FZ_RECS_MAX] = {"r0", "r1", "r2", "r3"};
    struct sl_push_record recs[FZ_RECS_MAX];
    struct sl_attr attrs[FZ_RECS_MAX][FZ_ATTRS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        struct sl_push_record *x = &recs[i];
        *x = (struct sl_push_record){.receipt = receipts[i], .attrs = attrs[i]};
        x->shard = (uint32_t)num(&r, 1);
        x->seq = num(&r, 8);
        x->timestamp_ms = num(&r, 8);
        x->produced_ms = num(&r, 8);
        x->delivery_count = (uint32_t)num(&r, 1);
        x->key = field(&r, 1, 0, &x->key_len);
        x->value = field(&r, 2, 0, &x->value_len);
        x->attr_count = (uint32_t)(num(&r, 1) % (FZ_ATTRS_MAX + 1));
        for (uint32_t k = 0; k < x->attr_count; k++) {
            uint32_t kl, vl;
            const char *key = (const char *)field(&r, 1, FZ_ATTR_KEY, &kl);
            const char *value = (const char *)field(&r, 1, 0, &vl);
            attrs[i][k] =
                (struct sl_attr){.key = key, .key_len = kl, .value = value, .value_len = vl};
        }
    }
    check_render(f, &src, recs, one_per_post(f) ? 1 : n);
    if (one_per_post(f) && n > 1) {
        check_render(f, &src, recs, n);
    }
    size_t blen = r.n < FZ_BODY_MAX ? r.n : FZ_BODY_MAX;
    if (flags & 2) {
        size_t sl;
        char *body = substitute(r.p, blen, &src, f, recs, n, &sl);
        check_answer(f, &src, recs, n, body, sl);
        free(body);
    } else {
        check_answer(f, &src, recs, n, (const char *)r.p, blen);
    }
    return 0;
}
