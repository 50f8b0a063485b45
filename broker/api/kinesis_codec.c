/* kinesis_codec.c - the Kinesis API's wire pieces (see kinesis_codec.h):
 * pure functions over bytes the client sent, so every one of them is held
 * to a limit before it is trusted, and fuzzed (tests/fuzz/fuzz_kinesis.c).
 *
 * Formats:
 *  - Data is standard base64 (padding optional, nothing else tolerated).
 *  - Hash keys are decimal strings of 128-bit unsigned integers.
 *  - A shard iterator is base64 of (little-endian)
 *      u8 version (1) | u8 kind | u8 name_len | u8 0 | u32 shard |
 *      u64 value | u64 issued_ms | u64 created_ms | u64 boot |
 *      name_len bytes of stream name | 16-byte MAC
 *    the MAC (HMAC-SHA256, truncated; kinesis_crypto.c) covers everything
 *    before it.
 * Threading: none; reentrant. Ownership: per pointer in the header.
 */
#include "broker/api/kinesis_codec.h"

#include "common/assert.h"
#include "common/base64.h"
#include "common/bytes.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_VERSION 1u
#define U128_MAX      (~(sl_u128)0)

/* ---- 128-bit hash keys ------------------------------------------------------ */

int sl_kin_u128_parse(const char *s, sl_u128 *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > SL_KIN_DEC_U128_MAX) {
        return SL_EINVAL;
    }
    sl_u128 v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return SL_EINVAL;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (U128_MAX - d) / 10) {
            return SL_EINVAL; /* >= 2^128 */
        }
        v = v * 10 + d;
    }
    *out = v;
    return SL_OK;
}

void sl_kin_u128_format(sl_u128 v, char *out)
{
    char tmp[SL_KIN_DEC_U128_MAX + 1];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (unsigned)(v % 10));
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\0';
}

/* 2^128 = n * q + r. */
static void split(uint32_t n, sl_u128 *q, sl_u128 *r)
{
    SL_ASSERT(n > 0);
    *q = U128_MAX / n;
    *r = U128_MAX % n + 1;
    if (*r == n) {
        (*q)++;
        *r = 0;
    }
}

sl_u128 sl_kin_range_start(uint32_t i, uint32_t n)
{
    SL_ASSERT(i <= n);
    if (i == 0) {
        return 0;
    }
    sl_u128 q, r;
    split(n, &q, &r);
    /* floor(i * 2^128 / n) = i*q + floor(i*r / n); i*r < n^2 fits easily */
    return (sl_u128)i * q + (sl_u128)i * r / n;
}

sl_u128 sl_kin_range_end(uint32_t i, uint32_t n)
{
    SL_ASSERT(i < n);
    return i + 1 == n ? U128_MAX : sl_kin_range_start(i + 1, n) - 1;
}

uint32_t sl_kin_shard_of(sl_u128 h, uint32_t n)
{
    SL_ASSERT(n > 0);
    /* floor(h * n / 2^128): the high part of a 128 x 32 product; the true
     * shard is that one or the next (the starts are rounded down). */
    sl_u128 lo = (sl_u128)(uint64_t)h * n;
    sl_u128 hi = (sl_u128)(uint64_t)(h >> 64) * n + (lo >> 64);
    uint32_t i = (uint32_t)(hi >> 64);
    if (i + 1 < n && h >= sl_kin_range_start(i + 1, n)) {
        i++;
    }
    SL_ASSERT(i < n && h >= sl_kin_range_start(i, n) && h <= sl_kin_range_end(i, n));
    return i;
}

sl_u128 sl_kin_u128_be(const uint8_t *d16)
{
    sl_u128 v = 0;
    for (int i = 0; i < 16; i++) {
        v = v << 8 | d16[i];
    }
    return v;
}

/* ---- names ------------------------------------------------------------- */

void sl_kin_shard_id(uint32_t shard, char *out)
{
    snprintf(out, SL_KIN_SHARD_ID_LEN + 1, "shardId-%012u", shard);
}

int sl_kin_shard_parse(const char *s, uint32_t *out)
{
    static const char prefix[] = "shardId-";
    if (strncmp(s, prefix, sizeof(prefix) - 1) != 0) {
        return SL_EINVAL;
    }
    s += sizeof(prefix) - 1;
    size_t n = strlen(s);
    uint64_t v = 0;
    if (n == 0 || n > 12) {
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return SL_EINVAL;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX) {
        return SL_EINVAL;
    }
    *out = (uint32_t)v;
    return SL_OK;
}

