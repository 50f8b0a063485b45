/* test_filter_set.c - a set of event patterns matched at once
 * (broker/engine/filter_set.c) answers exactly what each pattern matched
 * alone with sl_filter_match answers: generated patterns and records
 * (randomised; the seed is printed, SLUICE_TEST_SEED=N replays one), slots
 * added and removed in between (body and attribute scope, typed SQS/SNS
 * attributes among them); the index's edge cases named one by one (case,
 * arrays, non-strings, non-JSON values, prefixes, $or); the
 * limit; and the memo (hits, eviction, a new version after a change).
 */
#include "broker/engine/filter.h"
#include "broker/engine/filter_set.h"

#include "common/error.h"
#include "storage/batch.h"

#include "tests/unit/one_record.h"
#include "tests/unit/test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORDS  200u
#define PATTERNS 400u

static uint8_t g_bufs[RECORDS][4096];
static struct sl_record_view g_views[RECORDS];
static uint64_t g_rng;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

static int view(uint32_t i, const char *value, const struct sl_attr *attrs, uint32_t na)
{
    struct sl_record rec = {.key = "k",
                            .key_len = 1,
                            .value = value,
                            .value_len = (uint32_t)strlen(value),
                            .attrs = attrs,
                            .attr_count = na,
                            .timestamp_ms = 1};
    return test_one_record(g_bufs[i], sizeof(g_bufs[i]), &rec, &g_views[i]);
}

/* A small vocabulary, so that patterns and records meet often. */
static const char *const k_words[] = {"a", "b", "A", "ab", "", "shop", "Shop", "x\\u00e9"};
#define WORDS (sizeof(k_words) / sizeof(k_words[0]))

/* A scalar of a record: mostly a string of the vocabulary. */
static void scalar(char *out, size_t cap)
{
    switch (rnd(8)) {
    case 0:
        snprintf(out, cap, "%u", rnd(5));
        break;
    case 1:
        snprintf(out, cap, "%s", rnd(2) ? "null" : "true");
        break;
    default:
        snprintf(out, cap, "\"%s\"", k_words[rnd(WORDS)]);
        break;
    }
}

/* A field's value in a record: a scalar, an array of them, or an object. */
static void field_value(char *out, size_t cap)
{
    char s1[32], s2[32];
    scalar(s1, sizeof(s1));
    scalar(s2, sizeof(s2));
    switch (rnd(6)) {
    case 0:
        snprintf(out, cap, "[%s, %s]", s1, s2);
        break;
    case 1:
        snprintf(out, cap, "[[%s], {\"y\": %s}]", s1, s2);
        break;
    case 2:
        snprintf(out, cap, "{\"y\": [%s]}", s1);
        break;
    default:
        snprintf(out, cap, "%s", s1);
        break;
    }
}

static void gen_record(uint32_t i)
{
    char value[1024], f1[96], f2[96], f3[96], f4[96];
    field_value(f1, sizeof(f1));
    field_value(f2, sizeof(f2));
    field_value(f3, sizeof(f3));
    field_value(f4, sizeof(f4));
    if (rnd(20) == 0) {
        snprintf(value, sizeof(value), "%s", rnd(2) ? "not json" : "[\"source\"]");
    } else {
        snprintf(value, sizeof(value),
                 "{\"source\": %s, \"detail-type\": %s, \"detail\": {\"state\": %s, "
                 "\"items\": [{\"sku\": %s}, {\"sku\": \"b\"}]}%s}",
                 f1, f2, f3, f4, rnd(3) == 0 ? ", \"source\": \"shop\"" : "");
    }
    /* Attributes: a plain "source", a number, the typed SQS/SNS form of
     * "source" (type, NUL, value), a second plain "source"; a run of them
     * from the first or the second, so that the typed one is sometimes read. */
    static char avals[RECORDS][4][64];
    snprintf(avals[i][0], sizeof(avals[i][0]), "%s", k_words[rnd(7)]);
    snprintf(avals[i][1], sizeof(avals[i][1]), "%u", rnd(5));
    /* sometimes a String.Array (SNS): two words, or a number and a word */
    int tl = rnd(3) != 0 ? snprintf(avals[i][2], sizeof(avals[i][2]), "String%c%s", 0,
                                    k_words[rnd(7)])
                         : snprintf(avals[i][2], sizeof(avals[i][2]),
                                    rnd(2) ? "String.Array%c[\"%s\", \"%s\"]"
                                           : "String.Array%c[7, \"%s\"]%.0s",
                                    0, k_words[rnd(7)], k_words[rnd(7)]);
    snprintf(avals[i][3], sizeof(avals[i][3]), "%s", k_words[rnd(7)]);
    struct sl_attr attrs[4] = {
        {.key = "source",
         .key_len = 6,
         .value = avals[i][0],
         .value_len = (uint32_t)strlen(avals[i][0])},
        {.key = "n",
         .key_len = 1,
         .value = avals[i][1],
         .value_len = (uint32_t)strlen(avals[i][1])},
        {.key = "sqs:source", .key_len = 10, .value = avals[i][2], .value_len = (uint32_t)tl},
        {.key = "source",
         .key_len = 6,
         .value = avals[i][3],
         .value_len = (uint32_t)strlen(avals[i][3])},
    };
    uint32_t from = rnd(2);
    if (view(i, value, attrs + from, rnd(5 - from)) != 0) {
        fprintf(stderr, "could not build record %u: %s\n", i, value);
        exit(1);
    }
}

