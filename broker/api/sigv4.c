/* sigv4.c - AWS Signature Version 4 verification (see sigv4.h), through
 * OpenSSL 3's libcrypto (SHA-256, HMAC-SHA256, CRYPTO_memcmp).
 *
 * The canonical request, as AWS's "Create a canonical request" specifies it
 * for services other than S3:
 *   METHOD \n CANONICAL_URI \n CANONICAL_QUERY \n CANONICAL_HEADERS \n
 *   SIGNED_HEADERS \n HEX(SHA256(payload))
 *  - CANONICAL_URI: the path as received, '.'/'..' and empty segments
 *    removed, each byte but the unreserved ones (A-Z a-z 0-9 - _ . ~)
 *    percent-encoded with upper-case hex. The path on the wire is already
 *    encoded once, so this is the "encode twice" of non-S3 services (an SDK
 *    signs "/a%2Fb" as "/a%252Fb"), and AWS's test vectors, whose request
 *    lines hold raw bytes ("/example space/"), come out encoded once.
 *  - CANONICAL_QUERY: each name and value percent-decoded then encoded as
 *    above ('+' is a plus: %2B), "name=value" sorted by name then value,
 *    byte-wise, joined by '&'; a name without '=' has an empty value.
 *  - CANONICAL_HEADERS: per signed header, "name:value\n", the value trimmed
 *    and its runs of spaces and tabs collapsed to one space; a header given
 *    more than once: values joined by ',' in arrival order. `host` counts
 *    once (an h2 request may carry both :authority and host). The AWS SDK
 *    over HTTP/2 signs ":authority" instead of host: its value is the
 *    host header broker/http makes of it.
 * The signing key is HMAC(HMAC(HMAC(HMAC("AWS4" + secret, DATE), REGION),
 * SERVICE), "aws4_request"); the signature is HMAC(key, string to sign).
 *
 * Replays: a table of SL_SIGV4_REPLAY_MAX signatures (a ring in arrival
 * order, so the oldest is evicted first, plus a chained hash index keyed
 * with a random per-table value so that clients cannot choose their bucket).
 * An entry is a replay while its request's date + SL_SIGV4_SKEW_MS has not
 * passed; after that the date check refuses the request anyway.
 *
 * Threading: none; a replay table belongs to its caller's thread.
 */
#include "broker/api/sigv4.h"
#include "broker/api/urlcode.h"

#include "common/assert.h"
#include "common/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ALGORITHM        "AWS4-HMAC-SHA256"
#define SCOPE_TERMINATOR "aws4_request"
#define AMZ_DATE_LEN     16u /* YYYYMMDDTHHMMSSZ */
#define HEX_SHA256       64u
#define AUTHORITY        ":authority" /* the AWS SDK over h2 signs it instead of host */
#define REPLAY_BUCKETS   (SL_SIGV4_REPLAY_MAX * 2u)
_Static_assert((REPLAY_BUCKETS & (REPLAY_BUCKETS - 1u)) == 0, "buckets: a power of two");
_Static_assert(SL_SIGV4_REPLAY_MAX < UINT32_MAX, "entry indexes fit 32 bits with 0 = none");

/* ---- small helpers ---------------------------------------------------------- */

