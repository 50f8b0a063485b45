/* fuzz_kinesis.c - the Kinesis API's request decoders (broker/api/kinesis_codec.c)
 * on untrusted bytes: no broker needed.
 *
 * Input: the whole input is parsed as a JSON body (jansson, as kinesis.c
 * does) and, when it is an object, given to every decoder: PutRecords,
 * PutRecord, GetShardIterator, SubscribeToShard, GetRecords. The input is
 * also decoded as a CBOR body (kinesis_cbor.c) and, when that gives a
 * map, the result goes through the same decoders and is encoded back. The input as a C string (up
 * to its first NUL) also goes to the shard-iterator token decoder, base64, the 128-bit decimal
 * parser, the shard id parser and the ARN parser; its bytes to the JSON string writer. Checks
 * beyond "no crash, no ASan/UBSan report": a decoded PutRecords holds 1-500 records within the key,
 * record and request limits, its data re-encodes to base64 that decodes to the same bytes; a parsed
 * hash key formats back to a string that parses to the same value and lands in a shard whose range
 * holds it; a decoded token packs back to the same bytes; a JSON string the writer escaped parses
 * back to the same bytes (when they are UTF-8); every error message is NUL-terminated.
 */
#include "broker/api/kinesis_cbor.h"
#include "broker/api/kinesis_codec.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHY 256

static void check_why(const char *why)
{
    SL_ASSERT(memchr(why, '\0', WHY) != NULL);
}

static void check_put(const json_t *body, bool single)
{
    struct sl_kin_put p;
    bool ser = false;
    char why[WHY];
    memset(why, 'x', sizeof(why));
    why[WHY - 1] = '\0';
    int rc = sl_kin_decode_put(body, single, &p, &ser, why, sizeof(why));
    check_why(why);
    if (rc != SL_OK) {
        SL_ASSERT(p.entries == NULL && p.arena == NULL);
        return;
    }
    SL_ASSERT(p.n >= 1 && p.n <= SL_KIN_RECORDS_MAX && (!single || p.n == 1));
    SL_ASSERT(p.stream != NULL || p.stream_arn != NULL);
    SL_ASSERT(p.bytes <= SL_KIN_REQUEST_BYTES_MAX);
    for (uint32_t i = 0; i < p.n; i++) {
        const struct sl_kin_entry *e = &p.entries[i];
        SL_ASSERT(e->key_len >= 1 && e->key_len <= SL_KIN_KEY_BYTES_MAX);
        SL_ASSERT((size_t)e->data_len + e->key_len <= SL_KIN_RECORD_BYTES_MAX);
        char *b64 = malloc(sl_b64_len(e->data_len) + 1);
        uint8_t *back = malloc(e->data_len + 4);
        SL_ASSERT(b64 != NULL && back != NULL);
        sl_b64_encode(e->data, e->data_len, b64);
        size_t n = 0;
        rc = sl_b64_decode(b64, sl_b64_len(e->data_len), back, &n);
        SL_ASSERT(rc == SL_OK && n == e->data_len && memcmp(back, e->data, n) == 0);
        free(b64);
        free(back);
    }
    sl_kin_put_free(&p);
    sl_kin_put_free(&p); /* idempotent */
}

static void check_body(json_t *body);

static void check_cbor(const uint8_t *data, size_t size)
{
    json_t *body = NULL;
    if (sl_kin_cbor_to_json(data, size, &body) != SL_OK) {
        SL_ASSERT(body == NULL);
        return;
    }
    SL_ASSERT(json_is_object(body));
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL) {
        uint8_t *c = NULL;
        size_t n = 0;
        if (sl_kin_cbor_from_json(s, strlen(s), &c, &n) == SL_OK) {
            SL_ASSERT(c != NULL && n > 0);
        }
        free(c);
        free(s);
    }
    check_body(body);
}

/* The streaming decoder (kinesis_scan.c) on the raw text: never out of
 * bounds; when the tree decoder also accepts the text, both decode the same
 * records (the scanner is looser only in values it skips). */
