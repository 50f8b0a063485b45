/* fuzz_filter.c - the event-pattern parser and matcher
 * (broker/engine/filter_*.c): sl_filter_parse on untrusted JSON in both
 * scopes, then sl_filter_match against a few fixed records and one record
 * built from the input.
 *
 * Input: `pattern JSON [ NUL attributes [ NUL value ] ]`, where attributes
 * are lines `key=value` (at most SL_RECORD_ATTRS_MAX) of the extra record and
 * value its value (read as JSON by body patterns).
 * Checks: the error message is NUL-terminated and within its buffer; a
 * filter that parsed matches deterministically (same answer twice); a filter
 * set (filter_set.h) holding the parsed filters and a few fixed ones of both
 * scopes, some filed in its index on the same paths, answers for every record exactly
 * what each filter alone answers, before and after slots are removed.
 */
#include "fuzz_util.h"

#include "broker/engine/filter.h"
#include "broker/engine/filter_set.h"
#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIXED 3
static uint8_t g_fixed_buf[NFIXED][4096];
static struct sl_record_view g_fixed[NFIXED];

#define A(k, v) {.key = k, .key_len = sizeof(k) - 1, .value = v, .value_len = sizeof(v) - 1}

/* Builds a one-record batch in buf and returns the record's view of it. */
static int make_view(uint8_t *buf, size_t cap, const struct sl_attr *attrs, uint32_t n,
                     const char *value, size_t value_len, struct sl_record_view *out)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    struct sl_record r = {.key = "k", .key_len = 1, .value = value,
                          .value_len = (uint32_t)value_len, .attrs = attrs, .attr_count = n,
                          .timestamp_ms = 1000};
    if (sl_batch_builder_add(&b, &r) != SL_OK) {
        return -1;
    }
    size_t len = 0;
    SL_ASSERT(sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) ==
              SL_OK);
    struct sl_batch_header h;
    SL_ASSERT(sl_batch_validate(buf, len, cap, &h) == SL_OK);
    struct sl_batch_iter it;
    SL_ASSERT(sl_batch_iter_init(&it, buf, &h, NULL, NULL, 0) == SL_OK);
    SL_ASSERT(sl_batch_iter_next(&it, out) == SL_OK);
    return 0;
}

