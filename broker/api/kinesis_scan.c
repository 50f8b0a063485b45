/* kinesis_scan.c - PutRecord(s) bodies decoded in one pass over the JSON
 * text, without a parse tree: the hot path of the Kinesis API.
 *
 * Why: with jansson, a 500-record PutRecords (~700 KB of JSON) became a
 * node per value and a copy per string, ~40% of the broker's CPU under
 * load. Here, in one pass over the body, each record's Data is
 * base64-decoded straight into the request's arena, its PartitionKey
 * unescaped next to it; the
 * arena is one allocation of at most the body's size (decoded data is 3/4
 * of its base64, an unescaped string no longer than its JSON form).
 *
 * What is accepted is JSON (RFC 8259) with the same answers as the tree
 * decoder (sl_kin_decode_put): unknown members are skipped (any JSON value,
 * nesting bounded by SCAN_DEPTH_MAX; a skipped number or literal is checked
 * for its characters only), a member we read given twice or of the wrong
 * type is a SerializationException, missing fields and limits are
 * InvalidArgumentException. Strings are checked for control characters and
 * valid escapes; \uXXXX (with surrogate pairs) becomes UTF-8.
 *
 * Threading: any; no state. Ownership: out->entries and out->arena are
 * owned by `out` (sl_kin_put_free); every string in `out`, stream names
 * included, points into the arena, never into the body.
 */
#include "broker/api/kinesis_codec.h"

#include "common/assert.h"
#include "common/base64.h"
#include "common/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_DEPTH_MAX 64u /* nesting of a skipped value */

struct scan {
    const char *p;
    const char *end;
    struct sl_kin_put *put; /* what is being filled */
    uint8_t *arena;         /* next free byte */
    char *why;
    size_t wl;
    bool ser; /* the error is a SerializationException */
};

/* A string as found in the body: its raw bytes between the quotes. */
struct raw_str {
    const char *p;
    size_t len;
    bool escaped; /* holds a backslash */
};

static int bad(struct scan *s, bool ser, int rc, const char *what)
{
    s->ser = ser;
    snprintf(s->why, s->wl, "%s", what);
    return rc;
}

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static bool eat(struct scan *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return SL_EPROTO;
        }
        *v = *v << 4 | (uint32_t)d;
    }
    return SL_OK;
}

/* A JSON string at s->p (the opening quote next): its raw extent. Found
 * with memchr (the body's base64 is most of its bytes); control characters
 * are refused where a string is used (unescape; base64 decoding refuses
 * them in Data), not in the strings of skipped members. */