static const char *const k_paths[] = {
    "\"source\": %s", "\"detail-type\": %s", "\"detail\": {\"state\": %s}",
    "\"detail\": {\"items\": {\"sku\": %s}}", "\"detail\": {\"state\": {\"y\": %s}}"};
#define PATHS (sizeof(k_paths) / sizeof(k_paths[0]))

/* Alternatives of one field: mostly exact strings (what the index files). */
static void alternatives(char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    uint32_t count = 1 + rnd(3);
    uint32_t mode = rnd(4); /* 0, 1: exact only; 2: exact or prefix (filed); 3: any */
    for (uint32_t i = 0; i < count && n < cap; i++) {
        const char *sep = i > 0 ? ", " : "";
        const char *w = k_words[rnd(WORDS)];
        uint32_t kind = mode < 2 ? 0 : mode == 2 ? rnd(2) : rnd(7);
        switch (kind) {
        case 0:
            n += (size_t)snprintf(out + n, cap - n, "%s\"%s\"", sep, w);
            break;
        case 1:
            n += (size_t)snprintf(out + n, cap - n, "%s{\"prefix\": \"%s\"}", sep, w);
            break;
        case 2:
            n += (size_t)snprintf(out + n, cap - n, "%s{\"anything-but\": \"%s\"}", sep, w);
            break;
        case 3:
            n += (size_t)snprintf(out + n, cap - n, "%s{\"exists\": %s}", sep,
                                  rnd(2) ? "true" : "false");
            break;
        case 4:
            n += (size_t)snprintf(out + n, cap - n, "%s{\"numeric\": [\">\", %u]}", sep, rnd(4));
            break;
        case 5:
            n += (size_t)snprintf(out + n, cap - n,
                                  "%s{\"prefix\": {\"equals-ignore-case\": "
                                  "\"%s\"}}",
                                  sep, w);
            break;
        default:
            n += (size_t)snprintf(out + n, cap - n, "%s{\"equals-ignore-case\": \"%s\"}", sep, w);
            break;
        }
    }
    if (n < cap) {
        snprintf(out + n, cap - n, "]");
    }
}

/* A random pattern; its scope in *scope. Some repeat a key (nested paths
 * merged by the parser) or put everything under a top-level $or. */
