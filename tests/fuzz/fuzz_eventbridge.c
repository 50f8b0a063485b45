/* fuzz_eventbridge.c - the EventBridge front-end's decoders over untrusted
 * input: a PutEvents entry checked and rendered as its event envelope
 * (broker/api/eb_envelope.c), and an EventPattern compiled and matched
 * against that envelope as a rule's queue group would (filter_parse.c,
 * filter_match.c, body scope).
 *
 * Input: byte 0 = how long the pattern is (x 16, up to the first NUL after
 * it); then the pattern's bytes; the rest is the entry's JSON.
 * Checks beyond ASan/UBSan/leaks: an entry either yields an envelope that
 * jansson parses as an object whose source, detail-type and id are the
 * entry's (and whose detail is an object), with no error code, or NULL with
 * an AWS error code and a message; eb_entry_size never exceeds the input;
 * a pattern that compiles matches the envelope without fault, and the same
 * way twice.
 */
#include "broker/api/eb_int.h"
#include "broker/engine/filter.h"
#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_envelope(const json_t *entry, const char *env, size_t len)
{
    json_t *o = json_loadb(env, len, JSON_DECODE_INT_AS_REAL, NULL);
    SL_ASSERT(json_is_object(o));
    SL_ASSERT(json_equal(json_object_get(o, "source"), json_object_get(entry, "Source")));
    SL_ASSERT(json_equal(json_object_get(o, "detail-type"), json_object_get(entry, "DetailType")));
    SL_ASSERT(strcmp(json_string_value(json_object_get(o, "id")), "id-1") == 0);
    SL_ASSERT(json_is_object(json_object_get(o, "detail")));
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t plen = (size_t)data[0] * 16u;
    plen = plen > size - 1 ? size - 1 : plen;
    const char *pattern = (const char *)data + 1;
    const char *rest = pattern + plen;
    size_t rlen = size - 1 - plen;
    json_t *entry = json_loadb(rest, rlen, JSON_DECODE_INT_AS_REAL, NULL);
    size_t esize = eb_entry_size(entry);
    SL_ASSERT(esize <= rlen + 14u);
    const char *code = NULL;
    char why[EB_WHY_MAX] = "";
    size_t len = 0;
    char *env = eb_envelope(entry, "id-1", 1700000000000ull, &len, &code, why, sizeof(why));
    if (env != NULL) {
        SL_ASSERT(strlen(env) == len);
        check_envelope(entry, env, len);
    } else {
        SL_ASSERT(code != NULL && why[0] != '\0');
    }
    struct sl_filter *f = NULL;
    if (sl_filter_parse(pattern, plen, SL_FILTER_SCOPE_BODY, &f, why, sizeof(why)) == SL_OK) {
        const char *v = env != NULL ? env : rest;
        size_t vlen = env != NULL ? len : rlen;
        struct sl_record_view rv = {.value = (const uint8_t *)v, .value_len = (uint32_t)vlen};
        struct sl_filter_subject s;
        sl_filter_subject_init(&s);
        sl_filter_subject_set(&s, &rv);
        bool a = sl_filter_match(f, &s);
        bool b = sl_filter_match(f, &s);
        SL_ASSERT(a == b);
        sl_filter_subject_fini(&s);
        sl_filter_free(f);
    }
    free(env);
    json_decref(entry);
    return 0;
}
