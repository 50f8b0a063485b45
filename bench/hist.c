/* hist.c - the log-linear histogram (bench/hist.h).
 *
 * Bucket of v: v itself when v < 256; else with e = floor(log2 v) >= 8 the top 8 bits of
 * v (1mmmmmmm) give the sub-bucket m, index 256 + (e - 8) * 128 + m. A bucket then spans
 * 2^(e-7) values starting at (128 + m) << (e - 7).
 */
#include "bench/hist.h"

#include <string.h>

#define SUB_COUNT (1u << BENCH_HIST_SUB_BITS)

_Static_assert(BENCH_HIST_LINEAR == 2u * SUB_COUNT, "linear part is the first two powers");

static uint32_t bucket_of(uint64_t v)
{
    if (v < BENCH_HIST_LINEAR) {
        return (uint32_t)v;
    }
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t m = (uint32_t)(v >> (e - BENCH_HIST_SUB_BITS)) & (SUB_COUNT - 1u);
    return BENCH_HIST_LINEAR + (e - 8u) * SUB_COUNT + m;
}

/* [*lo, *hi] of bucket i. */
static void bucket_range(uint32_t i, uint64_t *lo, uint64_t *hi)
{
    if (i < BENCH_HIST_LINEAR) {
        *lo = *hi = i;
        return;
    }
    uint32_t e = 8u + (i - BENCH_HIST_LINEAR) / SUB_COUNT;
    uint64_t m = (i - BENCH_HIST_LINEAR) % SUB_COUNT;
    uint32_t shift = e - BENCH_HIST_SUB_BITS;
    *lo = (SUB_COUNT + m) << shift;
    *hi = *lo + ((1ull << shift) - 1u);
}

void bench_hist_reset(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->buckets[bucket_of(v)]++;
    h->count++;
    h->min = v < h->min ? v : h->min;
    h->max = v > h->max ? v : h->max;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    if (src->count == 0) {
        return;
    }
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    if (p >= 100.0) {
        return h->max;
    }
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want, seen = 0;
    rank += (double)rank < want || rank == 0 ? 1u : 0u; /* ceil, at least 1 */
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            bucket_range(i, &lo, &hi);
            uint64_t mid = lo + (hi - lo) / 2u;
            return mid < h->min ? h->min : mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}