struct buf {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

static void put(struct buf *b, const void *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap * 2 > b->len + n + 1 ? b->cap * 2 : b->len + n + 1 + 256;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* AWS's URI encoding: every byte but the unreserved ones as %XX. */
static void put_encoded(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c)) {
            put(b, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

/* Percent-decodes s[0..n) into out (n bytes at least); a '%' not followed
 * by two hex digits stays itself. Returns the decoded length. */
static size_t pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = -1;
        int lo = -1;
        if (s[i] == '%' && i + 2 < n) {
            hi = sl_api_hexval((unsigned char)s[i + 1]);
            lo = sl_api_hexval((unsigned char)s[i + 2]);
        }
        if (hi >= 0 && lo >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[HEX_SHA256 + 1])
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    SL_ASSERT(ok == 1 && n == 32); /* SHA-256 cannot fail on memory input */
    to_hex(d, n, out);
}

static void hmac(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    uint8_t *r = HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
    SL_ASSERT(r != NULL && n == 32);
}

static const char *header(const struct sl_sigv4_request *req, const char *name)
{
    for (uint32_t i = 0; i < req->n_headers; i++) {
        if (strcmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

/* ---- the Authorization header ----------------------------------------------- */

static int fail(char *why, size_t why_len, const char *msg)
{
    snprintf(why, why_len, "%s", msg);
    return SL_EPROTO;
}

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr(set, s[i]) == NULL || s[i] == '\0') {
            return false;
        }
    }
    return true;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"

/* ID/DATE/REGION/SERVICE/aws4_request */
static int parse_credential(const char *v, size_t n, struct sl_sigv4_auth *a, char *why,
                            size_t why_len)
{
    const char *part[5];
    size_t len[5];
    size_t k = 0;
    const char *p = v;
    const char *end = v + n;
    while (k < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash != NULL && k < 4 ? slash : end;
        part[k] = p;
        len[k] = (size_t)(stop - p);
        k++;
        if (stop == end) {
            break;
        }
        p = stop + 1;
    }
    if (k != 5 || len[4] != strlen(SCOPE_TERMINATOR) ||
        memcmp(part[4], SCOPE_TERMINATOR, len[4]) != 0) {
        return fail(why, why_len,
                    "Credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request");
    }
    if (len[0] == 0 || len[0] > SL_SIGV4_KEY_ID_MAX ||
        !all_of(part[0], len[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZ" LOWER_DIGITS "_-+=.@")) {
        return fail(why, why_len, "Credential's access key id is empty, too long or malformed");
    }
    if (len[1] != 8 || !all_of(part[1], 8, "0123456789")) {
        return fail(why, why_len, "Credential's date is not YYYYMMDD");
    }
    if (len[2] == 0 || len[2] > SL_SIGV4_SCOPE_PART_MAX ||
        !all_of(part[2], len[2], LOWER_DIGITS "-")) {
        return fail(why, why_len, "Credential's region is empty or not [a-z0-9-]");
    }
    if (len[3] == 0 || len[3] > SL_SIGV4_SCOPE_PART_MAX ||
        !all_of(part[3], len[3], LOWER_DIGITS "-")) {
        return fail(why, why_len, "Credential's service is empty or not [a-z0-9-]");
    }
    memcpy(a->key_id, part[0], len[0]);
    a->key_id[len[0]] = '\0';
    memcpy(a->date, part[1], 8);
    a->date[8] = '\0';
    memcpy(a->region, part[2], len[2]);
    a->region[len[2]] = '\0';
    memcpy(a->service, part[3], len[3]);
    a->service[len[3]] = '\0';
    return SL_OK;
}

/* "a;b;c": lower-case tokens, strictly ascending (so no repeats). */
static int parse_signed(const char *v, size_t n, struct sl_sigv4_auth *a, char *why, size_t why_len)
{
    if (n == 0 || n >= sizeof(a->signed_headers)) {
        return fail(why, why_len, "SignedHeaders is empty or too long");
    }
    memcpy(a->signed_headers, v, n);
    a->signed_headers[n] = '\0';
    a->n_signed = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    for (const char *p = a->signed_headers; *p != '\0';) {
        size_t k = strcspn(p, ";");
        bool pseudo = k == strlen(AUTHORITY) && memcmp(p, AUTHORITY, k) == 0;
        if (k == 0 || (!pseudo && !all_of(p, k, LOWER_DIGITS "-_."))) {
            return fail(why, why_len,
                        "SignedHeaders must be lower-case header names "
                        "separated by ';'");
        }
        if (prev != NULL) {
            int c = memcmp(prev, p, prev_len < k ? prev_len : k);
            if (c > 0 || (c == 0 && prev_len >= k)) {
                return fail(why, why_len, "SignedHeaders must be sorted, without repeats");
            }
        }
        if (++a->n_signed > SL_SIGV4_SIGNED_HEADERS_MAX) {
            return fail(why, why_len, "SignedHeaders names too many headers");
        }
        prev = p;
        prev_len = k;
        p += k;
        if (*p == ';') {
            p++;
            if (*p == '\0') {
                return fail(why, why_len, "SignedHeaders ends with ';'");
            }
        }
    }
    return SL_OK;
}

static int parse_signature(const char *v, size_t n, struct sl_sigv4_auth *a, char *why,
                           size_t why_len)
{
    if (n != 2 * SL_SIGV4_SIG_BYTES) {
        return fail(why, why_len, "Signature must be 64 hex digits");
    }
    for (size_t i = 0; i < SL_SIGV4_SIG_BYTES; i++) {
        int hi = sl_api_hexval((unsigned char)v[2 * i]);
        int lo = sl_api_hexval((unsigned char)v[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return fail(why, why_len, "Signature must be 64 hex digits");
        }
        a->signature[i] = (uint8_t)(hi << 4 | lo);
    }
    return SL_OK;
}

int sl_sigv4_parse(const char *authorization, struct sl_sigv4_auth *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    size_t alg = strlen(ALGORITHM);
    const char *p = authorization;
    if (strncmp(p, ALGORITHM, alg) != 0 || (p[alg] != ' ' && p[alg] != '\t')) {
        return fail(why, why_len,
                    "the Authorization header must start with " ALGORITHM
                    " (the only algorithm served)");
    }
    p += alg;
    bool have[3] = {false, false, false};
    static const char *const names[3] = {"Credential=", "SignedHeaders=", "Signature="};
    while (*p != '\0') {
        p += strspn(p, " \t");
        size_t n = strcspn(p, ",");
        size_t end = n;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t')) {
            end--;
        }
        int k = 0;
        while (k < 3 && strncmp(p, names[k], strlen(names[k])) != 0) {
            k++;
        }
        if (k == 3 || have[k]) {
            snprintf(why, why_len, "the Authorization header has %s part \"%.40s\"",
                     k == 3 ? "an unknown" : "a repeated", p);
            return SL_EPROTO;
        }
        size_t skip = strlen(names[k]);
        const char *v = p + skip;
        size_t vn = end >= skip ? end - skip : 0;
        int rc = k == 0   ? parse_credential(v, vn, out, why, why_len)
                 : k == 1 ? parse_signed(v, vn, out, why, why_len)
                          : parse_signature(v, vn, out, why, why_len);
        if (rc != SL_OK) {
            return rc;
        }
        have[k] = true;
        p += n;
        p += *p == ',' ? 1 : 0;
    }
    for (int k = 0; k < 3; k++) {
        if (!have[k]) {
            snprintf(why, why_len,
                     "the Authorization header lacks %s (expected " ALGORITHM
                     " Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., "
                     "Signature=...)",
                     names[k]);
            return SL_EPROTO;
        }
    }
    return SL_OK;
}

/* ---- the canonical request -------------------------------------------------- */

static void canonical_uri(struct buf *b, const char *path, size_t n)
{
    /* Segments kept: at most one per '/' + 1. Offsets into path. */
    size_t max_seg = 1;
    for (size_t i = 0; i < n; i++) {
        max_seg += path[i] == '/' ? 1 : 0;
    }
    size_t *seg = malloc(max_seg * 2 * sizeof(size_t));
    if (seg == NULL) {
        b->failed = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && path[j] != '/') {
            j++;
        }
        size_t len = j - i;
        if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            k = k > 0 ? k - 1 : 0;
        } else if (len > 0 && !(len == 1 && path[i] == '.')) {
            seg[2 * k] = i;
            seg[2 * k + 1] = len;
            k++;
        }
        i = j + 1;
    }
    put(b, "/", 1);
    for (size_t s = 0; s < k; s++) {
        if (s > 0) {
            put(b, "/", 1);
        }
        put_encoded(b, path + seg[2 * s], seg[2 * s + 1]);
    }
    if (k > 0 && n > 0 && path[n - 1] == '/') {
        put(b, "/", 1);
    }
    free(seg);
}

struct qparam {
    size_t name_at; /* encoded, at this offset of the arena while it grows */
    size_t value_at;
    const char *name; /* then pointers into the final arena */
    size_t name_len;
    const char *value;
    size_t value_len;
};

static int qparam_cmp(const void *x, const void *y)
{
    const struct qparam *a = x;
    const struct qparam *b = y;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c != 0 || a->name_len != b->name_len) {
        return c != 0 ? c : (a->name_len < b->name_len ? -1 : 1);
    }
    n = a->value_len < b->value_len ? a->value_len : b->value_len;
    c = memcmp(a->value, b->value, n);
    return c != 0 ? c : (a->value_len < b->value_len ? -1 : a->value_len > b->value_len);
}

/* Decodes s[0..n), encodes it into the arena; returns the offset where it starts. */
static size_t requote(struct buf *arena, char *scratch, const char *s, size_t n, size_t *len)
{
    size_t d = pct_decode(s, n, scratch);
    size_t at = arena->len;
    put_encoded(arena, scratch, d);
    *len = arena->len - at;
    return at;
}

static void canonical_query(struct buf *b, const char *q, size_t n)
{
    size_t count = 1;
    for (size_t i = 0; i < n; i++) {
        count += q[i] == '&' ? 1 : 0;
    }
    struct qparam *ps = calloc(count, sizeof(*ps));
    char *scratch = malloc(n + 1);
    struct buf arena = {0};
    put(&arena, "", 0); /* allocated even when every name and value is empty */
    size_t k = 0;
    for (size_t i = 0; ps != NULL && scratch != NULL && i < n;) {
        size_t j = i;
        while (j < n && q[j] != '&') {
            j++;
        }
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t nl = eq != NULL ? (size_t)(eq - (q + i)) : j - i;
            ps[k].name_at = requote(&arena, scratch, q + i, nl, &ps[k].name_len);
            ps[k].value_at = eq != NULL ? requote(&arena, scratch, eq + 1, (size_t)(q + j - eq - 1),
                                                  &ps[k].value_len)
                                        : requote(&arena, scratch, "", 0, &ps[k].value_len);
            k++;
        }
        i = j + 1;
    }
    if (ps == NULL || scratch == NULL || arena.failed) {
        b->failed = true;
    } else {
        for (size_t i = 0; i < k; i++) { /* offsets -> pointers: the arena is final */
            ps[i].name = arena.p + ps[i].name_at;
            ps[i].value = arena.p + ps[i].value_at;
        }
        qsort(ps, k, sizeof(*ps), qparam_cmp);
        for (size_t i = 0; i < k; i++) {
            if (i > 0) {
                put(b, "&", 1);
            }
            put(b, ps[i].name, ps[i].name_len);
            put(b, "=", 1);
            put(b, ps[i].value, ps[i].value_len);
        }
    }
    free(ps);
    free(scratch);
    free(arena.p);
}

/* Trimmed, runs of spaces and tabs as one space. */
static void put_header_value(struct buf *b, const char *v)
{
    size_t n = strlen(v);
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    bool space = false;
    for (; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            space = true;
            continue;
        }
        if (space) {
            put(b, " ", 1);
            space = false;
        }
        put(b, &v[i], 1);
    }
}