static int string_raw(struct scan *s, struct raw_str *out)
{
    if (!eat(s, '"')) {
        return bad(s, true, SL_EPROTO, "a string was expected");
    }
    *out = (struct raw_str){.p = s->p};
    const char *from = s->p;
    for (;;) {
        const char *q = memchr(from, '"', (size_t)(s->end - from));
        if (q == NULL) {
            return bad(s, true, SL_EPROTO, "the body ends inside a string");
        }
        const char *bs = memchr(from, '\\', (size_t)(q - from));
        if (bs == NULL) {
            out->len = (size_t)(q - out->p);
            s->p = q + 1;
            return SL_OK;
        }
        out->escaped = true;
        if (bs + 1 == s->end) {
            return bad(s, true, SL_EPROTO, "the body ends inside a string");
        }
        from = bs + 2; /* the escaped character (maybe a quote) is not the end */
    }
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes `r` into the arena, NUL-terminated; *len without the NUL. The
 * result is never longer than the raw text (\uXXXX: 6 bytes -> at most 3,
 * a surrogate pair: 12 -> 4). */
static int unescape(struct scan *s, const struct raw_str *r, const char **out, size_t *len)
{
    uint8_t *o = s->arena;
    for (size_t i = 0; i < r->len; i++) {
        char c = r->p[i];
        if ((unsigned char)c < 0x20) {
            return bad(s, true, SL_EPROTO, "a control character inside a JSON string");
        }
        if (c != '\\') {
            *o++ = (uint8_t)c;
            continue;
        }
        char e = r->p[++i]; /* string_raw: a backslash is never last */
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e != 'u' ? strchr(from, e) : NULL;
        if (k != NULL && e != '\0') {
            *o++ = (uint8_t)to[k - from];
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || i + 4 >= r->len + 0 || hex4(r->p + i + 1, &cp) != SL_OK) {
            return bad(s, true, SL_EPROTO, "a bad escape in a JSON string");
        }
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00) { /* a high surrogate: its low half follows */
            if (i + 6 >= r->len || r->p[i + 1] != '\\' || r->p[i + 2] != 'u' ||
                hex4(r->p + i + 3, &lo) != SL_OK || lo < 0xDC00 || lo >= 0xE000) {
                return bad(s, true, SL_EPROTO, "an unpaired surrogate in a JSON string");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        } else if (cp >= 0xDC00 && cp < 0xE000) {
            return bad(s, true, SL_EPROTO, "an unpaired surrogate in a JSON string");
        }
        o += put_utf8(o, cp);
    }
    *len = (size_t)(o - s->arena);
    *o++ = '\0';
    *out = (const char *)s->arena;
    s->arena = o;
    return SL_OK;
}

/* Skips one JSON value of any kind (bounded nesting, no recursion). */
static int skip_value(struct scan *s)
{
    char stack[SCAN_DEPTH_MAX];
    uint32_t depth = 0;
    do {
        ws(s);
        if (s->p == s->end) {
            return bad(s, true, SL_EPROTO, "the body ends inside a value");
        }
        char c = *s->p;
        struct raw_str r;
        if (c == '"') {
            if (string_raw(s, &r) != SL_OK) {
                return SL_EPROTO;
            }
        } else if (c == '{' || c == '[') {
            if (depth == SCAN_DEPTH_MAX) {
                return bad(s, true, SL_EPROTO, "JSON nested too deeply");
            }
            stack[depth++] = c == '{' ? '}' : ']';
            s->p++;
            if (eat(s, stack[depth - 1])) {
                depth--;
            } else if (c == '{' && (string_raw(s, &r) != SL_OK || !eat(s, ':'))) {
                return bad(s, true, SL_EPROTO, "a member name and ':' were expected");
            } else {
                continue; /* the first value inside */
            }
        } else {
            const char *t = s->p; /* a number or a literal: its characters */
            while (s->p < s->end && strchr("+-.0123456789eEtruefalsn", *s->p) != NULL) {
                s->p++;
            }
            if (s->p == t) {
                return bad(s, true, SL_EPROTO, "a JSON value was expected");
            }
        }
        /* after a value: a comma (and for objects the next name) or closers */
        while (depth > 0) {
            if (eat(s, ',')) {
                if (stack[depth - 1] == '}' && (string_raw(s, &r) != SL_OK || !eat(s, ':'))) {
                    return bad(s, true, SL_EPROTO, "a member name and ':' were expected");
                }
                break;
            }
            if (!eat(s, stack[depth - 1])) {
                return bad(s, true, SL_EPROTO, "',' or a closing bracket was expected");
            }
            depth--;
        }
    } while (depth > 0);
    return SL_OK;
}

/* The members of one record (or of a PutRecord body) we read. */
struct rec_raw {
    struct raw_str data, key, ehk;
    bool has_data, has_key, has_ehk;
};

/* A member we read: a string, or null where null_ok (then absent, as the
 * tree decoder takes an optional member). */
static int member_str(struct scan *s, struct raw_str *v, bool *has, bool null_ok,
                      const char *name)
{
    if (*has) {
        snprintf(s->why, s->wl, "%s given twice", name);
        s->ser = true;
        return SL_EPROTO;
    }
    *has = true;
    ws(s);
    if (null_ok && s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
        s->p += 4;
        *has = false;
        return SL_OK;
    }
    if (s->p < s->end && *s->p != '"') {
        snprintf(s->why, s->wl, "%s must be a string", name);
        s->ser = true;
        return SL_EPROTO;
    }
    return string_raw(s, v);
}

static bool name_is(const struct raw_str *n, const char *lit)
{
    return !n->escaped && n->len == strlen(lit) && memcmp(n->p, lit, n->len) == 0;
}

struct top {
    struct rec_raw one; /* PutRecord */
    struct raw_str stream, arn;
    bool has_stream, has_arn;
    bool has_records;
};

static int records(struct scan *s, struct sl_kin_put *p);

/* One member of the top-level object or of a record. */
static int member(struct scan *s, struct top *t, struct rec_raw *r, bool single_top)
{
    struct raw_str n;
    if (string_raw(s, &n) != SL_OK || !eat(s, ':')) {
        return bad(s, true, SL_EPROTO, "a member name and ':' were expected");
    }
    if (r != NULL && name_is(&n, "Data")) {
        return member_str(s, &r->data, &r->has_data, false, "Data");
    }
    if (r != NULL && name_is(&n, "PartitionKey")) {
        return member_str(s, &r->key, &r->has_key, false, "PartitionKey");
    }
    if (r != NULL && name_is(&n, "ExplicitHashKey")) {
        return member_str(s, &r->ehk, &r->has_ehk, true, "ExplicitHashKey");
    }
    if (t != NULL && name_is(&n, "StreamName")) {
        return member_str(s, &t->stream, &t->has_stream, true, "StreamName");
    }
    if (t != NULL && name_is(&n, "StreamARN")) {
        return member_str(s, &t->arn, &t->has_arn, true, "StreamARN");
    }
    if (t != NULL && !single_top && name_is(&n, "Records")) {
        if (t->has_records) {
            return bad(s, true, SL_EPROTO, "Records given twice");
        }
        t->has_records = true;
        return records(s, s->put);
    }
    return skip_value(s);
}

/* An object's members until its '}'. */
static int object(struct scan *s, struct top *t, struct rec_raw *r, bool single_top)
{
    if (!eat(s, '{')) {
        return bad(s, true, SL_EPROTO, "a JSON object was expected");
    }
    if (eat(s, '}')) {
        return SL_OK;
    }
    do {
        int rc = member(s, t, r, single_top);
        if (rc != SL_OK) {
            return rc;
        }
    } while (eat(s, ','));
    return eat(s, '}') ? SL_OK : bad(s, true, SL_EPROTO, "',' or '}' was expected");
}

/* One record: its key unescaped, its data decoded, into the arena. */
static int record(struct scan *s, struct sl_kin_put *p, uint32_t i, const struct rec_raw *r)
{
    struct sl_kin_entry *e = &p->entries[i];
    if (!r->has_data || !r->has_key) {
        snprintf(s->why, s->wl, "record %u: Data and PartitionKey (strings) are required", i);
        return SL_EINVAL;
    }
    size_t kl = 0;
    int rc = unescape(s, &r->key, &e->key, &kl);
    if (rc != SL_OK) {
        return rc;
    }
    if (kl == 0 || kl > SL_KIN_KEY_BYTES_MAX || memchr(e->key, '\0', kl) != NULL) {
        snprintf(s->why, s->wl, "record %u: PartitionKey must be 1-%u bytes", i,
                 SL_KIN_KEY_BYTES_MAX);
        return SL_EINVAL;
    }
    e->key_len = (uint32_t)kl;
    if (r->has_ehk) {
        const char *ehk;
        size_t hl;
        if (unescape(s, &r->ehk, &ehk, &hl) != SL_OK ||
            sl_kin_u128_parse(ehk, &e->hash) != SL_OK) {
            s->ser = false;
            snprintf(s->why, s->wl,
                     "record %u: ExplicitHashKey must be a decimal integer below 2^128", i);
            return SL_EINVAL;
        }
        e->explicit_hash = true;
    }
    const char *b64 = r->data.p;
    size_t b64_len = r->data.len;
    if (r->data.escaped) { /* e.g. "\/" from an encoder that escapes slashes */
        rc = unescape(s, &r->data, &b64, &b64_len);
        if (rc != SL_OK) {
            return rc;
        }
        s->arena = (uint8_t *)b64; /* decoded in place: output trails input */
    }
    if (b64_len / 4 * 3 > SL_KIN_RECORD_BYTES_MAX + 3) {
        snprintf(s->why, s->wl, "record %u: data and partition key exceed the 1 MiB (%u bytes) limit",
                 i, SL_KIN_RECORD_BYTES_MAX);
        return SL_ETOOBIG;
    }
    size_t len = 0;
    if (sl_b64_decode(b64, b64_len, s->arena, &len) != SL_OK) {
        s->ser = true;
        snprintf(s->why, s->wl, "record %u: Data is not valid base64", i);
        return SL_EPROTO;
    }
    if (len + e->key_len > SL_KIN_RECORD_BYTES_MAX) {
        snprintf(s->why, s->wl, "record %u: data and partition key exceed the 1 MiB (%u bytes) limit",
                 i, SL_KIN_RECORD_BYTES_MAX);
        return SL_ETOOBIG;
    }
    e->data = s->arena;
    e->data_len = (uint32_t)len;
    s->arena += len;
    p->bytes += len + e->key_len;
    return SL_OK;
}

/* The Records array, each record read and decoded as it comes (entries for
 * SL_KIN_RECORDS_MAX are allocated up front: 500 small structs). */
static int records(struct scan *s, struct sl_kin_put *p)
{
    if (!eat(s, '[')) {
        return bad(s, true, SL_EPROTO, "Records must be an array");
    }
    p->entries = calloc(SL_KIN_RECORDS_MAX, sizeof(*p->entries));
    if (p->entries == NULL) {
        return bad(s, false, SL_ENOMEM, "out of memory");
    }
    if (!eat(s, ']')) {
        do {
            if (p->n == SL_KIN_RECORDS_MAX) {
                snprintf(s->why, s->wl, "Records must hold 1-%u records", SL_KIN_RECORDS_MAX);
                return SL_EINVAL;
            }
            ws(s);
            if (s->p < s->end && *s->p != '{') {
                return bad(s, true, SL_EPROTO, "each record must be a JSON object");
            }
            struct rec_raw r = {0};
            int rc = object(s, NULL, &r, false);
            rc = rc == SL_OK ? record(s, p, p->n, &r) : rc;
            if (rc != SL_OK) {
                return rc;
            }
            p->n++;
        } while (eat(s, ','));
        if (!eat(s, ']')) {
            return bad(s, true, SL_EPROTO, "',' or ']' was expected");
        }
    }
    if (p->n == 0) {
        snprintf(s->why, s->wl, "Records must hold 1-%u records", SL_KIN_RECORDS_MAX);
        return SL_EINVAL;
    }
    return SL_OK;
}

int sl_kin_scan_put(const uint8_t *body, size_t len, bool single, struct sl_kin_put *out,
                    bool *serialization, char *why, size_t why_len)
{
    *out = (struct sl_kin_put){0};
    struct scan s = {.p = (const char *)body, .end = (const char *)body + len, .put = out,
                     .why = why, .wl = why_len};
    struct top t = {0};
    out->arena = malloc(len + 1);
    int rc = out->arena == NULL ? bad(&s, false, SL_ENOMEM, "out of memory") : SL_OK;
    s.arena = out->arena;
    rc = rc == SL_OK ? object(&s, &t, single ? &t.one : NULL, single) : rc;
    ws(&s);
    if (rc == SL_OK && s.p != s.end) {
        rc = bad(&s, true, SL_EPROTO, "bytes after the JSON object");
    }
    if (rc == SL_OK && !t.has_stream && !t.has_arn) {
        rc = bad(&s, false, SL_EINVAL, "StreamName or StreamARN is required");
    }
    size_t l;
    if (rc == SL_OK && t.has_stream) {
        rc = unescape(&s, &t.stream, &out->stream, &l);
    }
    if (rc == SL_OK && t.has_arn) {
        rc = unescape(&s, &t.arn, &out->stream_arn, &l);
    }
    if (rc == SL_OK && single) {
        out->n = 1;
        out->entries = calloc(1, sizeof(*out->entries));
        rc = out->entries == NULL ? bad(&s, false, SL_ENOMEM, "out of memory")
                                  : record(&s, out, 0, &t.one);
    } else if (rc == SL_OK && !t.has_records) {
        rc = bad(&s, false, SL_EINVAL, "Records (an array) is required");
    }
    if (rc == SL_OK && out->bytes > SL_KIN_REQUEST_BYTES_MAX) {
        snprintf(why, why_len, "the records exceed the 5 MiB (%u bytes) limit of one request",
                 SL_KIN_REQUEST_BYTES_MAX);
        rc = SL_ETOOBIG;
    }
    SL_ASSERT(rc != SL_OK || s.arena <= out->arena + len + 1);
    *serialization = rc != SL_OK && s.ser;
    if (rc != SL_OK) {
        sl_kin_put_free(out);
    }
    return rc;
}
