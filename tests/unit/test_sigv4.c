/* test_sigv4.c - broker/api/sigv4: AWS Signature Version 4 verification.
 *
 * Covers: AWS's published SigV4 test suite (aws-sig-v4-test-suite: credentials
 * AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z,
 * us-east-1, service "service") - the canonical request of get-vanilla byte
 * for byte, the published SHA-256 of the canonical requests of
 * get-vanilla-query-order-key-case and post-x-www-form-urlencoded, and the
 * published Authorization header of ten cases accepted by sl_sigv4_verify
 * (and refused once one byte of the request changes); the refusals (no
 * header, malformed parts, unknown key, wrong secret, date outside 15 min,
 * credential date not X-Amz-Date's day, host unsigned, wrong service, a
 * signed header missing, X-Amz-Content-Sha256 not the body's); the replay
 * table (a second sight refused, forgotten after its window, the oldest
 * evicted when full).
 */
#include "test.h"

#include "broker/api/sigv4.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_KEY    "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE   "20150830T123600Z"
#define SUITE_CRED   "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
#define SUITE_NOW_MS 1440938160000ull /* 2015-08-30T12:36:00Z */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *lookup(void *ctx, const char *key_id, const char **principal)
{
    (void)ctx;
    *principal = "suite";
    return strcmp(key_id, SUITE_KEY) == 0 ? SUITE_SECRET : NULL;
}

/* A request: up to 8 headers "name" "value" after the defaults. */
struct req {
    struct sl_http_header h[12];
    struct sl_sigv4_request r;
    char authz[512];
};

static void add(struct req *q, const char *name, const char *value)
{
    q->h[q->r.n_headers++] =
        (struct sl_http_header){name, (uint32_t)strlen(name), value, (uint32_t)strlen(value)};
}

static void make(struct req *q, const char *method, const char *target, const char *body,
                 const char *signed_headers, const char *sig)
{
    memset(q, 0, sizeof(*q));
    q->r = (struct sl_sigv4_request){.method = method,
                                     .target = target,
                                     .headers = q->h,
                                     .body = (const uint8_t *)body,
                                     .body_len = strlen(body)};
    snprintf(q->authz, sizeof(q->authz), SUITE_CRED ", SignedHeaders=%s, Signature=%s",
             signed_headers, sig);
    add(q, "authorization", q->authz);
    add(q, "host", "example.amazonaws.com");
    add(q, "x-amz-date", SUITE_DATE);
}

static enum sl_sigv4_status verify_at(struct req *q, uint64_t now_ms, struct sl_sigv4_result *res)
{
    return sl_sigv4_verify(&q->r, "service", now_ms, lookup, NULL, res);
}

static enum sl_sigv4_status verify(struct req *q)
{
    struct sl_sigv4_result res;
    enum sl_sigv4_status st = verify_at(q, SUITE_NOW_MS, &res);
    if (st != SL_SIGV4_OK) {
        fprintf(stderr, "  refused (%d): %s\n", (int)st, res.why);
    }
    return st;
}

static void sha256_hex(const char *s, size_t n, char *out);