static int canonical_headers(struct buf *b, const struct sl_sigv4_request *req,
                             const struct sl_sigv4_auth *a, char *why, size_t why_len)
{
    for (const char *p = a->signed_headers; *p != '\0';) {
        size_t k = strcspn(p, ";");
        put(b, p, k);
        put(b, ":", 1);
        uint32_t found = 0;
        const char *name = p;
        size_t name_len = k;
        if (k == strlen(AUTHORITY) && memcmp(p, AUTHORITY, k) == 0) {
            name = "host"; /* broker/http hands h2's :authority up as host */
            name_len = 4;
        }
        bool host = name_len == 4 && memcmp(name, "host", 4) == 0;
        for (uint32_t i = 0; i < req->n_headers && !(host && found > 0); i++) {
            const struct sl_http_header *h = &req->headers[i];
            if (h->name_len == name_len && memcmp(h->name, name, name_len) == 0) {
                if (found++ > 0) {
                    put(b, ",", 1);
                }
                put_header_value(b, h->value);
            }
        }
        if (found == 0) {
            snprintf(why, why_len, "SignedHeaders names %.*s, which the request does not carry",
                     (int)(k < 64 ? k : 64), p);
            return SL_EPROTO;
        }
        put(b, "\n", 1);
        p += k + (p[k] == ';' ? 1 : 0);
    }
    return SL_OK;
}