static struct sl_filter *gen_pattern(enum sl_filter_scope *scope)
{
    char p[1024], alts[256], field[384];
    *scope = rnd(8) == 0 ? SL_FILTER_SCOPE_ATTRIBUTES : SL_FILTER_SCOPE_BODY;
    size_t n = (size_t)snprintf(p, sizeof(p), "{");
    if (*scope == SL_FILTER_SCOPE_ATTRIBUTES) {
        alternatives(alts, sizeof(alts));
        n += (size_t)snprintf(p + n, sizeof(p) - n, "\"source\": %s", alts);
    } else if (rnd(10) == 0) {
        char a2[256];
        alternatives(alts, sizeof(alts));
        alternatives(a2, sizeof(a2));
        n += (size_t)snprintf(p + n, sizeof(p) - n,
                              "\"$or\": [{\"source\": %s}, {\"detail-type\": %s}]", alts, a2);
    } else {
        uint32_t first = rnd(PATHS), count = 1 + rnd(2);
        for (uint32_t i = 0; i < count; i++) {
            alternatives(alts, sizeof(alts));
            snprintf(field, sizeof(field), k_paths[(first + i * 2) % PATHS], alts);
            n += (size_t)snprintf(p + n, sizeof(p) - n, "%s%s", i > 0 ? ", " : "", field);
        }
    }
    snprintf(p + n, sizeof(p) - n, "}");
    struct sl_filter *f = NULL;
    char why[256];
    if (sl_filter_parse(p, strlen(p), *scope, &f, why, sizeof(why)) != SL_OK) {
        return NULL; /* e.g. one key twice: not a valid pattern */
    }
    return f;
}

/* The set's answer against each filter alone, for every record; the number
 * of disagreements (each printed). */
static uint32_t compare(const struct sl_filter_set *fs, struct sl_filter *const *slots,
                        struct sl_filter_subject *s)
{
    uint32_t bad = 0;
    uint64_t bits[SL_FILTER_SET_WORDS];
    for (uint32_t r = 0; r < RECORDS; r++) {
        sl_filter_subject_set(s, &g_views[r]);
        sl_filter_set_match(fs, s, bits);
        for (uint32_t i = 0; i < SL_FILTER_SET_MAX; i++) {
            bool want = slots[i] != NULL && sl_filter_match(slots[i], s);
            if (want != sl_filter_set_bit(bits, i)) {
                fprintf(stderr, "  record %u (%.*s) slot %u: set says %d, filter says %d\n", r,
                        (int)g_views[r].value_len, (const char *)g_views[r].value, i, !want, want);
                bad++;
            }
        }
    }
    return bad;
}

TEST(set_equals_each_filter_alone)
{
    static struct sl_filter *slots[SL_FILTER_SET_MAX];
    memset(slots, 0, sizeof(slots));
    for (uint32_t r = 0; r < RECORDS; r++) {
        gen_record(r);
    }
    struct sl_filter_set *fs = sl_filter_set_new();
    CHECK(fs != NULL);
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    uint32_t added = 0, indexed_seen = 0;
    for (int round = 0; round < 4; round++) {
        while (added < PATTERNS * (uint32_t)(round + 1)) {
            enum sl_filter_scope scope;
            struct sl_filter *f = gen_pattern(&scope);
            if (f == NULL) {
                continue;
            }
            uint32_t slot;
            CHECK_EQ(sl_filter_set_add(fs, f, &slot), SL_OK);
            CHECK(slot < SL_FILTER_SET_MAX && slots[slot] == NULL);
            slots[slot] = f;
            added++;
        }
        indexed_seen += sl_filter_set_indexed(fs);
        uint32_t bad = compare(fs, slots, &s);
        CHECK_EQ(bad, 0);
        /* Remove about half: tombstones, freed paths, slots reused next round. */
        for (uint32_t i = 0; i < SL_FILTER_SET_MAX; i++) {
            if (slots[i] != NULL && rnd(2) == 0) {
                sl_filter_set_remove(fs, i);
                sl_filter_free(slots[i]);
                slots[i] = NULL;
            }
        }
        CHECK_EQ(compare(fs, slots, &s), 0);
    }
    CHECK(indexed_seen > 0); /* the index was exercised, not only the walk */
    for (uint32_t i = 0; i < SL_FILTER_SET_MAX; i++) {
        if (slots[i] != NULL) {
            sl_filter_set_remove(fs, i);
            sl_filter_free(slots[i]);
        }
    }
    CHECK_EQ(sl_filter_set_count(fs), 0);
    CHECK_EQ(sl_filter_set_indexed(fs), 0);
    sl_filter_subject_fini(&s);
    sl_filter_set_free(fs);
}