bool sl_kin_name_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return n >= 1 && n <= SL_KIN_NAME_MAX;
}

int sl_kin_arn_stream(const char *arn, char *name, const char **rest)
{
    static const char prefix[] = "arn:aws:kinesis:";
    if (strncmp(arn, prefix, sizeof(prefix) - 1) != 0) {
        return SL_EINVAL;
    }
    const char *p = arn + sizeof(prefix) - 1;
    for (int colons = 0; colons < 2; colons++) { /* region, account */
        p = strchr(p, ':');
        if (p == NULL) {
            return SL_EINVAL;
        }
        p++;
    }
    if (strncmp(p, "stream/", 7) != 0) {
        return SL_EINVAL;
    }
    p += 7;
    size_t n = strcspn(p, "/");
    if (n == 0 || n > SL_KIN_NAME_MAX || (rest == NULL && p[n] != '\0')) {
        return SL_EINVAL;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    if (rest != NULL) {
        *rest = p + n;
    }
    return sl_kin_name_ok(name) ? SL_OK : SL_EINVAL;
}

/* ---- requests ---------------------------------------------------------- */

/* An optional string member: SL_OK with *out NULL when absent. */
static int opt_str(const json_t *o, const char *key, const char **out, char *why, size_t wl)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return SL_OK;
    }
    if (!json_is_string(v)) {
        snprintf(why, wl, "%s must be a string", key);
        return SL_EPROTO;
    }
    *out = json_string_value(v);
    return SL_OK;
}

static int stream_of(const json_t *o, const char **name, const char **arn, char *why, size_t wl)
{
    int rc = opt_str(o, "StreamName", name, why, wl);
    if (rc == SL_OK) {
        rc = opt_str(o, "StreamARN", arn, why, wl);
    }
    if (rc == SL_OK && *name == NULL && *arn == NULL) {
        snprintf(why, wl, "StreamName or StreamARN is required");
        rc = SL_EINVAL;
    }
    return rc;
}

/* Checks one record's fields; returns the decoded data's upper bound. */
static int check_entry(const json_t *r, uint32_t i, const char **b64, size_t *b64_len,
                       struct sl_kin_entry *e, bool *ser, char *why, size_t wl)
{
    const json_t *d = json_object_get(r, "Data");
    const json_t *k = json_object_get(r, "PartitionKey");
    if (!json_is_object(r) || !json_is_string(d) || !json_is_string(k)) {
        *ser = !json_is_object(r) || (d != NULL && !json_is_string(d)) ||
               (k != NULL && !json_is_string(k));
        snprintf(why, wl, "record %u: Data and PartitionKey (strings) are required", i);
        return *ser ? SL_EPROTO : SL_EINVAL;
    }
    *b64 = json_string_value(d);
    *b64_len = json_string_length(d);
    e->key = json_string_value(k);
    size_t kl = json_string_length(k);
    if (kl == 0 || kl > SL_KIN_KEY_BYTES_MAX || memchr(e->key, '\0', kl) != NULL) {
        snprintf(why, wl, "record %u: PartitionKey must be 1-%u bytes", i, SL_KIN_KEY_BYTES_MAX);
        return SL_EINVAL;
    }
    e->key_len = (uint32_t)kl;
    const char *ehk = NULL;
    int rc = opt_str(r, "ExplicitHashKey", &ehk, why, wl);
    if (rc != SL_OK) {
        *ser = true;
        return rc;
    }
    if (ehk != NULL && sl_kin_u128_parse(ehk, &e->hash) != SL_OK) {
        snprintf(why, wl, "record %u: ExplicitHashKey must be a decimal integer below 2^128", i);
        return SL_EINVAL;
    }
    e->explicit_hash = ehk != NULL;
    if (*b64_len / 4 * 3 > SL_KIN_RECORD_BYTES_MAX + 3) {
        snprintf(why, wl, "record %u: data and partition key exceed the 1 MiB (%u bytes) limit", i,
                 SL_KIN_RECORD_BYTES_MAX);
        return SL_ETOOBIG;
    }
    return SL_OK;
}