int sl_sigv4_canonical(const struct sl_sigv4_request *req, const struct sl_sigv4_auth *a,
                       const char *payload_hex, char **out, size_t *len, char *why, size_t why_len)
{
    *out = NULL;
    *len = 0;
    struct buf b = {0};
    const char *target = req->target;
    size_t plen = strcspn(target, "?");
    puts_(&b, req->method);
    put(&b, "\n", 1);
    canonical_uri(&b, target, plen);
    put(&b, "\n", 1);
    if (target[plen] == '?') {
        canonical_query(&b, target + plen + 1, strlen(target + plen + 1));
    }
    put(&b, "\n", 1);
    int rc = canonical_headers(&b, req, a, why, why_len);
    put(&b, "\n", 1);
    puts_(&b, a->signed_headers);
    put(&b, "\n", 1);
    puts_(&b, payload_hex);
    if (rc == SL_OK && b.failed) {
        rc = SL_ENOMEM;
        snprintf(why, why_len, "out of memory");
    }
    if (rc != SL_OK) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return SL_OK;
}

void sl_sigv4_sign(const char *secret, const char *amz_date, const struct sl_sigv4_auth *a,
                   const char *canonical, size_t canonical_len, uint8_t sig[SL_SIGV4_SIG_BYTES])
{
    char creq_hex[HEX_SHA256 + 1];
    sha256_hex(canonical, canonical_len, creq_hex);
    char sts[512];
    int n = snprintf(sts, sizeof(sts), ALGORITHM "\n%s\n%s/%s/%s/" SCOPE_TERMINATOR "\n%s",
                     amz_date, a->date, a->region, a->service, creq_hex);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(sts)); /* the scope's parts are bounded */
    char k0[4 + SL_SIGV4_SECRET_MAX + 1];
    size_t slen = strlen(secret);
    SL_ASSERT(slen + 4 < sizeof(k0)); /* the auth file bounds secrets */
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, slen);
    uint8_t k[32];
    hmac(k0, 4 + slen, a->date, strlen(a->date), k);
    hmac(k, 32, a->region, strlen(a->region), k);
    hmac(k, 32, a->service, strlen(a->service), k);
    hmac(k, 32, SCOPE_TERMINATOR, strlen(SCOPE_TERMINATOR), k);
    hmac(k, 32, sts, (size_t)n, sig);
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k, sizeof(k));
}