/* Patterns that share the index's paths with what inputs write. */
static const char *const k_fixed_patterns[] = {
    "{\"name\": [\"Foo\"]}",
    "{\"name\": [\"FOO\", \"Foo\"], \"price\": [5]}",
    "{\"detail\": {\"state\": [\"shipped\"]}}",
    "{\"a\": {\"b\": [\"x\u00e9\"]}}",
    "{\"price\": [{\"numeric\": [\">\", 1]}]}",
    "{\"name\": [{\"prefix\": \"F\"}, \"x\"], \"detail\": {\"ip\": [{\"prefix\": \"10.\"}]}}",
};
/* The same in attribute scope (filed on the attribute's value). */
static const char *const k_fixed_attr_patterns[] = {
    "{\"name\": [\"Foo\", \"FOO\"]}",
    "{\"price\": [\"5\", {\"prefix\": \"7\"}]}",
    "{\"region\": [{\"prefix\": \"eu-\"}]}",
};
#define NBODY (sizeof(k_fixed_patterns) / sizeof(k_fixed_patterns[0]))
#define NPAT  (NBODY + sizeof(k_fixed_attr_patterns) / sizeof(k_fixed_attr_patterns[0]))
static struct sl_filter *g_fixed_filters[NPAT];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NPAT; i++) {
        const char *p = i < NBODY ? k_fixed_patterns[i] : k_fixed_attr_patterns[i - NBODY];
        enum sl_filter_scope scope = i < NBODY ? SL_FILTER_SCOPE_BODY : SL_FILTER_SCOPE_ATTRIBUTES;
        SL_ASSERT(sl_filter_parse(p, strlen(p), scope, &g_fixed_filters[i], NULL, 0) == SL_OK);
    }
    static const struct sl_attr r0[] = {A("price", "5"), A("name", "Foo"),
                                        A("region", "eu-west-1"), A("flag", "true"),
                                        A("amount", "-12.5e1")};
    static const struct sl_attr r2[] = {A("price", "abc"), A("price", "7"), A("", "empty"),
                                        A("x", "1e999"), A("name", "FOO"), A("$or", "x")};
    static const char v0[] = "{\"price\": 5, \"name\": \"Foo\", \"detail\": {\"state\": "
                             "\"shipped\", \"ip\": \"10.1.2.3\", \"n\": [1, 2.5, null, true]}}";
    static const char v2[] = "{\"a\": [{\"b\": \"x\\u00e9\"}, {\"b\": -1e3}], \"a\": {}}";
    SL_ASSERT(make_view(g_fixed_buf[0], sizeof(g_fixed_buf[0]), r0, 5, v0, strlen(v0),
                        &g_fixed[0]) == 0);
    /* typed SQS/SNS message attributes, String.Array among them (one not JSON) */
    static const struct sl_attr r1[] = {A("sqs:name", "String.Array\0[\"Foo\", \"bar\"]"),
                                        A("sqs:price", "String.Array\0[5, \"7\", 12]"),
                                        A("sqs:region", "String.Array\0[\"eu-west-1\""),
                                        A("sqs:flag", "String\0true")};
    SL_ASSERT(make_view(g_fixed_buf[1], sizeof(g_fixed_buf[1]), r1, 4, "not json", 8,
                        &g_fixed[1]) == 0);
    SL_ASSERT(make_view(g_fixed_buf[2], sizeof(g_fixed_buf[2]), r2, 6, v2, strlen(v2),
                        &g_fixed[2]) == 0);
    return 0;
}

/* Matches `f` against every record twice: the same answer each time, also
 * on a subject reused across filters. */
static void match_all(const struct sl_filter *f, struct sl_filter_subject *s,
                      const struct sl_record_view *xv)
{
    for (int i = 0; i <= NFIXED; i++) {
        const struct sl_record_view *v = i < NFIXED ? &g_fixed[i] : xv;
        if (v == NULL) {
            continue;
        }
        sl_filter_subject_set(s, v);
        bool m1 = sl_filter_match(f, s);
        SL_ASSERT(m1 == sl_filter_match(f, s));
    }
}

/* The set's answer equals each filter's own, for every record. */
static void set_check(const struct sl_filter_set *fs, struct sl_filter *const *slots, uint32_t n,
                      struct sl_filter_subject *s, const struct sl_record_view *xv)
{
    for (int i = 0; i <= NFIXED; i++) {
        const struct sl_record_view *v = i < NFIXED ? &g_fixed[i] : xv;
        if (v == NULL) {
            continue;
        }
        sl_filter_subject_set(s, v);
        uint64_t bits[SL_FILTER_SET_WORDS];
        sl_filter_set_match(fs, s, bits);
        for (uint32_t k = 0; k < SL_FILTER_SET_MAX; k++) {
            bool want = k < n && slots[k] != NULL && sl_filter_match(slots[k], s);
            SL_ASSERT(sl_filter_set_bit(bits, k) == want);
        }
    }
}

/* The parsed filters with the fixed ones in a set, checked; then every
 * other slot removed, checked again. */