/* Decodes each record's base64 into the arena. */
static int fill_entries(const json_t *recs, struct sl_kin_put *p, bool *ser, char *why, size_t wl)
{
    size_t arena_len = 0;
    const char *b64[SL_KIN_RECORDS_MAX];
    size_t b64_len[SL_KIN_RECORDS_MAX];
    for (uint32_t i = 0; i < p->n; i++) {
        int rc = check_entry(json_array_get(recs, i), i, &b64[i], &b64_len[i], &p->entries[i], ser,
                             why, wl);
        if (rc != SL_OK) {
            return rc;
        }
        arena_len += b64_len[i] / 4 * 3 + 3;
    }
    p->arena = malloc(arena_len + 1);
    if (p->arena == NULL) {
        snprintf(why, wl, "out of memory");
        return SL_ENOMEM;
    }
    size_t at = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        size_t len = 0;
        if (sl_b64_decode(b64[i], b64_len[i], p->arena + at, &len) != SL_OK) {
            *ser = true;
            snprintf(why, wl, "record %u: Data is not valid base64", i);
            return SL_EPROTO;
        }
        struct sl_kin_entry *e = &p->entries[i];
        if (len + e->key_len > SL_KIN_RECORD_BYTES_MAX) {
            snprintf(why, wl,
                     "record %u: data and partition key exceed the 1 MiB (%u bytes) "
                     "limit",
                     i, SL_KIN_RECORD_BYTES_MAX);
            return SL_ETOOBIG;
        }
        e->data = p->arena + at;
        e->data_len = (uint32_t)len;
        at += len;
        p->bytes += len + e->key_len;
    }
    if (p->bytes > SL_KIN_REQUEST_BYTES_MAX) {
        snprintf(why, wl, "the records exceed the 5 MiB (%u bytes) limit of one request",
                 SL_KIN_REQUEST_BYTES_MAX);
        return SL_ETOOBIG;
    }
    return SL_OK;
}

int sl_kin_decode_put(const json_t *body, bool single, struct sl_kin_put *out, bool *serialization,
                      char *why, size_t why_len)
{
    *out = (struct sl_kin_put){0};
    *serialization = false;
    int rc = stream_of(body, &out->stream, &out->stream_arn, why, why_len);
    if (rc != SL_OK) {
        *serialization = rc == SL_EPROTO;
        return rc;
    }
    json_t *one = NULL;
    const json_t *recs = single ? (one = json_array()) : json_object_get(body, "Records");
    if (single && one != NULL) {
        json_array_append(one, (json_t *)body);
    }
    if (!json_is_array(recs)) {
        json_decref(one);
        *serialization = recs != NULL;
        snprintf(why, why_len, single ? "out of memory" : "Records (an array) is required");
        return single ? SL_ENOMEM : (recs != NULL ? SL_EPROTO : SL_EINVAL);
    }
    size_t n = json_array_size(recs);
    if (n == 0 || n > SL_KIN_RECORDS_MAX) {
        snprintf(why, why_len, "Records must hold 1-%u records", SL_KIN_RECORDS_MAX);
        return SL_EINVAL;
    }
    out->n = (uint32_t)n;
    out->entries = calloc(n, sizeof(*out->entries));
    rc = out->entries == NULL ? SL_ENOMEM : fill_entries(recs, out, serialization, why, why_len);
    json_decref(one); /* body stays alive: the entries borrow its strings */
    if (rc != SL_OK) {
        if (rc == SL_ENOMEM) {
            snprintf(why, why_len, "out of memory");
        }
        sl_kin_put_free(out);
    }
    return rc;
}

void sl_kin_put_free(struct sl_kin_put *p)
{
    free(p->entries);
    free(p->arena);
    p->entries = NULL;
    p->arena = NULL;
    p->n = 0;
}

/* A sequence number as we print them: plain decimal of a u64. */
static int parse_seq(const char *s, uint64_t *out)
{
    sl_u128 v;
    if (s == NULL || sl_kin_u128_parse(s, &v) != SL_OK || v > UINT64_MAX) {
        return SL_EINVAL;
    }
    *out = (uint64_t)v;
    return SL_OK;
}