/* ---- dates ------------------------------------------------------------------- */

static uint32_t digits(const char *s, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, uint32_t m, uint32_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    uint32_t yoe = (uint32_t)(y - era * 400);
    uint32_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int sl_sigv4_parse_date(const char *s, uint64_t *ms)
{
    if (strlen(s) != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z' || !all_of(s, 8, "0123456789") ||
        !all_of(s + 9, 6, "0123456789")) {
        return SL_EPROTO;
    }
    uint32_t y = digits(s, 4), mo = digits(s + 4, 2), d = digits(s + 6, 2);
    uint32_t h = digits(s + 9, 2), mi = digits(s + 11, 2), se = digits(s + 13, 2);
    static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        se > 60) {
        return SL_EPROTO;
    }
    int64_t days = days_from_civil(y, mo, d);
    *ms = ((uint64_t)days * 86400u + h * 3600u + mi * 60u + se) * 1000u;
    return SL_OK;
}

static void format_date(uint64_t ms, char out[AMZ_DATE_LEN + 1])
{
    time_t secs = (time_t)(ms / 1000u);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != AMZ_DATE_LEN) {
        snprintf(out, AMZ_DATE_LEN + 1, "?");
    }
}

/* ---- verification ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static enum sl_sigv4_status
refuse(struct sl_sigv4_result *res, enum sl_sigv4_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof(res->why), fmt, ap);
    va_end(ap);
    res->status = st;
    return st;
}

/* The date and scope checks: X-Amz-Date present, well-formed, of the
 * credential's day, within the skew. */
static enum sl_sigv4_status check_date(const struct sl_sigv4_request *req,
                                       const struct sl_sigv4_auth *a, uint64_t now_ms,
                                       struct sl_sigv4_result *res, const char **amz_date)
{
    *amz_date = header(req, "x-amz-date");
    if (*amz_date == NULL) {
        return refuse(res, SL_SIGV4_INCOMPLETE,
                      "the X-Amz-Date header is missing (this broker takes the request's date "
                      "from X-Amz-Date only, as the AWS SDKs send it)");
    }
    if (sl_sigv4_parse_date(*amz_date, &res->date_ms) != SL_OK) {
        return refuse(res, SL_SIGV4_INCOMPLETE, "X-Amz-Date %.20s is not YYYYMMDDTHHMMSSZ",
                      *amz_date);
    }
    if (memcmp(*amz_date, a->date, 8) != 0) {
        return refuse(res, SL_SIGV4_INCOMPLETE,
                      "Date in Credential scope (%s) does not match YYYYMMDD from X-Amz-Date "
                      "(%.8s)",
                      a->date, *amz_date);
    }
    char now[AMZ_DATE_LEN + 1], bound[AMZ_DATE_LEN + 1];
    format_date(now_ms, now);
    if (res->date_ms + SL_SIGV4_SKEW_MS < now_ms) {
        format_date(now_ms - SL_SIGV4_SKEW_MS, bound);
        return refuse(res, SL_SIGV4_EXPIRED,
                      "Signature expired: %s is now earlier than %s (%s - 15 min.); sign "
                      "requests anew and check the client's clock",
                      *amz_date, bound, now);
    }
    if (res->date_ms > now_ms + SL_SIGV4_SKEW_MS) {
        format_date(now_ms + SL_SIGV4_SKEW_MS, bound);
        return refuse(res, SL_SIGV4_EXPIRED,
                      "Signature not yet current: %s is still later than %s (%s + 15 min.); "
                      "check the client's clock",
                      *amz_date, bound, now);
    }
    return SL_SIGV4_OK;
}

