/* test_hist.c - unit tests for bench/hist.[ch], the benchmarks' log-linear histogram.
 *
 * Covers: an empty histogram; exact small values; 1..100,000 (uniform) and a spread over
 * nine decades against exact percentiles computed by sorting (within 1%); min/max exact;
 * merge of two halves equals the whole; the largest u64 value.
 */
#include "bench/hist.h"

#include "tests/unit/test.h"

#include <stdint.h>

static struct bench_hist h, h2, whole;

static int within_1pct(uint64_t got, uint64_t want)
{
    double d = (double)got - (double)want;
    return (d < 0 ? -d : d) <= (double)want / 100.0;
}

TEST(empty)
{
    bench_hist_reset(&h);
    CHECK_EQ(h.count, 0);
    CHECK_EQ(bench_hist_percentile(&h, 50), 0);
    CHECK_EQ(bench_hist_percentile(&h, 100), 0);
}

TEST(small_values_exact)
{
    bench_hist_reset(&h);
    for (uint64_t v = 1; v <= 200; v++) {
        bench_hist_record(&h, v);
    }
    CHECK_EQ(bench_hist_percentile(&h, 50), 100);
    CHECK_EQ(bench_hist_percentile(&h, 99), 198);
    CHECK_EQ(bench_hist_percentile(&h, 100), 200);
    CHECK_EQ(h.min, 1);
}

TEST(uniform_within_1pct)
{
    bench_hist_reset(&h);
    for (uint64_t v = 1; v <= 100000; v++) {
        bench_hist_record(&h, v);
    }
    CHECK(within_1pct(bench_hist_percentile(&h, 50), 50000));
    CHECK(within_1pct(bench_hist_percentile(&h, 99), 99000));
    CHECK(within_1pct(bench_hist_percentile(&h, 99.9), 99900));
    CHECK(within_1pct(bench_hist_percentile(&h, 1), 1000));
    CHECK_EQ(bench_hist_percentile(&h, 100), 100000);
    CHECK_EQ(h.count, 100000);
}

/* 1,000 values per decade from 1 us to 1,000 s, in ns: the i-th of 9,000 is
 * 1000 * 10^(i/1000) roughly; exact percentiles by rank. */
TEST(decades_within_1pct)
{
    static uint64_t vals[9000];
    bench_hist_reset(&h);
    uint64_t v = 1000;
    for (int i = 0; i < 9000; i++) {
        vals[i] = v;
        bench_hist_record(&h, v);
        v = v + v / 433 + 1; /* ~x1.0023 per step: ~x10 per 1,000 steps, increasing */
    }
    const double ps[] = {10, 50, 90, 99, 99.9};
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        size_t rank = (size_t)(ps[k] / 100.0 * 9000.0 + 0.999999); /* 1-based */
        CHECK(within_1pct(bench_hist_percentile(&h, ps[k]), vals[rank - 1]));
    }
    CHECK_EQ(bench_hist_percentile(&h, 100), vals[8999]);
    CHECK_EQ(h.min, 1000);
}

TEST(merge_equals_whole)
{
    bench_hist_reset(&h);
    bench_hist_reset(&h2);
    bench_hist_reset(&whole);
    for (uint64_t v = 1; v <= 50000; v++) {
        bench_hist_record(v % 2 ? &h : &h2, v * 37);
        bench_hist_record(&whole, v * 37);
    }
    bench_hist_merge(&h, &h2);
    CHECK_EQ(h.count, whole.count);
    CHECK_EQ(h.min, whole.min);
    CHECK_EQ(h.max, whole.max);
    CHECK(memcmp(h.buckets, whole.buckets, sizeof(h.buckets)) == 0);
    CHECK(within_1pct(bench_hist_percentile(&h, 50), 25000 * 37));
}

TEST(extremes)
{
    bench_hist_reset(&h);
    bench_hist_record(&h, 0);
    bench_hist_record(&h, UINT64_MAX);
    CHECK_EQ(bench_hist_percentile(&h, 50), 0);
    CHECK(bench_hist_percentile(&h, 100) == UINT64_MAX);
    CHECK(bench_hist_percentile(&h, 99) >= UINT64_MAX - UINT64_MAX / 200u); /* its bucket */
}

int main(void)
{
    RUN(empty);
    RUN(small_values_exact);
    RUN(uniform_within_1pct);
    RUN(decades_within_1pct);
    RUN(merge_equals_whole);
    RUN(extremes);
    TEST_END();
}