/* The position of `type` from obj's sequence member `seq_key` or Timestamp. */
static int iter_position(const json_t *body, const char *type, const char *seq_key,
                         struct sl_kin_iter_req *out, char *why, size_t wl)
{
    const char *seq = NULL;
    if (opt_str(body, seq_key, &seq, why, wl) != SL_OK) {
        return SL_EPROTO;
    }
    bool after = strcmp(type, "AFTER_SEQUENCE_NUMBER") == 0;
    if (strcmp(type, "TRIM_HORIZON") == 0) {
        out->kind = SL_KIN_ITER_TRIM;
    } else if (strcmp(type, "LATEST") == 0) {
        out->kind = SL_KIN_ITER_LATEST;
    } else if (after || strcmp(type, "AT_SEQUENCE_NUMBER") == 0) {
        if (parse_seq(seq, &out->value) != SL_OK || (after && out->value == UINT64_MAX)) {
            snprintf(why, wl, "%s must be a sequence number of the shard", seq_key);
            return SL_EINVAL;
        }
        out->kind = SL_KIN_ITER_SEQ;
        out->value += after ? 1 : 0;
    } else if (strcmp(type, "AT_TIMESTAMP") == 0) {
        const json_t *ts = json_object_get(body, "Timestamp");
        double s = json_is_number(ts) ? json_number_value(ts) : -1.0;
        if (!(s >= 0.0 && s < 1e13)) { /* epoch seconds, fractional */
            snprintf(why, wl, "AT_TIMESTAMP needs Timestamp (epoch seconds)");
            return SL_EINVAL;
        }
        out->kind = SL_KIN_ITER_TIME;
        out->value = (uint64_t)(s * 1000.0);
    } else {
        snprintf(why, wl,
                 "ShardIteratorType must be AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, "
                 "TRIM_HORIZON, LATEST or AT_TIMESTAMP");
        return SL_EINVAL;
    }
    return SL_OK;
}