static bool signed_has(const struct sl_sigv4_auth *a, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = a->signed_headers; *p != '\0';) {
        size_t k = strcspn(p, ";");
        if (k == n && memcmp(p, name, n) == 0) {
            return true;
        }
        p += k + (p[k] == ';' ? 1 : 0);
    }
    return false;
}

/* The payload's hash: the body's, which X-Amz-Content-Sha256 must equal when given. */
static enum sl_sigv4_status payload_hash(const struct sl_sigv4_request *req,
                                         struct sl_sigv4_result *res, char hex[HEX_SHA256 + 1])
{
    sha256_hex(req->body, req->body_len, hex);
    const char *claimed = header(req, "x-amz-content-sha256");
    if (claimed == NULL) {
        return SL_SIGV4_OK;
    }
    bool same = strlen(claimed) == HEX_SHA256;
    for (size_t i = 0; same && i < HEX_SHA256; i++) {
        int c = sl_api_hexval((unsigned char)claimed[i]);
        same = c == sl_api_hexval((unsigned char)hex[i]) && c >= 0;
    }
    if (!same) {
        return refuse(res, SL_SIGV4_MISMATCH,
                      "X-Amz-Content-Sha256 is not the SHA-256 of the body (%.20s...); this "
                      "broker takes no UNSIGNED-PAYLOAD or streaming payloads",
                      claimed);
    }
    return SL_SIGV4_OK;
}

enum sl_sigv4_status sl_sigv4_verify(const struct sl_sigv4_request *req, const char *service,
                                     uint64_t now_ms, sl_sigv4_lookup_fn lookup, void *ctx,
                                     struct sl_sigv4_result *res)
{
    memset(res, 0, sizeof(*res));
    const char *authz = header(req, "authorization");
    if (authz == NULL) {
        return refuse(res, SL_SIGV4_MISSING,
                      "the request is not signed: it has no Authorization header (sign it "
                      "with SigV4 and an access key from the broker's auth_file)");
    }
    struct sl_sigv4_auth a;
    char why[SL_SIGV4_WHY_MAX];
    if (sl_sigv4_parse(authz, &a, why, sizeof(why)) != SL_OK) {
        return refuse(res, SL_SIGV4_INCOMPLETE, "%s", why);
    }
    snprintf(res->key_id, sizeof(res->key_id), "%s", a.key_id);
    memcpy(res->signature, a.signature, sizeof(res->signature));
    if (strcmp(a.service, service) != 0) {
        return refuse(res, SL_SIGV4_INCOMPLETE,
                      "the Credential scope names service %s; this endpoint is %s (sign with "
                      "the %s client)",
                      a.service, service, service);
    }
    const char *amz_date = NULL;
    if (check_date(req, &a, now_ms, res, &amz_date) != SL_SIGV4_OK) {
        return res->status;
    }
    if (!signed_has(&a, "host") && !signed_has(&a, AUTHORITY)) {
        return refuse(res, SL_SIGV4_INCOMPLETE,
                      "SignedHeaders must include host (or h2's "
                      ":authority)");
    }
    const char *secret = lookup(ctx, a.key_id, &res->principal);
    if (secret == NULL) {
        return refuse(res, SL_SIGV4_UNKNOWN_KEY,
                      "The security token included in the request is invalid: the access key "
                      "id %s is not in the broker's auth_file (add an awskey line and reload "
                      "with SIGHUP)",
                      a.key_id);
    }
    char hex[HEX_SHA256 + 1];
    if (payload_hash(req, res, hex) != SL_SIGV4_OK) {
        return res->status;
    }
    char *creq = NULL;
    size_t creq_len = 0;
    int rc = sl_sigv4_canonical(req, &a, hex, &creq, &creq_len, why, sizeof(why));
    if (rc != SL_OK) {
        return refuse(res, rc == SL_ENOMEM ? SL_SIGV4_INTERNAL : SL_SIGV4_INCOMPLETE, "%s", why);
    }
    uint8_t sig[SL_SIGV4_SIG_BYTES];
    sl_sigv4_sign(secret, amz_date, &a, creq, creq_len, sig);
    free(creq);
    if (CRYPTO_memcmp(sig, a.signature, sizeof(sig)) != 0) {
        return refuse(res, SL_SIGV4_MISMATCH,
                      "The request signature we calculated does not match the signature you "
                      "provided. Check the secret access key of %s and the signing method.",
                      a.key_id);
    }
    res->status = SL_SIGV4_OK;
    return SL_SIGV4_OK;
}