static struct sl_filter *parse(const char *p, enum sl_filter_scope scope)
{
    struct sl_filter *f = NULL;
    char why[256];
    if (sl_filter_parse(p, strlen(p), scope, &f, why, sizeof(why)) != SL_OK) {
        fprintf(stderr, "  %s: %s\n", p, why);
    }
    return f;
}

/* The index's edge cases, each against the filter alone. */
TEST(index_edge_cases)
{
    static const char *const pats[] = {
        "{\"source\": [\"shop\"]}", /* indexed */
        "{\"source\": [\"Shop\"]}", /* case-sensitive */
        "{\"detail\": {\"state\": [\"b\"]}, \"source\": [\"a\", \"b\"]}",
        "{\"detail\": {\"items\": {\"sku\": [\"b\"]}}}", /* arrays spread */
        "{\"source\": [\"1\"]}",                         /* a string, not the number 1 */
        "{\"source\": [{\"prefix\": \"sh\"}, \"b\"]}",   /* indexed: prefix */
        "{\"source\": [{\"prefix\": \"shop\"}]}",        /* the whole value */
        "{\"source\": [{\"prefix\": {\"equals-ignore-case\": \"SH\"}}]}", /* not indexed */
        "{\"$or\": [{\"source\": [\"shop\"]}, {\"n\": [1]}]}",            /* not indexed */
        "{}", /* every JSON object, and more */
    };
    static const char *const recs[] = {
        "{\"source\": \"shop\"}",
        "{\"source\": \"SHOP\"}",
        "{\"source\": [\"x\", \"Shop\"]}",
        "{\"source\": 1, \"n\": 1}",
        "{\"source\": \"b\", \"detail\": {\"state\": [\"a\", \"b\"], \"items\": [{\"sku\": "
        "\"a\"}, {\"sku\": \"b\"}]}}",
        "{\"source\": {\"shop\": \"shop\"}}",
        "not json",
        "{\"sour\\u0063e\": \"shop\"}", /* an escaped key is the same key */
    };
    const uint32_t np = sizeof(pats) / sizeof(pats[0]), nr = sizeof(recs) / sizeof(recs[0]);
    struct sl_filter *fs_[16];
    struct sl_filter_set *fs = sl_filter_set_new();
    CHECK(fs != NULL);
    for (uint32_t i = 0; i < np; i++) {
        fs_[i] = parse(pats[i], SL_FILTER_SCOPE_BODY);
        CHECK(fs_[i] != NULL);
        uint32_t slot;
        CHECK_EQ(sl_filter_set_add(fs, fs_[i], &slot), SL_OK);
        CHECK_EQ(slot, i);
    }
    CHECK_EQ(sl_filter_set_indexed(fs), 7);
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    uint32_t total = 0;
    for (uint32_t r = 0; r < nr; r++) {
        CHECK(view(r, recs[r], NULL, 0) == 0);
        sl_filter_subject_set(&s, &g_views[r]);
        uint64_t bits[SL_FILTER_SET_WORDS];
        sl_filter_set_match(fs, &s, bits);
        for (uint32_t i = 0; i < np; i++) {
            bool want = sl_filter_match(fs_[i], &s);
            CHECK_EQ(sl_filter_set_bit(bits, i), want);
            total += want ? 1 : 0;
        }
        for (uint32_t i = np; i < SL_FILTER_SET_MAX; i++) {
            CHECK(!sl_filter_set_bit(bits, i));
        }
    }
    CHECK(total >= 10); /* the records do match: not vacuous */
    for (uint32_t i = 0; i < np; i++) {
        sl_filter_set_remove(fs, i);
        sl_filter_free(fs_[i]);
    }
    sl_filter_subject_fini(&s);
    sl_filter_set_free(fs);
}

