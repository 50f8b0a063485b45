/* fuzz_auth.c - what an unauthenticated peer controls: the SCRAM-SHA-256
 * messages the broker parses (common/scram.c, server side), the ones the
 * client library parses from a broker (client side), and the auth file
 * parser (broker/auth/auth.c).
 *
 * Input: byte 0 picks the part; the rest is split at the first '\n' where
 * two messages are needed. Checks: no crash, leak or UB; a server never
 * accepts a proof for an unknown user; the auth file parser returns a
 * struct only on SL_OK, and its ACL check answers on any stream name.
 */
#include "fuzz_util.h"

#include "broker/auth/auth.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_scram_cred g_cred;
static int g_ready;
static const uint8_t g_fake[SL_SCRAM_KEY_BYTES] = {1, 2, 3};

static bool lookup(void *ctx, const char *user, struct sl_scram_cred *cred)
{
    (void)ctx;
    if (strcmp(user, "alice") != 0) {
        return false;
    }
    *cred = g_cred;
    return true;
}

static void split(const char *p, size_t n, size_t *first_len, const char **second,
                  size_t *second_len)
{
    const char *nl = memchr(p, '\n', n);
    *first_len = nl != NULL ? (size_t)(nl - p) : n;
    *second = nl != NULL ? nl + 1 : p + n;
    *second_len = nl != NULL ? n - *first_len - 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ready) {
        SL_ASSERT(sl_scram_cred_make("pw", 2, SL_SCRAM_ITERATIONS_MIN, &g_cred) == SL_OK);
        g_ready = 1;
    }
    if (size < 1) {
        return 0;
    }
    const char *p = (const char *)data + 1;
    size_t n = size - 1, l1, l2;
    const char *m2;
    char out[SL_SCRAM_MSG_MAX];
    switch (data[0] % 3) {
    case 0: {
        struct sl_scram_server s;
        split(p, n, &l1, &m2, &l2);
        if (sl_scram_server_first(&s, p, l1, lookup, NULL, g_fake, out, sizeof(out)) == SL_OK) {
            int rc = sl_scram_server_final(&s, m2, l2, out, sizeof(out));
            SL_ASSERT(rc != SL_OK || s.known); /* an unknown user never passes */
        }
        break;
    }
    case 1: {
        struct sl_scram_client c;
        split(p, n, &l1, &m2, &l2);
        SL_ASSERT(sl_scram_client_first(&c, "alice", out, sizeof(out)) == SL_OK);
        /* server-first must extend our nonce: put it in front so parsing goes deep */
        char sf[2 * SL_SCRAM_MSG_MAX];
        int k = snprintf(sf, sizeof(sf), "r=%s", c.nonce);
        size_t take = l1 < sizeof(sf) - (size_t)k ? l1 : sizeof(sf) - (size_t)k;
        memcpy(sf + k, p, take);
        if (sl_scram_client_final(&c, "pw", 2, sf, (size_t)k + take, out, sizeof(out)) ==
            SL_OK) {
            (void)sl_scram_client_verify(&c, m2, l2);
        }
        break;
    }
    default: {
        struct sl_auth *a = NULL;
        char why[256];
        if (sl_auth_parse(p, n, "fuzz", &a, why, sizeof(why)) == SL_OK) {
            SL_ASSERT(a != NULL);
            (void)sl_auth_allowed(a, "alice", SL_ACL_PRODUCE, "orders");
            (void)sl_auth_allowed(a, "bob", SL_ACL_ANY, "");
            const char *who = NULL;
            (void)sl_auth_aws_secret(a, "AKID", &who);
            sl_auth_free(a);
        } else {
            SL_ASSERT(a == NULL);
        }
        break;
    }
    }
    return 0;
}