/* ---- replays ----------------------------------------------------------------- */

struct replay_entry {
    uint8_t sig[SL_SIGV4_SIG_BYTES];
    uint64_t expires_ms;
    uint32_t next; /* index + 1 of the next entry in the bucket; 0: none */
};

struct sl_sigv4_replay {
    uint64_t key; /* random: bucket choice is not the client's */
    uint32_t oldest;
    uint32_t n;
    uint64_t early_evictions;
    uint32_t head[REPLAY_BUCKETS]; /* index + 1; 0: empty */
    struct replay_entry e[SL_SIGV4_REPLAY_MAX];
};

static uint32_t bucket(const struct sl_sigv4_replay *r, const uint8_t *sig)
{
    uint64_t x;
    memcpy(&x, sig, sizeof(x));
    x ^= r->key;
    x *= 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: the top bits mix every input bit */
    return (uint32_t)(x >> 32) & (REPLAY_BUCKETS - 1u);
}

struct sl_sigv4_replay *sl_sigv4_replay_new(void)
{
    struct sl_sigv4_replay *r = calloc(1, sizeof(*r));
    if (r != NULL && getrandom(&r->key, sizeof(r->key), 0) != (ssize_t)sizeof(r->key)) {
        r->key = (uint64_t)(uintptr_t)r ^ 0x5851F42D4C957F2Dull; /* no entropy: still keyed */
    }
    return r;
}

void sl_sigv4_replay_free(struct sl_sigv4_replay *r)
{
    free(r);
}

static void evict_oldest(struct sl_sigv4_replay *r, uint64_t now_ms)
{
    SL_ASSERT(r->n > 0);
    uint32_t i = r->oldest;
    uint32_t *pp = &r->head[bucket(r, r->e[i].sig)];
    while (*pp != 0 && *pp != i + 1) {
        pp = &r->e[*pp - 1].next;
    }
    SL_ASSERT(*pp == i + 1); /* every live entry is in its bucket */
    *pp = r->e[i].next;
    r->early_evictions += r->e[i].expires_ms >= now_ms ? 1 : 0;
    r->oldest = (r->oldest + 1) % SL_SIGV4_REPLAY_MAX;
    r->n--;
}

bool sl_sigv4_replay_check(struct sl_sigv4_replay *r, const uint8_t sig[SL_SIGV4_SIG_BYTES],
                           uint64_t date_ms, uint64_t now_ms)
{
    uint32_t b = bucket(r, sig);
    for (uint32_t i = r->head[b]; i != 0; i = r->e[i - 1].next) {
        const struct replay_entry *e = &r->e[i - 1];
        if (memcmp(e->sig, sig, SL_SIGV4_SIG_BYTES) == 0 && e->expires_ms >= now_ms) {
            return true;
        }
    }
    if (r->n == SL_SIGV4_REPLAY_MAX) {
        evict_oldest(r, now_ms);
    }
    uint32_t i = (r->oldest + r->n) % SL_SIGV4_REPLAY_MAX;
    memcpy(r->e[i].sig, sig, SL_SIGV4_SIG_BYTES);
    r->e[i].expires_ms = date_ms + SL_SIGV4_SKEW_MS;
    r->e[i].next = r->head[b];
    r->head[b] = i + 1;
    r->n++;
    SL_ASSERT(r->n <= SL_SIGV4_REPLAY_MAX);
    return false;
}

uint64_t sl_sigv4_replay_early_evictions(const struct sl_sigv4_replay *r)
{
    return r->early_evictions;
}
