/* fuzz_sigv4.c - SigV4 verification over untrusted requests
 * (broker/api/sigv4.c): the Authorization header's parser and the
 * canonical request builder (path normalisation and encoding, query
 * decoding, re-encoding and sorting, header trimming and joining).
 *
 * Input, '\n'-separated: the Authorization value, the method, the request
 * target, then up to HEADERS_MAX "name:value" header lines (names
 * lower-cased as broker/http hands them up) until an empty line; the rest is
 * the body.
 * Checks beyond ASan/UBSan: verification ends in one status with a message
 * (never OK: the fuzzer cannot forge an HMAC, except when it replays a
 * signature this target computed, see below); a parsed header's parts
 * are NUL-terminated and within their limits; the canonical request, when
 * built, is NUL-terminated, of the length returned, has exactly 5 '\n'
 * outside the header block plus one per signed header, and is the same
 * when built twice; signing the canonical request and verifying the
 * request with that signature succeeds (the builder is deterministic and
 * the verifier uses it), which replays the accept path too.
 */
#include "broker/api/sigv4.h"
#include "common/assert.h"
#include "common/error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADERS_MAX 16u
#define NOW_MS      1440938160000ull /* 2015-08-30T12:36:00Z */
/* how a signature mismatch begins (the other MISMATCH cause may echo any text) */
#define MISMATCH_WHY "The request signature we calculated"
#define SECRET      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const char *lookup(void *ctx, const char *key_id, const char **principal)
{
    (void)ctx;
    *principal = "fuzz";
    return key_id[0] == 'X' ? NULL : SECRET; /* ids starting with X are unknown */
}

/* The next line of [*p, end) as a NUL-terminated copy in `out`. */
static char *line(const char **p, const char *end, char *out)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = nl != NULL ? nl + 1 : end;
    return out;
}

static void check_canonical(const struct sl_sigv4_request *r, const struct sl_sigv4_auth *a)
{
    char why[SL_SIGV4_WHY_MAX];
    char *c1 = NULL, *c2 = NULL;
    size_t n1 = 0, n2 = 0;
    const char *hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    int rc = sl_sigv4_canonical(r, a, hex, &c1, &n1, why, sizeof(why));
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_EPROTO || rc == SL_ENOMEM);
        SL_ASSERT(c1 == NULL && why[0] != '\0');
        return;
    }
    SL_ASSERT(c1 != NULL && strlen(c1) == n1); /* no NUL inside: every byte is encoded */
    size_t nls = 0;
    for (size_t i = 0; i < n1; i++) {
        nls += c1[i] == '\n' ? 1 : 0;
    }
    SL_ASSERT(nls == 5 + a->n_signed);
    SL_ASSERT(sl_sigv4_canonical(r, a, hex, &c2, &n2, why, sizeof(why)) == SL_OK);
    SL_ASSERT(n1 == n2 && memcmp(c1, c2, n1) == 0);
    free(c1);
    free(c2);
}