int sl_kin_decode_iter_req(const json_t *body, struct sl_kin_iter_req *out, char *why,
                           size_t why_len)
{
    *out = (struct sl_kin_iter_req){0};
    const char *shard = NULL, *type = NULL;
    int rc = stream_of(body, &out->stream, &out->stream_arn, why, why_len);
    if (rc == SL_OK) {
        rc = opt_str(body, "ShardId", &shard, why, why_len);
    }
    if (rc == SL_OK) {
        rc = opt_str(body, "ShardIteratorType", &type, why, why_len);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (shard == NULL || sl_kin_shard_parse(shard, &out->shard) != SL_OK) {
        snprintf(why, why_len, "ShardId must be a shard id (shardId-000000000000)");
        return SL_EINVAL;
    }
    if (type == NULL) {
        snprintf(why, why_len, "ShardIteratorType is required");
        return SL_EINVAL;
    }
    return iter_position(body, type, "StartingSequenceNumber", out, why, why_len);
}

int sl_kin_decode_subscribe(const json_t *body, const char **consumer_arn,
                            struct sl_kin_iter_req *out, char *why, size_t why_len)
{
    *out = (struct sl_kin_iter_req){0};
    const char *shard = NULL, *type = NULL;
    const json_t *pos = json_object_get(body, "StartingPosition");
    int rc = opt_str(body, "ConsumerARN", consumer_arn, why, why_len);
    if (rc == SL_OK) {
        rc = opt_str(body, "ShardId", &shard, why, why_len);
    }
    if (rc == SL_OK && pos != NULL && !json_is_object(pos)) {
        snprintf(why, why_len, "StartingPosition must be an object");
        rc = SL_EPROTO;
    }
    if (rc == SL_OK) {
        rc = opt_str(pos, "Type", &type, why, why_len);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (*consumer_arn == NULL || type == NULL) {
        snprintf(why, why_len, "ConsumerARN and StartingPosition.Type are required");
        return SL_EINVAL;
    }
    if (shard == NULL || sl_kin_shard_parse(shard, &out->shard) != SL_OK) {
        snprintf(why, why_len, "ShardId must be a shard id (shardId-000000000000)");
        return SL_EINVAL;
    }
    return iter_position(pos, type, "SequenceNumber", out, why, why_len);
}

size_t sl_kin_token_pack(const struct sl_kin_token *t, uint8_t *raw)
{
    size_t nl = strlen(t->stream);
    SL_ASSERT(nl <= SL_KIN_NAME_MAX && t->kind <= SL_KIN_ITER_TIME);
    raw[0] = TOKEN_VERSION;
    raw[1] = (uint8_t)t->kind;
    raw[2] = (uint8_t)nl;
    raw[3] = 0;
    sl_put_u32(raw + 4, t->shard);
    sl_put_u64(raw + 8, t->value);
    sl_put_u64(raw + 16, t->issued_ms);
    sl_put_u64(raw + 24, t->created_ms);
    sl_put_u64(raw + 32, t->boot);
    memcpy(raw + SL_KIN_TOKEN_HEAD, t->stream, nl);
    return SL_KIN_TOKEN_HEAD + nl;
}

int sl_kin_token_unpack(const char *b64, struct sl_kin_token *t, uint8_t *raw, size_t *covered,
                        const uint8_t **mac)
{
    size_t n = strlen(b64), len = 0;
    uint8_t tmp[SL_KIN_TOKEN_BYTES_MAX / 4 * 3 + 3];
    if (n > SL_KIN_TOKEN_BYTES_MAX || sl_b64_decode(b64, n, tmp, &len) != SL_OK ||
        len < SL_KIN_TOKEN_HEAD + SL_KIN_MAC_BYTES || len > SL_KIN_TOKEN_RAW_MAX) {
        return SL_EPROTO;
    }
    memcpy(raw, tmp, len);
    size_t nl = raw[2];
    if (raw[0] != TOKEN_VERSION || raw[1] > SL_KIN_ITER_TIME || raw[3] != 0 ||
        nl > SL_KIN_NAME_MAX || len != SL_KIN_TOKEN_HEAD + nl + SL_KIN_MAC_BYTES) {
        return SL_EPROTO;
    }
    *t = (struct sl_kin_token){.kind = raw[1],
                               .shard = sl_get_u32(raw + 4),
                               .value = sl_get_u64(raw + 8),
                               .issued_ms = sl_get_u64(raw + 16),
                               .created_ms = sl_get_u64(raw + 24),
                               .boot = sl_get_u64(raw + 32)};
    memcpy(t->stream, raw + SL_KIN_TOKEN_HEAD, nl);
    t->stream[nl] = '\0';
    if (strlen(t->stream) != nl || !sl_kin_name_ok(t->stream)) {
        return SL_EPROTO; /* a NUL or a byte no stream name holds */
    }
    *covered = SL_KIN_TOKEN_HEAD + nl;
    *mac = raw + *covered;
    return SL_OK;
}

int sl_kin_decode_get(const json_t *body, const char **token, uint32_t *limit, char *why,
                      size_t why_len)
{
    int rc = opt_str(body, "ShardIterator", token, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    if (*token == NULL || **token == '\0') {
        snprintf(why, why_len, "ShardIterator is required");
        return SL_EINVAL;
    }
    const json_t *l = json_object_get(body, "Limit");
    *limit = SL_KIN_GET_LIMIT_MAX;
    if (l != NULL && !json_is_null(l)) {
        if (!json_is_integer(l)) {
            snprintf(why, why_len, "Limit must be an integer");
            return SL_EPROTO;
        }
        json_int_t v = json_integer_value(l);
        if (v < 1 || v > SL_KIN_GET_LIMIT_MAX) {
            snprintf(why, why_len, "Limit must be 1-%u", SL_KIN_GET_LIMIT_MAX);
            return SL_EINVAL;
        }
        *limit = (uint32_t)v;
    }
    return SL_OK;
}

/* ---- output ------------------------------------------------------------ */

void sl_kin_buf_reserve(struct sl_kin_buf *b, size_t more)
{
    if (b->failed || b->cap - b->len > more) {
        return;
    }
    size_t cap = b->cap > 0 ? b->cap : 4096;
    while (cap - b->len <= more) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void sl_kin_buf_put(struct sl_kin_buf *b, const void *s, size_t n)
{
    sl_kin_buf_reserve(b, n);
    if (!b->failed) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

void sl_kin_buf_str(struct sl_kin_buf *b, const char *s)
{
    sl_kin_buf_put(b, s, strlen(s));
}

void sl_kin_buf_fmt(struct sl_kin_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    SL_ASSERT(n >= 0 && (size_t)n < sizeof(tmp)); /* short, fixed formats only */
    sl_kin_buf_put(b, tmp, (size_t)n);
}

void sl_kin_buf_json_str(struct sl_kin_buf *b, const void *s, size_t n)
{
    const uint8_t *p = s;
    sl_kin_buf_reserve(b, n * 6 + 2);
    if (b->failed) {
        return;
    }
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += snprintf(o, 7, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

void sl_kin_buf_b64(struct sl_kin_buf *b, const uint8_t *s, size_t n)
{
    size_t m = sl_b64_len(n);
    sl_kin_buf_reserve(b, m);
    if (!b->failed) {
        sl_b64_encode(s, n, b->p + b->len);
        b->len += m;
        b->p[b->len] = '\0';
    }
}

void sl_kin_buf_free(struct sl_kin_buf *b)
{
    free(b->p);
    *b = (struct sl_kin_buf){0};
}
