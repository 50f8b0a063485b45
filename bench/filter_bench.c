/* filter_bench.c - event-pattern matching per record with 1, 100 and 1,000
 * rules (#17), on EventBridge-shaped JSON records of ~460 bytes.
 *
 * For each rule count, records/s two ways: "walk", every rule matched in turn
 * against each record through one subject (the value read as JSON once per
 * record); and "set", the rules in one filter set (filter_set.h: indexed on
 * their exact-string and prefix fields, the candidates matched in full) asked once per
 * record - what the broker does for a stream's groups. Both next to the
 * naive reference measured in the same run: jansson parsing the value once
 * per record only (json_loadb + decref, no matching at all) - the floor of
 * any design that builds a DOM per record. The two ways must agree on every
 * match (checked). Events and rules: bench/rules_gen.h.
 *
 *   build/release/bench/filter_bench [--records N]
 */
#include "bench/rules_gen.h"
#include "broker/engine/filter.h"
#include "broker/engine/filter_set.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/batch.h"
#include "tests/unit/one_record.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS_DEFAULT 20000u
#define DISTINCT        256u /* distinct record values cycled through */

static uint8_t g_bufs[DISTINCT][2048];
static struct sl_record_view g_views[DISTINCT];

static int build(uint32_t i)
{
    char value[1024];
    int n = rules_gen_event(i, value, sizeof(value));
    if (n < 0 || (size_t)n >= sizeof(value)) {
        return -1;
    }
    struct sl_record rec = {.key = "k", .key_len = 1, .value = value, .value_len = (uint32_t)n,
                            .timestamp_ms = 1};
    return test_one_record(g_bufs[i], sizeof(g_bufs[i]), &rec, &g_views[i]);
}

static struct sl_filter *rule(uint32_t r)
{
    char p[512];
    rules_gen_pattern(r, p, sizeof(p));
    struct sl_filter *f = NULL;
    char why[256];
    if (sl_filter_parse(p, strlen(p), SL_FILTER_SCOPE_BODY, &f, why, sizeof(why)) != SL_OK) {
        fprintf(stderr, "filter_bench: rule %u: %s\n", r, why);
        exit(1);
    }
    return f;
}

int main(int argc, char **argv)
{
    uint32_t records = RECORDS_DEFAULT;
    if (argc == 3 && strcmp(argv[1], "--records") == 0) {
        records = (uint32_t)strtoul(argv[2], NULL, 10);
    }
    for (uint32_t i = 0; i < DISTINCT; i++) {
        if (build(i) != 0) {
            fprintf(stderr, "filter_bench: could not build record %u\n", i);
            return 1;
        }
    }
    /* The reference: one jansson parse per record, nothing matched. */
    uint64_t t0 = sl_clock_mono_ns();
    for (uint32_t i = 0; i < records; i++) {
        const struct sl_record_view *v = &g_views[i % DISTINCT];
        json_t *j = json_loadb((const char *)v->value, v->value_len, 0, NULL);
        json_decref(j);
    }
    double jansson_rps = records * 1e9 / (double)(sl_clock_mono_ns() - t0);
    printf("record value %u bytes; jansson parse only: %.0f records/s\n", g_views[0].value_len,
           jansson_rps);
    printf("%-6s %-5s %12s %11s %12s %10s %8s\n", "rules", "how", "records/s", "ns/record",
           "matches/rec", "vs jansson", "indexed");
    static const uint32_t counts[] = {1, 100, 1000};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        uint32_t n = counts[c];
        struct sl_filter **fs = calloc(n, sizeof(*fs));
        for (uint32_t r = 0; r < n; r++) {
            fs[r] = rule(r);
        }
        struct sl_filter_set *set = sl_filter_set_new();
        for (uint32_t r = 0; r < n && set != NULL; r++) {
            uint32_t slot;
            if (sl_filter_set_add(set, fs[r], &slot) != SL_OK) {
                fprintf(stderr, "filter_bench: could not add rule %u to the set\n", r);
                return 1;
            }
        }
        if (set == NULL) {
            return 1;
        }
        struct sl_filter_subject s;
        sl_filter_subject_init(&s);
        uint32_t recs = n >= 1000 ? records / 10 : records;
        uint64_t hits[2] = {0, 0};
        for (int how = 0; how < 2; how++) {
            t0 = sl_clock_mono_ns();
            for (uint32_t i = 0; i < recs; i++) {
                sl_filter_subject_set(&s, &g_views[i % DISTINCT]);
                if (how == 0) {
                    for (uint32_t r = 0; r < n; r++) {
                        hits[0] += sl_filter_match(fs[r], &s) ? 1 : 0;
                    }
                } else {
                    uint64_t bits[SL_FILTER_SET_WORDS];
                    sl_filter_set_match(set, &s, bits);
                    for (uint32_t w = 0; w < SL_FILTER_SET_WORDS; w++) {
                        hits[1] += (uint64_t)__builtin_popcountll(bits[w]);
                    }
                }
            }
            uint64_t ns = sl_clock_mono_ns() - t0;
            double rps = recs * 1e9 / (double)ns;
            printf("%-6u %-5s %12.0f %11.0f %12.2f %9.2fx %8u\n", n, how == 0 ? "walk" : "set",
                   rps, (double)ns / recs, (double)hits[how] / recs, rps / jansson_rps,
                   how == 0 ? 0 : sl_filter_set_indexed(set));
        }
        if (hits[0] != hits[1]) {
            fprintf(stderr, "filter_bench: the set found %llu matches, the walk %llu\n",
                    (unsigned long long)hits[1], (unsigned long long)hits[0]);
            return 1;
        }
        sl_filter_set_free(set);
        sl_filter_subject_fini(&s);
        for (uint32_t r = 0; r < n; r++) {
            sl_filter_free(fs[r]);
        }
        free(fs);
    }
    return 0;
}