static void sha256_hex(const uint8_t *d, size_t len, char *out)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    SL_ASSERT(EVP_Digest(d, len, md, &n, EVP_sha256(), NULL) == 1);
    for (unsigned int i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

/* The value of the Signature= part (one that starts after ',' or a blank:
 * a key id may hold the text "Signature=" but no ',' nor blank). */
static char *signature_part(char *authz)
{
    for (char *s = strstr(authz, "Signature="); s != NULL; s = strstr(s + 1, "Signature=")) {
        if (s > authz && (s[-1] == ',' || s[-1] == ' ' || s[-1] == '\t')) {
            return s + strlen("Signature=");
        }
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1); /* each line fits */
    char *authz = malloc(size + 1), *method = malloc(size + 1), *target = malloc(size + 1);
    char *hl[HEADERS_MAX];
    struct sl_http_header h[HEADERS_MAX + 1];
    SL_ASSERT(buf != NULL && authz != NULL && method != NULL && target != NULL);
    memcpy(buf, data, size);
    const char *p = buf, *end = buf + size;
    line(&p, end, authz);
    line(&p, end, method);
    line(&p, end, target);
    uint32_t n = 0;
    h[n++] = (struct sl_http_header){"authorization", 13, authz, (uint32_t)strlen(authz)};
    for (uint32_t i = 0; i < HEADERS_MAX; i++) {
        hl[i] = NULL;
    }
    while (p < end && *p != '\n' && n <= HEADERS_MAX) {
        if (hl[n - 1] == NULL) {
            hl[n - 1] = malloc(size + 1);
            SL_ASSERT(hl[n - 1] != NULL);
        }
        char *l = line(&p, end, hl[n - 1]);
        char *colon = strchr(l, ':');
        if (colon == NULL || colon == l) {
            continue;
        }
        *colon = '\0';
        for (char *c = l; *c != '\0'; c++) {
            *c = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
        }
        h[n] =
            (struct sl_http_header){l, (uint32_t)strlen(l), colon + 1, (uint32_t)strlen(colon + 1)};
        n++;
    }
    p += p < end && *p == '\n' ? 1 : 0;
    struct sl_sigv4_request r = {.method = method,
                                 .target = target,
                                 .headers = h,
                                 .n_headers = n,
                                 .body = (const uint8_t *)p,
                                 .body_len = (size_t)(end - p)};

    struct sl_sigv4_auth a;
    char why[SL_SIGV4_WHY_MAX];
    if (sl_sigv4_parse(authz, &a, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(strlen(a.key_id) > 0 && strlen(a.key_id) <= SL_SIGV4_KEY_ID_MAX);
        SL_ASSERT(strlen(a.date) == 8 && strlen(a.region) > 0 && strlen(a.service) > 0);
        SL_ASSERT(a.n_signed > 0 && a.n_signed <= SL_SIGV4_SIGNED_HEADERS_MAX);
        check_canonical(&r, &a);
    } else {
        SL_ASSERT(why[0] != '\0');
    }

    struct sl_sigv4_result res;
    enum sl_sigv4_status st = sl_sigv4_verify(&r, "service", NOW_MS, lookup, NULL, &res);
    SL_ASSERT(st == res.status && (st == SL_SIGV4_OK || res.why[0] != '\0'));

    /* Sign what the verifier will rebuild, put that signature in, verify again. */
    if (st == SL_SIGV4_MISMATCH && strncmp(res.why, MISMATCH_WHY, strlen(MISMATCH_WHY)) == 0) {
        SL_ASSERT(sl_sigv4_parse(authz, &a, why, sizeof(why)) == SL_OK);
        char *creq = NULL;
        size_t len = 0;
        char hex[65];
        sha256_hex(r.body, r.body_len, hex); /* a claimed hash was checked equal to it */
        const char *amz_date = NULL;
        for (uint32_t i = 0; i < n; i++) {
            amz_date =
                amz_date == NULL && strcmp(h[i].name, "x-amz-date") == 0 ? h[i].value : amz_date;
        }
        SL_ASSERT(amz_date != NULL);
        SL_ASSERT(sl_sigv4_canonical(&r, &a, hex, &creq, &len, why, sizeof(why)) == SL_OK);
        uint8_t sig[SL_SIGV4_SIG_BYTES];
        sl_sigv4_sign(SECRET, amz_date, &a, creq, len, sig);
        free(creq);
        char *v = signature_part(authz);
        SL_ASSERT(v != NULL);
        if (strspn(v, "0123456789abcdefABCDEF") >= 2 * SL_SIGV4_SIG_BYTES) {
            for (size_t i = 0; i < SL_SIGV4_SIG_BYTES; i++) {
                char two[3];
                snprintf(two, sizeof(two), "%02x", sig[i]);
                memcpy(v + 2 * i, two, 2);
            }
            SL_ASSERT(sl_sigv4_verify(&r, "service", NOW_MS, lookup, NULL, &res) == SL_SIGV4_OK);
        }
    }
    for (uint32_t i = 0; i < HEADERS_MAX; i++) {
        free(hl[i]);
    }
    free(buf);
    free(authz);
    free(method);
    free(target);
    return 0;
}