TEST(set_limit)
{
    struct sl_filter *f = parse("{\"source\": [\"a\"]}", SL_FILTER_SCOPE_BODY);
    CHECK(f != NULL);
    struct sl_filter_set *fs = sl_filter_set_new();
    CHECK(fs != NULL);
    uint32_t slot;
    for (uint32_t i = 0; i < SL_FILTER_SET_MAX; i++) {
        CHECK_EQ(sl_filter_set_add(fs, f, &slot), SL_OK);
        CHECK_EQ(slot, i);
    }
    CHECK_EQ(sl_filter_set_add(fs, f, &slot), SL_ELIMIT);
    sl_filter_set_remove(fs, 7);
    CHECK_EQ(sl_filter_set_add(fs, f, &slot), SL_OK);
    CHECK_EQ(slot, 7); /* the lowest free slot */
    CHECK(view(0, "{\"source\": [\"b\", \"a\"]}", NULL, 0) == 0);
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    sl_filter_subject_set(&s, &g_views[0]);
    uint64_t bits[SL_FILTER_SET_WORDS];
    sl_filter_set_match(fs, &s, bits);
    for (uint32_t i = 0; i < SL_FILTER_SET_MAX; i++) {
        CHECK(sl_filter_set_bit(bits, i));
    }
    sl_filter_subject_fini(&s);
    sl_filter_set_free(fs);
    sl_filter_free(f);
}

TEST(memo_hits_evicts_and_follows_versions)
{
    struct sl_filter *f = parse("{\"source\": [\"a\"]}", SL_FILTER_SCOPE_BODY);
    struct sl_filter *g = parse("{\"source\": [{\"prefix\": \"\"}]}", SL_FILTER_SCOPE_BODY);
    CHECK(f != NULL && g != NULL);
    struct sl_filter_set *fs = sl_filter_set_new();
    struct sl_filter_memo *m = sl_filter_memo_new();
    CHECK(fs != NULL && m != NULL);
    uint32_t sf, sg;
    CHECK_EQ(sl_filter_set_add(fs, f, &sf), SL_OK);
    uint64_t v1 = sl_filter_set_version(fs);
    CHECK(view(0, "{\"source\": \"a\"}", NULL, 0) == 0);
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    sl_filter_subject_set(&s, &g_views[0]);
    CHECK(sl_filter_memo_find(m, v1, 3, 100) == NULL);
    const uint64_t *b = sl_filter_memo_match(m, fs, &s, 3, 100);
    CHECK(sl_filter_set_bit(b, sf));
    CHECK(sl_filter_memo_find(m, v1, 3, 100) == b);
    CHECK(sl_filter_memo_find(m, v1, 4, 100) == NULL); /* another shard */
    CHECK(sl_filter_memo_find(m, v1, 3, 101) == NULL);
    /* A window of consecutive records of one shard is held whole. */
    for (uint64_t seq = 100; seq < 100 + SL_FILTER_MEMO_ENTRIES; seq++) {
        (void)sl_filter_memo_match(m, fs, &s, 3, seq);
    }
    CHECK(sl_filter_memo_find(m, v1, 3, 100) != NULL);
    CHECK(sl_filter_memo_find(m, v1, 3, 100 + SL_FILTER_MEMO_ENTRIES - 1) != NULL);
    (void)sl_filter_memo_match(m, fs, &s, 3, 100 + SL_FILTER_MEMO_ENTRIES);
    CHECK(sl_filter_memo_find(m, v1, 3, 100) == NULL); /* evicted by the next one */
    /* A change of the set is a new version: no stale answer is found. */
    CHECK_EQ(sl_filter_set_add(fs, g, &sg), SL_OK);
    uint64_t v2 = sl_filter_set_version(fs);
    CHECK(v2 != v1);
    CHECK(sl_filter_memo_find(m, v2, 3, 101) == NULL);
    b = sl_filter_memo_match(m, fs, &s, 3, 101);
    CHECK(sl_filter_set_bit(b, sf) && sl_filter_set_bit(b, sg));
    /* Another set never shares a version. */
    struct sl_filter_set *other = sl_filter_set_new();
    CHECK(other != NULL && sl_filter_set_version(other) != v2);
    sl_filter_set_free(other);
    sl_filter_subject_fini(&s);
    sl_filter_memo_free(m);
    sl_filter_set_free(fs);
    sl_filter_free(f);
    sl_filter_free(g);
}

int main(void)
{
    const char *env = getenv("SLUICE_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    g_rng = seed != 0 ? seed : 1;
    printf("test_filter_set: seed %llu (SLUICE_TEST_SEED=%llu replays it)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    RUN(set_equals_each_filter_alone);
    RUN(index_edge_cases);
    RUN(set_limit);
    RUN(memo_hits_evicts_and_follows_versions);
    TEST_END();
}