static void check_scan(const uint8_t *data, size_t size, const json_t *body, bool single)
{
    struct sl_kin_put a, b;
    bool ser = false;
    char why[WHY];
    int rc = sl_kin_scan_put(data, size, single, &a, &ser, why, sizeof(why));
    check_why(why);
    if (rc != SL_OK) {
        SL_ASSERT(a.entries == NULL && a.arena == NULL);
        return;
    }
    SL_ASSERT(a.n >= 1 && a.n <= SL_KIN_RECORDS_MAX && a.bytes <= SL_KIN_REQUEST_BYTES_MAX);
    if (body != NULL && sl_kin_decode_put(body, single, &b, &ser, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(a.n == b.n && a.bytes == b.bytes);
        for (uint32_t i = 0; i < a.n; i++) {
            const struct sl_kin_entry *x = &a.entries[i], *y = &b.entries[i];
            SL_ASSERT(x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0);
            SL_ASSERT(x->data_len == y->data_len &&
                      (x->data_len == 0 || memcmp(x->data, y->data, x->data_len) == 0));
            SL_ASSERT(x->explicit_hash == y->explicit_hash);
        }
        sl_kin_put_free(&b);
    }
    sl_kin_put_free(&a);
}

static void check_json(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    check_scan(data, size, json_is_object(body) ? body : NULL, false);
    check_scan(data, size, json_is_object(body) ? body : NULL, true);
    check_body(body);
}

/* Takes body. */
static void check_body(json_t *body)
{
    if (!json_is_object(body)) {
        json_decref(body);
        return;
    }
    check_put(body, false);
    check_put(body, true);
    struct sl_kin_iter_req ir;
    char why[WHY] = "";
    if (sl_kin_decode_iter_req(body, &ir, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(ir.kind <= SL_KIN_ITER_LATEST);
        SL_ASSERT(ir.stream != NULL || ir.stream_arn != NULL);
    }
    check_why(why);
    const char *arn = NULL;
    if (sl_kin_decode_subscribe(body, &arn, &ir, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(arn != NULL && ir.kind <= SL_KIN_ITER_LATEST);
    }
    check_why(why);
    const char *token = NULL;
    uint32_t limit = 0;
    if (sl_kin_decode_get(body, &token, &limit, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(token != NULL && limit >= 1 && limit <= SL_KIN_GET_LIMIT_MAX);
    }
    check_why(why);
    json_decref(body);
}

static void check_u128(const char *s)
{
    sl_u128 v;
    if (sl_kin_u128_parse(s, &v) != SL_OK) {
        return;
    }
    char out[SL_KIN_DEC_U128_MAX + 1], again_s[SL_KIN_DEC_U128_MAX + 1];
    sl_kin_u128_format(v, out);
    sl_u128 again;
    SL_ASSERT(sl_kin_u128_parse(out, &again) == SL_OK && again == v);
    sl_kin_u128_format(again, again_s);
    SL_ASSERT(strcmp(out, again_s) == 0);
    uint32_t n = (uint32_t)(v % 1024) + 1; /* sl_kin_shard_of asserts the range holds v */
    uint32_t i = sl_kin_shard_of(v, n);
    SL_ASSERT(i < n && sl_kin_range_start(i, n) <= v && v <= sl_kin_range_end(i, n));
}

static void check_token(const char *s)
{
    struct sl_kin_token t;
    uint8_t raw[SL_KIN_TOKEN_RAW_MAX], again[SL_KIN_TOKEN_RAW_MAX];
    size_t covered = 0;
    const uint8_t *mac = NULL;
    if (sl_kin_token_unpack(s, &t, raw, &covered, &mac) != SL_OK) {
        return;
    }
    SL_ASSERT(mac == raw + covered && covered + SL_KIN_MAC_BYTES <= SL_KIN_TOKEN_RAW_MAX);
    size_t n = sl_kin_token_pack(&t, again);
    SL_ASSERT(n == covered && memcmp(raw, again, n) == 0);
}

static void check_strings(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    SL_ASSERT(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    check_u128(s);
    check_token(s);
    uint32_t shard;
    if (sl_kin_shard_parse(s, &shard) == SL_OK) {
        char id[SL_KIN_SHARD_ID_LEN + 1];
        sl_kin_shard_id(shard, id);
        uint32_t back = 0;
        SL_ASSERT(sl_kin_shard_parse(id, &back) == SL_OK && back == shard);
    }
    char name[SL_KIN_NAME_MAX + 1];
    const char *rest = NULL;
    if (sl_kin_arn_stream(s, name, &rest) == SL_OK) {
        SL_ASSERT(sl_kin_name_ok(name) && rest != NULL);
    }
    uint8_t *dec = malloc(size / 4 * 3 + 3);
    size_t n = 0;
    SL_ASSERT(dec != NULL);
    if (sl_b64_decode(s, strlen(s), dec, &n) == SL_OK) {
        SL_ASSERT(n <= strlen(s) / 4 * 3 + 2);
    }
    free(dec);
    free(s);
}

static void check_escape(const uint8_t *data, size_t size)
{
    struct sl_kin_buf b = {0};
    sl_kin_buf_json_str(&b, data, size);
    if (b.failed) {
        return;
    }
    json_t *orig = json_stringn((const char *)data, size); /* NULL: not UTF-8 */
    if (orig != NULL) {
        json_t *back = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        SL_ASSERT(back != NULL && json_equal(orig, back));
        json_decref(back);
        json_decref(orig);
    }
    sl_kin_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_json(data, size);
    check_cbor(data, size);
    check_strings(data, size);
    check_escape(data, size);
    return 0;
}