TEST(suite_get_vanilla_canonical_request)
{
    struct req q;
    make(&q, "GET", "/", "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    struct sl_sigv4_auth a;
    char why[256];
    CHECK(sl_sigv4_parse(q.authz, &a, why, sizeof(why)) == SL_OK);
    CHECK(strcmp(a.key_id, SUITE_KEY) == 0 && strcmp(a.region, "us-east-1") == 0);
    CHECK(strcmp(a.service, "service") == 0 && strcmp(a.date, "20150830") == 0);
    char *creq = NULL;
    size_t len = 0;
    CHECK(sl_sigv4_canonical(&q.r, &a, EMPTY_SHA256, &creq, &len, why, sizeof(why)) == SL_OK);
    const char *want = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                       "host;x-amz-date\n" EMPTY_SHA256;
    CHECK(creq != NULL && strcmp(creq, want) == 0 && len == strlen(want));
    uint8_t sig[SL_SIGV4_SIG_BYTES];
    sl_sigv4_sign(SUITE_SECRET, SUITE_DATE, &a, creq, len, sig);
    CHECK(memcmp(sig, a.signature, sizeof(sig)) == 0);
    free(creq);
    CHECK(verify(&q) == SL_SIGV4_OK);
}

/* The suite's published hash of a canonical request (its string to sign's last line). */
static void check_creq_hash(struct req *q, const char *want_hex)
{
    struct sl_sigv4_auth a;
    char why[256];
    char *creq = NULL;
    size_t len = 0;
    char payload[65], got[65];
    CHECK(sl_sigv4_parse(q->authz, &a, why, sizeof(why)) == SL_OK);
    sha256_hex((const char *)q->r.body, q->r.body_len, payload);
    CHECK(sl_sigv4_canonical(&q->r, &a, payload, &creq, &len, why, sizeof(why)) == SL_OK);
    sha256_hex(creq, len, got);
    CHECK(strcmp(got, want_hex) == 0);
    free(creq);
}

TEST(suite_canonical_request_hashes)
{
    struct req q;
    make(&q, "GET", "/?Param2=value2&Param1=value1", "", "host;x-amz-date",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    check_creq_hash(&q, "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
    make(&q, "POST", "/", "Param1=value1", "content-type;host;x-amz-date",
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    add(&q, "content-type", "application/x-www-form-urlencoded");
    check_creq_hash(&q, "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
    make(&q, "GET", "/", "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    check_creq_hash(&q, "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

/* Published Authorization headers, accepted; then one changed byte refused. */
TEST(suite_signatures_verify)
{
    static const struct {
        const char *name, *method, *target, *body, *signed_headers, *sig;
        const char *extra[4][2];
    } v[] = {
        {"get-vanilla",
         "GET",
         "/",
         "",
         "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
         {{0}}},
        {"get-unreserved",
         "GET",
         "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
         "",
         "host;x-amz-date",
         "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
         {{0}}},
        {"get-slashes",
         "GET",
         "//example//",
         "",
         "host;x-amz-date",
         "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
         {{0}}},
        {"get-vanilla-query-order-key-case",
         "GET",
         "/?Param2=value2&Param1=value1",
         "",
         "host;x-amz-date",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
         {{0}}},
        {"get-vanilla-query-order-value",
         "GET",
         "/?Param1=value2&Param1=value1",
         "",
         "host;x-amz-date",
         "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
         {{0}}},
        {"get-vanilla-utf8-query",
         "GET",
         "/?\xe1\x88\xb4=bar",
         "",
         "host;x-amz-date",
         "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
         {{0}}},
        {"get-header-value-order",
         "GET",
         "/",
         "",
         "host;my-header1;x-amz-date",
         "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
         {{"my-header1", "value4"},
          {"my-header1", "value1"},
          {"my-header1", "value3"},
          {"my-header1", "value2"}}},
        {"get-header-key-duplicate",
         "GET",
         "/",
         "",
         "host;my-header1;x-amz-date",
         "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
         {{"my-header1", "value2"}, {"my-header1", "value2"}, {"my-header1", "value1"}}},
        {"get-header-value-trim",
         "GET",
         "/",
         "",
         "host;my-header1;my-header2;x-amz-date",
         "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
         {{"my-header1", " value1"}, {"my-header2", "\"a   b   c\""}}},
        {"post-x-www-form-urlencoded",
         "POST",
         "/",
         "Param1=value1",
         "content-type;host;x-amz-date",
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
         {{"content-type", "application/x-www-form-urlencoded"}}},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct req q;
        make(&q, v[i].method, v[i].target, v[i].body, v[i].signed_headers, v[i].sig);
        for (int k = 0; k < 4 && v[i].extra[k][0] != NULL; k++) {
            add(&q, v[i].extra[k][0], v[i].extra[k][1]);
        }
        fprintf(stderr, "  %s\n", v[i].name);
        CHECK(verify(&q) == SL_SIGV4_OK);
        /* the same request for another path: the signature no longer matches */
        q.r.target = "/other";
        struct sl_sigv4_result res;
        CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_MISMATCH);
    }
}

TEST(refusals_name_their_cause)
{
    struct req q;
    struct sl_sigv4_result res;
    const char *sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    make(&q, "GET", "/", "", "host;x-amz-date", sig);
    q.h[0].name = "x-not-authorization"; /* no header */
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_MISSING);
    CHECK(strstr(res.why, "Authorization") != NULL);

    static const char *const malformed[] = {
        "AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00",
        SUITE_CRED ", SignedHeaders=host;x-amz-date",
        SUITE_CRED ", Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        SUITE_CRED ", SignedHeaders=host;x-amz-date, Signature=5fa0",
        SUITE_CRED ", SignedHeaders=x-amz-date;host, "
                   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        SUITE_CRED ", SignedHeaders=Host;x-amz-date, "
                   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        SUITE_CRED ", SignedHeaders=host;x-amz-date, Signature=" /* repeated */
                   "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31, "
                   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        make(&q, "GET", "/", "", "host;x-amz-date", sig);
        q.h[0].value = malformed[i];
        CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_INCOMPLETE);
        CHECK(res.why[0] != '\0');
    }

    make(&q, "GET", "/", "", "host;x-amz-date", sig);
    CHECK(sl_sigv4_verify(&q.r, "kinesis", SUITE_NOW_MS, lookup, NULL, &res) ==
          SL_SIGV4_INCOMPLETE);
    CHECK(strstr(res.why, "kinesis") != NULL);

    /* 15 min either way is accepted, a second more is not; the message names both times */
    CHECK(verify_at(&q, SUITE_NOW_MS + SL_SIGV4_SKEW_MS, &res) == SL_SIGV4_OK);
    CHECK(verify_at(&q, SUITE_NOW_MS - SL_SIGV4_SKEW_MS, &res) == SL_SIGV4_OK);
    CHECK(verify_at(&q, SUITE_NOW_MS + SL_SIGV4_SKEW_MS + 1000, &res) == SL_SIGV4_EXPIRED);
    CHECK(strstr(res.why, SUITE_DATE) != NULL && strstr(res.why, "20150830T125101Z") != NULL);
    CHECK(verify_at(&q, SUITE_NOW_MS - SL_SIGV4_SKEW_MS - 1000, &res) == SL_SIGV4_EXPIRED);

    make(&q, "GET", "/", "", "host;x-amz-date", sig);
    q.h[2].value = "20150831T003600Z"; /* another day than the credential's */
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_INCOMPLETE);
    CHECK(strstr(res.why, "Credential scope") != NULL);

    make(&q, "GET", "/", "", "x-amz-date", sig);
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_INCOMPLETE);
    CHECK(strstr(res.why, "host") != NULL);

    make(&q, "GET", "/", "", "host;my-header;x-amz-date", sig);
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_INCOMPLETE);
    CHECK(strstr(res.why, "my-header") != NULL);

    make(&q, "GET", "/", "", "host;x-amz-date", sig);
    q.r.body = (const uint8_t *)"x";
    q.r.body_len = 1;
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_MISMATCH);
    make(&q, "GET", "/", "", "host;x-amz-date", sig);
    add(&q, "x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_MISMATCH);
    CHECK(strstr(res.why, "X-Amz-Content-Sha256") != NULL);
    make(&q, "GET", "/", "", "host;x-amz-date", sig);
    add(&q, "x-amz-content-sha256", EMPTY_SHA256); /* the body's: fine (unsigned here) */
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_OK);
}