static void set_all(struct sl_filter *const *parsed, struct sl_filter_subject *s,
                    const struct sl_record_view *xv)
{
    struct sl_filter_set *fs = sl_filter_set_new();
    SL_ASSERT(fs != NULL);
    struct sl_filter *slots[NPAT + 2];
    uint32_t n = 0;
    for (size_t i = 0; i < NPAT + 2; i++) {
        struct sl_filter *f = i < 2 ? parsed[i] : g_fixed_filters[i - 2];
        if (f == NULL) {
            continue;
        }
        uint32_t slot;
        SL_ASSERT(sl_filter_set_add(fs, f, &slot) == SL_OK && slot == n);
        slots[n++] = f;
    }
    set_check(fs, slots, n, s, xv);
    for (uint32_t k = 0; k < n; k += 2) {
        sl_filter_set_remove(fs, k);
        slots[k] = NULL;
    }
    set_check(fs, slots, n, s, xv);
    sl_filter_set_free(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul != NULL ? (size_t)(nul - data) : size;
    /* The pattern in an exact-size buffer (no NUL): the parser must not read past it. */
    char *pat = malloc(plen > 0 ? plen : 1);
    SL_ASSERT(pat != NULL);
    memcpy(pat, data, plen);

    struct sl_filter *fs[2] = {NULL, NULL};
    for (int scope = 0; scope < 2; scope++) {
        struct sl_filter *f = (struct sl_filter *)(uintptr_t)1; /* must become NULL on error */
        char why[200];
        memset(why, 'x', sizeof(why));
        int rc = sl_filter_parse(pat, plen, (enum sl_filter_scope)scope, &f, why, sizeof(why));
        if (rc != SL_OK) {
            SL_ASSERT(f == NULL);
            SL_ASSERT(rc == SL_EINVAL || rc == SL_ETOOBIG || rc == SL_ENOMEM);
            SL_ASSERT(memchr(why, 0, sizeof(why)) != NULL);
        } else {
            SL_ASSERT(f != NULL && sl_filter_scope(f) == (enum sl_filter_scope)scope);
            fs[scope] = f;
        }
    }
    free(pat); /* a filter must not borrow the pattern text */
    if (fs[0] == NULL && fs[1] == NULL) {
        return 0;
    }

    /* The extra record: attributes from the input after the NUL, then its value. */
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    uint32_t na = 0;
    const char *value = "", *end = (const char *)data + size;
    size_t value_len = 0;
    if (nul != NULL) {
        const char *p = (const char *)nul + 1;
        const char *vnul = memchr(p, 0, (size_t)(end - p));
        if (vnul != NULL) {
            value = vnul + 1;
            value_len = (size_t)(end - value);
            end = vnul;
        }
        while (p < end && na < SL_RECORD_ATTRS_MAX) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl != NULL ? nl : end;
            const char *eq = memchr(p, '=', (size_t)(le - p));
            const char *ke = eq != NULL ? eq : le;
            const char *vs = eq != NULL ? eq + 1 : le;
            if ((size_t)(ke - p) <= SL_RECORD_ATTR_KEY_MAX &&
                (size_t)(le - vs) <= SL_RECORD_ATTR_VALUE_MAX) {
                attrs[na].key = p;
                attrs[na].key_len = (uint32_t)(ke - p);
                attrs[na].value = vs;
                attrs[na].value_len = (uint32_t)(le - vs);
                na++;
            }
            p = nl != NULL ? nl + 1 : end;
        }
    }
    static uint8_t xbuf[SL_BATCH_HEADER_BYTES + 64 + (1u << 20) +
                        SL_RECORD_ATTRS_MAX *
                            (SL_RECORD_ATTR_KEY_MAX + SL_RECORD_ATTR_VALUE_MAX + 10)];
    struct sl_record_view xv;
    bool have_x = value_len <= (1u << 20) &&
                  make_view(xbuf, sizeof(xbuf), attrs, na, value, value_len, &xv) == 0;

    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    set_all(fs, &s, have_x ? &xv : NULL);
    for (int scope = 0; scope < 2; scope++) {
        if (fs[scope] != NULL) {
            match_all(fs[scope], &s, have_x ? &xv : NULL);
        }
        sl_filter_free(fs[scope]);
    }
    sl_filter_subject_fini(&s);
    return 0;
}
