/* fuzz_transform.c - push targets' body transforms (broker/push/transform.c):
 * an untrusted spec (from PutTargets) compiled, then applied to an untrusted
 * event (a producer's record).
 *
 * Input: the spec, a NUL byte, the event (no NUL: the spec is the whole
 * input and the event is a fixed EventBridge event).
 * Checks beyond ASan/UBSan/leaks: compile gives SL_OK, or an error with a
 * message; apply gives SL_OK with an output of at most
 * SL_PUSH_TRANSFORM_OUT_MAX bytes, NUL-terminated at its length, or
 * SL_EINVAL / SL_ETOOBIG with no output; applying twice gives the same bytes.
 */
#include "broker/push/transform.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char EVENT[] =
    "{\"version\":\"0\",\"id\":\"1\",\"detail-type\":\"t\",\"source\":\"s\",\"account\":\"0\","
    "\"time\":\"2026-01-01T00:00:00Z\",\"region\":\"r\",\"resources\":[\"a\"],"
    "\"detail\":{\"a\":{\"b\":[1,\"x\",null]},\"s\":\"q\\\"uote\"}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul != NULL ? (size_t)(nul - data) : size;
    const char *event = nul != NULL ? (const char *)nul + 1 : EVENT;
    size_t elen = nul != NULL ? size - slen - 1 : sizeof(EVENT) - 1;
    struct sl_push_transform *t = NULL;
    char why[256] = "";
    int rc = sl_push_transform_compile((const char *)data, slen, &t, why, sizeof(why));
    if (rc != SL_OK) {
        SL_ASSERT(t == NULL && why[0] != '\0');
        return 0;
    }
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    rc = sl_push_transform_apply(t, event, elen, 1700000000000ull, &a, &alen);
    if (rc == SL_OK) {
        SL_ASSERT(alen <= SL_PUSH_TRANSFORM_OUT_MAX && a[alen] == '\0');
        SL_ASSERT(sl_push_transform_apply(t, event, elen, 1700000000000ull, &b, &blen) == SL_OK);
        SL_ASSERT(alen == blen && memcmp(a, b, alen) == 0);
    } else {
        SL_ASSERT(a == NULL && (rc == SL_EINVAL || rc == SL_ETOOBIG || rc == SL_ENOMEM));
    }
    free(a);
    free(b);
    sl_push_transform_free(t);
    return 0;
}