TEST(unknown_key_and_wrong_secret)
{
    struct req q;
    struct sl_sigv4_result res;
    make(&q, "GET", "/", "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    char other[512];
    snprintf(other, sizeof(other), "%s", q.authz);
    memcpy(strstr(other, "AKIDEXAMPLE"), "AKIDEXAMPLF", 11);
    q.h[0].value = other;
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_UNKNOWN_KEY);
    CHECK(strstr(res.why, "AKIDEXAMPLF") != NULL && strstr(res.why, "auth_file") != NULL);
    CHECK(strstr(res.why, SUITE_SECRET) == NULL);
    /* a signature made with another secret */
    struct sl_sigv4_auth a;
    char why[256], *creq = NULL, hex[65];
    size_t len = 0;
    uint8_t sig[SL_SIGV4_SIG_BYTES];
    make(&q, "GET", "/", "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    CHECK(sl_sigv4_parse(q.authz, &a, why, sizeof(why)) == SL_OK);
    CHECK(sl_sigv4_canonical(&q.r, &a, EMPTY_SHA256, &creq, &len, why, sizeof(why)) == SL_OK);
    sl_sigv4_sign("not-the-secret", SUITE_DATE, &a, creq, len, sig);
    free(creq);
    for (size_t i = 0; i < sizeof(sig); i++) {
        snprintf(hex + 2 * i, 3, "%02x", sig[i]);
    }
    make(&q, "GET", "/", "", "host;x-amz-date", hex);
    CHECK(verify_at(&q, SUITE_NOW_MS, &res) == SL_SIGV4_MISMATCH);
    CHECK(strstr(res.why, "does not match") != NULL);
}

TEST(replay_table)
{
    struct sl_sigv4_replay *r = sl_sigv4_replay_new();
    CHECK(r != NULL);
    uint8_t sig[SL_SIGV4_SIG_BYTES] = {1, 2, 3};
    uint64_t t = SUITE_NOW_MS;
    CHECK(!sl_sigv4_replay_check(r, sig, t, t));
    CHECK(sl_sigv4_replay_check(r, sig, t, t + 1000));
    CHECK(sl_sigv4_replay_check(r, sig, t, t + SL_SIGV4_SKEW_MS));
    /* past its window: forgotten (the date check refuses such a request anyway) */
    CHECK(!sl_sigv4_replay_check(r, sig, t, t + SL_SIGV4_SKEW_MS + 1));
    sl_sigv4_replay_free(r);

    /* full: the oldest goes first, counted as an early eviction */
    r = sl_sigv4_replay_new();
    uint8_t s[SL_SIGV4_SIG_BYTES] = {0};
    for (uint32_t i = 0; i < SL_SIGV4_REPLAY_MAX; i++) {
        memcpy(s, &i, sizeof(i));
        CHECK(!sl_sigv4_replay_check(r, s, t, t));
    }
    for (uint32_t i = 0; i < SL_SIGV4_REPLAY_MAX; i += 4099) {
        memcpy(s, &i, sizeof(i));
        CHECK(sl_sigv4_replay_check(r, s, t, t));
    }
    uint32_t extra = SL_SIGV4_REPLAY_MAX;
    memcpy(s, &extra, sizeof(extra));
    CHECK(!sl_sigv4_replay_check(r, s, t, t));
    CHECK(sl_sigv4_replay_early_evictions(r) == 1);
    uint32_t first = 0;
    memcpy(s, &first, sizeof(first));
    CHECK(!sl_sigv4_replay_check(r, s, t, t)); /* evicted: not remembered */
    uint32_t second = 2;
    memcpy(s, &second, sizeof(second));
    CHECK(sl_sigv4_replay_check(r, s, t, t)); /* still there */
    sl_sigv4_replay_free(r);
}

/* ---- helpers ---- */

#include <openssl/evp.h>

static void sha256_hex(const char *s, size_t n, char *out)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(s, n, d, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

int main(void)
{
    RUN(suite_get_vanilla_canonical_request);
    RUN(suite_canonical_request_hashes);
    RUN(suite_signatures_verify);
    RUN(refusals_name_their_cause);
    RUN(unknown_key_and_wrong_secret);
    RUN(replay_table);
    TEST_END();
}
